/**
 * What other domains may ask of the security domain: nothing else of it is imported from
 * outside (eslint.config.js says so). Every function takes the executor first and is scoped
 * to one organisation.
 */
import { type Kysely, sql } from 'kysely'
import type { DB } from '../../db/types.ts'
import type { RoleColumn } from '../../db/tables/security.ts'
import type { AuditEntry } from '../../src/audit.ts'
import { prepared } from '../../src/db.ts'
import { Errors } from '../../src/errors.ts'
import { decodeCursor, page } from '../../src/pagination.ts'
import { toEntryDto } from './journal.ts'

export interface MemberCounts {
  total: number
  byRole: Record<RoleColumn, number>
  deactivated: number
  /** Invited and not yet joined: an open invitation, no password, no SSO identity. */
  invited: number
  withMfa: number
  lockedNow: number
  /** Members who can sign in: neither deactivated nor still invited. */
  activeIds: string[]
  names: Map<string, { nom: string; email: string }>
}

export interface MemberRow {
  id: string
  nom: string
  email: string
  role: RoleColumn
  actif: boolean
  invite: boolean
  mfa: boolean
  bloque: boolean
}

/** The rows `countMembers` counts, as a query another statement may embed (a dashboard reads everything at once). */
export function memberRowsQuery(organisationId: string) {
  return sql<MemberRow>`select u.id, u.nom, u.email, u.role, u.actif,
      (u.mot_de_passe_hash is null and exists (select 1 from invitations i where i.utilisateur_id = u.id and i.used_at is null)
        and not exists (select 1 from identites_sso s where s.utilisateur_id = u.id)) as invite,
      exists (select 1 from facteurs_mfa f where f.utilisateur_id = u.id and f.active_at is not null) as mfa,
      coalesce(u.bloque_jusqua > now(), false) as bloque
    from utilisateurs u where u.organisation_id = ${organisationId}`
}

/** An organisation's members by role and state (one pass over its members, never its journal). */
export async function memberCounts(db: Kysely<DB>, organisationId: string): Promise<MemberCounts> {
  return countMembers((await sql<MemberRow>`${prepared}${memberRowsQuery(organisationId)}`.execute(db)).rows)
}

export function countMembers(rows: MemberRow[]): MemberCounts {
  const counts: MemberCounts = {
    total: rows.length,
    byRole: { admin: 0, contributeur: 0, lecteur: 0 },
    deactivated: 0,
    invited: 0,
    withMfa: 0,
    lockedNow: 0,
    activeIds: [],
    names: new Map(),
  }
  for (const r of rows) {
    counts.names.set(r.id, { nom: r.nom, email: r.email })
    counts.byRole[r.role]++
    if (!r.actif) counts.deactivated++
    else if (r.invite) counts.invited++
    else counts.activeIds.push(r.id)
    if (r.mfa && r.actif) counts.withMfa++
    if (r.bloque) counts.lockedNow++
  }
  return counts
}

/** Seats the organisation's members hold: invited and active ones; deactivated members hold none. */
export async function seatsTaken(db: Kysely<DB>, organisationId: string): Promise<number> {
  const { rows } = await sql<{ n: number }>`${prepared}select count(*)::int8 as n from utilisateurs where organisation_id = ${organisationId} and actif`.execute(db)
  return rows[0]?.n ?? 0
}

export interface MemberSummary {
  id: string
  nom: string
  email: string
  role: RoleColumn
  actif: boolean
  mfa: boolean
}

export function findMemberQuery(organisationId: string, id: string) {
  return sql<MemberSummary>`select u.id, u.nom, u.email, u.role, u.actif,
      exists (select 1 from facteurs_mfa f where f.utilisateur_id = u.id and f.active_at is not null) as mfa
    from utilisateurs u where u.id = ${id} and u.organisation_id = ${organisationId}`
}

/** A member of the organisation, or undefined (another organisation's member included). */
export async function findMember(db: Kysely<DB>, organisationId: string, id: string): Promise<MemberSummary | undefined> {
  return (await sql<MemberSummary>`${prepared}${findMemberQuery(organisationId, id)}`.execute(db)).rows[0]
}

