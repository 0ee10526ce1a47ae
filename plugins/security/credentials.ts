import type { FastifyInstance, FastifyRequest } from 'fastify'
import { sql, type Transaction } from 'kysely'
import type { Utilisateur } from '../../db/tables/security.ts'
import type { DB } from '../../db/types.ts'
import { changePassword, forgotPassword, resendEmailVerification, resetPassword, verifyEmail } from '../../openapi/security-passwords.ts'
import { actorAs, actorOf } from '../../src/audit.ts'
import { principalOf } from '../../src/auth.ts'
import { Errors } from '../../src/errors.ts'
import { type Binding, handle } from '../../src/routes.ts'
import { answerNoSoonerThan, assertPasswordNotLocked, countPasswordFailure } from './lockout.ts'
import { emailVerificationMail, passwordChangedMail, passwordResetMail } from './mails.ts'
import { consumeToken, findLiveToken, issueToken } from './one-time-tokens.ts'
import { assertPassword, hashPassword, verifyPassword } from './passwords.ts'
import { revokeSessions } from './tokens.ts'
import { findCaller, findUserByEmail, findUserById } from './users-repository.ts'

const RESET_MINUTES = 60
const VERIFICATION_HOURS = 48
/** A request for a known address and one for an unknown address take the same time. */
const FORGOT_FLOOR_MS = 250

/** Queues the verification link of a user's current address; earlier links stop working. */
export async function queueEmailVerification(
  app: FastifyInstance,
  trx: Transaction<DB>,
  user: Pick<Utilisateur, 'id' | 'organisation_id' | 'email' | 'nom'>,
  publicUrl: string,
): Promise<Date> {
  const { token, expiresAt } = await issueToken(trx, 'verification_email', {
    userId: user.id,
    organisationId: user.organisation_id,
    ttlSeconds: VERIFICATION_HOURS * 3600,
    data: { email: user.email.toLowerCase() },
    replace: true,
  })
  await app.mailer.queue(trx, {
    organisationId: user.organisation_id,
    to: user.email,
    kind: 'email_verification',
    ...emailVerificationMail({ nom: user.nom, lien: `${publicUrl}/email/verifier?token=${encodeURIComponent(token)}`, heures: VERIFICATION_HOURS }),
  })
  return expiresAt
}

// Repository: the rows these operations write, in the caller's executor.

/** A new password: the failed attempts and the lock forgotten; `proved`, the address proved by a link that reached it. */
async function setPassword(trx: Transaction<DB>, userId: string, hash: string, opts: { proved: boolean }): Promise<void> {
  await trx
    .updateTable('utilisateurs')
    .set((eb) => ({
      mot_de_passe_hash: hash,
      echecs_connexion: 0,
      bloque_jusqua: null,
      ...(opts.proved ? { email_verifie_at: eb.fn.coalesce('email_verifie_at', sql<Date>`now()`) } : {}),
      updated_at: sql`now()`,
    }))
    .where('id', '=', userId)
    .execute()
}

/** Ends the user's sessions but `keptId`; answers how many. */
async function revokeOtherSessions(trx: Transaction<DB>, userId: string, keptId: string, reason: 'changement_mot_de_passe'): Promise<number> {
  const others = await trx
    .updateTable('sessions')
    .set({ revoked_at: sql`now()`, revoked_reason: reason })
    .where('utilisateur_id', '=', userId)
    .where('id', '!=', keptId)
    .where('revoked_at', 'is', null)
    .executeTakeFirst()
  return Number(others.numUpdatedRows)
}

// Services: one per operation.

/** Mails a reset link to an active account; the answer and its timing are the same for any address. */
async function requestPasswordReset(app: FastifyInstance, request: FastifyRequest, email: string, publicUrl: string): Promise<void> {
  const startedAt = performance.now()
  const user = await findUserByEmail(app.db, email)
  if (user?.actif) {
    await app.unitOfWork(async (trx) => {
      const { token } = await issueToken(trx, 'reinitialisation_mot_de_passe', {
        userId: user.id,
        organisationId: user.organisation_id,
        ttlSeconds: RESET_MINUTES * 60,
        replace: true,
      })
      await app.mailer.queue(trx, {
        organisationId: user.organisation_id,
        to: user.email,
        kind: 'password_reset',
        ...passwordResetMail({ nom: user.nom, lien: `${publicUrl}/mot-de-passe/reinitialiser?token=${encodeURIComponent(token)}`, minutes: RESET_MINUTES }),
      })
      await app.audit.record(trx, {
        ...actorOf(request),
        organisationId: user.organisation_id,
        userId: null,
        action: 'PASSWORD_RESET_REQUESTED',
        target: { type: 'utilisateur', id: user.id, nom: user.email },
      })
    })
  } else {
    await app.audit.recordAlone({
      ...actorOf(request),
      action: 'PASSWORD_RESET_REQUESTED',
      result: 'refus',
      details: { email: email.toLowerCase(), raison: user ? 'compte_desactive' : 'compte_inconnu' },
    })
  }
  await answerNoSoonerThan(startedAt, FORGOT_FLOOR_MS)
}

