import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { chmod, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { freePort } from './helpers/net.ts'

/** `npm start` as a newcomer runs it: no DATABASE_URL, no secrets, only a storage directory. */
function start(storage: string, port: number, pgPort: number): { child: ChildProcess; output: () => string; ready: Promise<void> } {
  const env: Record<string, string> = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root' }
  Object.assign(env, { STORAGE_DIR: storage, PORT: String(port), EMBEDDED_PG_PORT: String(pgPort), LOG_LEVEL: 'info' })
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
    child.on('exit', (code) => reject(new Error(`server exited with ${code}:\n${output}`)))
  })
  return { child, output: () => output, ready }
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
