import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { sql } from 'kysely'
import type { Utilisateur } from '../../db/tables/security.ts'
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
import { actorOf } from '../../src/audit.ts'
import { type Principal, principalOf } from '../../src/auth.ts'
import { isUniqueViolation } from '../../src/db.ts'
import { Errors } from '../../src/errors.ts'
import { type Binding, handle } from '../../src/routes.ts'
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

export function accountBindings(app: FastifyInstance, opts: { signIn: SignIn; publicUrl: string }): Binding[] {
  const { db } = app
  const { signIn } = opts

  async function refuseLogin(request: FastifyRequest, user: Utilisateur | undefined, email: string): Promise<never> {
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

  return [
    handle(register, async (request, reply) => {
      const { email, mot_de_passe, nom, organisation } = request.body
      assertPassword(mot_de_passe, email)
      if (await findUserByEmail(db, email)) throw new Errors.EMAIL_TAKEN()
      const hash = await hashPassword(mot_de_passe)
      const result = await app.unitOfWork(async (trx) => {
        const org = await trx.insertInto('organisations').values({ nom: organisation.trim() }).returningAll().executeTakeFirstOrThrow()
        const user = await trx
          .insertInto('utilisateurs')
          .values({ organisation_id: org.id, email: email.trim(), nom: nom.trim(), role: 'admin', mot_de_passe_hash: hash })
          .returningAll()
          .executeTakeFirstOrThrow()
          .catch((error) => {
            // Two registrations of one address at once: the unique index decides.
            if (isUniqueViolation(error)) throw new Errors.EMAIL_TAKEN()
            throw error
          })
        const tokens = await openSession(app, trx, user, request)
        await queueEmailVerification(app, trx, user, opts.publicUrl)
        await app.audit.record(trx, {
          ...actorOf(request),
          organisationId: org.id,
          userId: user.id,
          action: 'USER_REGISTERED',
          target: { type: 'organisation', id: org.id, nom: org.nom },
          details: { verification_email: 'envoyee' },
        })
        const { sessionId: _, ...publicTokens } = tokens
        return {
          ...publicTokens,
          utilisateur: toUserDto(user),
          organisation: { id: org.id, nom: org.nom, mfa_obligatoire: org.mfa_obligatoire, created_at: org.created_at.toISOString() },
        }
      })
      return reply.code(201).send(result)
    }),

    handle(login, async (request) => {
      const startedAt = performance.now()
      const { email, mot_de_passe } = request.body
      const user = await findUserForSignIn(db, email, request)
      if (user?.bloque_jusqua && user.bloque_jusqua > new Date() && !(await isKnownAddress(db, user.id, request.ip))) {
        await verifyPassword(null, mot_de_passe) // same work as any other answer
        const seconds = Math.ceil((user.bloque_jusqua.getTime() - Date.now()) / 1000)
        await app.audit.recordAlone({
          ...actorOf(request),
          organisationId: user.organisation_id,
          userId: user.id,
          action: 'LOGIN_FAILED',
          target: { type: 'utilisateur', id: user.id, nom: user.email },
          result: 'refus',
          details: { raison: 'compte_bloque', secondes: seconds },
        })
        await answerNoSoonerThan(startedAt, REFUSAL_FLOOR_MS)
        throw Object.assign(new Errors.ACCOUNT_LOCKED(seconds), { retryAfter: seconds })
      }
      const { ok, rehash } = await verifyPassword(user?.actif ? user.mot_de_passe_hash : null, mot_de_passe)
      if (!ok || !user) {
        return refuseLogin(request, user, email).finally(() => answerNoSoonerThan(startedAt, REFUSAL_FLOOR_MS))
      }
      // With 2FA, this answers the second step instead of tokens.
      return signIn.begin(request, user, {
        via: 'mot_de_passe',
        context: toSessionContext(user),
        ...(rehash ? { rehash: await hashPassword(mot_de_passe) } : {}),
      })
    }),

    handle(refresh, async (request) => {
      const outcome = await db.transaction().execute((trx) => rotateRefreshToken(app, trx, request.body.refresh_token))
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
    }),

    handle(logout, async (request, reply) => {
      const principal = principalOf(request)
      await app.unitOfWork(async (trx) => {
        await revokeSessions(app, trx, { sessionId: principal.sessionId }, 'deconnexion')
        await app.audit.record(trx, { ...actorOf(request), action: 'LOGOUT', target: { type: 'session', id: principal.sessionId } })
      })
      return reply.code(204).send(null)
    }),

    handle(listSessions, async (request) => {
      const principal = principalOf(request)
      const rows = await db
        .selectFrom('sessions')
        .select(['id', 'created_at', 'last_used_at', 'expires_at', 'ip', 'user_agent'])
        .where('utilisateur_id', '=', principal.userId)
        .where('revoked_at', 'is', null)
        .where('expires_at', '>', sql<Date>`now()`)
        .orderBy('created_at', 'desc')
        .limit(200)
        .execute()
      return {
        items: rows.map((s) => ({
          ...s,
          created_at: s.created_at.toISOString(),
          last_used_at: s.last_used_at.toISOString(),
          expires_at: s.expires_at.toISOString(),
          courante: s.id === principal.sessionId,
        })),
      }
    }),

    handle(revokeSession, async (request, reply) => {
      const principal = principalOf(request)
      const revoked = await app.unitOfWork(async (trx) => {
        const own = await trx
          .selectFrom('sessions')
          .select('id')
          .where('id', '=', request.params.id)
          .where('utilisateur_id', '=', principal.userId)
          .where('revoked_at', 'is', null)
          .executeTakeFirst()
        if (!own) return false
        await revokeSessions(app, trx, { sessionId: own.id }, 'revocation')
        await app.audit.record(trx, { ...actorOf(request), action: 'SESSION_REVOKED', target: { type: 'session', id: own.id } })
        return true
      })
      if (!revoked) throw new Errors.NOT_FOUND('Session')
      return reply.code(204).send(null)
    }),

    handle(acceptInvitation, async (request) => {
      const hash = hashSecret(request.body.token)
      const invitation = await db
        .selectFrom('invitations as i')
        .innerJoin('utilisateurs as u', 'u.id', 'i.utilisateur_id')
        .select(['i.hash', 'u.email'])
        .where('i.hash', '=', hash)
        .where('i.used_at', 'is', null)
        .where('i.expires_at', '>', sql<Date>`now()`)
        .where('u.actif', '=', true)
        .executeTakeFirst()
      if (!invitation) throw new Errors.INVITATION_INVALID()
      assertPassword(request.body.mot_de_passe, invitation.email)
      const passwordHash = await hashPassword(request.body.mot_de_passe)
      const result = await db.transaction().execute(async (trx) => {
        // The single use is decided here, under the row lock of the update.
        const used = await trx
          .updateTable('invitations')
          .set({ used_at: sql`now()` })
          .where('hash', '=', hash)
          .where('used_at', 'is', null)
          .returning('utilisateur_id')
          .executeTakeFirst()
        if (!used) throw new Errors.INVITATION_INVALID()
        const user = await trx
          .updateTable('utilisateurs')
          // The invitation reached this mailbox: the address is proved.
          .set((eb) => ({ mot_de_passe_hash: passwordHash, email_verifie_at: eb.fn.coalesce('email_verifie_at', sql<Date>`now()`), updated_at: sql`now()` }))
          .where('id', '=', used.utilisateur_id)
          .returningAll()
          .executeTakeFirstOrThrow()
        const tokens = await openUserSession(app, trx, request, user, { secondFactor: false })
        await app.audit.record(trx, {
          ...actorOf(request),
          organisationId: user.organisation_id,
          userId: user.id,
          action: 'INVITATION_ACCEPTED',
          target: { type: 'utilisateur', id: user.id, nom: user.email },
        })
        const { sessionId: _, ...publicTokens } = tokens
        return { ...publicTokens, utilisateur: toUserDto(user) }
      })
      return result
    }),

    handle(me, async (request, reply) => {
      // Served from the live session: the guard has just read (or cached) the account, and
      // the answer is rendered once per cached session (forgotten with it on any change).
      const principal = principalOf(request)
      let body = rendered.get(principal)
      if (body === undefined) {
        body = reply.serialize(meOf(principal))
        rendered.set(principal, body)
      }
      reply.header('content-type', 'application/json; charset=utf-8')
      return body
    }),
  ]
}
