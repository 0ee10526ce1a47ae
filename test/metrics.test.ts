import { randomBytes, randomUUID } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import t from 'tap'
import { signUp } from './helpers/auth.ts'
import { build } from './helpers/build.ts'
import { feexpayEnv, startFakeFeexPay } from './helpers/feexpay.ts'
import { runJob } from './helpers/jobs.ts'
import { backup, settled } from './backup/helpers.ts'
import { choose, MTN_BJ, pay, until } from './billing/helpers.ts'
import { tree, uploadFile } from './documents/helpers.ts'

declare module '../src/jobs.ts' {
  interface JobPayloads {
    'test.echec': Record<string, never>
  }
}

const TOKEN = randomBytes(24).toString('hex')
const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/i

interface Sample {
  name: string
  labels: Record<string, string>
  value: number
}

/** The text exposition format, line by line: what Prometheus itself would read, or a failure. */
function parse(text: string): { types: Map<string, string>; samples: Sample[] } {
  const types = new Map<string, string>()
  const samples: Sample[] = []
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('# HELP ')) continue
    const type = /^# TYPE (\w+) (counter|gauge|histogram|summary|untyped)$/.exec(line)
    if (type) {
      types.set(type[1]!, type[2]!)
      continue
    }
    const sample = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (!sample) throw new Error(`not Prometheus exposition: ${line}`)
    const labels: Record<string, string> = {}
    for (const [, key, value] of (sample[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)",?/g)) labels[key!] = value!
    samples.push({ name: sample[1]!, labels, value: Number(sample[3]) })
  }
  return { types, samples }
}

/** The value of the one sample of `name` whose labels include `labels`; undefined when none. */
function value(samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  const found = samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
  if (found.length > 1) throw new Error(`${name} ${JSON.stringify(labels)}: ${found.length} samples`)
  return found[0]?.value
}

async function scrape(app: FastifyInstance) {
  const res = await app.inject({ method: 'GET', url: '/metrics', headers: { authorization: `Bearer ${TOKEN}` } })
  if (res.statusCode !== 200) throw new Error(`GET /metrics: ${res.statusCode} ${res.body}`)
  return { ...parse(res.body), text: res.body }
}

/** Scrapes until `ready` holds of the samples (metrics observed when a stream or job ends). */
function scrapeUntil(app: FastifyInstance, what: string, ready: (samples: Sample[]) => boolean) {
  return until(what, async () => {
    const scraped = await scrape(app)
    return ready(scraped.samples) && scraped
  })
}

t.test('without METRICS_TOKEN, /metrics does not exist', async (t) => {
  const app = await build(t)
  const res = await app.inject({ method: 'GET', url: '/metrics', headers: { authorization: 'Bearer ' } })
  t.equal(res.statusCode, 404)
  t.match(res.headers['content-type'], /^application\/problem\+json/)
  t.match(res.json(), { code: 'ROUTE_NOT_FOUND' })
})

t.test('a token shorter than 32 characters is refused at start', async (t) => {
  await t.rejects(build(t, { METRICS_TOKEN: 'court' }), { name: 'ConfigError', message: /METRICS_TOKEN must be at least 32/ })
})

