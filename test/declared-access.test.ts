import { Type } from '@sinclair/typebox'
import Fastify from 'fastify'
import t from 'tap'
import { contract } from '../openapi/index.ts'
import { defineOperation, type RateLimitSetting, type WebhookSecretSetting } from '../openapi/operation.ts'
import { documentsDomain } from '../plugins/documents/index.ts'
import { buildApp } from '../src/app.ts'
import type { Config } from '../src/config.ts'
import { dbPlugin } from '../src/db.ts'
import { handle, registerOperations } from '../src/routes.ts'
import { testConfig } from './helpers/build.ts'

// No setting of the product names a webhook secret yet: the probe brings its own.
const SECRET_SETTING = 'PROBE_WEBHOOK_SECRET' as WebhookSecretSetting
const SECRET = 'un-secret-partagé-avec-le-prestataire'

const probeWebhook = defineOperation({
  method: 'POST',
  url: '/probe/webhook',
  operationId: 'probeWebhook',
  tags: ['sante'],
  summary: 'a webhook',
  access: { webhook: { secret: SECRET_SETTING, header: 'x-probe-secret', refused: 'ACCESS_DENIED' } },
  rateLimits: [{ max: 'AUTH_RATE_LIMIT_MAX', window: '1 minute', per: 'address' }],
  schema: { body: Type.Object({ reference: Type.String() }), response: { 200: Type.Object({ recu: Type.String() }) } },
})

const probeQueryWebhook = defineOperation({
  method: 'POST',
  url: '/probe/webhook-query',
  operationId: 'probeQueryWebhook',
  tags: ['sante'],
  summary: 'a webhook whose secret is in its URL',
  access: { webhook: { secret: SECRET_SETTING, query: 'secret', refused: 'ACCESS_DENIED' } },
  rateLimits: [{ max: 'AUTH_RATE_LIMIT_MAX', window: '1 minute', per: 'address' }],
  schema: { querystring: Type.Object({ secret: Type.String() }), response: { 200: Type.Object({ recu: Type.String() }) } },
})

// A counter by a body field, counted only for one of its values, shared by two operations.
const counted = { max: 'EMAIL_CODE_RATE_LIMIT_MAX' as RateLimitSetting, window: '1 hour', per: { body: 'nom' }, counter: 'probe-nom' } as const
const probeCountedA = defineOperation({
  method: 'POST',
  url: '/probe/counted-a',
  operationId: 'probeCountedA',
  tags: ['sante'],
  summary: 'counted when type is a',
  access: { public: true },
  rateLimits: [{ ...counted, when: { body: 'type', equals: 'a' } }],
  schema: { body: Type.Object({ nom: Type.String(), type: Type.String() }), response: { 200: Type.Object({}) } },
})
const probeCountedB = defineOperation({
  method: 'POST',
  url: '/probe/counted-b',
  operationId: 'probeCountedB',
  tags: ['sante'],
  summary: 'always counted',
  access: { public: true },
  rateLimits: [counted],
  schema: { body: Type.Object({ nom: Type.String(), type: Type.String() }), response: { 200: Type.Object({}) } },
})

async function probeDomain(app: Parameters<typeof registerOperations>[0]) {
  registerOperations(app, [
    handle(probeWebhook, async (request) => ({ recu: request.body.reference })),
    handle(probeQueryWebhook, async () => ({ recu: 'ok' })),
    handle(probeCountedA, async () => ({})),
    handle(probeCountedB, async () => ({})),
  ])
}

async function buildWith(t: Parameters<typeof testConfig>[0], settings: Record<string, string | number>) {
  const config = { ...(await testConfig(t)), ...settings } as Config
  const app = await buildApp({
    config,
    contract: [...contract, probeWebhook, probeQueryWebhook, probeCountedA, probeCountedB],
    extraPlugins: [probeDomain],
  })
  t.teardown(() => app.close())
  await app.ready()
  return app
}

