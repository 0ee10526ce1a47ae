/**
 * Fault (issue 16): PostgreSQL stopped (fast shutdown) under load for a few seconds, then
 * started again, under a real server process. Prints what it did and what it found.
 */
import { createHash, randomBytes } from 'node:crypto'
import { chmod, mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import t from 'tap'
import { createDb, migrateToLatest } from '../../src/db.ts'
import { type EmbeddedPostgresHandle, portIsFree, startEmbeddedPostgres } from '../../src/embedded-postgres.ts'
import { startInstance } from '../helpers/instance.ts'
import { freePort } from '../helpers/net.ts'

const CONNECT_TIMEOUT_MS = 2_000
/** An answer slower than this hung: the pool's connect timeout plus the slack of a loaded shared machine. */
const HANG_MS = CONNECT_TIMEOUT_MS + 18_000
/** Set-up calls (the first sign-up starts the password-hashing process). */
const SETUP_MS = 120_000
const DOWN_MS = 4_000
// The server's start (tsx compiling it, migrations) on a loaded shared machine.
const STARTUP_MS = 240_000

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex')
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

interface Outcome {
  op: string
  status: number
  code?: string
  type?: string
  retryAfter?: string | null
  ms: number
  at: number
}

t.test('PostgreSQL restarted under load: 503 problems during the gap, nothing committed lost, recovery without restart', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'armoire-fault-pg-'))
  // As root, PostgreSQL runs as the `postgres` user, which must reach its data directory.
  await chmod(dir, 0o755)
  const storage = await mkdtemp(join(tmpdir(), 'armoire-fault-storage-'))
  t.teardown(() => rm(storage, { recursive: true, force: true }))
  const port = await freePort()
  const pgDir = join(dir, 'data')
  const settings = { fsync: 'off', synchronous_commit: 'off' }
  let database: EmbeddedPostgresHandle = await startEmbeddedPostgres({ dir: pgDir, port, settings })
  t.teardown(async () => {
    await database.stop()
    await rm(dir, { recursive: true, force: true })
  })
  // Migrated here: on a loaded machine, migrating at start can outlast Fastify's plugin timeout.
  const migrator = createDb({ url: database.url, poolMax: 1 })
  const { error } = await migrateToLatest(migrator)
  await migrator.destroy()
  if (error) throw error
  const instance = await startInstance(t, {
    MIGRATE_ON_START: 'false',
    DATABASE_URL: database.url,
    STORAGE_DIR: storage,
    DATABASE_CONNECT_TIMEOUT_MS: String(CONNECT_TIMEOUT_MS),
    JOBS_POLLING_INTERVAL_SECONDS: '1',
  }, STARTUP_MS)
  const base = instance.url

  async function call(op: string, path: string, init: RequestInit = {}, timeoutMs = HANG_MS): Promise<Outcome & { body?: unknown; bytes?: Buffer }> {
    const start = performance.now()
    const at = Date.now()
    try {
      const res = await fetch(`${base}${path}`, { ...init, signal: AbortSignal.timeout(timeoutMs) })
      const type = res.headers.get('content-type') ?? ''
      const bytes = Buffer.from(await res.arrayBuffer())
      const body = type.includes('json') ? (JSON.parse(bytes.toString()) as { code?: string }) : undefined
      return { op, status: res.status, code: body?.code, type, retryAfter: res.headers.get('retry-after'), ms: performance.now() - start, at, body, bytes }
    } catch (error) {
      // 0: no answer within HANG_MS (or the connection cut without one).
      return { op, status: 0, code: (error as Error).name, ms: performance.now() - start, at }
    }
  }
  const json = (headers: Record<string, string>, body: unknown): RequestInit => ({
    method: 'POST',
    headers: { ...headers, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  })

  const email = `panne-${randomBytes(4).toString('hex')}@exemple.fr`
  const password = `Armoire-${randomBytes(6).toString('hex')}-Cle`
  const registered = await call('register', '/auth/register', json({}, { email, mot_de_passe: password, nom: 'Claire Panne', organisation: 'Cabinet Panne' }), SETUP_MS)
  t.equal(registered.status, 201, 'registered')
  const auth = { authorization: `Bearer ${(registered.body as { access_token: string }).access_token}` }
  const create = async (path: string, nom: string) => {
    const res = await call('create', path, json(auth, { nom }), SETUP_MS)
    if (res.status !== 201) throw new Error(`${path}: ${res.status}`)
    return (res.body as { id: string }).id
  }
  const armoire = await create('/armoires', 'Pannes')
  const casier = await create(`/armoires/${armoire}/casiers`, 'Redémarrage')
  const dossier = await create(`/casiers/${casier}/dossiers`, 'Charge')

  const outcomes: Outcome[] = []
  const stored: Array<{ id: string; sha: string }> = []
  const readiness: Array<{ status: number; at: number }> = []
  let running = true
  let n = 0
  const worker = async () => {
    while (running) {
      const i = n++
      if (i % 2 === 0) {
        outcomes.push(await call('list', '/armoires', { headers: auth }))
        continue
      }
      const content = randomBytes(2_048 + (i % 7) * 100)
      const form = new FormData()
      form.append('fichier', new Blob([content]), `piece-${i}.bin`)
      const res = await call('upload', `/dossiers/${dossier}/fichiers`, { method: 'POST', headers: auth, body: form })
      outcomes.push(res)
      if (res.status === 201) stored.push({ id: (res.body as { fichier: { id: string } }).fichier.id, sha: sha256(content) })
    }
  }
  const prober = async () => {
    while (running) {
      const res = await call('ready', '/health/ready')
      readiness.push({ status: res.status, at: res.at })
      await sleep(200)
    }
  }
  const load = [worker(), worker(), worker(), prober()]

  await sleep(1_500)
  const stoppedAt = Date.now()
  const pid = Number((await readFile(join(pgDir, 'postmaster.pid'), 'utf8')).split('\n')[0])
  process.kill(pid, 'SIGINT') // fast shutdown: sessions are cut (57P01), nothing waits for clients
  while (!(await portIsFree(port))) await sleep(50)
  t.comment(`PostgreSQL (pid ${pid}) stopped in fast mode after ${outcomes.length} requests; down for ${DOWN_MS} ms`)
  await sleep(DOWN_MS)
  const restartAt = Date.now()
  database = await startEmbeddedPostgres({ dir: pgDir, port, settings })
  const startedAt = Date.now()
  t.comment(`PostgreSQL started again in ${startedAt - restartAt} ms`)
  const deadline = Date.now() + 30_000
  while (!readiness.some((r) => r.at > startedAt && r.status === 200) && Date.now() < deadline) await sleep(100)
  await sleep(2_000)
  running = false
  await Promise.all(load)

  const during = outcomes.filter((o) => o.at >= stoppedAt && o.at < startedAt)
  const after = outcomes.filter((o) => o.at >= startedAt)
  const tally = (list: Outcome[]) => {
    const counts: Record<string, number> = {}
    for (const o of list) counts[`${o.op} ${o.status}${o.code && o.status >= 400 ? ` ${o.code}` : ''}`] = (counts[`${o.op} ${o.status}${o.code && o.status >= 400 ? ` ${o.code}` : ''}`] ?? 0) + 1
    return JSON.stringify(counts)
  }
  const slowest = Math.max(...outcomes.map((o) => o.ms))
  t.comment(`${outcomes.length} requests: before ${tally(outcomes.filter((o) => o.at < stoppedAt))}`)
  t.comment(`during the gap ${tally(during)}; after ${tally(after)}; slowest answer ${Math.round(slowest)} ms`)
  const readyDown = readiness.filter((r) => r.at >= stoppedAt && r.at < startedAt)
  const readyUp = readiness.filter((r) => r.at > startedAt && r.status === 200)
  t.comment(`/health/ready: ${readyDown.filter((r) => r.status === 503).length} × 503 during the gap; 200 again ${readyUp[0] ? readyUp[0].at - startedAt : 'never'} ms after the restart`)

  t.ok(readyDown.some((r) => r.status === 503), '/health/ready answered 503 while PostgreSQL was down')
  t.ok(readyUp.length > 0, '/health/ready answered 200 again after the restart')
  t.ok(during.some((o) => o.status === 503), 'requests during the gap were refused')
  const unclean = outcomes.filter((o) => o.op !== 'ready' && !(o.status === 200 || o.status === 201 || o.status === 503))
  t.same(unclean, [], 'every answer succeeded or was a 503: no 500, no 401, no hang, no cut connection')
  const refused = outcomes.filter((o) => o.status === 503 && o.op !== 'ready')
  t.ok(
    refused.every((o) => o.type?.startsWith('application/problem+json') && o.code === 'DATABASE_UNAVAILABLE' && Number(o.retryAfter) > 0),
    `every 503 is a DATABASE_UNAVAILABLE problem with a Retry-After (${refused.length})`,
  )
  t.ok(slowest < HANG_MS, `no request hung: the slowest took ${Math.round(slowest)} ms`)
  t.ok(after.some((o) => o.op === 'upload' && o.status === 201), 'uploads succeed again after the restart, with no restart of the server')
  t.equal(instance.child.exitCode, null, 'the server process never stopped')

  // Nothing committed is lost: every upload answered 201 is listed and reads back byte for byte.
  let intact = 0
  for (const { id, sha } of stored) {
    const res = await call('download', `/fichiers/${id}/contenu`, { headers: auth })
    if (res.status === 200 && res.bytes && sha256(res.bytes) === sha) intact++
  }
  t.equal(intact, stored.length, `all ${stored.length} acknowledged uploads download identical`)
  const listed = await call('list', `/dossiers/${dossier}/fichiers?limit=200`, { headers: auth })
  const ids = new Set((listed.body as { items: Array<{ id: string }> }).items.map((f) => f.id))
  t.ok(stored.every((s) => ids.has(s.id)), 'and each is listed in its folder')

  // The LISTEN connection of the session cache came back by itself.
  const admin = new pg.Client({ connectionString: database.url })
  await admin.connect()
  t.teardown(() => admin.end())
  const listeners = async () =>
    Number((await admin.query<{ n: string }>(`select count(*) as n from pg_stat_activity where application_name = 'armoire-sessions'`)).rows[0]?.n)
  const until = Date.now() + 10_000
  while ((await listeners()) === 0 && Date.now() < until) await sleep(200)
  t.equal(await listeners(), 1, 'the session notifications listener reconnected')

  // A session revoked elsewhere (another instance's transaction, announced by NOTIFY) is refused here.
  const second = await call('login', '/auth/login', json({}, { email, mot_de_passe: password }), SETUP_MS)
  t.equal(second.status, 200, 'signed in again after the restart')
  const { access_token: token } = second.body as { access_token: string }
  const other = { authorization: `Bearer ${token}` }
  t.equal((await call('me', '/me', { headers: other })).status, 200, 'the new session works (and is cached)')
  const sid = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString()).sid as string
  await admin.query('begin')
  await admin.query('update sessions set revoked_at = now() where id = $1', [sid])
  await admin.query(`select pg_notify('armoire_sessions', $1)`, [`session:${sid}`])
  await admin.query('commit')
  await sleep(300)
  const revoked = await call('me', '/me', { headers: other })
  t.equal(revoked.status, 401, 'the revoked session is refused on the next request')
  t.equal(revoked.code, 'SESSION_REVOKED')

  // The job queue came back too: a mail queued after the restart leaves the outbox (no SMTP: non_envoye).
  const invited = `invite-${randomBytes(4).toString('hex')}@exemple.fr`
  const invite = await call('invite', '/users', json(auth, { email: invited, nom: 'Invitée', role: 'lecteur' }))
  t.equal(invite.status, 201, 'an invitation after the restart')
  const settled = async () =>
    (await admin.query<{ statut: string }>('select statut from courriels where destinataire = $1', [invited])).rows[0]?.statut
  const mailDeadline = Date.now() + 20_000
  while ((await settled()) === 'en_attente' && Date.now() < mailDeadline) await sleep(250)
  t.equal(await settled(), 'non_envoye', 'the mail job ran: pg-boss reconnected')
  t.comment(`after the restart: listener back, revoked session refused, mail job ran; ${stored.length} acknowledged uploads intact`)
})
