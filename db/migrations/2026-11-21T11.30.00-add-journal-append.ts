import { type Kysely, sql } from 'kysely'

/**
 * Appending to the journal in one round trip. The entry's content is digested by the app
 * (canonical JSON, `src/audit.ts`); this function takes the chain's lock, reads its last
 * entry, and links the new one: hash = SHA-256(previous hash ‖ content digest ‖ sequence as
 * 8 bytes big-endian). Entries written before keep the first scheme (`version_hash` 1, one
 * SHA-256 over content, sequence and previous hash, all computed by the app): the chain
 * passes from one scheme to the other without rewriting anything.
 *
 * A VOLATILE function takes a fresh snapshot for each statement it runs, so the read after
 * the lock sees the entry of whoever held it before (within one plain statement, the
 * snapshot would predate the wait).
 */
export async function up(db: Kysely<any>): Promise<void> {
  await sql`alter table journal_activite add column version_hash smallint not null default 1
    check (version_hash in (1, 2))`.execute(db)
  await sql`
    create function journal_ajouter(
      p_organisation uuid, p_empreinte bytea, p_utilisateur uuid, p_action text,
      p_cible_type text, p_cible_id text, p_cible_nom text, p_resultat text, p_severite text,
      p_ip text, p_user_agent text, p_details jsonb, p_created_at timestamptz)
    returns bigint
    language plpgsql volatile
    as $$
    declare
      v_sequence bigint;
      v_precedent bytea;
    begin
      perform pg_advisory_xact_lock(hashtextextended('journal:' || coalesce(p_organisation::text, 'platform'), 0));
      if p_organisation is null then
        select j.sequence, j.hash into v_sequence, v_precedent from journal_activite j
          where j.organisation_id is null order by j.sequence desc limit 1;
      else
        select j.sequence, j.hash into v_sequence, v_precedent from journal_activite j
          where j.organisation_id = p_organisation order by j.sequence desc limit 1;
      end if;
      v_sequence := coalesce(v_sequence, 0) + 1;
      insert into journal_activite (organisation_id, sequence, utilisateur_id, action, cible_type, cible_id,
        cible_nom, resultat, severite, ip, user_agent, details, created_at, hash_precedent, hash, version_hash)
      values (p_organisation, v_sequence, p_utilisateur, p_action, p_cible_type, p_cible_id,
        p_cible_nom, p_resultat, p_severite, p_ip, p_user_agent, p_details, p_created_at, v_precedent,
        sha256(coalesce(v_precedent, ''::bytea) || p_empreinte || int8send(v_sequence)), 2);
      return v_sequence;
    end
    $$`.execute(db)
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop function journal_ajouter(uuid, bytea, uuid, text, text, text, text, text, text, text, text, jsonb, timestamptz)`.execute(db)
  await sql`alter table journal_activite drop column version_hash`.execute(db)
}
