import { type Kysely, sql } from 'kysely'

/**
 * The end of an organisation's journal chain (or the platform's, organisation null), read
 * under the chain's lock in one round trip: the lock is taken, then the last entry read.
 * A VOLATILE function takes a fresh snapshot for each statement it runs, so the read sees
 * the entry of whoever held the lock before (one statement could not: its snapshot would
 * predate the wait).
 */
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    create function journal_fin_de_chaine(organisation uuid)
    returns table (sequence bigint, hash bytea)
    language plpgsql volatile
    as $$
    begin
      perform pg_advisory_xact_lock(hashtextextended('journal:' || coalesce(organisation::text, 'platform'), 0));
      if organisation is null then
        return query select j.sequence, j.hash from journal_activite j
          where j.organisation_id is null order by j.sequence desc limit 1;
      else
        return query select j.sequence, j.hash from journal_activite j
          where j.organisation_id = organisation order by j.sequence desc limit 1;
      end if;
    end
    $$`.execute(db)
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop function journal_fin_de_chaine(uuid)`.execute(db)
}