t.test('a webhook answers only to the shared secret of its setting', async (t) => {
  const app = await buildWith(t, { PROBE_WEBHOOK_SECRET: SECRET })
  const call = (headers: Record<string, string>, ip = '192.0.2.1') =>
    app.inject({ method: 'POST', url: '/probe/webhook', headers, payload: { reference: 'ref-1' }, remoteAddress: ip })

  const ok = await call({ 'x-probe-secret': SECRET })
  t.equal(ok.statusCode, 200)
  t.same(ok.json(), { recu: 'ref-1' })

  const wrong: Record<string, string>[] = [{}, { 'x-probe-secret': 'mauvais' }, { 'x-probe-secret': `${SECRET}x` }, { 'x-probe-secret': SECRET.slice(0, -1) }]
  for (const headers of wrong) {
    const refused = await call(headers, '192.0.2.2')
    t.equal(refused.statusCode, 401)
    t.equal(refused.json().code, 'WEBHOOK_UNAUTHORIZED')
  }
  t.equal((await call({ authorization: 'Bearer x.y.z' }, '192.0.2.2')).statusCode, 401, 'a bearer token is no secret')
  const journaled = await app.db.selectFrom('journal_activite').select(['action', 'resultat', 'cible_id']).where('ip', '=', '192.0.2.2').execute()
  t.equal(journaled.length, 5, 'every refusal is journaled')
  t.match(journaled[0], { action: 'ACCESS_DENIED', resultat: 'refus', cible_id: 'probeWebhook' })

  const byQuery = await app.inject({ method: 'POST', url: `/probe/webhook-query?secret=${encodeURIComponent(SECRET)}`, remoteAddress: '192.0.2.3' })
  t.equal(byQuery.statusCode, 200)
  t.equal((await app.inject({ method: 'POST', url: '/probe/webhook-query?secret=non', remoteAddress: '192.0.2.3' })).statusCode, 401)

  const spec = (await app.inject({ method: 'GET', url: '/openapi.json' })).json()
  const documented = spec.paths['/probe/webhook'].post
  t.same(documented.security, [], 'no bearer token in the document')
  t.ok(documented.responses['401'], 'the refusal is documented')
})

t.test('a webhook whose setting is empty refuses everyone', async (t) => {
  const app = await buildWith(t, { PROBE_WEBHOOK_SECRET: '' })
  const res = await app.inject({ method: 'POST', url: '/probe/webhook', headers: { 'x-probe-secret': '' }, payload: { reference: 'r' } })
  t.equal(res.statusCode, 401)
})

t.test('a webhook has its own limit, per address', async (t) => {
  const app = await buildWith(t, { PROBE_WEBHOOK_SECRET: SECRET, AUTH_RATE_LIMIT_MAX: 2, RATE_LIMIT_MAX: 100 })
  const call = (ip: string) =>
    app.inject({ method: 'POST', url: '/probe/webhook', headers: { 'x-probe-secret': SECRET }, payload: { reference: 'r' }, remoteAddress: ip })
  const codes = [await call('198.51.100.7'), await call('198.51.100.7'), await call('198.51.100.7')].map((r) => r.statusCode)
  t.same(codes, [200, 200, 429])
  t.equal((await call('198.51.100.8')).statusCode, 200, 'another address counts apart')
})

t.test('a declared counter counts by its body field, only when its condition holds, across the operations sharing it', async (t) => {
  const app = await buildWith(t, { EMAIL_CODE_RATE_LIMIT_MAX: 2 })
  const post = (url: string, nom: string, type: string) =>
    app.inject({ method: 'POST', url, payload: { nom, type }, remoteAddress: `203.0.113.${Math.floor(Math.random() * 200) + 1}` })
  t.equal((await post('/probe/counted-a', 'Marie', 'b')).statusCode, 200)
  t.equal((await post('/probe/counted-a', 'Marie', 'b')).statusCode, 200)
  t.equal((await post('/probe/counted-a', 'Marie', 'b')).statusCode, 200, 'not counted: its condition does not hold')
  t.equal((await post('/probe/counted-a', 'Marie', 'a')).statusCode, 200)
  t.equal((await post('/probe/counted-b', 'MARIE', 'x')).statusCode, 200, 'the same counter, whatever the case of the value')
  const limited = await post('/probe/counted-a', 'marie', 'a')
  t.equal(limited.statusCode, 429)
  t.ok(Number(limited.headers['retry-after']) > 0)
  t.equal((await post('/probe/counted-b', 'Paul', 'x')).statusCode, 200, 'another value counts apart')
})

t.test('a webhook without a limit of its own, or an operation with two caller limits, is refused where it is declared', async (t) => {
  t.throws(
    () =>
      defineOperation({
        method: 'POST',
        url: '/x',
        operationId: 'x',
        tags: [],
        summary: 'x',
        access: { webhook: { secret: SECRET_SETTING, header: 'x', refused: 'ACCESS_DENIED' } },
        schema: { response: { 200: Type.Object({}) } },
      }),
    /must declare its own rate limit/,
  )
  t.throws(
    () =>
      defineOperation({
        method: 'GET',
        url: '/y',
        operationId: 'y',
        tags: [],
        summary: 'y',
        access: { public: true },
        rateLimits: [
          { max: 'AUTH_RATE_LIMIT_MAX', window: '1 minute' },
          { max: 'RATE_LIMIT_MAX', window: '1 hour', per: 'address' },
        ],
        schema: { response: { 200: Type.Object({}) } },
      }),
    /more than one caller or address limit/,
  )
})

t.test('a domain registered without a kernel plugin it needs fails at start, naming it', async (t) => {
  const config = await testConfig(t)
  const app = Fastify({ logger: false })
  t.teardown(() => app.close())
  await app.register(dbPlugin, { url: config.DATABASE_URL, migrate: false })
  await t.rejects(async () => {
    await app.register(documentsDomain, { config })
    await app.ready()
  }, /the documents domain needs the kernel plugins jobs, audit, keys, blobs, auth-guard, rate-limits, unit-of-work/)
})
