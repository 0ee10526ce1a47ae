import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { Transaction } from 'kysely'
import type { Utilisateur } from '../../db/tables/security.ts'
import type { DB } from '../../db/types.ts'
import type { SsoProvider } from '../../openapi/security-sso.ts'
import type { UtilisateurDto } from '../../openapi/security.ts'
import { actorOf } from '../../src/audit.ts'
import { activeFactors, type ProofMethod, sendEmailCode, stepMethods } from './factors.ts'
import { newDeviceMail } from './mails.ts'
import { issueToken } from './one-time-tokens.ts'
import { type IssuedTokens, openSession } from './tokens.ts'
import { toUserDto } from './users-repository.ts'

/** A 2FA step lives five minutes and five wrong codes. */
export const MFA_STEP_TTL_SECONDS = 5 * 60
export const MFA_STEP_MAX_ATTEMPTS = 5

export type Via = 'mot_de_passe' | 'sso'

export interface SignedIn extends Omit<IssuedTokens, 'sessionId'> {
  utilisateur: UtilisateurDto
}

export interface MfaStep {
  mfa_requis: true
  mfa_token: string
  methodes: ProofMethod[]
  expires_in: number
}

/** What the 2FA step remembers of the first step, to finish the sign-in the same way. */
export interface MfaStepData {
  via: Via
  fournisseur?: SsoProvider
}

export interface SessionFlags {
  /** This sign-in proved a second factor (Armoire's, or the SSO provider's). */
  secondFactor: boolean
}

/**
 * Opens a session inside `trx`, confined to enrolment when the organisation requires 2FA
 * and the member has neither a factor nor proved one; tells whether the device is new.
 */
export function openUserSession(
  app: FastifyInstance,
  trx: Transaction<DB>,
  request: FastifyRequest,
  user: Utilisateur,
  flags: SessionFlags,
): Promise<IssuedTokens & { newDevice: boolean }> {
  return openSession(app, trx, user, request, { secondFactor: flags.secondFactor, mfaEnrolment: 'if-required' })
}

export interface CompleteOptions extends SessionFlags {
  via: Via
  fournisseur?: SsoProvider | undefined
  /** How the second factor was proved, for the journal. */
  mfa?: ProofMethod | undefined
  /** A stronger hash of the password just verified. */
  rehash?: string | undefined
}

export function createSignIn(app: FastifyInstance) {
  const { db } = app

  /** Signs a user in inside `trx`: counters reset, session opened, journaled, new device announced. */
  async function within(trx: Transaction<DB>, request: FastifyRequest, user: Utilisateur, opts: CompleteOptions): Promise<SignedIn> {
    // Most sign-ins have nothing to reset: then the user row is not written (nor locked).
    const resetPassword = opts.via === 'mot_de_passe' && (user.echecs_connexion > 0 || user.bloque_jusqua !== null || opts.rehash)
    const resetMfa = opts.mfa !== undefined && (user.echecs_mfa > 0 || user.mfa_bloque_jusqua !== null)
    const updated =
      resetPassword || resetMfa
        ? await trx
            .updateTable('utilisateurs')
            .set({
              ...(resetPassword ? { echecs_connexion: 0, bloque_jusqua: null } : {}),
              ...(resetMfa ? { echecs_mfa: 0, mfa_bloque_jusqua: null } : {}),
              ...(opts.rehash ? { mot_de_passe_hash: opts.rehash } : {}),
            })
            .where('id', '=', user.id)
            .returningAll()
            .executeTakeFirstOrThrow()
        : user
    const { newDevice, sessionId, ...tokens } = await openUserSession(app, trx, request, updated, opts)
    const base = { ...actorOf(request), organisationId: user.organisation_id, userId: user.id }
    if (newDevice) {
      await app.mailer.queue(trx, {
        organisationId: user.organisation_id,
        to: user.email,
        kind: 'new_device',
        ...newDeviceMail({ nom: user.nom, le: new Date(), ip: request.ip, appareil: request.headers['user-agent']?.slice(0, 200) ?? 'inconnu' }),
      })
    }
    await app.audit.record(trx, {
      ...base,
      action: opts.via === 'sso' ? 'SSO_LOGIN' : 'LOGIN_SUCCEEDED',
      target: { type: 'session', id: sessionId },
      details: {
        ...(opts.fournisseur ? { fournisseur: opts.fournisseur } : {}),
        ...(opts.mfa ? { mfa: opts.mfa } : {}),
        ...(tokens.mfa_enrolement_requis ? { mfa_enrolement_requis: true } : {}),
      },
    })
    if (newDevice) {
      await app.audit.record(trx, { ...base, action: 'NEW_DEVICE_ALERT', target: { type: 'session', id: sessionId }, details: { ip: request.ip } })
    }
    return { ...tokens, utilisateur: toUserDto(updated) }
  }

  async function complete(request: FastifyRequest, user: Utilisateur, opts: CompleteOptions): Promise<SignedIn> {
    const result = await db.transaction().execute((trx) => within(trx, request, user, opts))
    app.mailer.flush()
    return result
  }

  /**
   * The first factor is proved (password, or SSO): opens the session, or, when the account
   * has 2FA the provider did not already prove, answers a 2FA step instead (and sends the
   * e-mail code when that is a method).
   */
  async function begin(
    request: FastifyRequest,
    user: Utilisateur,
    opts: { via: Via; fournisseur?: SsoProvider; providerMfa?: boolean; rehash?: string; withoutFactors?: boolean },
  ): Promise<SignedIn | MfaStep> {
    // `withoutFactors`: the caller's lookup of the user found no active factor.
    const factors = opts.providerMfa || opts.withoutFactors ? [] : await activeFactors(db, user.id)
    if (factors.length === 0) return complete(request, user, { ...opts, secondFactor: opts.providerMfa ?? false })
    const methodes = await stepMethods(db, user.id, factors)
    const step = await db.transaction().execute(async (trx) => {
      if (opts.via === 'mot_de_passe' && (user.echecs_connexion > 0 || user.bloque_jusqua !== null || opts.rehash)) {
        await trx
          .updateTable('utilisateurs')
          .set({ echecs_connexion: 0, bloque_jusqua: null, ...(opts.rehash ? { mot_de_passe_hash: opts.rehash } : {}) })
          .where('id', '=', user.id)
          .execute()
      }
      const data: MfaStepData = { via: opts.via, ...(opts.fournisseur ? { fournisseur: opts.fournisseur } : {}) }
      const issued = await issueToken(trx, 'mfa', { userId: user.id, organisationId: user.organisation_id, ttlSeconds: MFA_STEP_TTL_SECONDS, data: { ...data } })
      const email = factors.find((f) => f.methode === 'email')
      if (email) await sendEmailCode(app, trx, user, email, 'connexion')
      await app.audit.record(trx, {
        ...actorOf(request),
        organisationId: user.organisation_id,
        userId: user.id,
        action: 'MFA_CHALLENGE_STARTED',
        target: { type: 'utilisateur', id: user.id, nom: user.email },
        details: { via: opts.via, methodes, ...(opts.fournisseur ? { fournisseur: opts.fournisseur } : {}) },
      })
      return issued
    })
    app.mailer.flush()
    return { mfa_requis: true, mfa_token: step.token, methodes, expires_in: MFA_STEP_TTL_SECONDS }
  }

  return { within, complete, begin }
}

export type SignIn = ReturnType<typeof createSignIn>
