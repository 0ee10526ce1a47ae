import { type Kysely, sql } from 'kysely'
import type { DB } from '../../db/types.ts'
import type { GlobalDashboardDto, Granularite, Metric, UserDashboardDto } from '../../openapi/stats.ts'
import { METRICS } from '../../openapi/stats.ts'
import { Errors } from '../../src/errors.ts'
import { usage } from '../documents/public.ts'
import { activeSessions, findMember, memberCounts, memberNames, recentEntries } from '../security/public.ts'
import { largestArmoires, memberStorage, organisationCounters } from './counters.ts'

const DAY_MS = 86_400_000
/** The longest period a series may cover: three years of days. */
const MAX_DAYS = 1100
const DATE = /^\d{4}-\d{2}-\d{2}$/

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

/** Today in a time zone, as AAAA-MM-JJ. */
export function today(timeZone: string, now = new Date()): string {
  return new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' }).format(now)
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
const bucketSql = (g: Granularite) => (g === 'jour' ? sql`jour::text` : sql`date_trunc(${TRUNC[g]}, jour)::date::text`)

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

async function activity(db: Kysely<DB>, organisationId: string, period: Period): Promise<GlobalDashboardDto['activite']> {
  const { rows } = await sql<{ periode: 'p' | 'a'; b: string; action: string; resultat: string; n: number }>`
    select 'a' as periode, ${bucketSql(period.granularite)} as b, action, resultat, sum(n)::int8 as n from stats_activite_jour
      where organisation_id = ${organisationId} and jour between ${period.du}::date and ${period.au}::date and action = any(${METRIC_ACTIONS})
      group by 2, 3, 4
    union all
    select 'p', '', action, resultat, sum(n)::int8 from stats_activite_jour
      where organisation_id = ${organisationId} and jour between ${period.precedente.du}::date and ${period.precedente.au}::date and action = any(${METRIC_ACTIONS})
      group by 3, 4`.execute(db)
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
  const top = await sql<{ utilisateur_id: string; n: number }>`select utilisateur_id, sum(n)::int8 as n from stats_membres_jour
    where organisation_id = ${organisationId} and jour between ${period.du}::date and ${period.au}::date
    group by utilisateur_id order by n desc, utilisateur_id limit 5`.execute(db)
  const names = await memberNames(db, organisationId, top.rows.map((r) => r.utilisateur_id))
  return {
    series: series.map((s) => ({ debut: s.debut, fin: s.fin, ...s.values })),
    totaux,
    periode_precedente: before,
    croissance: Object.fromEntries(METRICS.map((m) => [m, growth(totaux[m], before[m])])) as Record<Metric, number | null>,
    membres_les_plus_actifs: top.rows.map((r) => ({
      id: r.utilisateur_id,
      nom: names.get(r.utilisateur_id)?.nom ?? null,
      email: names.get(r.utilisateur_id)?.email ?? null,
      actions: r.n,
    })),
  }
}

async function security(db: Kysely<DB>, organisationId: string, timeZone: string) {
  const since = addDays(today(timeZone), -6)
  const [failed, locked, journal, sessions] = await Promise.all([
    sql<{ n: number }>`select coalesce(sum(n), 0)::int8 as n from stats_activite_jour
      where organisation_id = ${organisationId} and action = 'LOGIN_FAILED' and jour >= ${since}::date`.execute(db),
    sql<{ n: number }>`select count(distinct utilisateur_id)::int8 as n from stats_activite_membres
      where organisation_id = ${organisationId} and action = 'ACCOUNT_LOCKED' and jour >= ${since}::date`.execute(db),
    db.selectFrom('stats_journal').select(['verifie_at', 'intact', 'entrees']).where('organisation_id', '=', organisationId).executeTakeFirst(),
    activeSessions(db, organisationId),
  ])
  return {
    failed: failed.rows[0]?.n ?? 0,
    locked: locked.rows[0]?.n ?? 0,
    journal: journal ? { verifie_le: journal.verifie_at.toISOString(), intact: journal.intact, entrees: journal.entrees } : null,
    sessions,
  }
}

/** GET /dashboard/global: everything from counters and rollups, nothing counted over fichiers or the journal. */
export async function globalDashboard(
  db: Kysely<DB>,
  organisationId: string,
  query: { du?: string; au?: string; granularite: Granularite },
  defaultQuota: number,
): Promise<GlobalDashboardDto> {
  const counters = await organisationCounters(db, organisationId)
  const period = resolvePeriod(query, counters.fuseau_horaire)
  const [members, recent, quota, armoires, activite, sec] = await Promise.all([
    memberCounts(db, organisationId),
    sql<{ utilisateur_id: string }>`select utilisateur_id from stats_membres_activite
      where organisation_id = ${organisationId} and derniere_activite_at > now() - interval '30 days'`.execute(db),
    usage(db, organisationId, defaultQuota),
    largestArmoires(db, organisationId, 5),
    activity(db, organisationId, period),
    security(db, organisationId, counters.fuseau_horaire),
  ])
  const recentIds = new Set(recent.rows.map((r) => r.utilisateur_id))
  const active = members.activeIds.filter((id) => recentIds.has(id)).length
  const enabled = members.total - members.deactivated
  const total = counters.octets_vivants + counters.octets_corbeille
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
      total,
      quota: quota.quota === 0 ? null : quota.quota,
      pourcentage_quota: quota.quota === 0 ? null : percent(total, quota.quota),
      plus_grandes_armoires: armoires,
    },
    activite,
    securite: {
      membres_avec_2fa: members.withMfa,
      part_2fa: percent(members.withMfa, enabled),
      connexions_echouees_7_jours: sec.failed,
      comptes_bloques_7_jours: sec.locked,
      comptes_bloques: members.lockedNow,
      sessions_actives: sec.sessions,
      derniere_verification_journal: sec.journal,
    },
  }
}

