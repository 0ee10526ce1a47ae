import type { FastifyInstance } from 'fastify'
import type { Member } from '../helpers/auth.ts'
import { build, type TestContext } from '../helpers/build.ts'
import { type FakeFeexPay, feexpayEnv, startFakeFeexPay } from '../helpers/feexpay.ts'

export const WEBHOOK_SECRET = 'secret-de-notification-de-test-0123456789'

/** The real app pointed at a fresh fake FeexPay; jobs poll fast so tests need not wait. */
export async function billingApp(t: TestContext, env: Record<string, string> = {}): Promise<{ app: FastifyInstance; fake: FakeFeexPay }> {
  const fake = await startFakeFeexPay(t)
  const app = await build(t, feexpayEnv(fake, { JOBS_POLLING_INTERVAL_SECONDS: '0.5', FEEXPAY_POLL_SECONDS: '1', AUTH_RATE_LIMIT_MAX: '1000', RATE_LIMIT_MAX: '10000', ...env }))
  return { app, fake }
}

export function as(member: Member) {
  return { authorization: `Bearer ${member.token}` }
}

export async function choose(app: FastifyInstance, admin: Member, plan: string, periodicite: 'mensuelle' | 'annuelle' = 'mensuelle') {
  const res = await app.inject({ method: 'POST', url: '/abonnement/choisir', headers: as(admin), payload: { plan, periodicite } })
  if (res.statusCode !== 200) throw new Error(`choisir: ${res.statusCode} ${res.body}`)
  return res.json()
}

export const MTN_BJ = { moyen: 'mobile_money', reseau: 'mtn', telephone: '2290161000000' } as const

export async function pay(app: FastifyInstance, admin: Member, body: Record<string, unknown> = MTN_BJ) {
  return app.inject({ method: 'POST', url: '/abonnement/payer', headers: as(admin), payload: body })
}

export async function webhook(app: FastifyInstance, body: Record<string, unknown>, secret = WEBHOOK_SECRET) {
  return app.inject({ method: 'POST', url: `/paiements/feexpay/webhook?secret=${encodeURIComponent(secret)}`, payload: body })
}

export async function until<T>(what: string, fn: () => Promise<T | null | undefined | false>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await fn()
    if (value) return value
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}
