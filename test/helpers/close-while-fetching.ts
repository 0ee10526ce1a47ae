/**
 * Run by test/lifecycle.test.ts as a process of its own: builds the real app, makes every job
 * worker's fetch wait (five hold pg-boss's connections behind a table lock, the others queue
 * for one), closes the app while they wait, and ends. The test checks that the process exits:
 * a fetch left waiting forever kept pg-boss's stop loop, and so the process, alive.
 */
import pg from 'pg'
import { buildApp } from '../../src/app.ts'
import { testConfig } from './build.ts'

const teardowns: (() => unknown)[] = []
const config = await testConfig({ teardown: (fn) => teardowns.push(fn) }, { JOBS_POLLING_INTERVAL_SECONDS: '0.5', SHUTDOWN_TIMEOUT_MS: '2000' })
const app = await buildApp({ config })
await app.ready()
const locker = new pg.Client({ connectionString: config.DATABASE_URL })
await locker.connect()
await locker.query('begin')
await locker.query('lock table pgboss.job in access exclusive mode')
await new Promise((r) => setTimeout(r, 1_500))
const waiting = (await locker.query<{ n: string }>(
  "select count(*) as n from pg_stat_activity where application_name = 'armoire-jobs' and wait_event_type = 'Lock'",
)).rows[0]?.n
console.log(`fetches waiting on the lock: ${waiting}`)
const closing = app.close()
await new Promise((r) => setTimeout(r, 500))
await locker.query('rollback')
await locker.end()
await closing
for (const fn of teardowns.reverse()) await fn()
console.log('closed')
