import type { FastifyInstance, FastifyRequest, preHandlerAsyncHookHandler } from 'fastify'
import type { Config } from '../../src/config.ts'
import { publicUrl } from '../../src/config.ts'
import { Errors } from '../../src/errors.ts'
import { registerOperations } from '../../src/routes.ts'
import { accountBindings } from './accounts.ts'
import { credentialBindings } from './credentials.ts'
import { journalBindings } from './journal.ts'
import { mfaBindings } from './mfa.ts'
import { checkpointAll } from '../../src/journal-checkpoints.ts'
import { sweepTokens } from './one-time-tokens.ts'
import { createSignIn } from './sign-in.ts'
import { ssoBindings, ssoSettings } from './sso.ts'
import { hashSecret } from './tokens.ts'
import { userBindings } from './users.ts'

const SWEEP_QUEUE = 'security.tokens.sweep'
const CHECKPOINT_QUEUE = 'security.journal.points-controle'

declare module '../../src/jobs.ts' {
  interface JobPayloads {
    'security.tokens.sweep': Record<string, never>
    'security.journal.points-controle': Record<string, never>
  }
}

/**
 * The security domain: accounts, sessions, two-factor authentication, password lifecycle,
 * SSO, members and roles, and the activity journal. Every /auth operation has a much
 * stricter limit than the global one; operations that can be abused against one account
 * (sign-in, reset requests, codes, e-mails) are also limited per account or address,
 * whatever address the requests come from.
 */
export async function securityDomain(app: FastifyInstance, opts: { config: Config }) {
  const { config } = opts
  const authLimit = { max: config.AUTH_RATE_LIMIT_MAX, timeWindow: '1 minute' }

  // Second counters on a route: the plugin runs one limiter per request, so these are checked by hand.
  const perIdentifier = (
    name: string,
    max: number,
    timeWindow: string,
    key: (request: FastifyRequest) => string | null,
  ): preHandlerAsyncHookHandler => {
    const counter = app.createRateLimit({ max, timeWindow, keyGenerator: (request) => `${name}:${key(request) ?? ''}` })
    return async (request) => {
      if (key(request) === null) return
      const result = await counter(request)
      if (!result.isAllowed && result.isExceeded) {
        throw Object.assign(new Errors.RATE_LIMITED(`${result.ttlInSeconds} secondes`), { retryAfter: result.ttlInSeconds })
      }
    }
  }
  const body = (request: FastifyRequest) => (request.body ?? {}) as Record<string, unknown>
  const emailOf = (request: FastifyRequest) => String(body(request).email ?? '').toLowerCase()
  const userOf = (request: FastifyRequest) => request.principal?.userId ?? null

  const perEmail = perIdentifier('login-email', config.LOGIN_EMAIL_RATE_LIMIT_MAX, '15 minutes', emailOf)
  const perResetEmail = perIdentifier('forgot-email', config.PASSWORD_RESET_RATE_LIMIT_MAX, '1 hour', emailOf)
  const perMfaStep = perIdentifier('mfa-step', config.MFA_RATE_LIMIT_MAX, '15 minutes', (request) =>
    hashSecret(String(body(request).mfa_token ?? '')).toString('base64url'),
  )
  const perMfaUser = perIdentifier('mfa-user', config.MFA_RATE_LIMIT_MAX, '15 minutes', userOf)
  const perPasswordUser = perIdentifier('password-user', config.LOGIN_EMAIL_RATE_LIMIT_MAX, '15 minutes', userOf)
  // One counter for every mail a user can trigger; enrolling an authenticator app sends none.
  const perMailedUser = perIdentifier('email-code', config.EMAIL_CODE_RATE_LIMIT_MAX, '1 hour', (request) =>
    request.routeOptions.config.operationId === 'enableMfa' && body(request).methode !== 'email' ? null : userOf(request),
  )
  const preHandlers: Record<string, preHandlerAsyncHookHandler[]> = {
    login: [perEmail],
    forgotPassword: [perResetEmail],
    challengeMfa: [perMfaStep],
    verifyMfa: [perMfaUser],
    disableMfa: [perMfaUser, perPasswordUser],
    regenerateBackupCodes: [perMfaUser],
    changePassword: [perPasswordUser],
    enableMfa: [perMailedUser],
    sendMfaEmailCode: [perMailedUser],
    resendEmailVerification: [perMailedUser],
  }

  const base = publicUrl(config)
  const signIn = createSignIn(app)
  const bindings = [
    ...accountBindings(app, { signIn, publicUrl: base }),
    ...mfaBindings(app, { signIn, totpIssuer: config.MFA_TOTP_ISSUER }),
    ...credentialBindings(app, base),
    ...ssoBindings(app, { signIn, settings: ssoSettings(config) }),
    ...userBindings(app, base),
    ...journalBindings(app),
  ]
  registerOperations(
    app,
    bindings.map((b) => {
      const extra = preHandlers[b.operation.operationId]
      const extras = {
        ...(b.operation.url.startsWith('/auth/') ? { rateLimit: authLimit } : {}),
        ...(extra ? { preHandler: extra } : {}),
      }
      return Object.keys(extras).length > 0 ? { ...b, extras } : b
    }),
  )

  await app.jobs.work(SWEEP_QUEUE, async () => ({ deleted: await sweepTokens(app.db) }))
  await app.jobs.schedule(SWEEP_QUEUE, '41 * * * *', {})
  // Every chain that grew gets its end signed: what may be cut or recomputed unnoticed is at most ten minutes of entries.
  await app.jobs.work(CHECKPOINT_QUEUE, async () => ({ points: await checkpointAll(app.db, app.keys) }))
  await app.jobs.schedule(CHECKPOINT_QUEUE, '*/10 * * * *', {})
}
