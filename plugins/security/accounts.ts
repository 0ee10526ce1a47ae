import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { type Kysely, sql, type Transaction } from 'kysely'
import type { Utilisateur } from '../../db/tables/security.ts'
import type { DB } from '../../db/types.ts'
import {
  acceptInvitation,
  listSessions,
  login,
  logout,
  me,
  refresh,
  register,
  revokeSession,
} from '../../openapi/security.ts'
import { actorAs, actorOf } from '../../src/audit.ts'
import { type Principal, principalOf } from '../../src/auth.ts'
import { isUniqueViolation } from '../../src/db.ts'
import { Errors } from '../../src/errors.ts'
import { type Binding, handle, type TypedRequest } from '../../src/routes.ts'
import { queueEmailVerification } from './credentials.ts'
import { answerNoSoonerThan, countPasswordFailure } from './lockout.ts'
import { assertPassword, hashPassword, verifyPassword } from './passwords.ts'
import { openUserSession, type SignIn } from './sign-in.ts'
import { hashSecret, openSession, revokeSessions, rotateRefreshToken, toSessionContext } from './tokens.ts'
import { findUserByEmail, findUserForSignIn, isKnownAddress, toUserDto } from './users-repository.ts'

export { lockSeconds } from './lockout.ts'
export { assertPassword } from './passwords.ts'

/**
 * Every refused sign-in answers after the same time: a known address with a wrong
 * password does more database work than an unknown one, and must not be told apart.
 */
const REFUSAL_FLOOR_MS = 250

/** GET /me as the contract renders it, by cached principal: the session registry replaces one on any change. */
const rendered = new WeakMap<Principal, ReturnType<FastifyReply['serialize']>>()

function meOf({ userId, organisationId, role, account, mfaEnrolmentOnly }: Principal) {
  return {
    utilisateur: {
      id: userId,
      organisation_id: organisationId,
      email: account.email,
      nom: account.nom,
      role,
      actif: true,
      created_at: account.createdAt.toISOString(),
      updated_at: account.updatedAt.toISOString(),
    },
    organisation: {
      id: organisationId,
      nom: account.organisation.nom,
      mfa_obligatoire: account.organisation.mfaRequired,
      created_at: account.organisation.createdAt.toISOString(),
    },
    role,
    email_verifie: account.emailVerifiedAt !== null,
    facteurs_mfa: account.factors.map((f) => ({ methode: f.methode, active_depuis: f.activeAt.toISOString() })),
    codes_secours_restants: account.backupCodesLeft,
    mfa_enrolement_requis: mfaEnrolmentOnly,
  }
}

async function refuseLogin(app: FastifyInstance, request: FastifyRequest, user: Utilisateur | undefined, email: string): Promise<never> {
  if (!user) {
    await app.audit.recordAlone({
      ...actorOf(request),
      action: 'LOGIN_FAILED',
      result: 'echec',
      details: { email: email.toLowerCase(), raison: 'identifiants' },
    })
    throw new Errors.INVALID_CREDENTIALS()
  }
  await countPasswordFailure(app, request, user)
  throw new Errors.INVALID_CREDENTIALS()
}

// Repository: the rows these operations read and write, in the caller's executor.

async function insertAdmin(trx: Transaction<DB>, organisationId: string, account: { email: string; nom: string; hash: string }): Promise<Utilisateur> {
  return trx
    .insertInto('utilisateurs')
    .values({ organisation_id: organisationId, email: account.email.trim(), nom: account.nom.trim(), role: 'admin', mot_de_passe_hash: account.hash })
    .returningAll()
    .executeTakeFirstOrThrow()
    .catch((error) => {
      // Two registrations of one address at once: the unique index decides.
      if (isUniqueViolation(error)) throw new Errors.EMAIL_TAKEN()
      throw error
    })
}

function liveSessionsOf(db: Kysely<DB>, userId: string) {
  return db
    .selectFrom('sessions')
    .select(['id', 'created_at', 'last_used_at', 'expires_at', 'ip', 'user_agent'])
    .where('utilisateur_id', '=', userId)
    .where('revoked_at', 'is', null)
    .where('expires_at', '>', sql<Date>`now()`)
    .orderBy('created_at', 'desc')
    .limit(200)
    .execute()
}

function findOwnLiveSession(db: Kysely<DB>, userId: string, id: string) {
  return db.selectFrom('sessions').select('id').where('id', '=', id).where('utilisateur_id', '=', userId).where('revoked_at', 'is', null).executeTakeFirst()
}

