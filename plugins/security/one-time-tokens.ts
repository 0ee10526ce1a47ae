import { type Kysely, sql, type Transaction } from 'kysely'
import type { JetonUsageUnique, UsageJeton } from '../../db/tables/security.ts'
import type { DB } from '../../db/types.ts'
import { hashSecret, newSecret } from './tokens.ts'

export interface IssuedToken {
  token: string
  hash: Buffer
  expiresAt: Date
}

/**
 * Hands out a single-use secret for `usage`; only its hash is stored. With `replace`, the
 * user's earlier unused secrets of the same usage stop working (the newest link wins).
 */
export async function issueToken(
  trx: Transaction<DB>,
  usage: UsageJeton,
  opts: { userId: string | null; organisationId: string | null; ttlSeconds: number; data?: Record<string, unknown>; replace?: boolean },
): Promise<IssuedToken> {
  if (opts.replace && opts.userId) {
    await trx
      .updateTable('jetons_usage_unique')
      .set({ used_at: sql`now()` })
      .where('utilisateur_id', '=', opts.userId)
      .where('usage', '=', usage)
      .where('used_at', 'is', null)
      .execute()
  }
  const { token, hash } = newSecret()
  const expiresAt = new Date(Date.now() + opts.ttlSeconds * 1000)
  await trx
    .insertInto('jetons_usage_unique')
    .values({
      hash,
      usage,
      utilisateur_id: opts.userId,
      organisation_id: opts.organisationId,
      donnees: JSON.stringify(opts.data ?? {}),
      expires_at: expiresAt,
    })
    .execute()
  return { token, hash, expiresAt }
}

/** Uses a secret up: answers its row once, while it is live; never again after. */
export function consumeToken(trx: Transaction<DB>, usage: UsageJeton, token: string): Promise<JetonUsageUnique | undefined> {
  return trx
    .updateTable('jetons_usage_unique')
    .set({ used_at: sql`now()` })
    .where('hash', '=', hashSecret(token))
    .where('usage', '=', usage)
    .where('used_at', 'is', null)
    .where('expires_at', '>', sql<Date>`now()`)
    .returningAll()
    .executeTakeFirst()
}

/** A live secret, left unused (a 2FA step may take several attempts). */
export function findLiveToken(db: Kysely<DB>, usage: UsageJeton, token: string): Promise<JetonUsageUnique | undefined> {
  return db
    .selectFrom('jetons_usage_unique')
    .selectAll()
    .where('hash', '=', hashSecret(token))
    .where('usage', '=', usage)
    .where('used_at', 'is', null)
    .where('expires_at', '>', sql<Date>`now()`)
    .executeTakeFirst()
}

/** Secrets expired for a day are of no use, not even as evidence: the journal keeps that. */
export async function sweepTokens(db: Kysely<DB>): Promise<number> {
  const result = await db.deleteFrom('jetons_usage_unique').where('expires_at', '<', sql<Date>`now() - interval '1 day'`).executeTakeFirst()
  return Number(result.numDeletedRows)
}
