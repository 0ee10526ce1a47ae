import type { Static, TSchema } from '@sinclair/typebox'
import type { FastifySchema, HTTPMethods } from 'fastify'
import { type ErrorCode, ErrorStatus } from '../src/errors.ts'
import { ProblemSchema, Ref, type Role } from './common.ts'

/**
 * Who may call an operation: anyone, or a signed-in member holding one of the roles. A
 * session confined to enrolling a second factor (the organisation requires 2FA and the
 * member has none) reaches only the operations marked `duringMfaEnrolment`.
 */
export type Access = { readonly public: true } | { readonly roles: readonly Role[]; readonly duringMfaEnrolment?: true }

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
  503: 'Service momentanément indisponible',
}

/**
 * The codes every operation of a kind may answer: any input can be invalid, any JSON body
 * malformed, too large or sent without its type, any token refused, any role too low, any
 * named resource missing, any caller limited, any server fail.
 */
function sharedCodes(op: Operation): ErrorCode[] {
  const { schema, access } = op
  const codes: ErrorCode[] = ['RATE_LIMITED', 'INTERNAL_ERROR']
  if (schema.body || schema.querystring || schema.params || schema.headers) codes.push('VALIDATION_ERROR')
  if (schema.body) codes.push('BAD_REQUEST', 'PAYLOAD_TOO_LARGE', 'UNSUPPORTED_MEDIA_TYPE')
  const query = schema.querystring as { properties?: Record<string, unknown> } | undefined
  if (query?.properties?.cursor) codes.push('INVALID_CURSOR')
  if (schema.params) codes.push('NOT_FOUND')
  if (!('public' in access)) {
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
      security: 'public' in op.access ? [] : [{ bearerAuth: [] }],
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
  parameters?: { in: string; name: string; example?: unknown }[]
  requestBody?: { content?: Record<string, DocumentedMedia> }
  responses?: Record<string, { description?: string; content?: Record<string, DocumentedMedia>; 'x-problem-codes'?: string[] }>
}

/**
 * Publishes in the OpenAPI document what the route schema cannot carry: the examples, the
 * descriptions of statuses whose schema is shared, the roles (`x-roles`) and, on each
 * problem answer, the codes it may carry (`x-problem-codes`).
 */
export function documentOperation(documented: DocumentedOperation, op: Operation): void {
  Object.assign(documented, { 'x-roles': 'public' in op.access ? [] : [...op.access.roles] })
  for (const parameter of documented.parameters ?? []) {
    const given = (op.request?.[parameter.in === 'path' ? 'params' : parameter.in === 'query' ? 'querystring' : 'body'] ?? {}) as Record<string, unknown>
    if (parameter.in !== 'header' && given[parameter.name] !== undefined) parameter.example = given[parameter.name]
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