function findLiveInvitation(db: Kysely<DB>, hash: Buffer) {
  return db
    .selectFrom('invitations as i')
    .innerJoin('utilisateurs as u', 'u.id', 'i.utilisateur_id')
    .select(['i.hash', 'u.email'])
    .where('i.hash', '=', hash)
    .where('i.used_at', 'is', null)
    .where('i.expires_at', '>', sql<Date>`now()`)
    .where('u.actif', '=', true)
    .executeTakeFirst()
}

/** The single use of an invitation, decided under the row lock of the update: its member, or none. */
async function useInvitation(trx: Transaction<DB>, hash: Buffer): Promise<string | undefined> {
  const used = await trx
    .updateTable('invitations')
    .set({ used_at: sql`now()` })
    .where('hash', '=', hash)
    .where('used_at', 'is', null)
    .returning('utilisateur_id')
    .executeTakeFirst()
  return used?.utilisateur_id
}

function setInvitedPassword(trx: Transaction<DB>, userId: string, passwordHash: string): Promise<Utilisateur> {
  return trx
    .updateTable('utilisateurs')
    // The invitation reached this mailbox: the address is proved.
    .set((eb) => ({ mot_de_passe_hash: passwordHash, email_verifie_at: eb.fn.coalesce('email_verifie_at', sql<Date>`now()`), updated_at: sql`now()` }))
    .where('id', '=', userId)
    .returningAll()
    .executeTakeFirstOrThrow()
}

// Services: one per operation.

/** A new organisation and its first administrator, signed in, with the address to verify. */
async function registerAccount(app: FastifyInstance, request: TypedRequest<typeof register.schema>, publicUrl: string) {
  const { email, mot_de_passe, nom, organisation } = request.body
  assertPassword(mot_de_passe, email)
  if (await findUserByEmail(app.db, email)) throw new Errors.EMAIL_TAKEN()
  const hash = await hashPassword(mot_de_passe)
  return app.unitOfWork(async (trx) => {
    const org = await trx.insertInto('organisations').values({ nom: organisation.trim() }).returningAll().executeTakeFirstOrThrow()
    const user = await insertAdmin(trx, org.id, { email, nom, hash })
    const { sessionId: _, ...tokens } = await openSession(app, trx, user, request)
    await queueEmailVerification(app, trx, user, publicUrl)
    await app.audit.record(trx, {
      ...actorOf(request),
      organisationId: org.id,
      userId: user.id,
      action: 'USER_REGISTERED',
      target: { type: 'organisation', id: org.id, nom: org.nom },
      details: { verification_email: 'envoyee' },
    })
    return {
      ...tokens,
      utilisateur: toUserDto(user),
      organisation: { id: org.id, nom: org.nom, mfa_obligatoire: org.mfa_obligatoire, created_at: org.created_at.toISOString() },
    }
  })
}

/** The first step of a sign-in by password; with 2FA, it answers the second step instead of tokens. */
async function signInWithPassword(app: FastifyInstance, signIn: SignIn, request: FastifyRequest, email: string, password: string) {
  const startedAt = performance.now()
  const user = await findUserForSignIn(app.db, email, request)
  if (user?.bloque_jusqua && user.bloque_jusqua > new Date() && !(await isKnownAddress(app.db, user.id, request.ip))) {
    await verifyPassword(null, password) // same work as any other answer
    const seconds = Math.ceil((user.bloque_jusqua.getTime() - Date.now()) / 1000)
    await app.audit.recordAlone({
      ...actorAs(request, user),
      action: 'LOGIN_FAILED',
      target: { type: 'utilisateur', id: user.id, nom: user.email },
      result: 'refus',
      details: { raison: 'compte_bloque', secondes: seconds },
    })
    await answerNoSoonerThan(startedAt, REFUSAL_FLOOR_MS)
    throw Object.assign(new Errors.ACCOUNT_LOCKED(seconds), { retryAfter: seconds })
  }
  const { ok, rehash } = await verifyPassword(user?.actif ? user.mot_de_passe_hash : null, password)
  if (!ok || !user) {
    return refuseLogin(app, request, user, email).finally(() => answerNoSoonerThan(startedAt, REFUSAL_FLOOR_MS))
  }
  return signIn.begin(request, user, {
    via: 'mot_de_passe',
    context: toSessionContext(user),
    ...(rehash ? { rehash: await hashPassword(password) } : {}),
  })
}

