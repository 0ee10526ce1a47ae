import { type Kysely, type RawBuilder, sql } from 'kysely'
import type { DB } from '../../db/types.ts'
import type { GlobalDashboardDto, Granularite, Metric, UserDashboardDto } from '../../openapi/stats.ts'
import { METRICS } from '../../openapi/stats.ts'
import { prepared } from '../../src/db.ts'
import { Errors } from '../../src/errors.ts'
import { type BackupTargetRow, backupTargetsQuery, summariseBackups } from '../backup/public.ts'
import { type SubscriptionSummary, subscriptionSummaryQuery } from '../billing/public.ts'
import { type ComplianceSummary, complianceSummaryQuery } from '../compliance/public.ts'
import { usageQuery } from '../documents/public.ts'
import { activeSessionsQuery, countMembers, findMemberQuery, type MemberRow, memberRowsQuery, type MemberSummary, recentEntries } from '../security/public.ts'
import { type ArmoireSize, type CounterValues, countersColumns, countersJoin, largestArmoiresQuery, memberStorageQuery } from './counters.ts'

const DAY_MS = 86_400_000
/** The longest period a series may cover: three years of days. */
const MAX_DAYS = 1100
const DATE = /^\d{4}-\d{2}-\d{2}$/
const DEFAULT_ZONE = 'Africa/Porto-Novo'

export interface Period {
  du: string
  au: string
  granularite: Granularite
  fuseau_horaire: string
  precedente: { du: string; au: string }
}

const toDay = (d: Date) => d.toISOString().slice(0, 10)
const dayMs = (day: string) => Date.parse(`${day}T00:00:00Z`)
export const addDays = (day: string, n: number) => toDay(new Date(dayMs(day) + n * DAY_MS))

// A formatter costs a hundred times its use (ICU loads the zone's rules): one per zone, kept.
// The zones are IANA names PostgreSQL knows, a few hundred at most.
const dayFormats = new Map<string, Intl.DateTimeFormat>()

/** Today in a time zone, as AAAA-MM-JJ. */
export function today(timeZone: string, now = new Date()): string {
  let format = dayFormats.get(timeZone)
  if (!format) {
    format = new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' })
    dayFormats.set(timeZone, format)
  }
  return format.format(now)
}

function invalid(field: string, message: string): Error {
  return Object.assign(new Errors.VALIDATION_ERROR(), { fields: [{ field, message }] })
}

/** The period a query asks for, in the organisation's days; defaults to the last 30 days. */
export function resolvePeriod(query: { du?: string; au?: string; granularite: Granularite }, timeZone: string): Period {
  const au = query.au ?? today(timeZone)
  const du = query.du ?? addDays(au, -29)
  for (const [field, value] of [['du', du], ['au', au]] as const) {
    if (!DATE.test(value) || Number.isNaN(dayMs(value)) || toDay(new Date(dayMs(value))) !== value) {
      throw invalid(`querystring.${field}`, 'date AAAA-MM-JJ attendue')
    }
  }
  const days = (dayMs(au) - dayMs(du)) / DAY_MS + 1
  if (days < 1) throw invalid('querystring.du', '« du » doit précéder ou égaler « au »')
  if (days > MAX_DAYS) throw invalid('querystring.du', `la période dépasse ${MAX_DAYS} jours`)
  return { du, au, granularite: query.granularite, fuseau_horaire: timeZone, precedente: { du: addDays(du, -days), au: addDays(du, -1) } }
}

/** The first day of the bucket a day falls in: itself, its week's Monday, its month's first. */
function bucketOf(day: string, granularite: Granularite): string {
  if (granularite === 'jour') return day
  if (granularite === 'mois') return `${day.slice(0, 7)}-01`
  const weekday = (new Date(dayMs(day)).getUTCDay() + 6) % 7
  return addDays(day, -weekday)
}

/** The period's buckets, each clipped to the period. */
export function buckets(period: Period): { key: string; debut: string; fin: string }[] {
  const out: { key: string; debut: string; fin: string }[] = []
  for (let day = period.du; day <= period.au; day = addDays(day, 1)) {
    const key = bucketOf(day, period.granularite)
    const last = out.at(-1)
    if (last?.key === key) last.fin = day
    else out.push({ key, debut: day, fin: day })
  }
  return out
}

