import { spawn } from 'node:child_process'
import { sql } from 'kysely'
import t from 'tap'
import { buildApp } from '../src/app.ts'
import { createDb } from '../src/db.ts'
import { migrations } from '../db/migrations/index.ts'
import { build, listen, testConfig, testDatabase } from './helpers/build.ts'
import { logCapture } from './helpers/logs.ts'
import { withProbes } from './helpers/probe-domain.ts'

t.test('an in-flight request finishes during shutdown; new connections are refused', async (t) => {
  const app = await build(t, {}, withProbes)
  const base = await listen(app)
  const inFlight = fetch(`${base}/probe/slow?ms=600`)
  await new Promise((r) => setTimeout(r, 150))
  const closing = app.close()
  const res = await inFlight
  t.equal(res.status, 200)
  t.same(await res.json(), { waited: 600 })
  await closing
  await t.rejects(fetch(`${base}/health/live`), 'the port is closed after shutdown')
})

t.test('two instances migrating the same empty database at once both start, migrating once', async (t) => {
  const url = await testDatabase(t, { empty: true })
  const [one, two] = await Promise.all([
    testConfig(t, { DATABASE_URL: url }),
    testConfig(t, { DATABASE_URL: url }),
  ])
  const apps = await Promise.all([buildApp({ config: one }), buildApp({ config: two })])
  t.teardown(() => Promise.all(apps.map((a) => a.close())))
  await Promise.all(apps.map((a) => a.ready()))
  for (const app of apps) t.equal((await app.inject({ method: 'GET', url: '/health/ready' })).statusCode, 200)

  const db = createDb({ url, poolMax: 1 })
  t.teardown(() => db.destroy())
  const { rows } = await sql<{ name: string }>`select name from kysely_migration order by name`.execute(db)
  t.same(rows.map((r) => r.name), Object.keys(migrations), 'each migration ran exactly once')
})

t.test('a lost job-queue connection is logged as what went wrong, without the client behind it', async (t) => {
  const logs = logCapture()
  const app = await build(t, { LOG_LEVEL: 'info' }, { logStream: logs.stream })
  await sql`select pg_terminate_backend(pid) from pg_stat_activity
    where datname = current_database() and application_name = 'armoire-jobs' and state = 'idle'`.execute(app.db)
  const deadline = Date.now() + 5_000
  let line: Record<string, unknown> | undefined
  while (!(line = logs.lines.find((l) => l.msg === 'job queue error')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
  t.match(line, { level: 50, err: { code: '57P01', message: /terminating connection/ } })
  t.notMatch(JSON.stringify(line), /secretKey|connectionParameters|processID/, 'no connection internals')
})

t.test('a process whose app closed while job workers waited for a connection exits', async (t) => {
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/helpers/close-while-fetching.ts'], { stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  child.stdout.on('data', (c: Buffer) => (output += c.toString()))
  child.stderr.on('data', (c: Buffer) => (output += c.toString()))
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  // pg-boss's checkout wait is 5 s; before it was bounded, the process never exited.
  const deadline = new Promise<'still running'>((resolve) => setTimeout(() => resolve('still running'), 30_000).unref())
  const outcome = await Promise.race([exited, deadline])
  if (outcome === 'still running') child.kill('SIGKILL')
  t.equal(outcome, 0, `the process exited by itself:\n${output}`)
  t.match(output, /fetches waiting on the lock: [1-9]/, 'workers were caught mid-fetch')
  t.match(output, /closed/)
})
