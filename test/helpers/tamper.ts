import { type Kysely, type RawBuilder, sql } from 'kysely'
import type { DB } from '../../db/types.ts'

/**
 * Runs a statement as an attacker with the server's superuser would: with triggers off, so
 * the journal's append-only trigger does not stop it. What the chain must then detect.
 */
export async function tamper(db: Kysely<DB>, statement: RawBuilder<unknown>): Promise<void> {
  await db.transaction().execute(async (trx) => {
    await sql`set local session_replication_role = replica`.execute(trx)
    await statement.execute(trx)
  })
}
