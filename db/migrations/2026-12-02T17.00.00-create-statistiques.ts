import { type Kysely, sql } from 'kysely'

/*
 * Statistics kept exact by the transactions that change their sources, so a dashboard never
 * scans fichiers or journal_activite.
 *
 * Counters (armoires, files, versions, trash, bytes) are kept by triggers on the tree's tables.
 * A trigger never updates a shared row: it appends a delta (`stats_deltas`), so concurrent
 * writers of one organisation take no lock they did not take before, and no lock order with
 * the journal's chain or the quota row can deadlock. A reader adds the pending deltas to the
 * base rows in one statement; a job folds deltas into the base rows (`stats_compacter`).
 *
 * Activity is rolled up per day, in the organisation's time zone, by a trigger on
 * journal_activite: every entry is appended under its chain's lock (`journal_ajouter`), so the
 * rollup rows of one organisation are written one transaction at a time.
 *
 * A file's bytes are all its versions: `octets_courants` its current version (fichiers.taille),
 * `octets_vivants` every version of a live file, `octets_corbeille` every version of a trashed
 * one. A deleted file (purge) is counted out before its row goes (versions still present), and
 * the versions its deletion cascades to are then ignored.
 */

const COUNTERS = [
  'armoires',
  'casiers',
  'dossiers',
  'fichiers',
  'fichiers_corbeille',
  'versions',
  'elements_corbeille',
  'octets_courants',
  'octets_vivants',
  'octets_corbeille',
] as const

function counters(table: any): any {
  let t = table
  for (const c of COUNTERS) t = t.addColumn(c, 'bigint', (col: any) => col.notNull().defaultTo(0))
  return t
}

/** The armoire of a folder, at the statement's time. */
const armoireOf = (dossier: string) => `(select c.armoire_id from dossiers d join casiers c on c.id = d.casier_id where d.id = ${dossier})`
/** Every version's bytes of a file. */
const bytesOf = (fichier: string) => `(select coalesce(sum(v.taille), 0) from versions_fichiers v where v.fichier_id = ${fichier})`

/** What the live files directly in a folder weigh (lateral, for each folder of a move). */
const folderContent = (dossier: string) => `lateral (select count(*) as fichiers, coalesce(sum(${bytesOf('f.id')}), 0) as octets
  from fichiers f where f.dossier_id = ${dossier} and f.deleted_at is null)`

/** Trees: counts of live rows and of trash entries (rows whose deletion is their own). */
function treeTrigger(table: 'armoires' | 'casiers' | 'dossiers', counter: string, moves: string): string {
  const rows = (alias: string, sign: number) =>
    `select organisation_id, ${sign} * (deleted_at is null)::int as vivant, ${sign} * (suppression_id is not distinct from id)::int as racine from ${alias}`
  const insert = (alias: string, sign: number) => `
        insert into stats_deltas (organisation_id, ${counter}, elements_corbeille)
          select organisation_id, sum(vivant), sum(racine) from (${rows(alias, sign)}) x
          group by organisation_id having sum(vivant) <> 0 or sum(racine) <> 0;`
  return `
    create function stats_${table}_compter() returns trigger language plpgsql as $$
    begin
      if tg_op <> 'DELETE' then ${insert('nouveau', 1)}
      end if;
      if tg_op <> 'INSERT' then ${insert('ancien', -1)}
      end if;
      ${moves}
      return null;
    end $$`
}

