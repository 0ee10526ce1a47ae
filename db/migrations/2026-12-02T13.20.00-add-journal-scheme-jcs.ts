import { type Kysely, sql } from 'kysely'

/**
 * Scheme 3 of the journal's hashes: the app digests an entry's content in RFC 8785's canonical
 * form (scheme 2's hand-written form wrote a Date detail as `{}`). `journal_ajouter` takes the
 * scheme its caller used, 2 when not given, so an instance still running the previous code
 * labels its entries right during a rolling deploy. Entries already written keep their scheme.
 */
const ARGS = 'uuid, bytea, uuid, text, text, text, text, text, text, text, text, jsonb, timestamptz'

function journalAppend(withScheme: boolean) {
  return sql`
    create function journal_ajouter(
      p_organisation uuid, p_empreinte bytea, p_utilisateur uuid, p_action text,
      p_cible_type text, p_cible_id text, p_cible_nom text, p_resultat text, p_severite text,
      p_ip text, p_user_agent text, p_details jsonb, p_created_at timestamptz
      ${withScheme ? sql`, p_version_hash smallint default 2` : sql``})
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
        sha256(coalesce(v_precedent, ''::bytea) || p_empreinte || int8send(v_sequence)), ${withScheme ? sql.raw('p_version_hash') : sql.raw('2')});
      return v_sequence;
    end
    $$`
}

export async function up(db: Kysely<any>): Promise<void> {
  await sql`alter table journal_activite drop constraint journal_activite_version_hash_check`.execute(db)
  await sql`alter table journal_activite add constraint journal_activite_version_hash_check check (version_hash in (1, 2, 3))`.execute(db)
  await sql`drop function journal_ajouter(${sql.raw(ARGS)})`.execute(db)
  await journalAppend(true).execute(db)
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop function journal_ajouter(${sql.raw(ARGS)}, smallint)`.execute(db)
  await journalAppend(false).execute(db)
  await sql`alter table journal_activite drop constraint journal_activite_version_hash_check`.execute(db)
  await sql`alter table journal_activite add constraint journal_activite_version_hash_check check (version_hash in (1, 2))`.execute(db)
}
