import type { FastifyInstance } from 'fastify'
import { sql } from 'kysely'

const DAY_MS = 86_400_000

/**
 * Removes, organisation by organisation, the journal entries older than the journal's own
 * term, and journals each removal with the hash the chain resumes from. Answers how many
 * entries went.
 */
export async function pruneJournal(app: FastifyInstance, retentionDays: number, now = new Date()): Promise<number> {
  if (retentionDays === 0) return 0
  const before = new Date(now.getTime() - retentionDays * DAY_MS)
  const { rows: organisations } = await sql<{ organisation_id: string }>`select distinct organisation_id from journal_activite
    where organisation_id is not null and created_at < ${before}`.execute(app.db)
  let removed = 0
  for (const { organisation_id: organisationId } of organisations) {
    removed += await app.db.transaction().execute(async (trx) => {
      const { rows } = await sql<{ jusqua_sequence: number; hash_reprise: Buffer; entrees: number }>`select * from journal_elaguer(${organisationId}::uuid, ${before}::timestamptz)`.execute(trx)
      const pruned = rows[0]
      if (!pruned) return 0
      await app.audit.record(trx, {
        organisationId,
        userId: null,
        action: 'JOURNAL_PRUNED',
        target: { type: 'journal', id: null },
        details: {
          avant: before.toISOString(),
          duree_conservation_jours: retentionDays,
          entrees: Number(pruned.entrees),
          jusqua_sequence: Number(pruned.jusqua_sequence),
          hash_reprise: pruned.hash_reprise.toString('hex'),
        },
      })
      return Number(pruned.entrees)
    })
  }
  return removed
}
