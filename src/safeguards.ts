import type { FastifyInstance, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { Kysely } from 'kysely'
import type { DB } from '../db/types.ts'
import { principalOf } from './auth.ts'

/** An element of the tree, as the domains that change it name it; `organisation` is the whole tree (a system backup). */
export interface GuardedObject {
  type: 'armoire' | 'casier' | 'dossier' | 'fichier' | 'organisation'
  id: string
}

/**
 * What a domain is about to do to an object. `add` puts something new inside a container;
 * `version` gives a file new content; `erase` is a GDPR erasure touching the object; `prune`
 * removes a backup covering it.
 */
export type GuardedAction =
  | 'delete'
  | 'purge'
  | 'shred'
  | 'rename'
  | 'move'
  | 'version'
  | 'remove_version'
  | 'restore_overwrite'
  | 'add'
  | 'dispose'
  | 'erase'
  | 'prune'

export interface GuardRequest {
  organisationId: string
  userId: string | null
  ip?: string | null
  userAgent?: string | null
  object: GuardedObject
  action: GuardedAction
  /** For a move: the container the object goes into. */
  destination?: GuardedObject
}

export type Guard = (db: Kysely<DB>, request: GuardRequest) => Promise<void>

declare module 'fastify' {
  interface FastifyInstance {
    safeguards: {
      /**
       * Asks whether an object may change, inside the transaction that changes it, before it
       * journals anything: throws the refusal (a lock, retention, a legal hold), and may record
       * what the change implies (a term that follows a moved file). Without a compliance
       * domain, everything may change.
       */
      assertMayChange(db: Kysely<DB>, request: GuardRequest): Promise<void>
      /** Installs the guard; one domain (compliance) fills it, once. */
      fill(guard: Guard): void
    }
  }
}

/**
 * The hook domains call before anything destructive. It lives in the kernel so that the
 * domains asking (documents, backup, security) come before the one answering (compliance)
 * in the order of domains.
 */
export const safeguardsPlugin = fp(
  async (app: FastifyInstance) => {
    let guard: Guard | null = null
    app.decorate('safeguards', {
      assertMayChange: async (db, request) => {
        if (guard) await guard(db, request)
      },
      fill: (g) => {
        if (guard) throw new Error('the safeguards guard is filled already')
        guard = g
      },
    })
  },
  { name: 'safeguards', fastify: '5.x' },
)

/** The part of a guard request a signed-in request gives: who asks, from where. */
export function requester(request: FastifyRequest): Pick<GuardRequest, 'organisationId' | 'userId' | 'ip' | 'userAgent'> {
  const principal = principalOf(request)
  return {
    organisationId: principal.organisationId,
    userId: principal.userId,
    ip: request.ip,
    userAgent: request.headers['user-agent']?.slice(0, 512) ?? null,
  }
}
