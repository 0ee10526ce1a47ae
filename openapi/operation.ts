import type { Static, TSchema } from '@sinclair/typebox'
import type { FastifySchema, HTTPMethods } from 'fastify'
import type { Config } from '../src/config.ts'
import { type ErrorCode, ErrorStatus } from '../src/errors.ts'
import type { Action } from '../src/journal-actions.ts'
import { ProblemSchema, Ref, type Role } from './common.ts'

/** Settings holding a shared secret a webhook's caller must present (`FEEXPAY_WEBHOOK_SECRET`…). */
export type WebhookSecretSetting = { [K in keyof Config]-?: K extends `${string}_WEBHOOK_SECRET` ? K : never }[keyof Config]

/**
 * A webhook's caller presents the shared secret of a setting, in the header or else the query
 * parameter named (compared in constant time; an empty setting refuses every call). A refusal
 * is journaled under `refused`.
 */
export interface WebhookAccess {
  readonly secret: WebhookSecretSetting
  readonly header?: string
  readonly query?: string
  readonly refused: Action
}

/**
 * Who may call an operation: anyone; a signed-in member holding one of the roles; or a
 * webhook's caller. A session confined to enrolling a second factor (the organisation requires
 * 2FA and the member has none) reaches only the operations marked `duringMfaEnrolment`.
 */
export type Access =
  | { readonly public: true }
  | { readonly roles: readonly Role[]; readonly duringMfaEnrolment?: true }
  | { readonly webhook: WebhookAccess }

/** Settings holding a number of requests a rate limit allows per window (`AUTH_RATE_LIMIT_MAX`…). */
export type RateLimitSetting = { [K in keyof Config]-?: K extends `${string}RATE_LIMIT_MAX` ? K : never }[keyof Config]

/**
 * What a rate limit counts requests by: `caller` is the signed-in user, or the address when
 * anonymous; `user` counts only signed-in requests; `address` is the client's address; a body
 * field counts by its value (lower-cased, or hashed when `secret`, so the value never becomes
 * a counter's name).
 */
export type RateLimitKey = 'caller' | 'address' | 'user' | { readonly body: string; readonly secret?: true }

export interface RateLimit {
  /** The setting giving how many requests the window allows. */
  readonly max: RateLimitSetting
  readonly window: '1 minute' | '15 minutes' | '1 hour'
  /** Defaults to `caller`. A `caller` or `address` limit replaces the global one for the operation. */
  readonly per?: RateLimitKey
  /** Operations naming the same counter share it (every mail a user can trigger, say). */
  readonly counter?: string
  /** Counted only when this body field has this value. */
  readonly when?: { readonly body: string; readonly equals: string }
}

export const ALL_ROLES: readonly Role[] = ['admin', 'contributeur', 'lecteur']
export const WRITERS: readonly Role[] = ['admin', 'contributeur']
export const ADMINS: readonly Role[] = ['admin']

export interface OperationSchema extends FastifySchema {
  params?: TSchema
  querystring?: TSchema
  body?: TSchema
  headers?: TSchema
  response: Record<number, unknown>
}

/** The value a schema accepts; `unknown` for a response written as an OpenAPI media map. */
type ExampleOf<T> = T extends TSchema ? Static<T> : unknown

/** What an integrator sees of an answer besides its schema: what it means, and one real instance. */
export interface Answer<T = unknown> {
  /** What this status means for this operation; required where the schema carries none. */
  readonly description?: string
  /** A valid instance of the status's schema (checked by test/examples.test.ts). */
  readonly example?: T
}

