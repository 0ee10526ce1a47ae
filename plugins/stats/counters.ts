import { type Kysely, sql, type Transaction } from 'kysely'
import type { DB } from '../../db/types.ts'

export const COUNTERS = [
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
export type Counter = (typeof COUNTERS)[number]
export type CounterValues = Record<Counter, number>

// Arbitrary constants naming the advisory locks of stats' background work.
const COMPACTION_LOCK_KEY = 7_240_451_113

const sums = sql.raw(COUNTERS.map((c) => `(s.${c} + coalesce(d.${c}, 0))::int8 as ${c}`).join(', '))
const deltaSums = sql.raw(COUNTERS.map((c) => `sum(${c}) as ${c}`).join(', '))

/** The counters of `stats_organisations s` plus its pending deltas, for a select list joined with `countersJoin`. */
export const countersColumns = sums
export const countersJoin = sql`left join lateral (select ${deltaSums} from stats_deltas
  where organisation_id = s.organisation_id and armoire_id is null and utilisateur_id is null) d on true`

/** An organisation's counters, exact as of this statement: base row plus pending deltas. */
export async function organisationCounters(db: Kysely<DB>, organisationId: string): Promise<CounterValues & { fuseau_horaire: string }> {
  const { rows } = await sql<CounterValues & { fuseau_horaire: string }>`select s.fuseau_horaire, ${sums}
    from stats_organisations s ${countersJoin}
    where s.organisation_id = ${organisationId}`.execute(db)
  const row = rows[0]
  if (!row) throw new Error(`no stats row for organisation ${organisationId}`)
  return row
}

export interface ArmoireSize {
  id: string
  nom: string
  fichiers: number
  octets: number
}

/** The organisation's heaviest live armoires (every version of their live files), as a query. */
export function largestArmoiresQuery(organisationId: string, limit: number) {
  return sql<ArmoireSize>`select a.id, a.nom, x.fichiers::int8 as fichiers, x.octets::int8 as octets
    from (
      select armoire_id, sum(fichiers) as fichiers, sum(octets) as octets from (
        select armoire_id, fichiers, octets from stats_armoires where organisation_id = ${organisationId}
        union all
        select armoire_id, fichiers, octets_vivants from stats_deltas where organisation_id = ${organisationId} and armoire_id is not null
      ) u group by armoire_id
    ) x join armoires a on a.id = x.armoire_id and a.deleted_at is null
    where x.octets > 0 or x.fichiers > 0
    order by x.octets desc, a.nom limit ${limit}`
}

export async function largestArmoires(db: Kysely<DB>, organisationId: string, limit: number): Promise<ArmoireSize[]> {
  return (await largestArmoiresQuery(organisationId, limit).execute(db)).rows
}

/** What a member has stored and is still kept: versions and their bytes, as a query. */
export function memberStorageQuery(organisationId: string, userId: string) {
  return sql<{ versions: number; octets: number }>`select coalesce(sum(versions), 0)::int8 as versions, coalesce(sum(octets), 0)::int8 as octets
    from (
      select versions, octets from stats_membres where organisation_id = ${organisationId} and utilisateur_id = ${userId}
      union all
      select versions, octets_vivants from stats_deltas where organisation_id = ${organisationId} and utilisateur_id = ${userId}
    ) u`
}

export async function memberStorage(db: Kysely<DB>, organisationId: string, userId: string): Promise<{ versions: number; octets: number }> {
  return (await memberStorageQuery(organisationId, userId).execute(db)).rows[0] ?? { versions: 0, octets: 0 }
}

/** Folds pending deltas into the base rows; answers how many were folded. */
export async function compact(db: Kysely<DB>): Promise<number> {
  return db.transaction().execute(async (trx) => {
    const { rows: locked } = await sql<{ ok: boolean }>`select pg_try_advisory_xact_lock(${COMPACTION_LOCK_KEY}) as ok`.execute(trx)
    if (!locked[0]?.ok) return 0
    const { rows } = await sql<{ n: number }>`select stats_compacter() as n`.execute(trx)
    return Number(rows[0]?.n ?? 0)
  })
}

export interface Drift {
  organisation_id: string
  compteur: string
  attendu: number
  trouve: number
}

/** The counters recomputed from the source tables, as one statement's snapshot sees them. */
async function recountCounters(trx: Transaction<DB>, organisationId: string): Promise<CounterValues> {
  const live = sql`organisation_id = ${organisationId} and deleted_at is null`
  const roots = (table: string) => sql`(select count(*) from ${sql.table(table)} where organisation_id = ${organisationId} and suppression_id = id)`
  const { rows } = await sql<CounterValues>`select
      (select count(*) from armoires where ${live}) as armoires,
      (select count(*) from casiers where ${live}) as casiers,
      (select count(*) from dossiers where ${live}) as dossiers,
      (select count(*) from fichiers where ${live}) as fichiers,
      (select count(*) from fichiers where organisation_id = ${organisationId} and deleted_at is not null) as fichiers_corbeille,
      (select count(*) from versions_fichiers where organisation_id = ${organisationId}) as versions,
      ${roots('armoires')} + ${roots('casiers')} + ${roots('dossiers')} + ${roots('fichiers')} as elements_corbeille,
      (select coalesce(sum(taille), 0)::int8 from fichiers where ${live}) as octets_courants,
      (select coalesce(sum(v.taille), 0)::int8 from versions_fichiers v join fichiers f on f.id = v.fichier_id
        where v.organisation_id = ${organisationId} and f.deleted_at is null) as octets_vivants,
      (select coalesce(sum(v.taille), 0)::int8 from versions_fichiers v join fichiers f on f.id = v.fichier_id
        where v.organisation_id = ${organisationId} and f.deleted_at is not null) as octets_corbeille`.execute(trx)
  return rows[0]!
}

type Keyed = { key: string; values: Record<string, number> }

function compare(organisationId: string, scope: string, expected: Keyed[], found: Keyed[], drifts: Drift[]): void {
  const byKey = new Map(found.map((f) => [f.key, f.values]))
  const seen = new Set<string>()
  for (const e of expected) {
    seen.add(e.key)
    const f = byKey.get(e.key) ?? {}
    for (const [name, value] of Object.entries(e.values)) {
      if ((f[name] ?? 0) !== value) drifts.push({ organisation_id: organisationId, compteur: `${scope}${e.key} ${name}`.trim(), attendu: value, trouve: f[name] ?? 0 })
    }
  }
  for (const f of found) {
    if (seen.has(f.key)) continue
    for (const [name, value] of Object.entries(f.values)) {
      if (value !== 0) drifts.push({ organisation_id: organisationId, compteur: `${scope}${f.key} ${name}`.trim(), attendu: 0, trouve: value })
    }
  }
}

/**
 * Recomputes an organisation's counters from the tree's tables and replaces them, reporting
 * what differed. One repeatable-read snapshot sees the sources and the deltas alike, and the
 * deltas it deletes are exactly those it saw: changes committed meanwhile keep theirs.
 */
async function rebuildCounters(db: Kysely<DB>, organisationId: string, drifts: Drift[]): Promise<void> {
  await db.connection().execute(async (conn) => {
    await sql`select pg_advisory_lock(${COMPACTION_LOCK_KEY})`.execute(conn)
    try {
      await conn.transaction().setIsolationLevel('repeatable read').execute(async (trx) => {
        const expected = await recountCounters(trx, organisationId)
        const found = await organisationCounters(trx, organisationId)
        compare(organisationId, '', [{ key: '', values: expected }], [{ key: '', values: pick(found) }], drifts)

        const armoires = await sql<{ armoire_id: string; fichiers: number; octets: number }>`
          select c.armoire_id, count(*)::int8 as fichiers, coalesce(sum(b.octets), 0)::int8 as octets
          from fichiers f join dossiers d on d.id = f.dossier_id join casiers c on c.id = d.casier_id
          cross join lateral (select sum(v.taille) as octets from versions_fichiers v where v.fichier_id = f.id) b
          where f.organisation_id = ${organisationId} and f.deleted_at is null group by c.armoire_id`.execute(trx)
        const foundArmoires = await sql<{ armoire_id: string; fichiers: number; octets: number }>`
          select armoire_id, sum(fichiers)::int8 as fichiers, sum(octets)::int8 as octets from (
            select armoire_id, fichiers, octets from stats_armoires where organisation_id = ${organisationId}
            union all select armoire_id, fichiers, octets_vivants from stats_deltas where organisation_id = ${organisationId} and armoire_id is not null
          ) u join armoires a on a.id = u.armoire_id group by armoire_id`.execute(trx)
        const asKeyed = (r: { armoire_id: string; fichiers: number; octets: number }) => ({ key: r.armoire_id, values: { fichiers: r.fichiers, octets: r.octets } })
        compare(organisationId, 'armoire ', armoires.rows.map(asKeyed), foundArmoires.rows.map(asKeyed), drifts)

        const members = await sql<{ utilisateur_id: string; versions: number; octets: number }>`
          select created_by as utilisateur_id, count(*)::int8 as versions, sum(taille)::int8 as octets from versions_fichiers
          where organisation_id = ${organisationId} and created_by is not null group by created_by`.execute(trx)
        const foundMembers = await sql<{ utilisateur_id: string; versions: number; octets: number }>`
          select utilisateur_id, sum(versions)::int8 as versions, sum(octets)::int8 as octets from (
            select utilisateur_id, versions, octets from stats_membres where organisation_id = ${organisationId}
            union all select utilisateur_id, versions, octets_vivants from stats_deltas where organisation_id = ${organisationId} and utilisateur_id is not null
          ) u group by utilisateur_id`.execute(trx)
        const memberKeyed = (r: { utilisateur_id: string; versions: number; octets: number }) => ({
          key: r.utilisateur_id,
          values: { versions: r.versions, octets: r.octets },
        })
        compare(organisationId, 'membre ', members.rows.map(memberKeyed), foundMembers.rows.map(memberKeyed), drifts)

        await sql`delete from stats_deltas where organisation_id = ${organisationId}`.execute(trx)
        await trx
          .updateTable('stats_organisations')
          .set({ ...expected, recompte_at: sql`now()`, updated_at: sql`now()` })
          .where('organisation_id', '=', organisationId)
          .execute()
        await trx.deleteFrom('stats_armoires').where('organisation_id', '=', organisationId).execute()
        if (armoires.rows.length > 0) {
          await trx.insertInto('stats_armoires').values(armoires.rows.map((r) => ({ ...r, organisation_id: organisationId }))).execute()
        }
        await trx.deleteFrom('stats_membres').where('organisation_id', '=', organisationId).execute()
        if (members.rows.length > 0) {
          await trx.insertInto('stats_membres').values(members.rows.map((r) => ({ ...r, organisation_id: organisationId }))).execute()
        }
      })
    } finally {
      await sql`select pg_advisory_unlock(${COMPACTION_LOCK_KEY})`.execute(conn)
    }
  })
}

function pick(values: CounterValues): CounterValues {
  return Object.fromEntries(COUNTERS.map((c) => [c, Number(values[c])])) as CounterValues
}

/** Takes the organisation's journal chain lock: no entry is appended, so no rollup moves, until the transaction ends. */
export async function lockJournal(trx: Transaction<DB>, organisationId: string): Promise<void> {
  await sql`select pg_advisory_xact_lock(hashtextextended(${`journal:${organisationId}`}, 0))`.execute(trx)
}

/**
 * Recomputes an organisation's activity rollups from its journal, in its time zone, and
 * replaces them. The caller holds the journal's lock (`lockJournal`), so nothing is appended
 * meanwhile; one pass over the journal feeds every rollup.
 */
export async function rebuildRollups(trx: Transaction<DB>, organisationId: string, drifts: Drift[]): Promise<void> {
  await sql`create temporary table stats_recompte on commit drop as
    select (j.created_at at time zone s.fuseau_horaire)::date as jour, j.utilisateur_id, j.action, j.resultat,
      count(*) as n,
      sum(case when j.action in ('FILE_UPLOADED', 'FILE_VERSION_ADDED') and j.resultat = 'succes' and jsonb_typeof(j.details->'taille') = 'number'
        then (j.details->>'taille')::bigint else 0 end) as octets,
      max(j.created_at) as derniere,
      max(j.created_at) filter (where j.action in ('LOGIN_SUCCEEDED', 'SSO_LOGIN') and j.resultat = 'succes') as connexion
    from journal_activite j join stats_organisations s on s.organisation_id = j.organisation_id
    where j.organisation_id = ${organisationId}
    group by 1, 2, 3, 4`.execute(trx)
  const diff = async (table: string, expected: ReturnType<typeof sql>, key: string, value: string) => {
    const { rows } = await sql<{ lignes: number; attendu: number; trouve: number }>`
      select count(*)::int8 as lignes, coalesce(sum(e.v), 0)::int8 as attendu, coalesce(sum(f.v), 0)::int8 as trouve
      from (${expected}) e full join (select ${sql.raw(key)}, ${sql.raw(value)} as v from ${sql.table(table)} where organisation_id = ${organisationId}) f
        using (${sql.raw(key)})
      where e.v is distinct from f.v`.execute(trx)
    const r = rows[0]
    if (r && r.lignes > 0) drifts.push({ organisation_id: organisationId, compteur: `${table} (${r.lignes} lignes)`, attendu: r.attendu, trouve: r.trouve })
  }
  await diff('stats_activite_jour', sql`select jour, action, resultat, sum(n) as v from stats_recompte group by 1, 2, 3`, 'jour, action, resultat', 'n')
  await diff(
    'stats_activite_membres',
    sql`select utilisateur_id, jour, action, resultat, n as v from stats_recompte where utilisateur_id is not null`,
    'utilisateur_id, jour, action, resultat',
    'n',
  )
  await diff('stats_membres_jour', sql`select jour, utilisateur_id, sum(n) as v from stats_recompte where utilisateur_id is not null group by 1, 2`, 'jour, utilisateur_id', 'n')
  const month = sql`date_trunc('month', jour)::date`
  await diff('stats_activite_mois', sql`select ${month} as mois, action, resultat, sum(n) as v from stats_recompte group by 1, 2, 3`, 'mois, action, resultat', 'n')
  await diff(
    'stats_activite_membres_mois',
    sql`select utilisateur_id, ${month} as mois, action, resultat, sum(n) as v from stats_recompte where utilisateur_id is not null group by 1, 2, 3, 4`,
    'utilisateur_id, mois, action, resultat',
    'n',
  )
  await diff('stats_membres_mois', sql`select ${month} as mois, utilisateur_id, sum(n) as v from stats_recompte where utilisateur_id is not null group by 1, 2`, 'mois, utilisateur_id', 'n')

  const org = sql`organisation_id = ${organisationId}`
  for (const table of ['stats_activite_jour', 'stats_activite_membres', 'stats_membres_jour', ...MONTHLY_ROLLUPS, 'stats_membres_activite', 'stats_journal']) {
    await sql`delete from ${sql.table(table)} where ${org}`.execute(trx)
  }
  await sql`insert into stats_activite_jour (organisation_id, jour, action, resultat, n)
    select ${organisationId}, jour, action, resultat, sum(n) from stats_recompte group by 2, 3, 4`.execute(trx)
  await sql`insert into stats_activite_membres (organisation_id, utilisateur_id, jour, action, resultat, n, octets)
    select ${organisationId}, utilisateur_id, jour, action, resultat, n, octets from stats_recompte where utilisateur_id is not null`.execute(trx)
  await sql`insert into stats_membres_jour (organisation_id, jour, utilisateur_id, n)
    select ${organisationId}, jour, utilisateur_id, sum(n) from stats_recompte where utilisateur_id is not null group by 2, 3`.execute(trx)
  await monthsFromDays(trx, organisationId)
  await sql`insert into stats_membres_activite (organisation_id, utilisateur_id, derniere_activite_at, derniere_connexion_at)
    select ${organisationId}, utilisateur_id, max(derniere), max(connexion) from stats_recompte where utilisateur_id is not null group by 2`.execute(trx)
  await sql`insert into stats_journal (organisation_id, verifie_at, intact, entrees)
    select organisation_id, created_at, resultat = 'succes', (details->>'count')::bigint from journal_activite
    where ${org} and action = 'JOURNAL_VERIFIED' order by sequence desc limit 1`.execute(trx)
  await sql`drop table stats_recompte`.execute(trx)
}

export const MONTHLY_ROLLUPS = ['stats_activite_mois', 'stats_activite_membres_mois', 'stats_membres_mois'] as const

/** Fills an organisation's (emptied) monthly rollups from its daily ones. */
export async function monthsFromDays(trx: Transaction<DB>, organisationId: string): Promise<void> {
  const org = sql`organisation_id = ${organisationId}`
  const month = sql`date_trunc('month', jour)::date`
  await sql`insert into stats_activite_mois (organisation_id, mois, action, resultat, n)
    select ${organisationId}, ${month}, action, resultat, sum(n) from stats_activite_jour where ${org} group by 2, 3, 4`.execute(trx)
  await sql`insert into stats_activite_membres_mois (organisation_id, utilisateur_id, mois, action, resultat, n, octets)
    select ${organisationId}, utilisateur_id, ${month}, action, resultat, sum(n), sum(octets) from stats_activite_membres where ${org} group by 2, 3, 4, 5`.execute(trx)
  await sql`insert into stats_membres_mois (organisation_id, mois, utilisateur_id, n)
    select ${organisationId}, ${month}, utilisateur_id, sum(n) from stats_membres_jour where ${org} group by 2, 3`.execute(trx)
}

/** Recomputes every statistic of an organisation from its sources; answers what had drifted. */
export async function rebuildOrganisation(db: Kysely<DB>, organisationId: string): Promise<Drift[]> {
  const drifts: Drift[] = []
  await rebuildCounters(db, organisationId, drifts)
  await db.transaction().execute(async (trx) => {
    await lockJournal(trx, organisationId)
    await rebuildRollups(trx, organisationId, drifts)
  })
  return drifts
}

/** Every organisation, or those never counted yet (created before the statistics existed). */
export async function rebuildAll(db: Kysely<DB>, opts: { onlyUncounted?: boolean } = {}): Promise<{ organisations: number; drifts: Drift[] }> {
  let q = db.selectFrom('stats_organisations').select('organisation_id').orderBy('organisation_id')
  if (opts.onlyUncounted) q = q.where('recompte_at', 'is', null)
  const orgs = await q.execute()
  const drifts: Drift[] = []
  for (const { organisation_id } of orgs) drifts.push(...(await rebuildOrganisation(db, organisation_id)))
  return { organisations: orgs.length, drifts }
}
