import { type Kysely, sql, type Transaction } from 'kysely'
import type { DB } from '../../db/types.ts'
import { Errors } from '../../src/errors.ts'

/**
 * Bytes stored per organisation: the plaintext size of every version, trash included, kept
 * exact by the transactions that add or destroy versions. A quota of 0 means unlimited.
 */
export async function usage(db: Kysely<DB>, organisationId: string, defaultQuota: number): Promise<{ used: number; quota: number }> {
  const row = (await usageQuery(organisationId).execute(db)).rows[0]
  return { used: row?.stockage_utilise ?? 0, quota: row?.quota_octets ?? defaultQuota }
}

/** The organisation's usage row (none before its first version), as a query another statement may embed. */
export function usageQuery(organisationId: string) {
  return sql<{ stockage_utilise: number; quota_octets: number | null }>`select stockage_utilise, quota_octets from stockage_organisations
    where organisation_id = ${organisationId}`
}

/**
 * Bytes an upload may still take and the quota that bounds them (the organisation's own, or
 * the default given), or null when the organisation has no limit.
 */
export async function allowance(db: Kysely<DB>, organisationId: string, defaultQuota: number): Promise<{ bytes: number; quota: number } | null> {
  const { used, quota } = await usage(db, organisationId, defaultQuota)
  if (quota === 0) return null
  if (used >= quota) throw new Errors.QUOTA_EXCEEDED(quota)
  return { bytes: quota - used, quota }
}

/**
 * Counts new bytes inside the transaction that stores them, refusing what would exceed the
 * quota. The row lock it takes serialises the organisation's concurrent commits, so two
 * uploads that each fit alone cannot both pass.
 */
export async function addUsage(trx: Transaction<DB>, organisationId: string, bytes: number, defaultQuota: number): Promise<void> {
  const row = await trx
    .insertInto('stockage_organisations')
    .values({ organisation_id: organisationId, stockage_utilise: bytes })
    .onConflict((oc) =>
      oc.column('organisation_id').doUpdateSet({
        stockage_utilise: sql`stockage_organisations.stockage_utilise + excluded.stockage_utilise`,
        updated_at: sql`now()`,
      }),
    )
    .returning(['stockage_utilise', 'quota_octets'])
    .executeTakeFirstOrThrow()
  const quota = row.quota_octets ?? defaultQuota
  if (quota > 0 && row.stockage_utilise > quota) throw new Errors.QUOTA_EXCEEDED(quota)
}

export async function releaseUsage(trx: Transaction<DB>, organisationId: string, bytes: number): Promise<void> {
  if (bytes === 0) return
  await trx
    .updateTable('stockage_organisations')
    .set({ stockage_utilise: sql`stockage_utilise - ${bytes}`, updated_at: sql`now()` })
    .where('organisation_id', '=', organisationId)
    .execute()
}