export interface Operation<S extends OperationSchema = OperationSchema> {
  readonly method: HTTPMethods
  readonly url: string
  readonly operationId: string
  readonly tags: readonly string[]
  readonly summary: string
  /** What it does and when to use it, in French (required of every operation of the contract). */
  readonly description?: string
  readonly access: Access
  /**
   * The problem `code`s this operation may answer besides the ones every operation shares
   * (validation, authentication, role, not found, rate limit, internal error). A bare status
   * is accepted while a domain is being written; test/examples.test.ts asks for its codes.
   */
  readonly problems?: readonly (ErrorCode | number)[]
  /** Examples of what the client sends, valid against `schema` (the query's and path's: some parameters). */
  readonly request?: {
    readonly body?: ExampleOf<S['body']>
    readonly querystring?: Partial<ExampleOf<S['querystring']>>
    readonly params?: Partial<ExampleOf<S['params']>>
  }
  /** Per status: its description (when the schema has none) and an example. */
  readonly responses?: { readonly [K in keyof S['response']]?: Answer<ExampleOf<S['response'][K]>> }
  /**
   * The limits its requests count against. Without any, the global per-caller limit applies;
   * `false` exempts the operation (health probes, polled by load balancers).
   */
  readonly rateLimits?: readonly RateLimit[] | false
  readonly schema: S
}

const problem = (description: string) => ({
  description,
  content: { 'application/problem+json': { schema: Ref(ProblemSchema) } },
})

const PROBLEM_TEXT: Record<number, string> = {
  400: 'Requête invalide (les champs fautifs sont listés dans `errors`)',
  401: 'Authentification requise ou jeton invalide',
  403: 'Rôle insuffisant',
  404: 'Ressource introuvable (ou appartenant à une autre organisation)',
  409: 'Conflit avec l’état actuel',
  413: 'Contenu trop volumineux',
  415: 'Type de contenu non pris en charge',
  416: 'Plage non satisfiable',
  422: 'Requête bien formée mais refusée',
  423: 'Ressource verrouillée',
  429: 'Trop de requêtes',
  500: 'Erreur interne',
  502: 'Service tiers indisponible',
  503: 'Service momentanément indisponible (réessayer après `Retry-After` secondes)',
  507: 'Stockage plein',
}

/**
 * The codes every operation of a kind may answer: any input can be invalid, any JSON body
 * malformed, too large or sent without its type, any token refused, any role too low, any
 * named resource missing, any caller limited, any server fail or lose its database.
 */
function sharedCodes(op: Operation): ErrorCode[] {
  const { schema, access } = op
  const codes: ErrorCode[] = ['RATE_LIMITED', 'INTERNAL_ERROR', 'DATABASE_UNAVAILABLE']
  if (schema.body || schema.querystring || schema.params || schema.headers) codes.push('VALIDATION_ERROR')
  if (schema.body) codes.push('BAD_REQUEST', 'PAYLOAD_TOO_LARGE', 'UNSUPPORTED_MEDIA_TYPE')
  const query = schema.querystring as { properties?: Record<string, unknown> } | undefined
  if (query?.properties?.cursor) codes.push('INVALID_CURSOR')
  if (schema.params) codes.push('NOT_FOUND')
  if ('webhook' in access) codes.push('WEBHOOK_UNAUTHORIZED')
  if ('roles' in access) {
    codes.push('UNAUTHENTICATED', 'TOKEN_INVALID', 'SESSION_REVOKED', 'FORBIDDEN')
    if (!access.duringMfaEnrolment) codes.push('MFA_ENROLMENT_REQUIRED')
  }
  return codes
}

/** Every problem code an operation may answer, by status, in catalogue order. */
export function problemCodes(op: Operation): Map<number, ErrorCode[]> {
  const codes = new Set<ErrorCode>(sharedCodes(op))
  for (const p of op.problems ?? []) if (typeof p === 'string') codes.add(p)
  const byStatus = new Map<number, ErrorCode[]>()
  for (const code of Object.keys(ErrorStatus) as ErrorCode[]) {
    if (!codes.has(code)) continue
    const status = ErrorStatus[code]
    byStatus.set(status, [...(byStatus.get(status) ?? []), code])
  }
  return byStatus
}