/** A new password by a reset link, used once: every session ends, and the member is told by mail. */
async function resetPasswordByLink(app: FastifyInstance, request: FastifyRequest, token: string, password: string): Promise<void> {
  const live = await findLiveToken(app.db, 'reinitialisation_mot_de_passe', token)
  const user = live?.utilisateur_id ? await findUserById(app.db, live.utilisateur_id) : undefined
  if (!live || !user?.actif) throw new Errors.PASSWORD_RESET_TOKEN_INVALID()
  assertPassword(password, user.email)
  const hash = await hashPassword(password)
  await app.unitOfWork(async (trx) => {
    // The single use is decided here, under the row lock of the update.
    if (!(await consumeToken(trx, 'reinitialisation_mot_de_passe', token))) throw new Errors.PASSWORD_RESET_TOKEN_INVALID()
    await setPassword(trx, user.id, hash, { proved: true })
    await revokeSessions(app, trx, { userId: user.id }, 'reinitialisation_mot_de_passe')
    await app.mailer.queue(trx, {
      organisationId: user.organisation_id,
      to: user.email,
      kind: 'password_changed',
      ...passwordChangedMail({ nom: user.nom, le: new Date(), reinitialise: true }),
    })
    await app.audit.record(trx, {
      ...actorAs(request, user),
      action: 'PASSWORD_RESET',
      target: { type: 'utilisateur', id: user.id, nom: user.email },
    })
  })
}

/** The caller's new password, on the current one: their other sessions end, and they are told by mail. */
async function replacePassword(app: FastifyInstance, request: FastifyRequest, current: string, password: string): Promise<void> {
  const principal = principalOf(request)
  const user = await findCaller(app.db, principal.userId)
  await assertPasswordNotLocked(app, request, user)
  const { ok } = await verifyPassword(user.mot_de_passe_hash, current)
  if (!ok) {
    await countPasswordFailure(app, request, user)
    throw new Errors.INVALID_CREDENTIALS()
  }
  assertPassword(password, user.email)
  const hash = await hashPassword(password)
  await app.unitOfWork(async (trx) => {
    await setPassword(trx, user.id, hash, { proved: false })
    const revoked = await revokeOtherSessions(trx, user.id, principal.sessionId, 'changement_mot_de_passe')
    await app.sessions.announce(trx, 'user', user.id)
    await app.mailer.queue(trx, {
      organisationId: user.organisation_id,
      to: user.email,
      kind: 'password_changed',
      ...passwordChangedMail({ nom: user.nom, le: new Date(), reinitialise: false }),
    })
    await app.audit.record(trx, {
      ...actorOf(request),
      action: 'PASSWORD_CHANGED',
      target: { type: 'utilisateur', id: user.id, nom: user.email },
      details: { sessions_revoquees: revoked },
    })
  })
}

/** Proves the address a verification link was sent to, if it is still the account's. */
async function verifyAddress(app: FastifyInstance, request: FastifyRequest, token: string): Promise<Utilisateur> {
  return app.unitOfWork(async (trx) => {
    const used = await consumeToken(trx, 'verification_email', token)
    const user = used?.utilisateur_id ? await findUserById(trx, used.utilisateur_id) : undefined
    // A link sent to an earlier address proves nothing about the current one.
    if (!used || !user || user.email.toLowerCase() !== used.donnees.email) throw new Errors.EMAIL_TOKEN_INVALID()
    await trx.updateTable('utilisateurs').set({ email_verifie_at: sql`now()` }).where('id', '=', user.id).where('email_verifie_at', 'is', null).execute()
    await app.sessions.announce(trx, 'user', user.id)
    await app.audit.record(trx, {
      ...actorAs(request, user),
      action: 'EMAIL_VERIFIED',
      target: { type: 'utilisateur', id: user.id, nom: user.email },
    })
    return user
  })
}

/** A fresh verification link for the caller's address, not verified yet. */
async function resendVerification(app: FastifyInstance, request: FastifyRequest, publicUrl: string): Promise<Date> {
  const user = await findCaller(app.db, principalOf(request).userId)
  if (user.email_verifie_at) throw new Errors.EMAIL_ALREADY_VERIFIED()
  return app.unitOfWork(async (trx) => {
    const at = await queueEmailVerification(app, trx, user, publicUrl)
    await app.audit.record(trx, { ...actorOf(request), action: 'EMAIL_VERIFICATION_SENT', target: { type: 'utilisateur', id: user.id, nom: user.email } })
    return at
  })
}

export function credentialBindings(app: FastifyInstance, publicUrl: string): Binding[] {
  return [
    handle(forgotPassword, async (request, reply) => {
      await requestPasswordReset(app, request, request.body.email, publicUrl)
      return reply.code(202).send({ message: 'Si un compte existe pour cette adresse, un lien de réinitialisation vient d’y être envoyé.' })
    }),

    handle(resetPassword, async (request, reply) => {
      await resetPasswordByLink(app, request, request.body.token, request.body.mot_de_passe)
      return reply.code(204).send(null)
    }),

    handle(changePassword, async (request, reply) => {
      await replacePassword(app, request, request.body.mot_de_passe_actuel, request.body.mot_de_passe)
      return reply.code(204).send(null)
    }),

    handle(verifyEmail, async (request) => ({ email: (await verifyAddress(app, request, request.body.token)).email, email_verifie: true as const })),

    handle(resendEmailVerification, async (request, reply) => reply.code(202).send({ expire_at: (await resendVerification(app, request, publicUrl)).toISOString() })),
  ]
}
