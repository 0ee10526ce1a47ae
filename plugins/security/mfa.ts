import { randomUUID } from 'node:crypto'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { sql, type Transaction } from 'kysely'
import type { FacteurMfa, MethodeMfa, Utilisateur } from '../../db/tables/security.ts'
import type { DB } from '../../db/types.ts'
import {
  challengeMfa,
  disableMfa,
  enableMfa,
  regenerateBackupCodes,
  resetMemberMfa,
  sendMfaEmailCode,
  setOrganisationMfa,
  verifyMfa,
} from '../../openapi/security-2fa.ts'
import { actorOf } from '../../src/audit.ts'
import { principalOf } from '../../src/auth.ts'
import { Errors } from '../../src/errors.ts'
import { type Binding, handle } from '../../src/routes.ts'
import {
  activateFactor,
  activeFactors,
  clearMfaFailures,
  factorDtos,
  findFactorOfMethod,
  findPendingFactor,
  markSessionProved,
  type Proof,
  replaceBackupCodes,
  replacePendingFactor,
  sendEmailCode,
  useProof,
} from './factors.ts'
import { assertMfaNotLocked, assertPasswordNotLocked, countMfaFailure, countPasswordFailure } from './lockout.ts'
import { mfaDisabledMail, mfaResetMail } from './mails.ts'
import { findLiveToken } from './one-time-tokens.ts'
import { verifyPassword } from './passwords.ts'
import { MFA_STEP_MAX_ATTEMPTS, type MfaStepData, type SignIn } from './sign-in.ts'
import { revokeSessions } from './tokens.ts'
import { base32, newTotpSecret, qrCodeDataUrl, sealTotpSecret, totpUri } from './totp.ts'
import { findCaller, findUser, findUserById } from './users-repository.ts'

/** Exactly one of `code` and `code_secours`. */
function proofOf(body: Proof): Proof {
  const given = [body.code, body.code_secours].filter((v) => v !== undefined).length
  if (given !== 1) {
    const error = new Errors.BAD_REQUEST('donnez soit `code`, soit `code_secours`')
    throw Object.assign(error, { fields: [{ field: 'body.code', message: 'un code ou un code de secours, pas les deux' }] })
  }
  return body
}

const methodOf = (proof: Proof) => (proof.code_secours !== undefined ? 'code_secours' : 'code')

/** A wrong code counts as a failure of `user` and answers MFA_CODE_INVALID. */
async function refuseCode(app: FastifyInstance, request: FastifyRequest, user: Utilisateur, context: Parameters<typeof countMfaFailure>[3]): Promise<never> {
  await countMfaFailure(app, request, user, context)
  throw new Errors.MFA_CODE_INVALID()
}

// Repository: the rows these operations read and write, in the caller's executor.

/** Uses a 2FA step once: false when another answer used it first. */
async function consumeStep(trx: Transaction<DB>, hash: Buffer): Promise<boolean> {
  const consumed = await trx
    .updateTable('jetons_usage_unique')
    .set({ used_at: sql`now()` })
    .where('hash', '=', hash)
    .where('used_at', 'is', null)
    .returning('hash')
    .executeTakeFirst()
  return consumed !== undefined
}

/** Removes `removed` of a member's factors; with none left, every factor and backup code of theirs. */
async function deleteFactors(trx: Transaction<DB>, userId: string, removed: readonly FacteurMfa[], noneLeft: boolean): Promise<void> {
  await trx.deleteFrom('facteurs_mfa').where('id', 'in', removed.map((f) => f.id)).execute()
  if (noneLeft) {
    await trx.deleteFrom('facteurs_mfa').where('utilisateur_id', '=', userId).execute()
    await trx.deleteFrom('codes_secours').where('utilisateur_id', '=', userId).execute()
  }
}

/** Forgets all 2FA of a member: factors, backup codes, open steps and failure count. Answers the factors removed. */
async function clearMfaOf(trx: Transaction<DB>, userId: string) {
  const factors = await trx.deleteFrom('facteurs_mfa').where('utilisateur_id', '=', userId).returning(['methode', 'active_at']).execute()
  await trx.deleteFrom('codes_secours').where('utilisateur_id', '=', userId).execute()
  await trx.updateTable('jetons_usage_unique').set({ used_at: sql`now()` }).where('utilisateur_id', '=', userId).where('usage', '=', 'mfa').where('used_at', 'is', null).execute()
  await trx.updateTable('utilisateurs').set({ echecs_mfa: 0, mfa_bloque_jusqua: null, updated_at: sql`now()` }).where('id', '=', userId).execute()
  return factors
}

