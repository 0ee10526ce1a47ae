import { createHash, randomBytes, randomUUID } from 'node:crypto'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { type Kysely, type RawBuilder, sql, type Transaction } from 'kysely'
import type { Utilisateur } from '../../db/tables/security.ts'
import type { DB } from '../../db/types.ts'
import { type AuditEntry, journalAppend } from '../../src/audit.ts'
import { prepared } from '../../src/db.ts'

export const REFRESH_TTL_DAYS = 30

/** Opaque secrets (refresh, invitation, links, 2FA steps) are 256 random bits; only their SHA-256 is stored. */
export function newSecret(): { token: string; hash: Buffer } {
  const token = randomBytes(32).toString('base64url')
  return { token, hash: hashSecret(token) }
}

export function hashSecret(token: string): Buffer {
  return createHash('sha256').update(token).digest()
}

export interface IssuedTokens {
  access_token: string
  refresh_token: string
  token_type: 'Bearer'
  expires_in: number
  /** The session may only enroll a second factor (the organisation requires one). */
  mfa_enrolement_requis: boolean
  sessionId: string
}

function accessToken(app: FastifyInstance, user: Utilisateur, sessionId: string): string {
  return app.jwt.sign({ sub: user.id, org: user.organisation_id, role: user.role, sid: sessionId })
}

/** What decides how a sign-in opens its session, read before the session is added. */
export interface SessionContext {
  /** The organisation requires 2FA. */
  mfaRequired: boolean
  /** The user has an active second factor. */
  hasFactor: boolean
  /** The user has signed in before (90 days)… */
  seenBefore: boolean
  /** …and from this address with this user agent. */
  knownDevice: boolean
}

/**
 * The select list that reads a user's session context, for a lookup that wants it along
 * (the sign-in's): `mfa_obligatoire`, `a_facteur`, `deja_vu`, `appareil_connu`.
 */
export function sessionContextColumns(userId: RawBuilder<unknown> | string, organisationId: RawBuilder<unknown> | string, request: FastifyRequest) {
  const ua = request.headers['user-agent']?.slice(0, 512) ?? null
  return sql`(select o.mfa_obligatoire from organisations o where o.id = ${organisationId}) as mfa_obligatoire,
    exists(select 1 from facteurs_mfa f where f.utilisateur_id = ${userId} and f.active_at is not null) as a_facteur,
    exists(select 1 from sessions s where s.utilisateur_id = ${userId} and s.created_at > now() - interval '90 days') as deja_vu,
    exists(select 1 from sessions s where s.utilisateur_id = ${userId} and s.ip = ${request.ip}::text
      and s.user_agent is not distinct from ${ua}::text and s.created_at > now() - interval '90 days') as appareil_connu`
}

export interface SessionContextRow {
  mfa_obligatoire: boolean | null
  a_facteur: boolean
  deja_vu: boolean
  appareil_connu: boolean
}

export function toSessionContext(row: SessionContextRow): SessionContext {
  return { mfaRequired: row.mfa_obligatoire === true, hasFactor: row.a_facteur, seenBefore: row.deja_vu, knownDevice: row.appareil_connu }
}

/** The session may only enroll a second factor: required by the organisation, none active, none proved. */
export function enrolmentRequired(context: SessionContext, secondFactor: boolean): boolean {
  return context.mfaRequired && !context.hasFactor && !secondFactor
}

/** Signed in before, never from this device: the owner is told. */
export function isNewDevice(context: SessionContext): boolean {
  return context.seenBefore && !context.knownDevice
}

export async function readSessionContext(db: Kysely<DB>, user: Utilisateur, request: FastifyRequest): Promise<SessionContext> {
  const { rows } = await sql<SessionContextRow>`select ${sessionContextColumns(user.id, user.organisation_id, request)}`.execute(db)
  return toSessionContext(rows[0] as SessionContextRow)
}

/**
 * Opens a session for a user who just proved who they are, and its first refresh token,
 * in one statement; with `journal`, the entry that records it too, so that a sign-in needs
 * no transaction of its own (sign-ins are bound by hashing: every round trip, and every
 * plan, is CPU taken from it). `secondFactor` when the proof included one; `mfaEnrolment`
 * when the session may only enroll one.
 */