/** New tokens for a refresh token; one used twice ends its session, journaled as a theft. */
async function refreshTokens(app: FastifyInstance, request: FastifyRequest, refreshToken: string) {
  const outcome = await app.db.transaction().execute((trx) => rotateRefreshToken(app, trx, refreshToken))
  if (outcome.kind === 'invalid') throw new Errors.REFRESH_TOKEN_INVALID()
  if (outcome.kind === 'reused') {
    await app.unitOfWork(async (trx) => {
      await revokeSessions(app, trx, { sessionId: outcome.sessionId }, 'reutilisation_jeton')
      await app.audit.record(trx, {
        ...actorOf(request),
        organisationId: outcome.user.organisation_id,
        userId: outcome.user.id,
        action: 'REFRESH_TOKEN_REUSED',
        target: { type: 'session', id: outcome.sessionId },
        result: 'refus',
        severity: 'HIGH',
      })
    })
    throw new Errors.REFRESH_TOKEN_REUSED()
  }
  const { sessionId: _, ...tokens } = outcome.tokens
  return { ...tokens, utilisateur: toUserDto(outcome.user) }
}

async function signOut(app: FastifyInstance, request: FastifyRequest): Promise<void> {
  const { sessionId } = principalOf(request)
  await app.unitOfWork(async (trx) => {
    await revokeSessions(app, trx, { sessionId }, 'deconnexion')
    await app.audit.record(trx, { ...actorOf(request), action: 'LOGOUT', target: { type: 'session', id: sessionId } })
  })
}

/** Ends another live session of the caller; false when there is none of theirs by that id. */
async function revokeOwnSession(app: FastifyInstance, request: FastifyRequest, id: string): Promise<boolean> {
  const { userId } = principalOf(request)
  return app.unitOfWork(async (trx) => {
    const own = await findOwnLiveSession(trx, userId, id)
    if (!own) return false
    await revokeSessions(app, trx, { sessionId: own.id }, 'revocation')
    await app.audit.record(trx, { ...actorOf(request), action: 'SESSION_REVOKED', target: { type: 'session', id: own.id } })
    return true
  })
}

async function sessionsOf(app: FastifyInstance, principal: Principal) {
  const rows = await liveSessionsOf(app.db, principal.userId)
  return {
    items: rows.map((s) => ({
      ...s,
      created_at: s.created_at.toISOString(),
      last_used_at: s.last_used_at.toISOString(),
      expires_at: s.expires_at.toISOString(),
      courante: s.id === principal.sessionId,
    })),
  }
}

/** An invited member sets a password and is signed in; the invitation is used once. */
async function acceptInvite(app: FastifyInstance, request: FastifyRequest, token: string, password: string) {
  const hash = hashSecret(token)
  const invitation = await findLiveInvitation(app.db, hash)
  if (!invitation) throw new Errors.INVITATION_INVALID()
  assertPassword(password, invitation.email)
  const passwordHash = await hashPassword(password)
  return app.db.transaction().execute(async (trx) => {
    const userId = await useInvitation(trx, hash)
    if (!userId) throw new Errors.INVITATION_INVALID()
    const user = await setInvitedPassword(trx, userId, passwordHash)
    const { sessionId: _, ...tokens } = await openUserSession(app, trx, request, user, { secondFactor: false })
    await app.audit.record(trx, {
      ...actorAs(request, user),
      action: 'INVITATION_ACCEPTED',
      target: { type: 'utilisateur', id: user.id, nom: user.email },
    })
    return { ...tokens, utilisateur: toUserDto(user) }
  })
}

/**
 * GET /me, served from the live session: the guard has just read (or cached) the account, and
 * the answer is rendered once per cached session (forgotten with it on any change).
 */
function renderMe(request: FastifyRequest, reply: FastifyReply) {
  const principal = principalOf(request)
  let body = rendered.get(principal)
  if (body === undefined) {
    body = reply.serialize(meOf(principal))
    rendered.set(principal, body)
  }
  reply.header('content-type', 'application/json; charset=utf-8')
  return body
}

export function accountBindings(app: FastifyInstance, opts: { signIn: SignIn; publicUrl: string }): Binding[] {
  return [
    handle(register, async (request, reply) => reply.code(201).send(await registerAccount(app, request, opts.publicUrl))),

    handle(login, async (request) => signInWithPassword(app, opts.signIn, request, request.body.email, request.body.mot_de_passe)),

    handle(refresh, async (request) => refreshTokens(app, request, request.body.refresh_token)),

    handle(logout, async (request, reply) => {
      await signOut(app, request)
      return reply.code(204).send(null)
    }),

    handle(listSessions, async (request) => sessionsOf(app, principalOf(request))),

    handle(revokeSession, async (request, reply) => {
      if (!(await revokeOwnSession(app, request, request.params.id))) throw new Errors.NOT_FOUND('Session')
      return reply.code(204).send(null)
    }),

    handle(acceptInvitation, async (request) => acceptInvite(app, request, request.body.token, request.body.mot_de_passe)),

    handle(me, async (request, reply) => renderMe(request, reply)),
  ]
}
