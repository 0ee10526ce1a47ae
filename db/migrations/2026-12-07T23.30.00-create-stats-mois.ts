import { type Kysely, sql } from 'kysely'

// Monthly twins of the three daily activity rollups, kept by the same trigger in the same
// transaction: a year by month, or the most active members of a year, then reads 12 rows per
// key instead of 365, so a dashboard's cost does not grow with the days an organisation has lived.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('stats_activite_mois')
    .addColumn('organisation_id', 'uuid', (c) => c.notNull().references('organisations.id').onDelete('cascade'))
    .addColumn('mois', 'date', (c) => c.notNull())
    .addColumn('action', 'text', (c) => c.notNull())
    .addColumn('resultat', 'text', (c) => c.notNull())
    .addColumn('n', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('stats_activite_mois_pkey', ['organisation_id', 'mois', 'action', 'resultat'])
    .execute()
  await db.schema
    .createTable('stats_activite_membres_mois')
    .addColumn('organisation_id', 'uuid', (c) => c.notNull().references('organisations.id').onDelete('cascade'))
    .addColumn('utilisateur_id', 'uuid', (c) => c.notNull())
    .addColumn('mois', 'date', (c) => c.notNull())
    .addColumn('action', 'text', (c) => c.notNull())
    .addColumn('resultat', 'text', (c) => c.notNull())
    .addColumn('n', 'bigint', (c) => c.notNull())
    .addColumn('octets', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('stats_activite_membres_mois_pkey', ['organisation_id', 'utilisateur_id', 'mois', 'action', 'resultat'])
    .execute()
  await db.schema
    .createTable('stats_membres_mois')
    .addColumn('organisation_id', 'uuid', (c) => c.notNull().references('organisations.id').onDelete('cascade'))
    .addColumn('mois', 'date', (c) => c.notNull())
    .addColumn('utilisateur_id', 'uuid', (c) => c.notNull())
    .addColumn('n', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('stats_membres_mois_pkey', ['organisation_id', 'mois', 'utilisateur_id'])
    .execute()
  // The daily rollups are exact; their months are where the monthly ones start. No entry may be
  // appended between this copy and the new trigger body (it would reach the days, not the months).
  await sql`lock table journal_activite in share mode`.execute(db)
  await sql`insert into stats_activite_mois (organisation_id, mois, action, resultat, n)
    select organisation_id, date_trunc('month', jour)::date, action, resultat, sum(n) from stats_activite_jour group by 1, 2, 3, 4`.execute(db)
  await sql`insert into stats_activite_membres_mois (organisation_id, utilisateur_id, mois, action, resultat, n, octets)
    select organisation_id, utilisateur_id, date_trunc('month', jour)::date, action, resultat, sum(n), sum(octets) from stats_activite_membres group by 1, 2, 3, 4, 5`.execute(db)
  await sql`insert into stats_membres_mois (organisation_id, mois, utilisateur_id, n)
    select organisation_id, date_trunc('month', jour)::date, utilisateur_id, sum(n) from stats_membres_jour group by 1, 2, 3`.execute(db)

  // One entry: its day and month in the organisation's time zone, its member, its bytes.
  await sql`create or replace function stats_journal_compter() returns trigger language plpgsql as $$
    declare
      v_jour date;
      v_mois date;
      v_octets bigint := 0;
      v_connexion boolean := new.action in ('LOGIN_SUCCEEDED', 'SSO_LOGIN') and new.resultat = 'succes';
    begin
      select (new.created_at at time zone s.fuseau_horaire)::date into v_jour from stats_organisations s where s.organisation_id = new.organisation_id;
      if v_jour is null then return null; end if;
      v_mois := date_trunc('month', v_jour)::date;
      insert into stats_activite_jour as a (organisation_id, jour, action, resultat, n) values (new.organisation_id, v_jour, new.action, new.resultat, 1)
        on conflict (organisation_id, jour, action, resultat) do update set n = a.n + 1;
      insert into stats_activite_mois as a (organisation_id, mois, action, resultat, n) values (new.organisation_id, v_mois, new.action, new.resultat, 1)
        on conflict (organisation_id, mois, action, resultat) do update set n = a.n + 1;
      if new.action = 'JOURNAL_VERIFIED' then
        insert into stats_journal as j (organisation_id, verifie_at, intact, entrees)
          values (new.organisation_id, new.created_at, new.resultat = 'succes', (new.details->>'count')::bigint)
          on conflict (organisation_id) do update set verifie_at = excluded.verifie_at, intact = excluded.intact, entrees = excluded.entrees;
      end if;
      if new.utilisateur_id is null then return null; end if;
      if new.action in ('FILE_UPLOADED', 'FILE_VERSION_ADDED') and new.resultat = 'succes' and jsonb_typeof(new.details->'taille') = 'number' then
        v_octets := (new.details->>'taille')::bigint;
      end if;
      insert into stats_activite_membres as a (organisation_id, utilisateur_id, jour, action, resultat, n, octets)
        values (new.organisation_id, new.utilisateur_id, v_jour, new.action, new.resultat, 1, v_octets)
        on conflict (organisation_id, utilisateur_id, jour, action, resultat) do update set n = a.n + 1, octets = a.octets + excluded.octets;
      insert into stats_activite_membres_mois as a (organisation_id, utilisateur_id, mois, action, resultat, n, octets)
        values (new.organisation_id, new.utilisateur_id, v_mois, new.action, new.resultat, 1, v_octets)
        on conflict (organisation_id, utilisateur_id, mois, action, resultat) do update set n = a.n + 1, octets = a.octets + excluded.octets;
      insert into stats_membres_jour as a (organisation_id, jour, utilisateur_id, n) values (new.organisation_id, v_jour, new.utilisateur_id, 1)
        on conflict (organisation_id, jour, utilisateur_id) do update set n = a.n + 1;
      insert into stats_membres_mois as a (organisation_id, mois, utilisateur_id, n) values (new.organisation_id, v_mois, new.utilisateur_id, 1)
        on conflict (organisation_id, mois, utilisateur_id) do update set n = a.n + 1;
      insert into stats_membres_activite as a (organisation_id, utilisateur_id, derniere_activite_at, derniere_connexion_at)
        values (new.organisation_id, new.utilisateur_id, new.created_at, case when v_connexion then new.created_at end)
        on conflict (organisation_id, utilisateur_id) do update set
          derniere_activite_at = greatest(a.derniere_activite_at, excluded.derniere_activite_at),
          derniere_connexion_at = greatest(a.derniere_connexion_at, excluded.derniere_connexion_at);
      return null;
    end $$`.execute(db)
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`create or replace function stats_journal_compter() returns trigger language plpgsql as $$
    declare
      v_jour date;
      v_octets bigint := 0;
      v_connexion boolean := new.action in ('LOGIN_SUCCEEDED', 'SSO_LOGIN') and new.resultat = 'succes';
    begin
      select (new.created_at at time zone s.fuseau_horaire)::date into v_jour from stats_organisations s where s.organisation_id = new.organisation_id;
      if v_jour is null then return null; end if;
      insert into stats_activite_jour as a (organisation_id, jour, action, resultat, n) values (new.organisation_id, v_jour, new.action, new.resultat, 1)
        on conflict (organisation_id, jour, action, resultat) do update set n = a.n + 1;
      if new.action = 'JOURNAL_VERIFIED' then
        insert into stats_journal as j (organisation_id, verifie_at, intact, entrees)
          values (new.organisation_id, new.created_at, new.resultat = 'succes', (new.details->>'count')::bigint)
          on conflict (organisation_id) do update set verifie_at = excluded.verifie_at, intact = excluded.intact, entrees = excluded.entrees;
      end if;
      if new.utilisateur_id is null then return null; end if;
      if new.action in ('FILE_UPLOADED', 'FILE_VERSION_ADDED') and new.resultat = 'succes' and jsonb_typeof(new.details->'taille') = 'number' then
        v_octets := (new.details->>'taille')::bigint;
      end if;
      insert into stats_activite_membres as a (organisation_id, utilisateur_id, jour, action, resultat, n, octets)
        values (new.organisation_id, new.utilisateur_id, v_jour, new.action, new.resultat, 1, v_octets)
        on conflict (organisation_id, utilisateur_id, jour, action, resultat) do update set n = a.n + 1, octets = a.octets + excluded.octets;
      insert into stats_membres_jour as a (organisation_id, jour, utilisateur_id, n) values (new.organisation_id, v_jour, new.utilisateur_id, 1)
        on conflict (organisation_id, jour, utilisateur_id) do update set n = a.n + 1;
      insert into stats_membres_activite as a (organisation_id, utilisateur_id, derniere_activite_at, derniere_connexion_at)
        values (new.organisation_id, new.utilisateur_id, new.created_at, case when v_connexion then new.created_at end)
        on conflict (organisation_id, utilisateur_id) do update set
          derniere_activite_at = greatest(a.derniere_activite_at, excluded.derniere_activite_at),
          derniere_connexion_at = greatest(a.derniere_connexion_at, excluded.derniere_connexion_at);
      return null;
    end $$`.execute(db)
  for (const table of ['stats_membres_mois', 'stats_activite_membres_mois', 'stats_activite_mois']) {
    await db.schema.dropTable(table).execute()
  }
}
