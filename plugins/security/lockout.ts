import type { FastifyInstance, FastifyRequest } from 'fastify'
import { sql } from 'kysely'
import type { Utilisateur } from '../../db/tables/security.ts'
import { actorAs, actorOf } from '../../src/audit.ts'
import { Errors } from '../../src/errors.ts'
import { accountLockedMail } from './mails.ts'

/** Failures before the first lock, then each further failure doubles it up to the cap. */
const FREE_FAILURES = 4
const FIRST_LOCK_SECONDS = 30
const MAX_LOCK_SECONDS = 15 * 60

export function lockSeconds(failures: number): number {
  if (failures <= FREE_FAILURES) return 0
  return Math.min(MAX_LOCK_SECONDS, FIRST_LOCK_SECONDS * 2 ** (failures - FREE_FAILURES - 1))
}

/** Waits until `floorMs` after `startedAt`, so that answers which must not be told apart take the same time. */
export async function answerNoSoonerThan(startedAt: number, floorMs: number): Promise<void> {
  const wait = startedAt + floorMs - performance.now()
  if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait))
}

const secondsUntil = (date: Date) => Math.max(1, Math.ceil((date.getTime() - Date.now()) / 1000))
const targetOf = (user: Utilisateur) => ({ type: 'utilisateur' as const, id: user.id, nom: user.email })

/**
 * A wrong password for a known account: counted, locked progressively, journaled, and the
 * lock announced by e-mail (sent once this commits). The caller throws.
 */
export async function countPasswordFailure(app: FastifyInstance, request: FastifyRequest, user: Utilisateur): Promise<void> {
  await app.unitOfWork(async (trx) => {
    const row = await trx
      .updateTable('utilisateurs')
      .set((eb) => ({ echecs_connexion: eb('echecs_connexion', '+', 1) }))
      .where('id', '=', user.id)
      .returning(['echecs_connexion'])
      .executeTakeFirstOrThrow()
    const seconds = lockSeconds(row.echecs_connexion)
    const base = { ...actorOf(request), organisationId: user.organisation_id, userId: user.id }
    await app.audit.record(trx, { ...base, action: 'LOGIN_FAILED', target: targetOf(user), result: 'echec', details: { echecs: row.echecs_connexion } })
    if (seconds > 0) {
      const until = new Date(Date.now() + seconds * 1000)
      await trx.updateTable('utilisateurs').set({ bloque_jusqua: until }).where('id', '=', user.id).execute()
      await app.mailer.queue(trx, {
        organisationId: user.organisation_id,
        to: user.email,
        kind: 'account_locked',
        ...accountLockedMail({ nom: user.nom, jusqua: until }),
      })
      await app.audit.record(trx, { ...base, action: 'ACCOUNT_LOCKED', target: targetOf(user), result: 'refus', details: { secondes: seconds, echecs: row.echecs_connexion } })
    }
  })
}

/** For a signed-in caller re-entering their password: a locked account is refused before any check. */
export async function assertPasswordNotLocked(app: FastifyInstance, request: FastifyRequest, user: Utilisateur): Promise<void> {
  if (!user.bloque_jusqua || user.bloque_jusqua <= new Date()) return
  const seconds = secondsUntil(user.bloque_jusqua)
  await app.audit.recordAlone({
    ...actorAs(request, user),
    action: 'LOGIN_FAILED',
    target: targetOf(user),
    result: 'refus',
    details: { raison: 'compte_bloque', secondes: seconds },
  })
  throw Object.assign(new Errors.ACCOUNT_LOCKED(seconds), { retryAfter: seconds })
}

/** Wrong second-factor codes lock second-factor checks, apart from passwords. */
export async function assertMfaNotLocked(app: FastifyInstance, request: FastifyRequest, user: Utilisateur): Promise<void> {
  if (!user.mfa_bloque_jusqua || user.mfa_bloque_jusqua <= new Date()) return
  const seconds = secondsUntil(user.mfa_bloque_jusqua)
  await app.audit.recordAlone({
    ...actorAs(request, user),
    action: 'MFA_CHALLENGE_FAILED',
    target: targetOf(user),
    result: 'refus',
    details: { raison: 'mfa_bloque', secondes: seconds },
  })
  throw Object.assign(new Errors.MFA_LOCKED(seconds), { retryAfter: seconds })
}

/**
 * A wrong second-factor code: counted on the account (and on the 2FA step, which dies
 * after `maxAttempts`), locked progressively, journaled.
 */
export async function countMfaFailure(
  app: FastifyInstance,
  request: FastifyRequest,
  user: Utilisateur,
  context: { etape: 'connexion' | 'activation' | 'confirmation'; methode: string; stepHash?: Buffer; maxAttempts?: number },
): Promise<void> {
  await app.db.transaction().execute(async (trx) => {
    const row = await trx
      .updateTable('utilisateurs')
      .set((eb) => ({ echecs_mfa: eb('echecs_mfa', '+', 1) }))
      .where('id', '=', user.id)
      .returning(['echecs_mfa'])
      .executeTakeFirstOrThrow()
    if (context.stepHash) {
      await trx
        .updateTable('jetons_usage_unique')
        .set((eb) => ({
          tentatives: eb('tentatives', '+', 1),
          used_at: eb.case().when('tentatives', '>=', (context.maxAttempts ?? 5) - 1).then(sql<Date>`now()`).else(eb.ref('used_at')).end(),
        }))
        .where('hash', '=', context.stepHash)
        .execute()
    }
    const seconds = lockSeconds(row.echecs_mfa)
    const base = { ...actorOf(request), organisationId: user.organisation_id, userId: user.id }
    await app.audit.record(trx, {
      ...base,
      action: 'MFA_CHALLENGE_FAILED',
      target: targetOf(user),
      result: 'echec',
      details: { etape: context.etape, methode: context.methode, echecs: row.echecs_mfa },
    })
    if (seconds > 0) {
      await trx
        .updateTable('utilisateurs')
        .set({ mfa_bloque_jusqua: new Date(Date.now() + seconds * 1000) })
        .where('id', '=', user.id)
        .execute()
      await app.audit.record(trx, { ...base, action: 'MFA_LOCKED', target: targetOf(user), result: 'refus', details: { secondes: seconds, echecs: row.echecs_mfa } })
    }
  })
}