export async function up(db: Kysely<any>): Promise<void> {
  await counters(
    db.schema
      .createTable('stats_organisations')
      .addColumn('organisation_id', 'uuid', (c) => c.primaryKey().references('organisations.id').onDelete('cascade'))
      .addColumn('fuseau_horaire', 'text', (c) => c.notNull().defaultTo('Africa/Porto-Novo')),
  )
    .addColumn('recompte_at', 'timestamptz')
    .addColumn('updated_at', 'timestamptz', (c: any) => c.notNull().defaultTo(sql`now()`))
    .execute()
  await db.schema
    .createTable('stats_armoires')
    .addColumn('armoire_id', 'uuid', (c) => c.primaryKey().references('armoires.id').onDelete('cascade'))
    .addColumn('organisation_id', 'uuid', (c) => c.notNull().references('organisations.id').onDelete('cascade'))
    .addColumn('fichiers', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('octets', 'bigint', (c) => c.notNull().defaultTo(0))
    .execute()
  await db.schema.createIndex('stats_armoires_org_idx').on('stats_armoires').columns(['organisation_id', 'octets']).execute()
  // No foreign key to utilisateurs: what a member stored outlives their account.
  await db.schema
    .createTable('stats_membres')
    .addColumn('organisation_id', 'uuid', (c) => c.notNull().references('organisations.id').onDelete('cascade'))
    .addColumn('utilisateur_id', 'uuid', (c) => c.notNull())
    .addColumn('versions', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('octets', 'bigint', (c) => c.notNull().defaultTo(0))
    .addPrimaryKeyConstraint('stats_membres_pkey', ['organisation_id', 'utilisateur_id'])
    .execute()
  // A delta is for the organisation (both ids null), one armoire (fichiers, octets_vivants) or
  // one member (versions, octets_vivants as the bytes they stored). No foreign keys: appending
  // must never wait on the rows it describes.
  await counters(
    db.schema
      .createTable('stats_deltas')
      .addColumn('id', 'bigint', (c) => c.primaryKey().generatedAlwaysAsIdentity())
      .addColumn('organisation_id', 'uuid', (c) => c.notNull())
      .addColumn('armoire_id', 'uuid')
      .addColumn('utilisateur_id', 'uuid'),
  ).execute()
  await db.schema.createIndex('stats_deltas_org_idx').on('stats_deltas').columns(['organisation_id', 'armoire_id', 'utilisateur_id']).execute()

  await db.schema
    .createTable('stats_activite_jour')
    .addColumn('organisation_id', 'uuid', (c) => c.notNull().references('organisations.id').onDelete('cascade'))
    .addColumn('jour', 'date', (c) => c.notNull())
    .addColumn('action', 'text', (c) => c.notNull())
    .addColumn('resultat', 'text', (c) => c.notNull())
    .addColumn('n', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('stats_activite_jour_pkey', ['organisation_id', 'jour', 'action', 'resultat'])
    .execute()
  await db.schema
    .createTable('stats_activite_membres')
    .addColumn('organisation_id', 'uuid', (c) => c.notNull().references('organisations.id').onDelete('cascade'))
    .addColumn('utilisateur_id', 'uuid', (c) => c.notNull())
    .addColumn('jour', 'date', (c) => c.notNull())
    .addColumn('action', 'text', (c) => c.notNull())
    .addColumn('resultat', 'text', (c) => c.notNull())
    .addColumn('n', 'bigint', (c) => c.notNull())
    // Uploads and new versions: the bytes the entries report.
    .addColumn('octets', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('stats_activite_membres_pkey', ['organisation_id', 'utilisateur_id', 'jour', 'action', 'resultat'])
    .execute()
  // Members who did one thing over a few days (accounts locked this week).
  await db.schema.createIndex('stats_activite_membres_action_idx').on('stats_activite_membres').columns(['organisation_id', 'action', 'jour']).execute()
  // Entries per member per day, whatever the action: the most active members of a period.
  await db.schema
    .createTable('stats_membres_jour')
    .addColumn('organisation_id', 'uuid', (c) => c.notNull().references('organisations.id').onDelete('cascade'))
    .addColumn('jour', 'date', (c) => c.notNull())
    .addColumn('utilisateur_id', 'uuid', (c) => c.notNull())
    .addColumn('n', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('stats_membres_jour_pkey', ['organisation_id', 'jour', 'utilisateur_id'])
    .execute()
  await db.schema
    .createTable('stats_membres_activite')
    .addColumn('organisation_id', 'uuid', (c) => c.notNull().references('organisations.id').onDelete('cascade'))
    .addColumn('utilisateur_id', 'uuid', (c) => c.notNull())
    .addColumn('derniere_activite_at', 'timestamptz', (c) => c.notNull())
    .addColumn('derniere_connexion_at', 'timestamptz')
    .addPrimaryKeyConstraint('stats_membres_activite_pkey', ['organisation_id', 'utilisateur_id'])
    .execute()
  await db.schema
    .createTable('stats_journal')
    .addColumn('organisation_id', 'uuid', (c) => c.primaryKey().references('organisations.id').onDelete('cascade'))
    .addColumn('verifie_at', 'timestamptz', (c) => c.notNull())
    .addColumn('intact', 'boolean', (c) => c.notNull())
    .addColumn('entrees', 'bigint')
    .execute()

  await sql`create function stats_organisation_creer() returns trigger language plpgsql as $$
    begin
      insert into stats_organisations (organisation_id, recompte_at) values (new.id, now()) on conflict do nothing;
      return null;
    end $$`.execute(db)
  await sql`create trigger stats_organisation_creer after insert on organisations for each row execute function stats_organisation_creer()`.execute(db)

  // A casier moving to another armoire carries its folders' files along.
  const casierMoves = `
      if tg_op = 'UPDATE' then
        insert into stats_deltas (organisation_id, armoire_id, fichiers, octets_vivants)
          select n.organisation_id, m.armoire, sum(m.sign * c.fichiers), sum(m.sign * c.octets)
          from ancien o join nouveau n on n.id = o.id
          cross join lateral (values (n.armoire_id, 1), (o.armoire_id, -1)) m(armoire, sign)
          join dossiers d on d.casier_id = n.id
          cross join ${folderContent('d.id')} c
          where o.armoire_id <> n.armoire_id
          group by n.organisation_id, m.armoire;
      end if;`
  // A folder moving to another casier (its whole subtree is updated) may change armoire.
  const dossierMoves = `
      if tg_op = 'UPDATE' then
        insert into stats_deltas (organisation_id, armoire_id, fichiers, octets_vivants)
          select n.organisation_id, m.armoire, sum(m.sign * c.fichiers), sum(m.sign * c.octets)
          from ancien o join nouveau n on n.id = o.id
          join casiers co on co.id = o.casier_id
          join casiers cn on cn.id = n.casier_id
          cross join lateral (values (cn.armoire_id, 1), (co.armoire_id, -1)) m(armoire, sign)
          cross join ${folderContent('n.id')} c
          where co.armoire_id <> cn.armoire_id
          group by n.organisation_id, m.armoire;
      end if;`
  for (const [table, counter, moves] of [
    ['armoires', 'armoires', ''],
    ['casiers', 'casiers', casierMoves],
    ['dossiers', 'dossiers', dossierMoves],
  ] as const) {
    await sql.raw(treeTrigger(table, counter, moves)).execute(db)
    for (const op of ['insert', 'update', 'delete'] as const) {
      const referencing = op === 'insert' ? 'new table as nouveau' : op === 'delete' ? 'old table as ancien' : 'old table as ancien new table as nouveau'
      await sql.raw(`create trigger stats_${table}_${op} after ${op} on ${table} referencing ${referencing}
        for each statement execute function stats_${table}_compter()`).execute(db)
    }
  }

  // A file's contribution: signed rows of (organisation, armoire when live, counters).
  const fileRows = (from: string, sign: number, where = '') => `
    select r.organisation_id, case when r.deleted_at is null then ${armoireOf('r.dossier_id')} end as armoire_id,
      ${sign} * (r.deleted_at is null)::int as fichiers, ${sign} * (r.deleted_at is not null)::int as fichiers_corbeille,
      ${sign} * (r.suppression_id is not distinct from r.id)::int as elements_corbeille,
      ${sign} * case when r.deleted_at is null then r.taille else 0 end as octets_courants,
      ${sign} * case when r.deleted_at is null then ${bytesOf('r.id')} else 0 end as octets_vivants,
      ${sign} * case when r.deleted_at is null then 0 else ${bytesOf('r.id')} end as octets_corbeille
    from ${from} r ${where}`
  const insertFileDeltas = (source: string) => `
      with x as (${source}),
      o as (
        insert into stats_deltas (organisation_id, fichiers, fichiers_corbeille, elements_corbeille, octets_courants, octets_vivants, octets_corbeille)
        select organisation_id, sum(fichiers), sum(fichiers_corbeille), sum(elements_corbeille), sum(octets_courants), sum(octets_vivants), sum(octets_corbeille)
        from x group by organisation_id
        having sum(fichiers) <> 0 or sum(fichiers_corbeille) <> 0 or sum(elements_corbeille) <> 0 or sum(octets_courants) <> 0
          or sum(octets_vivants) <> 0 or sum(octets_corbeille) <> 0
      )
      insert into stats_deltas (organisation_id, armoire_id, fichiers, octets_vivants)
      select organisation_id, armoire_id, sum(fichiers), sum(octets_vivants) from x where armoire_id is not null
      group by organisation_id, armoire_id having sum(fichiers) <> 0 or sum(octets_vivants) <> 0;`
  // Only the rows whose counted state changed (not a rename or a touch).
  const changed = `join ancien o on o.id = r.id where (o.deleted_at is null) <> (r.deleted_at is null)
    or o.suppression_id is distinct from r.suppression_id or o.taille <> r.taille or o.dossier_id <> r.dossier_id`
  const changedOld = changed.replace('join ancien o on o.id = r.id', 'join nouveau o on o.id = r.id')
  await sql.raw(`create function stats_fichiers_compter() returns trigger language plpgsql as $$
    begin
      if tg_op = 'INSERT' then
        ${insertFileDeltas(fileRows('nouveau', 1))}
      else
        ${insertFileDeltas(`${fileRows('nouveau', 1, changed)} union all ${fileRows('ancien', -1, changedOld)}`)}
      end if;
      return null;
    end $$`).execute(db)
  for (const op of ['insert', 'update'] as const) {
    const referencing = op === 'insert' ? 'new table as nouveau' : 'old table as ancien new table as nouveau'
    await sql.raw(`create trigger stats_fichiers_${op} after ${op} on fichiers referencing ${referencing}
      for each statement execute function stats_fichiers_compter()`).execute(db)
  }
  // Before the row goes, while its versions are still there to be weighed.
  await sql.raw(`create function stats_fichiers_retirer() returns trigger language plpgsql as $$
    begin
      ${insertFileDeltas(fileRows('(select old.id, old.organisation_id, old.dossier_id, old.deleted_at, old.suppression_id, old.taille)', -1))}
      insert into stats_deltas (organisation_id, versions) values (old.organisation_id, -(select count(*) from versions_fichiers where fichier_id = old.id));
      insert into stats_deltas (organisation_id, utilisateur_id, versions, octets_vivants)
        select organisation_id, created_by, -count(*), -sum(taille) from versions_fichiers
        where fichier_id = old.id and created_by is not null group by organisation_id, created_by;
      return old;
    end $$`).execute(db)
  await sql`create trigger stats_fichiers_retirer before delete on fichiers for each row execute function stats_fichiers_retirer()`.execute(db)

  // Versions of files still there (those of a deleted file were counted out with it).
  const versionRows = (alias: string, sign: number) => `
    select v.organisation_id, v.created_by, case when f.deleted_at is null then ${armoireOf('f.dossier_id')} end as armoire_id,
      ${sign} as versions, ${sign} * case when f.deleted_at is null then v.taille else 0 end as octets_vivants,
      ${sign} * case when f.deleted_at is null then 0 else v.taille end as octets_corbeille, ${sign} * v.taille as octets
    from ${alias} v join fichiers f on f.id = v.fichier_id`
  const insertVersionDeltas = (source: string) => `
      with x as (${source}),
      o as (
        insert into stats_deltas (organisation_id, versions, octets_vivants, octets_corbeille)
        select organisation_id, sum(versions), sum(octets_vivants), sum(octets_corbeille) from x group by organisation_id
        having sum(versions) <> 0 or sum(octets_vivants) <> 0 or sum(octets_corbeille) <> 0
      ),
      a as (
        insert into stats_deltas (organisation_id, armoire_id, octets_vivants)
        select organisation_id, armoire_id, sum(octets_vivants) from x where armoire_id is not null
        group by organisation_id, armoire_id having sum(octets_vivants) <> 0
      )
      insert into stats_deltas (organisation_id, utilisateur_id, versions, octets_vivants)
      select organisation_id, created_by, sum(versions), sum(octets) from x where created_by is not null
      group by organisation_id, created_by having sum(versions) <> 0 or sum(octets) <> 0;`
  await sql.raw(`create function stats_versions_compter() returns trigger language plpgsql as $$
    begin
      if tg_op = 'INSERT' then
        ${insertVersionDeltas(versionRows('nouveau', 1))}
      elsif tg_op = 'DELETE' then
        ${insertVersionDeltas(versionRows('ancien', -1))}
      else
        ${insertVersionDeltas(`${versionRows('nouveau', 1)} union all ${versionRows('ancien', -1)}`)}
      end if;
      return null;
    end $$`).execute(db)
  for (const op of ['insert', 'update', 'delete'] as const) {
    const referencing = op === 'insert' ? 'new table as nouveau' : op === 'delete' ? 'old table as ancien' : 'old table as ancien new table as nouveau'
    await sql.raw(`create trigger stats_versions_${op} after ${op} on versions_fichiers referencing ${referencing}
      for each statement execute function stats_versions_compter()`).execute(db)
  }

  // Folds every pending delta into the base rows, in one statement: a reader sees either.
  await sql`create function stats_compacter() returns bigint language sql volatile as $$
    with d as (delete from stats_deltas returning *),
    o as (
      update stats_organisations s set
        armoires = s.armoires + x.armoires, casiers = s.casiers + x.casiers, dossiers = s.dossiers + x.dossiers,
        fichiers = s.fichiers + x.fichiers, fichiers_corbeille = s.fichiers_corbeille + x.fichiers_corbeille,
        versions = s.versions + x.versions, elements_corbeille = s.elements_corbeille + x.elements_corbeille,
        octets_courants = s.octets_courants + x.octets_courants, octets_vivants = s.octets_vivants + x.octets_vivants,
        octets_corbeille = s.octets_corbeille + x.octets_corbeille, updated_at = now()
      from (select organisation_id, sum(armoires) armoires, sum(casiers) casiers, sum(dossiers) dossiers, sum(fichiers) fichiers,
              sum(fichiers_corbeille) fichiers_corbeille, sum(versions) versions, sum(elements_corbeille) elements_corbeille,
              sum(octets_courants) octets_courants, sum(octets_vivants) octets_vivants, sum(octets_corbeille) octets_corbeille
            from d where armoire_id is null and utilisateur_id is null group by organisation_id) x
      where s.organisation_id = x.organisation_id
    ),
    a as (
      insert into stats_armoires (armoire_id, organisation_id, fichiers, octets)
      select x.armoire_id, x.organisation_id, x.fichiers, x.octets
      from (select armoire_id, organisation_id, sum(fichiers) fichiers, sum(octets_vivants) octets from d
            where armoire_id is not null group by armoire_id, organisation_id) x
      join armoires on armoires.id = x.armoire_id
      on conflict (armoire_id) do update set fichiers = stats_armoires.fichiers + excluded.fichiers, octets = stats_armoires.octets + excluded.octets
    ),
    m as (
      insert into stats_membres (organisation_id, utilisateur_id, versions, octets)
      select x.organisation_id, x.utilisateur_id, x.versions, x.octets
      from (select organisation_id, utilisateur_id, sum(versions) versions, sum(octets_vivants) octets from d
            where utilisateur_id is not null group by organisation_id, utilisateur_id) x
      join organisations on organisations.id = x.organisation_id
      on conflict (organisation_id, utilisateur_id) do update set versions = stats_membres.versions + excluded.versions,
        octets = stats_membres.octets + excluded.octets
    )
    select count(*) from d
  $$`.execute(db)

  // One entry: its day in the organisation's time zone, its member, its bytes.
  await sql`create function stats_journal_compter() returns trigger language plpgsql as $$
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
  await sql`create trigger stats_journal_compter after insert on journal_activite for each row
    when (new.organisation_id is not null) execute function stats_journal_compter()`.execute(db)

  // The security section counts live sessions per organisation.
  await sql`create index stats_sessions_actives_idx on sessions (organisation_id, expires_at) where revoked_at is null`.execute(db)

  await sql`insert into stats_organisations (organisation_id) select id from organisations on conflict do nothing`.execute(db)
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop index stats_sessions_actives_idx`.execute(db)
  await sql`drop trigger stats_journal_compter on journal_activite`.execute(db)
  await sql`drop trigger stats_organisation_creer on organisations`.execute(db)
  for (const table of ['armoires', 'casiers', 'dossiers', 'versions_fichiers']) {
    const name = table === 'versions_fichiers' ? 'versions' : table
    for (const op of ['insert', 'update', 'delete']) await sql.raw(`drop trigger stats_${name}_${op} on ${table}`).execute(db)
  }
  await sql`drop trigger stats_fichiers_insert on fichiers`.execute(db)
  await sql`drop trigger stats_fichiers_update on fichiers`.execute(db)
  await sql`drop trigger stats_fichiers_retirer on fichiers`.execute(db)
  for (const fn of ['journal_compter', 'organisation_creer', 'armoires_compter', 'casiers_compter', 'dossiers_compter', 'fichiers_compter', 'fichiers_retirer', 'versions_compter', 'compacter']) {
    await sql.raw(`drop function stats_${fn}()`).execute(db)
  }
  for (const table of ['stats_journal', 'stats_membres_activite', 'stats_membres_jour', 'stats_activite_membres', 'stats_activite_jour', 'stats_deltas', 'stats_membres', 'stats_armoires', 'stats_organisations']) {
    await db.schema.dropTable(table).execute()
  }
}