/** GET /dashboard/utilisateur/{id}: a member's activity, for an admin or the member. */
export async function userDashboard(
  db: Kysely<DB>,
  caller: { organisationId: string; userId: string; role: string },
  userId: string,
  query: { du?: string; au?: string; granularite: Granularite; limit: number; cursor?: string },
): Promise<UserDashboardDto> {
  const { organisationId } = caller
  const member = await findMember(db, organisationId, userId)
  if (!member) throw new Errors.NOT_FOUND('Membre')
  if (caller.role !== 'admin' && caller.userId !== userId) throw new Errors.FORBIDDEN()
  const { fuseau_horaire } = await db
    .selectFrom('stats_organisations')
    .select('fuseau_horaire')
    .where('organisation_id', '=', organisationId)
    .executeTakeFirstOrThrow()
  const period = resolvePeriod(query, fuseau_horaire)
  const [rows, last, stored, sessions, journal] = await Promise.all([
    sql<{ b: string; action: string; resultat: string; n: number; octets: number }>`
      select ${bucketSql(period.granularite)} as b, action, resultat, sum(n)::int8 as n, sum(octets)::int8 as octets from stats_activite_membres
      where organisation_id = ${organisationId} and utilisateur_id = ${userId} and jour between ${period.du}::date and ${period.au}::date
      group by 1, 2, 3`.execute(db),
    db
      .selectFrom('stats_membres_activite')
      .select(['derniere_activite_at', 'derniere_connexion_at'])
      .where('organisation_id', '=', organisationId)
      .where('utilisateur_id', '=', userId)
      .executeTakeFirst(),
    memberStorage(db, organisationId, userId),
    activeSessions(db, organisationId, userId),
    recentEntries(db, organisationId, userId, query.limit, query.cursor),
  ])
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
    derniere_connexion: last?.derniere_connexion_at?.toISOString() ?? null,
    derniere_activite: last?.derniere_activite_at.toISOString() ?? null,
    depots,
    stockage_contribue: stored,
    sessions_actives: sessions,
    double_authentification: member.mfa,
    journal: { ...journal, lien: `/journal?utilisateur_id=${userId}` },
  }
}
