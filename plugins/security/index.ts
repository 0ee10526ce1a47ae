import type { FastifyInstance } from 'fastify'
import type { Config } from '../../src/config.ts'
import { publicUrl } from '../../src/config.ts'
import { registerOperations, requireKernel } from '../../src/routes.ts'
import { accountBindings } from './accounts.ts'
import { credentialBindings } from './credentials.ts'
import { journalBindings } from './journal.ts'
import { mfaBindings } from './mfa.ts'
import { checkpointAll } from '../../src/journal-checkpoints.ts'
import { sweepTokens } from './one-time-tokens.ts'
import { createSignIn } from './sign-in.ts'
import { ssoBindings, ssoSettings } from './sso.ts'
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
 * SSO, members and roles, and the activity journal. Its rate limits are declared by its
 * operations (openapi/security-limits.ts).
 */
export async function securityDomain(app: FastifyInstance, opts: { config: Config }) {
  requireKernel(app, 'security', ['db', 'jobs', 'mail', 'audit', 'auth-guard', 'rate-limits', 'unit-of-work'])
  const { config } = opts
  const base = publicUrl(config)
  const signIn = createSignIn(app)
  registerOperations(app, [
    ...accountBindings(app, { signIn, publicUrl: base }),
    ...mfaBindings(app, { signIn, totpIssuer: config.MFA_TOTP_ISSUER }),
    ...credentialBindings(app, base),
    ...ssoBindings(app, { signIn, settings: ssoSettings(config) }),
    ...userBindings(app, base),
    ...journalBindings(app),
  ])

  await app.jobs.work(SWEEP_QUEUE, async () => ({ deleted: await sweepTokens(app.db) }))
  await app.jobs.schedule(SWEEP_QUEUE, '41 * * * *', {})
  // Every chain that grew gets its end signed: what may be cut or recomputed unnoticed is at most ten minutes of entries.
  await app.jobs.work(CHECKPOINT_QUEUE, async () => ({ points: await checkpointAll(app.db, app.keys) }))
  await app.jobs.schedule(CHECKPOINT_QUEUE, '*/10 * * * *', {})
}