/**
 * Open sessions follow a policy at once: those that never proved a second factor, of members
 * who have none, are confined to enrolment (or all set free when it is lifted). Answers how many changed.
 */
async function confineSessions(trx: Transaction<DB>, organisationId: string, required: boolean): Promise<number> {
  const confined = await trx
    .updateTable('sessions as s')
    .set({ enrolement_mfa: required })
    .where('s.organisation_id', '=', organisationId)
    .where('s.revoked_at', 'is', null)
    .where('s.enrolement_mfa', '!=', required)
    .$if(required, (q) =>
      q
        .where('s.second_facteur', '=', false)
        .where(({ not, exists, selectFrom }) =>
          not(exists(selectFrom('facteurs_mfa as f').select('f.id').whereRef('f.utilisateur_id', '=', 's.utilisateur_id').where('f.active_at', 'is not', null))),
        ),
    )
    .executeTakeFirst()
  return Number(confined.numUpdatedRows)
}

async function countMembersWithoutMfa(trx: Transaction<DB>, organisationId: string): Promise<number> {
  const { n } = await trx
    .selectFrom('utilisateurs as u')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('u.organisation_id', '=', organisationId)
    .where('u.actif', '=', true)
    .where(({ not, exists, selectFrom }) =>
      not(exists(selectFrom('facteurs_mfa as f').select('f.id').whereRef('f.utilisateur_id', '=', 'u.id').where('f.active_at', 'is not', null))),
    )
    .executeTakeFirstOrThrow()
  return Number(n)
}

// Services: one per operation.

/**
 * Starts enrolling a factor, refused once that method is active. A TOTP answer carries the
 * secret once; an e-mail code leaves after commit. The secret is zeroed whatever happens.
 */
async function startEnrolment(app: FastifyInstance, request: FastifyRequest, user: Utilisateur, methode: MethodeMfa, totpIssuer: string) {
  const existing = await findFactorOfMethod(app.db, user.id, methode)
  if (existing?.active_at) throw new Errors.MFA_ALREADY_ENABLED()
  const factorId = randomUUID()
  const secret = methode === 'totp' ? newTotpSecret() : null
  try {
    const sealed = secret ? await sealTotpSecret(app.keys, factorId, secret) : null
    const expires = await app.unitOfWork(async (trx) => {
      await replacePendingFactor(trx, user, { id: factorId, methode, sealed })
      const sent = secret ? null : await sendEmailCode(app, trx, user, { id: factorId }, 'activation')
      await app.audit.record(trx, { ...actorOf(request), action: 'MFA_ENROLMENT_STARTED', target: { type: 'utilisateur', id: user.id, nom: user.email }, details: { methode } })
      return sent
    })
    if (!secret) return { methode: 'email' as const, expire_at: (expires as Date).toISOString() }
    const uri = totpUri(secret, { issuer: totpIssuer, label: user.email })
    return { methode: 'totp' as const, secret: base32(secret), otpauth_uri: uri, qr_code: await qrCodeDataUrl(uri) }
  } finally {
    secret?.fill(0)
  }
}

/**
 * Activates the pending factor the code proves, with fresh backup codes, and frees this session
 * from enrolment. A wrong code counts as a failure and answers MFA_CODE_INVALID.
 */
async function confirmEnrolment(
  app: FastifyInstance,
  request: FastifyRequest,
  user: Utilisateur,
  sessionId: string,
  body: { methode?: MethodeMfa | undefined; code: string },
) {
  const pending = await findPendingFactor(app.db, user.id, body.methode)
  if (!pending) throw new Errors.MFA_NO_PENDING_ENROLMENT()
  await assertMfaNotLocked(app, request, user)
  const result = await app.unitOfWork(async (trx) => {
    const method = await useProof(app, trx, user, [pending], { code: body.code })
    if (!method) return null
    await activateFactor(trx, pending.id)
    const codes = await replaceBackupCodes(trx, user)
    if (user.echecs_mfa > 0 || user.mfa_bloque_jusqua) await clearMfaFailures(trx, user.id)
    await markSessionProved(trx, sessionId)
    await app.sessions.announce(trx, 'user', user.id)
    const factors = await activeFactors(trx, user.id)
    await app.audit.record(trx, { ...actorOf(request), action: 'MFA_ENABLED', target: { type: 'utilisateur', id: user.id, nom: user.email }, details: { methode: pending.methode } })
    return { methode: pending.methode, facteurs: factorDtos(factors), codes_secours: codes }
  })
  return result ?? refuseCode(app, request, user, { etape: 'activation', methode: pending.methode })
}

