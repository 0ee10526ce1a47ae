/** What the statistics tests share: sign-ins, and moving an organisation's past one day back. */
import type { FastifyInstance } from 'fastify'
import { sql } from 'kysely'
import { MONTHLY_ROLLUPS, monthsFromDays } from '../../plugins/stats/counters.ts'
import type { Member } from '../helpers/auth.ts'

export async function login(app: FastifyInstance, member: Member, password = member.password) {
  return app.inject({ method: 'POST', url: '/auth/login', payload: { email: member.email, mot_de_passe: password } })
}

/**
 * Moves everything an organisation did so far one day back, its journal and the rollups the
 * journal fed alike, as if it had happened yesterday: the way a test gets two days of history.
 */
export async function shiftOneDayBack(app: FastifyInstance, organisationId: string): Promise<void> {
  await app.db.transaction().execute(async (trx) => {
    const org = sql`organisation_id = ${organisationId}`
    // The journal is append-only for the application (a trigger): rewriting its past takes the
    // superuser's powers, triggers off (the tables below have none).
    await sql`set local session_replication_role = replica`.execute(trx)
    await sql`update journal_activite set created_at = created_at - interval '1 day' where ${org}`.execute(trx)
    // Oldest days first would collide with the day before only if two days existed already.
    for (const table of ['stats_activite_jour', 'stats_activite_membres', 'stats_membres_jour']) {
      await sql`update ${sql.table(table)} set jour = jour - 1 where ${org}`.execute(trx)
    }
    // A first of the month moved back lands in the month before: the months are summed again.
    for (const table of MONTHLY_ROLLUPS) await sql`delete from ${sql.table(table)} where ${org}`.execute(trx)
    await monthsFromDays(trx, organisationId)
    await sql`update stats_membres_activite set derniere_activite_at = derniere_activite_at - interval '1 day',
      derniere_connexion_at = derniere_connexion_at - interval '1 day' where ${org}`.execute(trx)
    await sql`update stats_journal set verifie_at = verifie_at - interval '1 day' where ${org}`.execute(trx)
  })
}