const TRUNC: Record<Granularite, string> = { jour: 'day', semaine: 'week', mois: 'month' }
const bucketSql = (g: Granularite, column: Dated) => (g === 'jour' ? sql`${sql.ref(column)}::text` : sql`date_trunc(${TRUNC[g]}, ${sql.ref(column)})::date::text`)

type Dated = 'jour' | 'mois'
const firstOfMonth = (day: string) => `${day.slice(0, 7)}-01`
const nextMonth = (day: string) => {
  const d = new Date(dayMs(firstOfMonth(day)))
  d.setUTCMonth(d.getUTCMonth() + 1)
  return toDay(d)
}

/**
 * A period's rows from a daily rollup and its monthly twin: each whole month of the period from
 * the monthly one, the days before and after them from the daily one, so a year reads about
 * 12 + 60 rows per key instead of 365. `select` names the columns, given the date column;
 * `months: false` (buckets finer than a month) reads the days alone.
 */
function overPeriod(
  tables: { jour: string; mois: string },
  where: RawBuilder<unknown>,
  range: { du: string; au: string },
  select: (date: Dated) => RawBuilder<unknown>,
  months = true,
) {
  const from = range.du.endsWith('-01') ? range.du : nextMonth(range.du)
  const to = nextMonth(range.au) === addDays(range.au, 1) ? addDays(range.au, 1) : firstOfMonth(range.au)
  // [from, to): the months wholly inside the period; none when the period is shorter.
  const [start, end] = months && from < to ? [from, to] : [range.du, range.du]
  return sql`select ${select('jour')} from ${sql.table(tables.jour)}
      where ${where} and jour between ${range.du}::date and ${range.au}::date and (jour < ${start}::date or jour >= ${end}::date)
    union all
    select ${select('mois')} from ${sql.table(tables.mois)} where ${where} and mois >= ${start}::date and mois < ${end}::date`
}
const ACTIVITY = { jour: 'stats_activite_jour', mois: 'stats_activite_mois' }
const MEMBER_ACTIVITY = { jour: 'stats_activite_membres', mois: 'stats_activite_membres_mois' }
const MEMBERS = { jour: 'stats_membres_jour', mois: 'stats_membres_mois' }

/** The series metric an entry counts for, if any. */
export function metricOf(action: string, resultat: string): Metric | null {
  if (action === 'LOGIN_FAILED') return 'connexions_echouees'
  if (resultat !== 'succes') return null
  switch (action) {
    case 'FILE_UPLOADED':
      return 'depots'
    case 'FILE_VERSION_ADDED':
      return 'nouvelles_versions'
    case 'FILE_DOWNLOADED':
      return 'telechargements'
    case 'DELETED':
      return 'suppressions'
    case 'RESTORED_FROM_TRASH':
      return 'restaurations'
    case 'LOGIN_SUCCEEDED':
    case 'SSO_LOGIN':
      return 'connexions'
    default:
      return null
  }
}
const METRIC_ACTIONS = ['FILE_UPLOADED', 'FILE_VERSION_ADDED', 'FILE_DOWNLOADED', 'DELETED', 'RESTORED_FROM_TRASH', 'LOGIN_SUCCEEDED', 'SSO_LOGIN', 'LOGIN_FAILED']

const zeros = () => Object.fromEntries(METRICS.map((m) => [m, 0])) as Record<Metric, number>
const growth = (now: number, before: number) => (before === 0 ? null : Math.round(((now - before) / before) * 1000) / 10)
const percent = (part: number, whole: number) => (whole === 0 ? null : Math.round((part / whole) * 1000) / 10)

interface ActivityRow {
  periode: 'a' | 'p'
  b: string
  action: string
  resultat: string
  n: number
}

function activity(rows: ActivityRow[], top: { utilisateur_id: string; n: number }[], names: Map<string, { nom: string; email: string }>, period: Period) {
  const series = buckets(period).map((b) => ({ ...b, values: zeros() }))
  const byKey = new Map(series.map((s) => [s.key, s.values]))
  const totaux = zeros()
  const before = zeros()
  for (const r of rows) {
    const metric = metricOf(r.action, r.resultat)
    if (!metric) continue
    if (r.periode === 'p') before[metric] += r.n
    else {
      totaux[metric] += r.n
      const values = byKey.get(r.b)
      if (values) values[metric] += r.n
    }
  }
  return {
    series: series.map((s) => ({ debut: s.debut, fin: s.fin, ...s.values })),
    totaux,
    periode_precedente: before,
    croissance: Object.fromEntries(METRICS.map((m) => [m, growth(totaux[m], before[m])])) as Record<Metric, number | null>,
    membres_les_plus_actifs: top.map((r) => ({
      id: r.utilisateur_id,
      nom: names.get(r.utilisateur_id)?.nom ?? null,
      email: names.get(r.utilisateur_id)?.email ?? null,
      actions: r.n,
    })),
  }
}