/** Sends a fresh e-mail code to the caller, whose e-mail factor is active. */
async function sendConfirmationCode(app: FastifyInstance, request: FastifyRequest, user: Utilisateur): Promise<Date> {
  const factor = (await activeFactors(app.db, user.id)).find((f) => f.methode === 'email')
  if (!factor) throw new Errors.MFA_NOT_ENABLED()
  return app.unitOfWork(async (trx) => {
    const at = await sendEmailCode(app, trx, user, factor, 'confirmation')
    await app.audit.record(trx, { ...actorOf(request), action: 'MFA_EMAIL_CODE_SENT', target: { type: 'utilisateur', id: user.id, nom: user.email } })
    return at
  })
}

/** The second step of a sign-in: a proof for the step `token` finishes it the way the first step began. */
async function answerChallenge(app: FastifyInstance, signIn: SignIn, request: FastifyRequest, token: string, proof: Proof) {
  const step = await findLiveToken(app.db, 'mfa', token)
  const user = step?.utilisateur_id ? await findUserById(app.db, step.utilisateur_id) : undefined
  if (!step || !user?.actif) {
    await app.audit.recordAlone({
      ...actorOf(request),
      organisationId: user?.organisation_id ?? null,
      userId: user?.id ?? null,
      action: 'MFA_CHALLENGE_FAILED',
      result: 'refus',
      details: { raison: 'jeton_mfa_invalide' },
    })
    throw new Errors.MFA_TOKEN_INVALID()
  }
  await assertMfaNotLocked(app, request, user)
  const data = step.donnees as unknown as MfaStepData
  const factors = await activeFactors(app.db, user.id)
  const outcome = await app.unitOfWork(async (trx) => {
    const method = await useProof(app, trx, user, factors, proof)
    if (!method) return null
    // The same step answered twice at once: the first one signs in, the second is refused.
    if (!(await consumeStep(trx, step.hash))) throw new Errors.MFA_TOKEN_INVALID()
    if (method === 'code_secours') await app.sessions.announce(trx, 'user', user.id)
    return signIn.within(trx, request, user, { via: data.via, fournisseur: data.fournisseur, secondFactor: true, mfa: method })
  })
  return outcome ?? refuseCode(app, request, user, { etape: 'connexion', methode: methodOf(proof), stepHash: step.hash, maxAttempts: MFA_STEP_MAX_ATTEMPTS })
}

/** New backup codes for the caller, the old ones void, on a proof of a factor. */
async function renewBackupCodes(app: FastifyInstance, request: FastifyRequest, user: Utilisateur, proof: Proof): Promise<string[]> {
  const factors = await activeFactors(app.db, user.id)
  if (factors.length === 0) throw new Errors.MFA_NOT_ENABLED()
  await assertMfaNotLocked(app, request, user)
  const codes = await app.unitOfWork(async (trx) => {
    const method = await useProof(app, trx, user, factors, proof)
    if (!method) return null
    const fresh = await replaceBackupCodes(trx, user)
    await app.sessions.announce(trx, 'user', user.id)
    await app.audit.record(trx, { ...actorOf(request), action: 'MFA_BACKUP_CODES_REGENERATED', target: { type: 'utilisateur', id: user.id, nom: user.email }, details: { preuve: method } })
    return fresh
  })
  return codes ?? refuseCode(app, request, user, { etape: 'confirmation', methode: methodOf(proof) })
}

/**
 * Removes the caller's factor of `methode` (all without one), on their password and a proof of
 * a factor; refused when the organisation requires 2FA and none would be left. Answers those left.
 */
async function removeFactors(app: FastifyInstance, request: FastifyRequest, user: Utilisateur, methode: MethodeMfa | undefined, password: string, proof: Proof) {
  const factors = await activeFactors(app.db, user.id)
  const removed = factors.filter((f) => !methode || f.methode === methode)
  if (removed.length === 0) throw new Errors.MFA_NOT_ENABLED()
  await assertPasswordNotLocked(app, request, user)
  const { ok } = await verifyPassword(user.mot_de_passe_hash, password)
  if (!ok) {
    await countPasswordFailure(app, request, user)
    throw new Errors.INVALID_CREDENTIALS()
  }
  const remaining = factors.filter((f) => !removed.includes(f))
  if (remaining.length === 0 && principalOf(request).account.organisation.mfaRequired) throw new Errors.MFA_REQUIRED_BY_ORGANISATION()
  await assertMfaNotLocked(app, request, user)
  const done = await app.unitOfWork(async (trx) => {
    const method = await useProof(app, trx, user, factors, proof)
    if (!method) return false
    await deleteFactors(trx, user.id, removed, remaining.length === 0)
    await app.sessions.announce(trx, 'user', user.id)
    await app.mailer.queue(trx, { organisationId: user.organisation_id, to: user.email, kind: 'mfa_disabled', ...mfaDisabledMail({ nom: user.nom, le: new Date() }) })
    await app.audit.record(trx, {
      ...actorOf(request),
      action: 'MFA_DISABLED',
      target: { type: 'utilisateur', id: user.id, nom: user.email },
      details: { methodes: removed.map((f) => f.methode), restantes: remaining.map((f) => f.methode), preuve: method },
    })
    return true
  })
  if (!done) return refuseCode(app, request, user, { etape: 'confirmation', methode: methodOf(proof) })
  return remaining
}

