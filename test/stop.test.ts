import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { chmod, mkdtemp, readFile, rm } from 'node:fs/promises'
import { readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import type { TestContext } from './helpers/build.ts'
import { freePort } from './helpers/net.ts'

/** Whether a process still runs (a zombie waiting for its reaper has stopped). */
function running(pid: number): boolean {
  try {
    return !/\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'))
  } catch {
    return false
  }
}

/** Every process of a process group, with its command line. */
function groupOf(pgid: number): { pid: number; args: string }[] {
  const out = execFileSync('ps', ['-o', 'pid=,args=', '-g', String(pgid)]).toString()
  return out.split('\n').filter(Boolean).map((line) => {
    const [, pid, args] = /^\s*(\d+)\s+(.*)$/.exec(line) ?? []
    return { pid: Number(pid), args: args ?? '' }
  })
}

/**
 * The real `npm start`, in a process group of its own as a terminal runs a job, on an empty
 * storage directory: embedded PostgreSQL, generated secrets.
 */
async function npmStart(t: TestContext): Promise<{ npm: ChildProcess; output: () => string; base: string; storage: string }> {
  const storage = await mkdtemp(join(tmpdir(), 'armoire-stop-'))
  await chmod(storage, 0o755)
  t.teardown(() => rm(storage, { recursive: true, force: true }))
  const port = await freePort()
  const env = {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? '/root',
    STORAGE_DIR: storage,
    PORT: String(port),
    EMBEDDED_PG_PORT: String(await freePort()),
    LOG_LEVEL: 'info',
  }
  const npm = spawn('npm', ['start'], { env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => {
    if (npm.exitCode === null && npm.signalCode === null) process.kill(-(npm.pid ?? 0), 'SIGKILL')
  })
  let output = ''
  npm.stdout?.on('data', (c: Buffer) => (output += c.toString()))
  npm.stderr?.on('data', (c: Buffer) => (output += c.toString()))
  const deadline = Date.now() + 90_000
  while (!output.includes('/docs')) {
    if (npm.exitCode !== null || Date.now() > deadline) throw new Error(`npm start did not start:\n${output}`)
    await new Promise((r) => setTimeout(r, 100))
  }
  return { npm, output: () => output, base: `http://127.0.0.1:${port}`, storage }
}

const stops = [
  { how: 'Ctrl-C (SIGINT to the terminal’s process group)', send: (npm: ChildProcess) => process.kill(-(npm.pid ?? 0), 'SIGINT') },
  { how: '`kill <pid of npm start>` (SIGTERM to npm alone)', send: (npm: ChildProcess) => npm.kill('SIGTERM') },
]

for (const { how, send } of stops) {
  t.test(`${how} stops the server's work, then its PostgreSQL, quietly, leaving nothing running`, async (t) => {
    const { npm, output, base, storage } = await npmStart(t)
    // A sign-up starts the hashing process and queues a mail: every part of the server is busy.
    const register = await fetch(`${base}/auth/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: 'premiere@exemple.fr', mot_de_passe: 'Arret-propre-2026', nom: 'Arrêt', organisation: 'Démo' }),
    })
    t.equal(register.status, 201)
    const postgres = Number((await readFile(join(storage, 'postgres', 'postmaster.pid'), 'utf8')).split('\n')[0])
    const processes = [...groupOf(npm.pid ?? 0), { pid: postgres, args: 'postgres' }]
    t.ok(processes.some((p) => p.args.includes('hasher-process')), 'the hashing process runs')
    t.notOk(groupOf(npm.pid ?? 0).some((p) => p.pid === postgres), 'PostgreSQL runs outside the terminal’s process group')

    const exited = new Promise<number | null>((resolve) => npm.once('exit', (code) => resolve(code)))
    send(npm)
    t.equal(await exited, 0, 'npm start exits 0')
    const deadline = Date.now() + 15_000
    while (processes.some((p) => running(p.pid)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100))
    t.same(processes.filter((p) => running(p.pid)).map((p) => p.args), [], 'server, hashing process, esbuild and PostgreSQL are gone')
    await t.rejects(fetch(`${base}/health/live`), 'nothing listens any more')

    const lines = output().split('\n').filter((line) => line.startsWith('{')).map((line) => JSON.parse(line) as { level: number; msg: string })
    t.same(lines.filter((l) => l.level >= 50), [], 'no error line')
    t.notMatch(output(), /57P01|terminating connection|second stop signal|second SIG/, 'no connection cut under the server, no forced exit')
    const shutdown = lines.findIndex((l) => l.msg === 'shutting down: finishing in-flight requests')
    t.ok(shutdown >= 0, 'the shutdown is logged once')
    t.equal(lines.filter((l) => l.msg === 'shutting down: finishing in-flight requests').length, 1)
  })
}
