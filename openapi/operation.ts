import type { TSchema } from '@sinclair/typebox'
import type { FastifySchema, HTTPMethods } from 'fastify'
import type { Config } from '../src/config.ts'
import { ProblemSchema, Ref, type Role } from './common.ts'

/** Settings holding a shared secret a webhook's caller must present (`FEEXPAY_WEBHOOK_SECRET`…). */
export type WebhookSecretSetting = { [K in keyof Config]: K extends `${string}_WEBHOOK_SECRET` ? K : never }[keyof Config]

/**
 * Who may call an operation: anyone; a signed-in member holding one of the roles; or, for a
 * webhook, whoever presents the shared secret of a setting, in a header or a query parameter
 * (compared in constant time; an empty setting refuses every call). A session confined to
 * enrolling a second factor (the organisation requires 2FA and the member has none) reaches
 * only the operations marked `duringMfaEnrolment`.
 */
export type Access =
  | { readonly public: true }
  | { readonly roles: readonly Role[]; readonly duringMfaEnrolment?: true }
  | { readonly webhook: { readonly secret: WebhookSecretSetting; readonly header: string } | { readonly secret: WebhookSecretSetting; readonly query: string } }

/** Settings holding a number of requests a rate limit allows per window (`AUTH_RATE_LIMIT_MAX`…). */
export type RateLimitSetting = { [K in keyof Config]: K extends `${string}RATE_LIMIT_MAX` ? K : never }[keyof Config]

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

export interface Operation<S extends OperationSchema = OperationSchema> {
  readonly method: HTTPMethods
  readonly url: string
  readonly operationId: string
  readonly tags: readonly string[]
  readonly summary: string
  readonly description?: string
  readonly access: Access
  /** Problem statuses this operation can answer besides the ones every operation shares. */
  readonly problems?: readonly number[]
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
  422: 'Requête bien formée mais refusée',
  423: 'Ressource verrouillée',
  429: 'Trop de requêtes',
  500: 'Erreur interne',
  502: 'Service tiers indisponible',
  503: 'Service momentanément indisponible',
}

/**
 * Declares an operation of the contract. Adds what every operation shares: the problem
 * answers (400 when it takes input, 401/403 when it is not public, 404 when it names a
 * resource, 429, 500), its security requirement, and its id, tags and summary.
 */
export function defineOperation<const S extends OperationSchema>(op: Operation<S>): Operation<S> {
  if ('webhook' in op.access && !op.rateLimits) throw new Error(`webhook ${op.operationId} must declare its own rate limit`)
  const callerLimits = (op.rateLimits || []).filter((l) => (l.per ?? 'caller') === 'caller' || l.per === 'address')
  if (callerLimits.length > 1) throw new Error(`${op.operationId} declares more than one caller or address limit`)
  const statuses = new Set<number>([429, 500, ...(op.problems ?? [])])
  if (op.schema.body || op.schema.querystring || op.schema.params || op.schema.headers) statuses.add(400)
  if (op.schema.params) statuses.add(404)
  if ('webhook' in op.access) statuses.add(401)
  if ('roles' in op.access) {
    statuses.add(401)
    statuses.add(403)
  }
  const response: Record<number, unknown> = { ...op.schema.response }
  for (const status of [...statuses].sort()) {
    response[status] ??= problem(PROBLEM_TEXT[status] ?? 'Erreur')
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
