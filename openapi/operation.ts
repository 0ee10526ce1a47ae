import type { TSchema } from '@sinclair/typebox'
import type { FastifySchema, HTTPMethods } from 'fastify'
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
  const statuses = new Set<number>([429, 500, ...(op.problems ?? [])])
  if (op.schema.body || op.schema.querystring || op.schema.params || op.schema.headers) statuses.add(400)
  if (op.schema.params) statuses.add(404)
  if (!('public' in op.access)) {
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
      security: 'public' in op.access ? [] : [{ bearerAuth: [] }],
      response,
    },
  }
}
