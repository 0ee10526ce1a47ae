import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { Kysely, Transaction } from 'kysely'
import type { Utilisateur } from '../../db/tables/security.ts'
import type { DB } from '../../db/types.ts'
import type { SsoProvider } from '../../openapi/security-sso.ts'
import type { UtilisateurDto } from '../../openapi/security.ts'
import { actorAs, actorOf } from '../../src/audit.ts'
import { activeFactors, type ProofMethod, sendEmailCode, stepMethods } from './factors.ts'
import { newDeviceMail } from './mails.ts'
import { issueToken } from './one-time-tokens.ts'
import { enrolmentRequired, type IssuedTokens, isNewDevice, openSession, readSessionContext, type SessionContext } from './tokens.ts'
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
 * and the member has neither a factor nor proved one.
 */
export async function openUserSession(
  app: FastifyInstance,
  trx: Transaction<DB>,
  request: FastifyRequest,
  user: Utilisateur,
  flags: SessionFlags,
): Promise<IssuedTokens> {
  const context = await readSessionContext(trx, user, request)
  return openSession(app, trx, user, request, { secondFactor: flags.secondFactor, mfaEnrolment: enrolmentRequired(context, flags.secondFactor) })
}

/** Several statements must commit together: `atOnce` keeps such sign-ins in a transaction. */
function assertTransaction(db: Kysely<DB>): asserts db is Transaction<DB> {
  if (!db.isTransaction) throw new Error('this sign-in writes several statements and must run in a transaction')
}

export interface CompleteOptions extends SessionFlags {
  via: Via
  fournisseur?: SsoProvider | undefined
  /** How the second factor was proved, for the journal. */
  mfa?: ProofMethod | undefined
  /** A stronger hash of the password just verified. */
  rehash?: string | undefined
  /** The session context, when the caller's lookup of the user read it along (the password sign-in's). */
  context?: SessionContext | undefined
}

export function createSignIn(app: FastifyInstance) {
  const { db } = app

  const resetsPassword = (user: Utilisateur, opts: CompleteOptions) =>
    opts.via === 'mot_de_passe' && (user.echecs_connexion > 0 || user.bloque_jusqua !== null || opts.rehash !== undefined)
  const resetsMfa = (user: Utilisateur, opts: CompleteOptions) => opts.mfa !== undefined && (user.echecs_mfa > 0 || user.mfa_bloque_jusqua !== null)

  /**
   * Signs a user in: counters reset, session opened and journaled, new device announced.
   * Inside the caller's transaction; or, when `atOnce` holds, as the one statement it then is.
   */
  async function within(executor: Kysely<DB>, request: FastifyRequest, user: Utilisateur, opts: CompleteOptions): Promise<SignedIn> {
    const resetPassword = resetsPassword(user, opts)
    const resetMfa = resetsMfa(user, opts)
    // Most sign-ins have nothing to reset: then the user row is not written (nor locked).
    const updated =
      resetPassword || resetMfa
        ? await executor
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
    const context = opts.context ?? (await readSessionContext(executor, user, request))
    const mfaEnrolment = enrolmentRequired(context, opts.secondFactor)
    const base = { ...actorOf(request), organisationId: user.organisation_id, userId: user.id }
    const { sessionId, ...tokens } = await openSession(app, executor, updated, request, {
      secondFactor: opts.secondFactor,
      mfaEnrolment,
      journal: (id) => ({
        ...base,
        action: opts.via === 'sso' ? 'SSO_LOGIN' : 'LOGIN_SUCCEEDED',
        target: { type: 'session', id },
        details: {
          ...(opts.fournisseur ? { fournisseur: opts.fournisseur } : {}),
          ...(opts.mfa ? { mfa: opts.mfa } : {}),
          ...(mfaEnrolment ? { mfa_enrolement_requis: true } : {}),
        },
      }),
    })
    if (isNewDevice(context)) {
      assertTransaction(executor)
      await app.mailer.queue(executor, {
        organisationId: user.organisation_id,
        to: user.email,
        kind: 'new_device',
        ...newDeviceMail({ nom: user.nom, le: new Date(), ip: request.ip, appareil: request.headers['user-agent']?.slice(0, 200) ?? 'inconnu' }),
      })
      await app.audit.record(executor, { ...base, action: 'NEW_DEVICE_ALERT', target: { type: 'session', id: sessionId }, details: { ip: request.ip } })
    }
    return { ...tokens, utilisateur: toUserDto(updated) }
  }

  /**
   * Whether `within` is a single statement for this sign-in, which then needs no transaction:
   * nothing to reset, the context already read, and a known device (nothing to announce).
   */
  const atOnce = (user: Utilisateur, opts: CompleteOptions): boolean =>
    opts.context !== undefined && !isNewDevice(opts.context) && !resetsPassword(user, opts) && !resetsMfa(user, opts)

  async function complete(request: FastifyRequest, user: Utilisateur, opts: CompleteOptions): Promise<SignedIn> {
    return atOnce(user, opts) ? within(db, request, user, opts) : app.unitOfWork((trx) => within(trx, request, user, opts))
  }

  /**
   * The first factor is proved (password, or SSO): opens the session, or, when the account
   * has 2FA the provider did not already prove, answers a 2FA step instead (and sends the
   * e-mail code when that is a method).
   */
  async function begin(
    request: FastifyRequest,
    user: Utilisateur,
    opts: { via: Via; fournisseur?: SsoProvider; providerMfa?: boolean; rehash?: string; context?: SessionContext },
  ): Promise<SignedIn | MfaStep> {
    // A context read along with the user tells already when there is no factor to ask for.
    const factors = opts.providerMfa || opts.context?.hasFactor === false ? [] : await activeFactors(db, user.id)
    if (factors.length === 0) return complete(request, user, { ...opts, secondFactor: opts.providerMfa ?? false })
    const methodes = await stepMethods(db, user.id, factors)
    const step = await app.unitOfWork(async (trx) => {
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
        ...actorAs(request, user),
        action: 'MFA_CHALLENGE_STARTED',
        target: { type: 'utilisateur', id: user.id, nom: user.email },
        details: { via: opts.via, methodes, ...(opts.fournisseur ? { fournisseur: opts.fournisseur } : {}) },
      })
      return issued
    })
    return { mfa_requis: true, mfa_token: step.token, methodes, expires_in: MFA_STEP_TTL_SECONDS }
  }

  return { within, complete, begin }
}

export type SignIn = ReturnType<typeof createSignIn>