/** The same, answering 404 when there is none. */
export async function getMember(db: Kysely<DB>, organisationId: string, id: string): Promise<MemberSummary> {
  const member = await findMember(db, organisationId, id)
  if (!member) throw new Errors.NOT_FOUND('Utilisateur')
  return member
}

/** The organisation's active admins, by name: whom to tell about the organisation's account (billing, compliance). */
export function activeAdmins(db: Kysely<DB>, organisationId: string): Promise<Array<{ id: string; nom: string; email: string }>> {
  return db
    .selectFrom('utilisateurs')
    .select(['id', 'nom', 'email'])
    .where('organisation_id', '=', organisationId)
    .where('role', '=', 'admin')
    .where('actif', '=', true)
    .orderBy('nom')
    .orderBy('id')
    .execute()
}

type Target = NonNullable<AuditEntry['target']>

/** Journal targets of the security domain's objects, named as the journal shows them. */
export const auditTargets = {
  member: (member: { id: string; nom: string }): Target => ({ type: 'utilisateur', id: member.id, nom: member.nom }),
  organisation: (organisation: { id: string; nom: string }): Target => ({ type: 'organisation', id: organisation.id, nom: organisation.nom }),
  session: (id: string): Target => ({ type: 'session', id }),
}

/** Names of members, by id (for rankings). */
export async function memberNames(db: Kysely<DB>, organisationId: string, ids: readonly string[]): Promise<Map<string, { nom: string; email: string }>> {
  if (ids.length === 0) return new Map()
  const rows = await db
    .selectFrom('utilisateurs')
    .select(['id', 'nom', 'email'])
    .where('organisation_id', '=', organisationId)
    .where(sql<boolean>`id = any(${ids}::uuid[])`)
    .execute()
  return new Map(rows.map((r) => [r.id, { nom: r.nom, email: r.email }]))
}

/** Sessions neither revoked nor expired, of the organisation or of one member. */
export async function activeSessions(db: Kysely<DB>, organisationId: string, userId?: string): Promise<number> {
  const { rows } = await sql<{ n: number }>`${prepared}select ${activeSessionsQuery(organisationId, userId)} as n`.execute(db)
  return rows[0]?.n ?? 0
}

/** The same count as a scalar subquery another statement may embed. */
export function activeSessionsQuery(organisationId: string, userId?: string) {
  const member = userId ? sql`and utilisateur_id = ${userId}` : sql``
  return sql<number>`(select count(*)::int8 from sessions
    where organisation_id = ${organisationId} ${member} and revoked_at is null and expires_at > now())`
}
/** A member's latest journal entries, newest first, a page at a time (the journal's own keyset). */
export async function recentEntries(db: Kysely<DB>, organisationId: string, userId: string, limit: number, cursor?: string) {
  let q = db.selectFrom('journal_activite').selectAll().where('organisation_id', '=', organisationId).where('utilisateur_id', '=', userId)
  if (cursor) q = q.where('id', '<', decodeCursor<[number]>(cursor, ['number'])[0])
  const rows = await q.orderBy('id', 'desc').limit(limit + 1).execute()
  return page(rows, limit, toEntryDto, (r) => [r.id])
}

/** The organisation's name, for reports. */
export async function organisationName(db: Kysely<DB>, organisationId: string): Promise<string> {
  const row = await db.selectFrom('organisations').select('nom').where('id', '=', organisationId).executeTakeFirst()
  return row?.nom ?? ''
}

/** The addresses of an organisation's active admins: who is told when something of theirs fails. */
export async function adminEmails(db: Kysely<DB>, organisationId: string): Promise<string[]> {
  const rows = await db
    .selectFrom('utilisateurs')
    .select('email')
    .where('organisation_id', '=', organisationId)
    .where('role', '=', 'admin')
    .where('actif', '=', true)
    .execute()
  return rows.map((r) => r.email)
}

export { type Anonymised, anonymiseMember, personalData } from './personal-data.ts'