/** A row as json_agg/row_to_json hand it over: dates become their ISO text. */
type AsJson<T> = { [K in keyof T]: T[K] extends Date ? string : T[K] extends Date | null ? string | null : T[K] }
const toDate = (iso: string | null) => (iso === null ? null : new Date(iso))

interface GlobalRow extends CounterValues {
  fuseau_horaire: string
  armoires_lourdes: ArmoireSize[]
  recents: string[]
  activite: ActivityRow[]
  top: { utilisateur_id: string; n: number }[]
  echecs: number
  bloques: number
  verification: { verifie_at: string; intact: boolean; entrees: number | null } | null
  membres: MemberRow[]
  stockage: { stockage_utilise: number; quota_octets: number | null } | null
  sessions: number
  sauvegardes: AsJson<BackupTargetRow>[]
  abonnement: AsJson<SubscriptionSummary> | null
  conformite: ComplianceSummary
}

/**
 * Every statistic the global dashboard shows, in one statement (one snapshot, one round trip,
 * one pooled connection): the other domains' sections are their public queries, embedded.
 */
async function globalStatistics(db: Kysely<DB>, organisationId: string, period: Period): Promise<GlobalRow | undefined> {
  const org = sql`organisation_id = ${organisationId}`
  const since = addDays(today(period.fuseau_horaire), -6)
  const json = (query: ReturnType<typeof sql>) => sql`(select coalesce(json_agg(x), '[]') from (${query}) x)`
  const metrics = sql`${org} and action = any(${METRIC_ACTIONS})`
  const { rows } = await sql<GlobalRow>`${prepared}select s.fuseau_horaire, ${countersColumns},
      ${json(largestArmoiresQuery(organisationId, 5))} as armoires_lourdes,
      (select coalesce(json_agg(utilisateur_id), '[]') from stats_membres_activite where ${org} and derniere_activite_at > now() - interval '30 days') as recents,
      ${json(sql`select 'a' as periode, b, action, resultat, sum(n)::int8 as n from (${overPeriod(
        ACTIVITY,
        metrics,
        period,
        (date) => sql`${bucketSql(period.granularite, date)} as b, action, resultat, n`,
        period.granularite === 'mois',
      )}) a group by 2, 3, 4
        union all
        select 'p', '', action, resultat, sum(n)::int8 from (${overPeriod(ACTIVITY, metrics, period.precedente, () => sql`action, resultat, n`)}) p group by 3, 4`)} as activite,
      ${json(sql`select utilisateur_id, sum(n)::int8 as n from (${overPeriod(MEMBERS, org, period, () => sql`utilisateur_id, n`)}) m
        group by utilisateur_id order by n desc, utilisateur_id limit 5`)} as top,
      (select coalesce(sum(n), 0)::int8 from stats_activite_jour where ${org} and action = 'LOGIN_FAILED' and jour >= ${since}::date) as echecs,
      (select count(distinct utilisateur_id)::int8 from stats_activite_membres where ${org} and action = 'ACCOUNT_LOCKED' and jour >= ${since}::date) as bloques,
      (select row_to_json(j) from (select verifie_at, intact, entrees from stats_journal where ${org}) j) as verification,
      ${json(memberRowsQuery(organisationId))} as membres,
      (select row_to_json(u) from (${usageQuery(organisationId)}) u) as stockage,
      ${activeSessionsQuery(organisationId)} as sessions,
      ${json(backupTargetsQuery(organisationId))} as sauvegardes,
      (select row_to_json(a) from (${subscriptionSummaryQuery(organisationId)}) a) as abonnement,
      (select row_to_json(c) from (${complianceSummaryQuery(organisationId)}) c) as conformite
    from stats_organisations s ${countersJoin}
    where s.organisation_id = ${organisationId}`.execute(db)
  return rows[0]
}