/**
 * Declares an operation of the contract. Adds what every operation shares: the problem
 * answers (400 when it takes input, 401/403 when it is not public, 404 when it names a
 * resource, 429, 500) and the ones its codes name, each described with its codes, its
 * security requirement, and its id, tags, summary and description.
 */
export function defineOperation<const S extends OperationSchema>(op: Operation<S>): Operation<S> {
  if ('webhook' in op.access && !op.rateLimits) throw new Error(`webhook ${op.operationId} must declare its own rate limit`)
  if ('webhook' in op.access && !op.access.webhook.header && !op.access.webhook.query) throw new Error(`webhook ${op.operationId} names no header nor query parameter`)
  const callerLimits = (op.rateLimits || []).filter((l) => (l.per ?? 'caller') === 'caller' || l.per === 'address')
  if (callerLimits.length > 1) throw new Error(`${op.operationId} declares more than one caller or address limit`)
  const codes = problemCodes(op as unknown as Operation)
  const statuses = new Set<number>([...codes.keys(), ...(op.problems ?? []).filter((p) => typeof p === 'number')])
  const response: Record<number, unknown> = { ...op.schema.response }
  for (const status of [...statuses].sort()) {
    const listed = codes.get(status)
    const text = PROBLEM_TEXT[status] ?? 'Erreur'
    response[status] ??= problem(listed ? `${text}. Codes : ${listed.map((c) => `\`${c}\``).join(', ')}` : text)
  }
  return {
    ...op,
    schema: {
      ...op.schema,
      operationId: op.operationId,
      tags: [...op.tags],
      summary: op.summary,
      ...(op.description ? { description: op.description } : {}),
      security: 'roles' in op.access ? [{ bearerAuth: [] }] : [],
      response,
    },
  }
}

interface DocumentedMedia {
  schema?: unknown
  example?: unknown
}
export interface DocumentedOperation {
  operationId?: string
  parameters?: { in: string; name: string; required?: boolean; schema?: { default?: unknown }; example?: unknown }[]
  requestBody?: { content?: Record<string, DocumentedMedia> }
  responses?: Record<string, { description?: string; content?: Record<string, DocumentedMedia>; 'x-problem-codes'?: string[] }>
}

/**
 * Publishes in the OpenAPI document what the route schema cannot carry: the examples, the
 * descriptions of statuses whose schema is shared, the roles (`x-roles`) and, on each
 * problem answer, the codes it may carry (`x-problem-codes`).
 */
export function documentOperation(documented: DocumentedOperation, op: Operation): void {
  Object.assign(documented, { 'x-roles': 'roles' in op.access ? [...op.access.roles] : [] })
  for (const parameter of documented.parameters ?? []) {
    const given = (op.request?.[parameter.in === 'path' ? 'params' : parameter.in === 'query' ? 'querystring' : 'body'] ?? {}) as Record<string, unknown>
    if (parameter.in !== 'header' && given[parameter.name] !== undefined) parameter.example = given[parameter.name]
    // The server fills in a query parameter it has a default for: the client may leave it out.
    if (parameter.in === 'query' && parameter.schema?.default !== undefined) parameter.required = false
  }
  if (op.request?.body !== undefined) {
    for (const media of Object.values(documented.requestBody?.content ?? {})) media.example = op.request.body
  }
  const answers = (op.responses ?? {}) as Record<string, Answer | undefined>
  for (const [status, documentedAnswer] of Object.entries(documented.responses ?? {})) {
    const answer = answers[status]
    if (answer?.description) documentedAnswer.description = answer.description
    if (answer?.example !== undefined) {
      const content = documentedAnswer.content ?? {}
      const json = Object.keys(content).find((type) => type.includes('json'))
      if (json) (content[json] as DocumentedMedia).example = answer.example
    }
    const codes = problemCodes(op).get(Number(status))
    if (codes) documentedAnswer['x-problem-codes'] = codes
  }
}