export async function openSession(
  app: FastifyInstance,
  db: Kysely<DB>,
  user: Utilisateur,
  request: FastifyRequest,
  flags: { secondFactor?: boolean; mfaEnrolment?: boolean; journal?: (sessionId: string) => AuditEntry } = {},
): Promise<IssuedTokens> {
  const sessionId = randomUUID()
  const mfaEnrolment = flags.mfaEnrolment ?? false
  const refresh = newSecret()
  const journal = flags.journal ? journalAppend(flags.journal(sessionId)).expression : sql`null`
  await sql`${prepared}
    with session as (
      insert into sessions (id, organisation_id, utilisateur_id, ip, user_agent, expires_at, second_facteur, enrolement_mfa)
      values (${sessionId}::uuid, ${user.organisation_id}::uuid, ${user.id}::uuid, ${request.ip}::text,
        ${request.headers['user-agent']?.slice(0, 512) ?? null}::text, now() + make_interval(days => ${REFRESH_TTL_DAYS}),
        ${flags.secondFactor ?? false}::boolean, ${mfaEnrolment}::boolean)
    ), jeton as (
      insert into jetons_rafraichissement (hash, session_id) values (${refresh.hash}::bytea, ${sessionId}::uuid)
    )
    select ${journal}`.execute(db)
  return {
    access_token: accessToken(app, user, sessionId),
    refresh_token: refresh.token,
    token_type: 'Bearer',
    expires_in: app.accessTtlSeconds,
    mfa_enrolement_requis: mfaEnrolment,
    sessionId,
  }
}

export type RotationOutcome =
  | { kind: 'rotated'; tokens: IssuedTokens; user: Utilisateur }
  | { kind: 'reused'; sessionId: string; user: Utilisateur }
  | { kind: 'invalid' }

/**
 * Consumes a refresh token and issues the next one. A token consumed before is proof that
 * it leaked: the caller revokes the whole session.
 */
export async function rotateRefreshToken(app: FastifyInstance, trx: Transaction<DB>, token: string): Promise<RotationOutcome> {
  const hash = hashSecret(token)
  const found = await trx
    .selectFrom('jetons_rafraichissement as j')
    .innerJoin('sessions as s', 's.id', 'j.session_id')
    .innerJoin('utilisateurs as u', 'u.id', 's.utilisateur_id')
    .select(['j.used_at', 's.id as session_id', 's.revoked_at', 's.expires_at', 's.enrolement_mfa', 'u.id as user_id'])
    .where('j.hash', '=', hash)
    .forUpdate('j')
    .executeTakeFirst()
  if (!found) return { kind: 'invalid' }
  const user = await trx.selectFrom('utilisateurs').selectAll().where('id', '=', found.user_id).executeTakeFirstOrThrow()
  if (found.used_at) return { kind: 'reused', sessionId: found.session_id, user }
  if (found.revoked_at || found.expires_at <= new Date() || !user.actif) return { kind: 'invalid' }

  await trx.updateTable('jetons_rafraichissement').set({ used_at: sql`now()` }).where('hash', '=', hash).execute()
  const next = newSecret()
  await trx.insertInto('jetons_rafraichissement').values({ hash: next.hash, session_id: found.session_id }).execute()
  await trx.updateTable('sessions').set({ last_used_at: sql`now()` }).where('id', '=', found.session_id).execute()
  return {
    kind: 'rotated',
    user,
    tokens: {
      access_token: accessToken(app, user, found.session_id),
      refresh_token: next.token,
      token_type: 'Bearer',
      expires_in: app.accessTtlSeconds,
      mfa_enrolement_requis: found.enrolement_mfa,
      sessionId: found.session_id,
    },
  }
}

/** Revokes sessions (one, or all of a user's) and announces it to every instance. */
export async function revokeSessions(
  app: FastifyInstance,
  trx: Transaction<DB>,
  target: { sessionId: string } | { userId: string },
  reason: string,
): Promise<number> {
  const result = await trx
    .updateTable('sessions')
    .set({ revoked_at: sql`now()`, revoked_reason: reason })
    .where('revoked_at', 'is', null)
    .where((eb) => ('sessionId' in target ? eb('id', '=', target.sessionId) : eb('utilisateur_id', '=', target.userId)))
    .executeTakeFirst()
  if ('sessionId' in target) await app.sessions.announce(trx, 'session', target.sessionId)
  else await app.sessions.announce(trx, 'user', target.userId)
  return Number(result.numUpdatedRows)
}