/**
 * The organisation's time zone, as last seen: the period is resolved with it before the one
 * statement that reads everything, which answers the zone too; a zone changed meanwhile costs
 * that statement once more.
 */
const zones = new Map<string, string>()

async function withZone<T extends { fuseau_horaire: string }>(
  organisationId: string,
  query: { du?: string; au?: string; granularite: Granularite },
  read: (period: Period) => Promise<T | undefined>,
): Promise<{ period: Period; row: T }> {
  for (;;) {
    const zone = zones.get(organisationId) ?? DEFAULT_ZONE
    const period = resolvePeriod(query, zone)
    const row = await read(period)
    if (!row) throw new Error(`no stats row for organisation ${organisationId}`)
    if (row.fuseau_horaire === zone) return { period, row }
    zones.set(organisationId, row.fuseau_horaire)
  }
}

/** GET /dashboard/global: everything from counters and rollups, nothing counted over fichiers or the journal. */
export async function globalDashboard(
  db: Kysely<DB>,
  organisationId: string,
  query: { du?: string; au?: string; granularite: Granularite },
  defaultQuota: number,
): Promise<GlobalDashboardDto> {
  const { period, row: counters } = await withZone(organisationId, query, (period) => globalStatistics(db, organisationId, period))
  const members = countMembers(counters.membres)
  const backups = summariseBackups(counters.sauvegardes.map((c) => ({ ...c, derniere_reussie: toDate(c.derniere_reussie), derniere_verifiee: toDate(c.derniere_verifiee) })))
  const subscription = counters.abonnement
  const sessions = counters.sessions
  const compliance = counters.conformite
  // The plan's quota once billing has one; the documents domain's (configured default) otherwise.
  const quota = subscription ? subscription.quota_stockage_octets : (counters.stockage?.quota_octets ?? defaultQuota)
  const recentIds = new Set(counters.recents)
  const active = members.activeIds.filter((id) => recentIds.has(id)).length
  const enabled = members.total - members.deactivated
  const total = counters.octets_vivants + counters.octets_corbeille + backups.octets
  const verification = counters.verification
  const now = Date.now()
  return {
    genere_le: new Date().toISOString(),
    periode: period,
    comptes: {
      armoires: counters.armoires,
      casiers: counters.casiers,
      dossiers: counters.dossiers,
      fichiers: counters.fichiers,
      versions: counters.versions,
      elements_corbeille: counters.elements_corbeille,
      fichiers_corbeille: counters.fichiers_corbeille,
    },
    membres: {
      total: members.total,
      par_role: members.byRole,
      par_statut: {
        actifs_30_jours: active,
        inactifs: members.activeIds.length - active,
        invites: members.invited,
        desactives: members.deactivated,
      },
    },
    stockage: {
      versions_courantes: counters.octets_courants,
      versions_anciennes: counters.octets_vivants - counters.octets_courants,
      corbeille: counters.octets_corbeille,
      sauvegardes: backups.octets,
      total,
      quota: quota === 0 ? null : quota,
      pourcentage_quota: quota === 0 ? null : percent(total, quota),
      plus_grandes_armoires: counters.armoires_lourdes,
    },
    activite: activity(counters.activite, counters.top, members.names, period),
    securite: {
      membres_avec_2fa: members.withMfa,
      part_2fa: percent(members.withMfa, enabled),
      connexions_echouees_7_jours: counters.echecs,
      comptes_bloques_7_jours: counters.bloques,
      comptes_bloques: members.lockedNow,
      sessions_actives: sessions,
      derniere_verification_journal: verification
        ? { verifie_le: new Date(verification.verifie_at).toISOString(), intact: verification.intact, entrees: verification.entrees }
        : null,
    },
    sauvegardes: {
      octets: backups.octets,
      echecs_30_jours: backups.echecs_30_jours,
      cibles: backups.cibles.map((c) => ({
        type: c.type,
        cible_id: c.cible_id,
        derniere_reussie: c.derniere_reussie?.toISOString() ?? null,
        derniere_verifiee: c.derniere_verifiee?.toISOString() ?? null,
        echecs: c.echecs,
      })),
    },
    ...(subscription
      ? {
          abonnement: {
            plan: subscription.plan_code,
            nom: subscription.plan_nom,
            statut: subscription.statut,
            periode_fin: new Date(subscription.periode_fin).toISOString(),
            jours_restants: Math.max(0, Math.floor((Date.parse(subscription.periode_fin) - now) / DAY_MS)),
          },
        }
      : {}),
    conformite: { ...compliance, eliminations_dues: compliance.eliminations_en_revue + compliance.destructions_planifiees },
  }
}

