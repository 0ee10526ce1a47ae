/**
 * `npm test`: prepares one PostgreSQL for the whole run (TEST_DATABASE_URL, or an embedded
 * one started here), migrates a template database that every test file clones, runs tap,
 * cleans up, and ends with the line `N passed, N failed`.
 */
import { spawn, spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { chmod, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { stripVTControlCharacters } from 'node:util'
import { join } from 'node:path'
import { createDb, migrateToLatest } from '../src/db.ts'
import { startEmbeddedPostgres } from '../src/embedded-postgres.ts'
import { databaseUrl, withAdmin } from './helpers/database.ts'
import { freePort } from './helpers/net.ts'

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'

function ensureChromium(): void {
  if (existsSync(CHROMIUM)) return
  if (process.getuid?.() !== 0) throw new Error(`${CHROMIUM} is missing: install Debian's chromium package`)
  console.log('# installing chromium (apt-get) for the browser tests')
  for (const args of [['update'], ['install', '-y', '--no-install-recommends', 'chromium']]) {
    const r = spawnSync('apt-get', args, { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } })
    if (r.status !== 0) throw new Error(`apt-get ${args.join(' ')} failed`)
  }
}

ensureChromium()
const runId = randomBytes(3).toString('hex')
let adminUrl = process.env.TEST_DATABASE_URL
let stopEmbedded: (() => Promise<void>) | undefined
if (!adminUrl) {
  const dir = await mkdtemp(join(tmpdir(), 'armoire-test-pg-'))
  // As root, PostgreSQL runs as the `postgres` user, who must be able to enter the directory.
  await chmod(dir, 0o755)
  const embedded = await startEmbeddedPostgres({
    dir: join(dir, 'data'),
    port: await freePort(),
    persistent: false,
    // A throw-away cluster: durability buys nothing here.
    settings: { fsync: 'off', synchronous_commit: 'off', full_page_writes: 'off', max_connections: '300' },
  })
  adminUrl = embedded.adminUrl
  stopEmbedded = async () => {
    await embedded.stop()
    await rm(dir, { recursive: true, force: true })
  }
  console.log('# tests on an embedded PostgreSQL')
}

const template = `armoire_tpl_${runId}`
await withAdmin(adminUrl, (c) => c.query(`create database "${template}"`))
const db = createDb({ url: databaseUrl(adminUrl, template), poolMax: 1 })
const { error } = await migrateToLatest(db)
await db.destroy()
if (error) throw error

const tap = spawn(join('node_modules', '.bin', 'tap'), process.argv.slice(2), {
  stdio: ['ignore', 'pipe', 'inherit'],
  env: { ...process.env, TEST_DATABASE_URL: adminUrl, TEST_TEMPLATE_DB: template, TEST_RUN_ID: runId },
})
// Ctrl-C reaches tap too (same process group), not the embedded PostgreSQL (a group of its
// own): this process outlives tap to drop the databases and stop PostgreSQL.
process.on('SIGINT', () => {})
process.on('SIGTERM', () => tap.kill('SIGTERM'))
let output = ''
tap.stdout.on('data', (chunk: Buffer) => {
  process.stdout.write(chunk)
  output += chunk.toString()
})
const code: number = await new Promise((resolve) => tap.on('close', (c) => resolve(c ?? 1)))

await withAdmin(adminUrl, async (c) => {
  const { rows } = await c.query<{ datname: string }>('select datname from pg_database where datname like $1', [
    `armoire_%_${runId}%`,
  ])
  for (const { datname } of rows) await c.query(`drop database if exists "${datname}" with (force)`)
})
await stopEmbedded?.()

const plain = stripVTControlCharacters(output)
const summary = /^# \{ total: (\d+)(?:, pass: (\d+))?(?:, fail: (\d+))?/m.exec(plain)
const passed = Number(summary?.[2] ?? 0)
// A run that crashed before tap could count still reports a failure.
const failed = Number(summary?.[3] ?? 0) || (code !== 0 ? 1 : 0)
console.log(`${passed} passed, ${failed} failed`)
process.exit(code)
