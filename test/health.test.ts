import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { signUp } from './helpers/auth.ts'
import { build, testDatabase } from './helpers/build.ts'
import { testEnv, withAdmin } from './helpers/database.ts'

t.test('live and ready answer 200 on a healthy instance', async (t) => {
  const app = await build(t)
  const live = await app.inject({ method: 'GET', url: '/health/live' })
  t.equal(live.statusCode, 200)
  t.same(live.json(), { status: 'ok' })
  const ready = await app.inject({ method: 'GET', url: '/health/ready' })
  t.equal(ready.statusCode, 200)
  t.match(ready.json(), { status: 'ok', checks: { database: { status: 'ok' }, storage: { status: 'ok' }, migrations: { status: 'ok' } } })
})

t.test('ready turns 503 naming the database when it becomes unreachable, and recovers', async (t) => {
  const url = await testDatabase(t)
  const name = new URL(url).pathname.slice(1)
  const app = await build(t, { DATABASE_URL: url })
  t.equal((await app.inject({ method: 'GET', url: '/health/ready' })).statusCode, 200)

  const { adminUrl } = testEnv()
  await withAdmin(adminUrl, async (c) => {
    await c.query(`alter database "${name}" allow_connections false`)
    await c.query('select pg_terminate_backend(pid) from pg_stat_activity where datname = $1', [name])
  })
  const down = await app.inject({ method: 'GET', url: '/health/ready' })
  t.equal(down.statusCode, 503)
  t.equal(down.headers['content-type'], 'application/json; charset=utf-8')
  const body = down.json()
  t.equal(body.status, 'fail')
  t.equal(body.checks.database.status, 'fail')
  t.ok(body.checks.database.error)
  t.equal(body.checks.storage.status, 'ok')
  // The live probe does not depend on the database: the process itself is fine.
  t.equal((await app.inject({ method: 'GET', url: '/health/live' })).statusCode, 200)

  await withAdmin(adminUrl, (c) => c.query(`alter database "${name}" allow_connections true`))
  t.equal((await app.inject({ method: 'GET', url: '/health/ready' })).statusCode, 200)
})

t.test('ready names pending migrations', async (t) => {
  const empty = await testDatabase(t, { empty: true })
  const app = await build(t, { DATABASE_URL: empty, MIGRATE_ON_START: 'false' })
  const res = await app.inject({ method: 'GET', url: '/health/ready' })
  t.equal(res.statusCode, 503)
  t.equal(res.json().checks.migrations.status, 'fail')
  t.match(res.json().checks.migrations.error, /pending: 2026-/)
  t.equal(res.json().checks.database.status, 'ok')
})

t.test('ready reports storage that cannot be written', async (t) => {
  const url = await testDatabase(t)
  const dir = await mkdtemp(join(tmpdir(), 'armoire-gone-'))
  const app = await build(t, { DATABASE_URL: url, STORAGE_DIR: dir })
  await rm(dir, { recursive: true, force: true })
  const res = await app.inject({ method: 'GET', url: '/health/ready' })
  t.equal(res.statusCode, 503)
  t.equal(res.json().checks.storage.status, 'fail')
  t.equal(res.json().checks.database.status, 'ok')
})

t.test('probes are never rate-limited, other operations are', async (t) => {
  const app = await build(t, { RATE_LIMIT_MAX: '3' })
  for (let i = 0; i < 6; i++) {
    t.equal((await app.inject({ method: 'GET', url: '/health/live' })).statusCode, 200)
    t.equal((await app.inject({ method: 'GET', url: '/health/ready' })).statusCode, 200)
  }
  const admin = await signUp(app)
  const codes = []
  for (let i = 0; i < 4; i++) codes.push((await app.inject({ method: 'GET', url: '/me', headers: admin.headers })).statusCode)
  t.same(codes, [200, 200, 200, 429], 'the same limit applies to the operations')
})
