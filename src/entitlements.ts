import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type { Kysely } from 'kysely'
import type { DB } from '../db/types.ts'

/** What a domain is about to add to an organisation: content to its vault, or a member. */
export type Addition = 'fichier' | 'version' | 'armoire' | 'casier' | 'dossier' | 'membre'

export type Entitlement = (db: Kysely<DB>, organisationId: string, addition: Addition) => Promise<{ storageQuota: number | null }>

declare module 'fastify' {
  interface FastifyInstance {
    entitlements: {
      /**
       * Asks whether the organisation's subscription lets it add content: throws
       * SUBSCRIPTION_INACTIVE (402) while it is read-only, QUOTA_EXCEEDED when its plan's count
       * is reached; answers the storage quota its plan sets (bytes, 0 = unlimited), or null
       * for the configured default. Without a billing domain, everything may be added.
       */
      assertMayAdd(db: Kysely<DB>, organisationId: string, addition: Addition): Promise<{ storageQuota: number | null }>
      /** Installs the answer; one domain (billing) fills it, once. */
      fill(entitlement: Entitlement): void
    }
  }
}

/**
 * The hook documents calls before adding anything. It lives in the kernel so that documents,
 * which asks, comes before billing, which answers, in the order of domains.
 */
export const entitlementsPlugin = fp(
  async (app: FastifyInstance) => {
    let entitlement: Entitlement | null = null
    app.decorate('entitlements', {
      assertMayAdd: async (db, organisationId, addition) => (entitlement ? entitlement(db, organisationId, addition) : { storageQuota: null }),
      fill: (e) => {
        if (entitlement) throw new Error('the entitlements are filled already')
        entitlement = e
      },
    })
  },
  { name: 'entitlements', fastify: '5.x' },
)
