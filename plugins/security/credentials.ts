import type { FastifyInstance } from 'fastify'
import { sql, type Transaction } from 'kysely'
import type { Utilisateur } from '../../db/tables/security.ts'
import type { DB } from '../../db/types.ts'
import { changePassword, forgotPassword, resendEmailVerification, resetPassword, verifyEmail } from '../../openapi/security-passwords.ts'
import { actorOf } from '../../src/audit.ts'
import { principalOf } from '../../src/auth.ts'
import { Errors } from '../../src/errors.ts'
import { type Binding, handle } from '../../src/routes.ts'
import { answerNoSoonerThan, assertPasswordNotLocked, countPasswordFailure } from './lockout.ts'
import { emailVerificationMail, passwordChangedMail, passwordResetMail } from './mails.ts'
import { consumeToken, findLiveToken, issueToken } from './one-time-tokens.ts'
import { assertPassword, hashPassword, verifyPassword } from './passwords.ts'
import { revokeSessions } from './tokens.ts'
import { findUserByEmail } from './users-repository.ts'

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

export function credentialBindings(app: FastifyInstance, publicUrl: string): Binding[] {
  const { db } = app

  return [
    handle(forgotPassword, async (request, reply) => {
      const startedAt = performance.now()
      const { email } = request.body
      const user = await findUserByEmail(db, email)
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
      return reply.code(202).send({ message: 'Si un compte existe pour cette adresse, un lien de réinitialisation vient d’y être envoyé.' })
    }),

    handle(resetPassword, async (request, reply) => {
      const { token, mot_de_passe } = request.body
      const live = await findLiveToken(db, 'reinitialisation_mot_de_passe', token)
      const user = live?.utilisateur_id ? await db.selectFrom('utilisateurs').selectAll().where('id', '=', live.utilisateur_id).executeTakeFirst() : undefined
      if (!live || !user?.actif) throw new Errors.PASSWORD_RESET_TOKEN_INVALID()
      assertPassword(mot_de_passe, user.email)
      const hash = await hashPassword(mot_de_passe)
      await app.unitOfWork(async (trx) => {
        // The single use is decided here, under the row lock of the update.
        if (!(await consumeToken(trx, 'reinitialisation_mot_de_passe', token))) throw new Errors.PASSWORD_RESET_TOKEN_INVALID()
        await trx
          .updateTable('utilisateurs')
          .set((eb) => ({
            mot_de_passe_hash: hash,
            echecs_connexion: 0,
            bloque_jusqua: null,
            // The link reached this mailbox: the address is proved.
            email_verifie_at: eb.fn.coalesce('email_verifie_at', sql<Date>`now()`),
            updated_at: sql`now()`,
          }))
          .where('id', '=', user.id)
          .execute()
        await revokeSessions(app, trx, { userId: user.id }, 'reinitialisation_mot_de_passe')
        await app.mailer.queue(trx, {
          organisationId: user.organisation_id,
          to: user.email,
          kind: 'password_changed',
          ...passwordChangedMail({ nom: user.nom, le: new Date(), reinitialise: true }),
        })
        await app.audit.record(trx, {
          ...actorOf(request),
          organisationId: user.organisation_id,
          userId: user.id,
          action: 'PASSWORD_RESET',
          target: { type: 'utilisateur', id: user.id, nom: user.email },
        })
      })
      return reply.code(204).send(null)
    }),

    handle(changePassword, async (request, reply) => {
      const principal = principalOf(request)
      const { mot_de_passe_actuel, mot_de_passe } = request.body
      const user = await db.selectFrom('utilisateurs').selectAll().where('id', '=', principal.userId).executeTakeFirstOrThrow()
      await assertPasswordNotLocked(app, request, user)
      const { ok } = await verifyPassword(user.mot_de_passe_hash, mot_de_passe_actuel)
      if (!ok) {
        await countPasswordFailure(app, request, user)
        throw new Errors.INVALID_CREDENTIALS()
      }
      assertPassword(mot_de_passe, user.email)
      const hash = await hashPassword(mot_de_passe)
      await app.unitOfWork(async (trx) => {
        await trx
          .updateTable('utilisateurs')
          .set({ mot_de_passe_hash: hash, echecs_connexion: 0, bloque_jusqua: null, updated_at: sql`now()` })
          .where('id', '=', user.id)
          .execute()
        const others = await trx
          .updateTable('sessions')
          .set({ revoked_at: sql`now()`, revoked_reason: 'changement_mot_de_passe' })
          .where('utilisateur_id', '=', user.id)
          .where('id', '!=', principal.sessionId)
          .where('revoked_at', 'is', null)
          .executeTakeFirst()
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
          details: { sessions_revoquees: Number(others.numUpdatedRows) },
        })
      })
      return reply.code(204).send(null)
    }),

    handle(verifyEmail, async (request) => {
      const verified = await app.unitOfWork(async (trx) => {
        const used = await consumeToken(trx, 'verification_email', request.body.token)
        const user = used?.utilisateur_id ? await trx.selectFrom('utilisateurs').selectAll().where('id', '=', used.utilisateur_id).executeTakeFirst() : undefined
        // A link sent to an earlier address proves nothing about the current one.
        if (!used || !user || user.email.toLowerCase() !== used.donnees.email) throw new Errors.EMAIL_TOKEN_INVALID()
        await trx.updateTable('utilisateurs').set({ email_verifie_at: sql`now()` }).where('id', '=', user.id).where('email_verifie_at', 'is', null).execute()
        await app.sessions.announce(trx, 'user', user.id)
        await app.audit.record(trx, {
          ...actorOf(request),
          organisationId: user.organisation_id,
          userId: user.id,
          action: 'EMAIL_VERIFIED',
          target: { type: 'utilisateur', id: user.id, nom: user.email },
        })
        return user
      })
      return { email: verified.email, email_verifie: true as const }
    }),

    handle(resendEmailVerification, async (request, reply) => {
      const principal = principalOf(request)
      const user = await db.selectFrom('utilisateurs').selectAll().where('id', '=', principal.userId).executeTakeFirstOrThrow()
      if (user.email_verifie_at) throw new Errors.EMAIL_ALREADY_VERIFIED()
      const expires = await app.unitOfWork(async (trx) => {
        const at = await queueEmailVerification(app, trx, user, publicUrl)
        await app.audit.record(trx, { ...actorOf(request), action: 'EMAIL_VERIFICATION_SENT', target: { type: 'utilisateur', id: user.id, nom: user.email } })
        return at
      })
      return reply.code(202).send({ expire_at: expires.toISOString() })
    }),
  ]
}