t.test('metrics', async (t) => {
  const fake = await startFakeFeexPay(t)
  const failing = async (app: FastifyInstance) => {
    await app.jobs.work('test.echec', async () => {
      throw new Error('échec voulu')
    }, { retryLimit: 0 })
  }
  const app = await build(
    t,
    feexpayEnv(fake, { METRICS_TOKEN: TOKEN, JOBS_POLLING_INTERVAL_SECONDS: '0.5', FEEXPAY_POLL_SECONDS: '3600', RATE_LIMIT_MAX: '10000' }),
    { extraPlugins: [failing] },
  )

  t.test('only the bearer of the token is answered', async (t) => {
    for (const authorization of [undefined, `Bearer ${TOKEN.slice(1)}`, `Bearer ${TOKEN}x`, TOKEN, `Basic ${TOKEN}`]) {
      const res = await app.inject({ method: 'GET', url: '/metrics', headers: authorization ? { authorization } : {} })
      t.equal(res.statusCode, 401, String(authorization))
      t.match(res.headers['content-type'], /^application\/problem\+json/)
      t.match(res.json(), { code: 'METRICS_UNAUTHORIZED', status: 401 })
      t.equal(res.headers['www-authenticate'], 'Bearer realm="metrics"')
      t.notMatch(res.body, /armoire_/)
    }
    const res = await app.inject({ method: 'GET', url: '/metrics', headers: { authorization: `bearer ${TOKEN}` } })
    t.equal(res.statusCode, 200)
    t.equal(res.headers['content-type'], 'text/plain; version=0.0.4; charset=utf-8')
  })

  t.test('requests by operation, problems by code, never a URL in a label', async (t) => {
    const admin = await signUp(app)
    const missing = randomUUID()
    t.equal((await app.inject({ method: 'GET', url: `/armoires/${missing}`, headers: admin.headers })).json().code, 'NOT_FOUND')
    t.equal((await app.inject({ method: 'GET', url: '/armoires/pas-un-uuid', headers: admin.headers })).json().code, 'VALIDATION_ERROR')
    t.equal((await app.inject({ method: 'GET', url: `/nulle-part/${missing}` })).json().code, 'ROUTE_NOT_FOUND')
    const before = await scrape(app)
    const { types, samples, text } = await scrape(app)

    t.equal(types.get('armoire_http_request_duration_seconds'), 'histogram')
    t.equal(types.get('armoire_http_errors_total'), 'counter')
    t.equal(types.get('armoire_jobs'), 'gauge')
    t.equal(types.get('armoire_jobs_failed_total'), 'counter')
    t.equal(types.get('armoire_payments'), 'gauge')
    t.equal(types.get('armoire_backup_duration_seconds'), 'histogram')
    t.equal(types.get('armoire_restore_duration_seconds'), 'histogram')
    t.equal(types.get('armoire_blob_operation_duration_seconds'), 'histogram')
    t.equal(types.get('process_cpu_user_seconds_total'), 'counter', 'the process metrics')
    t.equal(types.get('nodejs_eventloop_lag_seconds'), 'gauge')

    // The exact lines a scraper reads, with the codes the app really answered.
    t.match(text, /^armoire_http_errors_total\{code="NOT_FOUND",status="404"\} 1$/m)
    t.match(text, /^armoire_http_errors_total\{code="VALIDATION_ERROR",status="400"\} 1$/m)
    t.match(text, /^armoire_http_errors_total\{code="ROUTE_NOT_FOUND",status="404"\} 1$/m)
    t.match(text, /^armoire_http_errors_total\{code="METRICS_UNAUTHORIZED",status="401"\} 5$/m)

    const count = 'armoire_http_request_duration_seconds_count'
    t.equal(value(samples, count, { operation: 'register', method: 'POST', status_class: '2xx' }), 1)
    t.equal(value(samples, count, { operation: 'getArmoire', method: 'GET', status_class: '4xx' }), 2, 'the 404 and the 400')
    t.equal(value(samples, count, { operation: 'unknown', method: 'GET', status_class: '4xx' }), 1)
    t.equal(value(samples, 'armoire_http_request_duration_seconds_bucket', { operation: 'register', method: 'POST', status_class: '2xx', le: '+Inf' }), 1)
    t.ok(value(samples, 'armoire_http_request_duration_seconds_sum', { operation: 'register', method: 'POST', status_class: '2xx' })! > 0)
    t.notOk(samples.some((s) => s.labels.operation === 'getMetrics'), 'scrapes are not counted')
    t.same(parse(before.text).samples.filter((s) => s.name === count), samples.filter((s) => s.name === count), 'a scrape changes no request count')

    const leaks = samples.filter((s) => Object.values(s.labels).some((v) => v.includes('/') || UUID.test(v)))
    t.same(leaks, [], 'no label carries a path or an id')
  })

  t.test('blob store latency, until the stream ends', async (t) => {
    const admin = await signUp(app)
    const { dossier } = await tree(app, admin)
    const content = randomBytes(200_000)
    const uploaded = await uploadFile(app, admin, dossier, content)
    const res = await app.inject({ method: 'GET', url: `/fichiers/${uploaded.fichier.id}/contenu`, headers: admin.headers })
    t.equal(res.statusCode, 200)
    t.equal(res.rawPayload.length, content.length)
    const blobs = { store: 'blobs', driver: 'local' }
    const name = 'armoire_blob_operation_duration_seconds_count'
    const { samples } = await scrapeUntil(app, 'the read observed', (s) => (value(s, name, { ...blobs, operation: 'read', outcome: 'ok' }) ?? 0) >= 1)
    t.ok(value(samples, name, { ...blobs, operation: 'write', outcome: 'ok' })! >= 1, 'the upload’s write')
    t.ok(value(samples, name, { ...blobs, operation: 'read', outcome: 'ok' })! >= 1, 'the download’s read')
    t.ok(value(samples, 'armoire_blob_operation_duration_seconds_sum', { ...blobs, operation: 'write', outcome: 'ok' })! > 0)
  })

  t.test('backup and restore durations', async (t) => {
    const admin = await signUp(app)
    const { dossier } = await tree(app, admin)
    await uploadFile(app, admin, dossier, randomBytes(1000))
    const saved = await backup(app, admin, { type: 'dossier', cible_id: dossier })
    t.equal(saved.statut, 'terminee')
    const res = await app.inject({ method: 'POST', url: `/sauvegardes/${saved.id}/restaurer`, headers: admin.headers, payload: {} })
    t.equal(res.statusCode, 202)
    t.equal((await settled(app, admin, `/restaurations/${res.json().id}`)).statut, 'terminee')
    const { samples } = await scrapeUntil(app, 'the restore observed', (s) => value(s, 'armoire_restore_duration_seconds_count', { outcome: 'success' }) === 1)
    t.equal(value(samples, 'armoire_backup_duration_seconds_count', { type: 'dossier', outcome: 'success' }), 1)
    t.equal(value(samples, 'armoire_backup_duration_seconds_bucket', { type: 'dossier', outcome: 'success', le: '+Inf' }), 1)
    t.equal(value(samples, 'armoire_restore_duration_seconds_count', { outcome: 'success' }), 1)
    t.ok(value(samples, 'armoire_backup_duration_seconds_sum', { type: 'dossier', outcome: 'success' })! > 0)
    // The archive went to the blob store (no separate one configured): its write is timed too.
    t.ok(value(samples, 'armoire_blob_operation_duration_seconds_count', { store: 'blobs', driver: 'local', operation: 'write', outcome: 'ok' })! >= 2)
  })

  t.test('payments by state', async (t) => {
    const before = await scrape(app)
    t.equal(value(before.samples, 'armoire_payments', { state: 'en_attente' }), 0)
    t.equal(value(before.samples, 'armoire_payments', { state: 'reussi' }), 0)
    const admin = await signUp(app)
    await choose(app, admin, 'essentiel')
    t.equal((await pay(app, admin, MTN_BJ)).statusCode, 202)
    const { text } = await scrape(app)
    t.match(text, /^armoire_payments\{state="en_attente"\} 1$/m)
    t.match(text, /^armoire_payments\{state="reussi"\} 0$/m)
  })

  t.test('job queue depth and failures', async (t) => {
    await app.jobs.send('backup.run', { sauvegardeId: randomUUID() }, { startAfter: 3600 })
    await app.jobs.send('backup.run', { sauvegardeId: randomUUID() }, { startAfter: 3600 })
    const { samples } = await scrape(app)
    t.equal(value(samples, 'armoire_jobs', { queue: 'backup.run', state: 'created' }), 2)
    t.notOk(samples.some((s) => s.name === 'armoire_jobs' && s.labels.state === 'completed'), 'finished jobs are no depth')

    t.equal((await runJob(app, 'test.echec'))?.state, 'failed')
    const after = await scrape(app)
    t.match(after.text, /^armoire_jobs_failed_total\{queue="test.echec",final="true"\} 1$/m)
  })
})