/** An administrator forgets a member's lost 2FA: the member's sessions end and they are told by mail. */
async function resetMfaOf(app: FastifyInstance, request: FastifyRequest, memberId: string): Promise<void> {
  const principal = principalOf(request)
  const member = await findUser(app.db, principal.organisationId, memberId)
  if (!member) throw new Errors.NOT_FOUND('Utilisateur')
  if (member.id === principal.userId) throw new Errors.MFA_RESET_SELF()
  await app.unitOfWork(async (trx) => {
    const factors = await clearMfaOf(trx, member.id)
    if (factors.length === 0) throw new Errors.MFA_NOT_ENABLED()
    // The lost or stolen factor may sit beside open sessions: they end too.
    await revokeSessions(app, trx, { userId: member.id }, 'reinitialisation_mfa')
    await app.mailer.queue(trx, {
      organisationId: member.organisation_id,
      to: member.email,
      kind: 'mfa_reset',
      ...mfaResetMail({ nom: member.nom, par: principal.account.nom, le: new Date() }),
    })
    await app.audit.record(trx, {
      ...actorOf(request),
      action: 'MFA_RESET',
      target: { type: 'utilisateur', id: member.id, nom: member.email },
      severity: 'HIGH',
      details: { methodes: factors.filter((f) => f.active_at).map((f) => f.methode) },
    })
  })
}

/** Requires 2FA of the organisation's members, or lifts it; open sessions follow at once. */
async function setMfaPolicy(app: FastifyInstance, request: FastifyRequest, required: boolean) {
  const principal = principalOf(request)
  return app.unitOfWork(async (trx) => {
    const before = await trx.selectFrom('organisations').select('mfa_obligatoire').where('id', '=', principal.organisationId).forUpdate().executeTakeFirstOrThrow()
    await trx.updateTable('organisations').set({ mfa_obligatoire: required, updated_at: sql`now()` }).where('id', '=', principal.organisationId).execute()
    const changed = await confineSessions(trx, principal.organisationId, required)
    await app.sessions.announce(trx, 'organisation', principal.organisationId)
    const without = await countMembersWithoutMfa(trx, principal.organisationId)
    await app.audit.record(trx, {
      ...actorOf(request),
      action: 'MFA_POLICY_CHANGED',
      target: { type: 'organisation', id: principal.organisationId, nom: principal.account.organisation.nom },
      details: { avant: before.mfa_obligatoire, apres: required, sessions_modifiees: changed, membres_sans_2fa: without },
    })
    return { obligatoire: required, membres_sans_2fa: without }
  })
}

export function mfaBindings(app: FastifyInstance, opts: { signIn: SignIn; totpIssuer: string }): Binding[] {
  const caller = (request: FastifyRequest) => findCaller(app.db, principalOf(request).userId)

  return [
    handle(enableMfa, async (request) => startEnrolment(app, request, await caller(request), request.body.methode, opts.totpIssuer)),

    handle(verifyMfa, async (request) => confirmEnrolment(app, request, await caller(request), principalOf(request).sessionId, request.body)),

    handle(sendMfaEmailCode, async (request, reply) => {
      const expires = await sendConfirmationCode(app, request, await caller(request))
      return reply.code(202).send({ expire_at: expires.toISOString() })
    }),

    handle(challengeMfa, async (request) => {
      const { mfa_token: token, ...proof } = request.body
      return answerChallenge(app, opts.signIn, request, token, proofOf(proof))
    }),

    handle(regenerateBackupCodes, async (request) => {
      const proof = proofOf(request.body)
      return { codes_secours: await renewBackupCodes(app, request, await caller(request), proof) }
    }),

    handle(disableMfa, async (request) => {
      const { mot_de_passe, methode, ...proof } = request.body
      const checked = proofOf(proof)
      return { facteurs: factorDtos(await removeFactors(app, request, await caller(request), methode, mot_de_passe, checked)) }
    }),

    handle(resetMemberMfa, async (request, reply) => {
      await resetMfaOf(app, request, request.params.id)
      return reply.code(204).send(null)
    }),

    handle(setOrganisationMfa, async (request) => setMfaPolicy(app, request, request.body.obligatoire)),
  ]
}
