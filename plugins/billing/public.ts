/** What the rest of Armoire may use of the billing domain: nothing else of it is imported from outside. */
import { type Kysely, sql } from 'kysely'
import type { StatutAbonnement } from '../../db/tables/billing.ts'
import type { DB } from '../../db/types.ts'
import { prepared } from '../../src/db.ts'

export { createCreditNote } from './credit-notes.ts'

export interface SubscriptionSummary {
  plan_code: string
  plan_nom: string
  statut: StatutAbonnement
  periode_fin: Date
  /** The plan's storage quota in bytes; 0 means unlimited. */
  quota_stockage_octets: number
}

/** The organisation's subscription and its plan (every organisation has one from its creation). */
export async function subscriptionSummary(db: Kysely<DB>, organisationId: string): Promise<SubscriptionSummary | undefined> {
  return (await sql<SubscriptionSummary>`${prepared}${subscriptionSummaryQuery(organisationId)}`.execute(db)).rows[0]
}

/** The same as a query another statement may embed. */
export function subscriptionSummaryQuery(organisationId: string) {
  return sql<SubscriptionSummary>`select a.plan_code, p.nom as plan_nom, a.statut, a.periode_fin, p.quota_stockage_octets
    from abonnements a join plans p on p.code = a.plan_code where a.organisation_id = ${organisationId}`
}