interface UserRow {
  fuseau_horaire: string
  activite: { b: string; action: string; resultat: string; n: number; octets: number }[]
  dernieres: { derniere_activite_at: string; derniere_connexion_at: string | null } | null
  stockage: { versions: number; octets: number }
  membre: MemberSummary | null
  sessions: number
}

/** GET /dashboard/utilisateur/{id}: a member's activity, for an admin or the member. */
export async function userDashboard(
  db: Kysely<DB>,
  caller: { organisationId: string; userId: string; role: string },
  userId: string,
  query: { du?: string; au?: string; granularite: Granularite; limit: number; cursor?: string },
): Promise<UserDashboardDto> {
  const { organisationId } = caller
  const org = sql`organisation_id = ${organisationId} and utilisateur_id = ${userId}`
  // Everything at once; what the caller may not see is dropped once the member is known.
  const [{ period, row }, journal] = await Promise.all([
    withZone(organisationId, query, async (period) => {
      const { rows } = await sql<UserRow>`${prepared}select s.fuseau_horaire,
          (select coalesce(json_agg(x), '[]') from (
            select b, action, resultat, sum(n)::int8 as n, sum(octets)::int8 as octets from (${overPeriod(
              MEMBER_ACTIVITY,
              org,
              period,
              (date) => sql`${bucketSql(period.granularite, date)} as b, action, resultat, n, octets`,
              period.granularite === 'mois',
            )}) a group by 1, 2, 3) x) as activite,
          (select row_to_json(a) from (select derniere_activite_at, derniere_connexion_at from stats_membres_activite where ${org}) a) as dernieres,
          (select row_to_json(m) from (${memberStorageQuery(organisationId, userId)}) m) as stockage,
          (select row_to_json(u) from (${findMemberQuery(organisationId, userId)}) u) as membre,
          ${activeSessionsQuery(organisationId, userId)} as sessions
        from stats_organisations s where s.organisation_id = ${organisationId}`.execute(db)
      return rows[0]
    }),
    recentEntries(db, organisationId, userId, query.limit, query.cursor),
  ])
  const member = row.membre
  if (!member) throw new Errors.NOT_FOUND('Membre')
  if (caller.role !== 'admin' && caller.userId !== userId) throw new Errors.FORBIDDEN()
  const rows = { rows: row.activite }
  const last = row.dernieres
  const stored = row.stockage
  const series = buckets(period).map((b) => ({ ...b, actions: {} as Record<string, number> }))
  const byKey = new Map(series.map((s) => [s.key, s.actions]))
  const totals = new Map<string, number>()
  const depots = { fichiers: 0, versions: 0, octets: 0 }
  for (const r of rows.rows) {
    totals.set(r.action, (totals.get(r.action) ?? 0) + r.n)
    const actions = byKey.get(r.b)
    if (actions) actions[r.action] = (actions[r.action] ?? 0) + r.n
    if (r.resultat !== 'succes') continue
    if (r.action === 'FILE_UPLOADED') depots.fichiers += r.n
    if (r.action === 'FILE_VERSION_ADDED') depots.versions += r.n
    depots.octets += r.octets
  }
  return {
    genere_le: new Date().toISOString(),
    periode: period,
    membre: { id: member.id, nom: member.nom, email: member.email, role: member.role, actif: member.actif },
    actions: [...totals].map(([action, nombre]) => ({ action, nombre })).sort((a, b) => b.nombre - a.nombre || a.action.localeCompare(b.action)),
    series: series.map(({ debut, fin, actions }) => ({ debut, fin, actions })),
    derniere_connexion: last?.derniere_connexion_at ? new Date(last.derniere_connexion_at).toISOString() : null,
    derniere_activite: last ? new Date(last.derniere_activite_at).toISOString() : null,
    depots,
    stockage_contribue: stored,
    sessions_actives: row.sessions,
    double_authentification: member.mfa,
    journal: { ...journal, lien: `/journal?utilisateur_id=${userId}` },
  }
}
