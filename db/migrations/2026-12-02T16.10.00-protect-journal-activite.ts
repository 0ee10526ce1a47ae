import { type Kysely, sql } from 'kysely'

/**
 * The journal is append-only: a trigger refuses every UPDATE, DELETE and TRUNCATE of
 * `journal_activite`, except the removals `journal_elaguer` makes at the journal's own term.
 * Each removal leaves a row in `journal_elagages` naming the last sequence removed and its
 * hash, from which the chain's verification resumes.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await sql`create table journal_elagages (
    id bigint primary key generated always as identity,
    organisation_id uuid,
    jusqua_sequence bigint not null,
    hash_reprise bytea not null,
    entrees bigint not null,
    avant timestamptz not null,
    created_at timestamptz not null default now()
  )`.execute(db)
  await sql`create index journal_elagages_organisation_idx on journal_elagages (organisation_id, jusqua_sequence)`.execute(db)

  await sql`create function journal_activite_immuable() returns trigger
    language plpgsql
    as $$
    begin
      if tg_op = 'DELETE' and current_setting('armoire.journal_elagage', true) = 'en_cours' then
        return old;
      end if;
      raise exception 'journal_activite est en ajout seul (% refusé)', tg_op using errcode = 'insufficient_privilege';
    end
    $$`.execute(db)
  await sql`create trigger journal_activite_immuable before update or delete on journal_activite
    for each row execute function journal_activite_immuable()`.execute(db)
  await sql`create trigger journal_activite_sans_troncature before truncate on journal_activite
    for each statement execute function journal_activite_immuable()`.execute(db)

  // Removes an organisation's entries older than p_avant, never its last one (the chain's end).
  await sql`create function journal_elaguer(p_organisation uuid, p_avant timestamptz)
    returns table (jusqua_sequence bigint, hash_reprise bytea, entrees bigint)
    language plpgsql volatile
    as $$
    declare
      v_sequence bigint;
      v_hash bytea;
      v_entrees bigint;
    begin
      perform pg_advisory_xact_lock(hashtextextended('journal:' || coalesce(p_organisation::text, 'platform'), 0));
      select j.sequence, j.hash into v_sequence, v_hash from journal_activite j
        where j.organisation_id is not distinct from p_organisation and j.created_at < p_avant
          and j.sequence < (select max(m.sequence) from journal_activite m where m.organisation_id is not distinct from p_organisation)
        order by j.sequence desc limit 1;
      if v_sequence is null then
        return;
      end if;
      perform set_config('armoire.journal_elagage', 'en_cours', true);
      delete from journal_activite j where j.organisation_id is not distinct from p_organisation and j.sequence <= v_sequence;
      get diagnostics v_entrees = row_count;
      perform set_config('armoire.journal_elagage', '', true);
      insert into journal_elagages (organisation_id, jusqua_sequence, hash_reprise, entrees, avant)
        values (p_organisation, v_sequence, v_hash, v_entrees, p_avant);
      return query select v_sequence, v_hash, v_entrees;
    end
    $$`.execute(db)
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop function journal_elaguer(uuid, timestamptz)`.execute(db)
  await sql`drop trigger journal_activite_sans_troncature on journal_activite`.execute(db)
  await sql`drop trigger journal_activite_immuable on journal_activite`.execute(db)
  await sql`drop function journal_activite_immuable()`.execute(db)
  await sql`drop table journal_elagages`.execute(db)
}
