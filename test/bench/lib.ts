/**
 * Pieces shared by the `bench:*` scripts: a database of the bench's own, the real app as
 * production builds it, a bare Fastify baseline, autocannon runs in alternating rounds,
 * and plain-text tables. Every resource is registered on a Cleanup so a bench always ends
 * with nothing left behind, even on Ctrl-C.
 */
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { chmod, mkdtemp, rm } from 'node:fs/promises'
import { cpus, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import autocannon from 'autocannon'
import Fastify, { type FastifyInstance } from 'fastify'
import { buildApp } from '../../src/app.ts'
import { type Config, ConfigSchema, loadConfig } from '../../src/config.ts'
import { startEmbeddedPostgres } from '../../src/embedded-postgres.ts'
import { databaseUrl, withAdmin } from '../helpers/database.ts'
import { freePort } from '../helpers/net.ts'

// ---------------------------------------------------------------------------------------
// Cleanup

/** Undo actions run last-in first-out, once, whether the bench ends, throws or is interrupted. */
export class Cleanup {
  readonly #steps: { label: string; fn: () => unknown }[] = []
  #running: Promise<void> | undefined

  constructor() {
    for (const [signal, number] of [['SIGINT', 2], ['SIGTERM', 15]] as const) {
      // The cleanup stops what the bench started (an embedded server, temp dirs, a database
      // on BENCH_DATABASE_URL) before exiting, whatever else listens to the signal.
      process.removeAllListeners(signal)
      process.on(signal, () => {
        if (this.#running) process.exit(128 + number) // a second Ctrl-C does not wait
        console.error(`\n# ${signal}: cleaning up`)
        void this.run().finally(() => process.exit(128 + number))
      })
    }
  }

  defer(label: string, fn: () => unknown): void {
    this.#steps.push({ label, fn })
  }

  run(): Promise<void> {
    this.#running ??= (async () => {
      for (const { label, fn } of this.#steps.reverse()) {
        try {
          await fn()
        } catch (error) {
          // One failed step must not leave the others' resources behind.
          console.error(`# cleanup: ${label} failed: ${(error as Error).message}`)
        }
      }
    })()
    return this.#running
  }
}

/**
 * Runs a bench body and always cleans up. Should anything still hold the event loop
 * afterwards (a leaked socket, a timer), the process is ended anyway so CI never hangs;
 * the unref'd timer itself keeps nothing alive.
 */
export async function runBench(body: (cleanup: Cleanup) => Promise<void>): Promise<void> {
  const cleanup = new Cleanup()
  try {
    await body(cleanup)
  } catch (error) {
    console.error(error)
    process.exitCode = 1
  } finally {
    await cleanup.run()
  }
  setTimeout(() => {
    console.error('# something kept the process alive after cleanup; exiting')
    process.exit(process.exitCode ?? 1)
  }, 5_000).unref()
}

// ---------------------------------------------------------------------------------------
// Infrastructure

export async function tempDir(cleanup: Cleanup, prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix))
  cleanup.defer(`remove ${dir}`, () => rm(dir, { recursive: true, force: true }))
  return dir
}


export interface BenchDatabase {
  /** URL of an empty database that belongs to this bench run. */
  url: string
  /** Human description for the report header. */
  description: string
}

/**
 * With BENCH_DATABASE_URL (any database on a server whose user may create databases), a
 * throw-away database is created there and dropped at the end, so a bench never writes
 * into data someone cares about. Without it, an embedded PostgreSQL runs in a temp dir.
 * Durability settings are left at their defaults: benches that write must pay for fsync
 * as production does.
 */
export async function startBenchDatabase(cleanup: Cleanup): Promise<BenchDatabase> {
  let adminUrl = process.env.BENCH_DATABASE_URL
  let description: string
  if (adminUrl) {
    const { hostname, port } = new URL(adminUrl)
    description = `BENCH_DATABASE_URL (${hostname}:${port || 5432})`
  } else {
    const dir = await tempDir(cleanup, 'armoire-bench-pg-')
    // As root, PostgreSQL runs as the `postgres` user, who must be able to enter the directory.
    await chmod(dir, 0o755)
    const port = await freePort()
    const embedded = await startEmbeddedPostgres({ dir: join(dir, 'data'), port, persistent: false })
    cleanup.defer('stop embedded PostgreSQL', () => embedded.stop())
    adminUrl = embedded.adminUrl
    description = `embedded PostgreSQL on 127.0.0.1:${port}`
  }
  const name = `armoire_bench_${randomBytes(4).toString('hex')}`
  const admin = adminUrl
  await withAdmin(admin, (c) => c.query(`create database "${name}"`))
  cleanup.defer(`drop database ${name}`, () =>
    withAdmin(admin, (c) => c.query(`drop database if exists "${name}" with (force)`)),
  )
  return { url: databaseUrl(admin, name), description: `${description}, database ${name}` }
}

export interface KeptBenchDatabase extends BenchDatabase {
  /** The database existed and its seed was marked complete: the caller reuses it. */
  reused: boolean
  /** The fingerprint stored when the seed was completed, or null. */
  fingerprint: string | null
  /** Marks the seed complete, with the fingerprint of the code that built its statistics. */
  complete(fingerprint: string): Promise<void>
}

/**
 * A database named by the caller on BENCH_DATABASE_URL's server, kept after the run so a slow
 * seed is paid once. It is reused only when a previous run marked its seed complete
 * (`bench_seed`); an interrupted seed is dropped and started again.
 */
export async function keptBenchDatabase(name: string): Promise<KeptBenchDatabase> {
  const admin = process.env.BENCH_DATABASE_URL
  if (!admin) throw new Error('a kept bench database needs BENCH_DATABASE_URL')
  const url = databaseUrl(admin, name)
  const { hostname, port } = new URL(admin)
  const exists = await withAdmin(admin, async (c) => (await c.query('select 1 from pg_database where datname = $1', [name])).rowCount === 1)
  let fingerprint: string | null = null
  if (exists) {
    fingerprint = await withAdmin(url, async (c) => {
      const table = await c.query(`select to_regclass('bench_seed') as t`)
      if (!table.rows[0]?.t) return null
      return ((await c.query('select fingerprint from bench_seed where complete')).rows[0]?.fingerprint as string | undefined) ?? null
    })
  }
  const reused = fingerprint !== null
  if (!reused) {
    await withAdmin(admin, async (c) => {
      await c.query(`drop database if exists "${name}" with (force)`)
      await c.query(`create database "${name}"`)
    })
  }
  return {
    url,
    reused,
    fingerprint,
    description: `BENCH_DATABASE_URL (${hostname}:${port || 5432}), database ${name}, kept`,
    complete: (next) =>
      withAdmin(url, async (c) => {
        await c.query('create table if not exists bench_seed (complete boolean not null, fingerprint text not null)')
        await c.query('delete from bench_seed')
        await c.query('insert into bench_seed (complete, fingerprint) values (true, $1)', [next])
      }),
  }
}

export interface RunningApp {
  app: FastifyInstance
  /** Base URL, e.g. http://127.0.0.1:41234 */
  url: string
}

async function listen(cleanup: Cleanup, label: string, app: FastifyInstance): Promise<RunningApp> {
  cleanup.defer(`close ${label}`, () => app.close())
  await app.listen({ host: '127.0.0.1', port: 0 })
  const address = app.server.address()
  if (!address || typeof address === 'string') throw new Error(`${label}: no TCP address`)
  return { app, url: `http://127.0.0.1:${address.port}` }
}

export interface RealAppOptions {
  databaseUrl: string
  /** Environment on top of the process's and the bench's own (e.g. REDIS_URL). */
  env?: Record<string, string>
}

/**
 * The load comes from one address: the limiters still count every request (their cost is part
 * of the kernel's) but must never refuse one, or the bench would measure 429s. Every
 * `*RATE_LIMIT_MAX` setting is raised, including those added after this was written.
 */
function unreachableRateLimits(): Record<string, string> {
  const keys = Object.keys(ConfigSchema.properties).filter((k) => k.endsWith('RATE_LIMIT_MAX'))
  return Object.fromEntries(keys.map((k) => [k, '1000000000']))
}

/**
 * The production configuration, through the production loader, with what a bench must own:
 * its database, storage and secrets. Logging stays at `info` so the access log is paid for.
 */
export async function benchConfig(cleanup: Cleanup, opts: RealAppOptions): Promise<Config> {
  return loadConfig({
    ...process.env,
    NODE_ENV: 'production',
    PUBLIC_URL: 'http://127.0.0.1',
    LOG_LEVEL: 'info',
    DATABASE_URL: opts.databaseUrl,
    STORAGE_DIR: await tempDir(cleanup, 'armoire-bench-storage-'),
    JWT_SECRET: randomBytes(48).toString('base64url'),
    MASTER_KEY: randomBytes(32).toString('base64'),
    ...unreachableRateLimits(),
    ...opts.env,
  })
}

/** The real app, exactly as src/server.ts builds it, listening on a free loopback port. */
export async function startRealApp(cleanup: Cleanup, opts: RealAppOptions): Promise<RunningApp & { config: Config }> {
  const config = await benchConfig(cleanup, opts)
  const app = await buildApp({ config, logFile: '/dev/null' })
  return { ...(await listen(cleanup, 'real app', app)), config }
}

/** A Fastify app with nothing but the routes `setup` adds: the ceiling the kernel is measured against. */
export async function startBareApp(cleanup: Cleanup, setup: (app: FastifyInstance) => void): Promise<RunningApp> {
  const app = Fastify({ logger: false })
  setup(app)
  return listen(cleanup, 'bare app', app)
}

// ---------------------------------------------------------------------------------------
// Load

export interface LoadSettings {
  connections: number
  pipelining: number
  /** Seconds per measured run. */
  duration: number
  /** Seconds of the discarded warm-up run per target. */
  warmup: number
  /** Measured runs per target; the order of targets alternates between rounds. */
  rounds: number
}

function envInt(name: string, fallback: number): number {
  const raw = process.env[name]
  if (raw === undefined || raw === '') return fallback
  const value = Number(raw)
  if (!Number.isInteger(value) || value < 0) throw new Error(`${name} must be a non-negative integer`)
  return value
}

/** Defaults, overridable by BENCH_CONNECTIONS, BENCH_PIPELINING, BENCH_DURATION, BENCH_WARMUP, BENCH_ROUNDS. */
export function loadSettings(defaults: LoadSettings): LoadSettings {
  return {
    connections: envInt('BENCH_CONNECTIONS', defaults.connections),
    pipelining: envInt('BENCH_PIPELINING', defaults.pipelining),
    duration: envInt('BENCH_DURATION', defaults.duration),
    warmup: envInt('BENCH_WARMUP', defaults.warmup),
    rounds: Math.max(1, envInt('BENCH_ROUNDS', defaults.rounds)),
  }
}

/**
 * What to load. Extra autocannon options (method, headers, body) are passed through; the
 * load runs in a worker thread, where autocannon takes callbacks such as setupRequest only
 * as file paths.
 */
export interface Target {
  name: string
  url: string
  options?: Omit<autocannon.Options, 'url' | 'connections' | 'pipelining' | 'duration' | 'workers'>
  /** By default any non-2xx answer, error or timeout invalidates the run. */
  allowNon2xx?: boolean
}

export interface Sample {
  target: string
  round: number
  rps: number
  /** Latency percentiles in ms (autocannon's resolution is 1 ms). */
  p50: number
  p99: number
  requests: number
  non2xx: number
  errors: number
  /** CPU time of the apps' thread per request, in µs; undefined off Linux. */
  cpuPerRequest: number | undefined
}

const CLOCK_TICKS_PER_SECOND = 100

/**
 * CPU seconds used so far by the main thread alone, where the apps run, leaving out the load
 * generator's worker thread. Unlike req/s this does not move when the load generator or a
 * neighbour on the machine is the bottleneck, so it tells what a request really costs.
 */
function mainThreadCpuSeconds(): number | undefined {
  try {
    const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8')
    // Past the parenthesised command name, utime and stime are the 12th and 13th fields (stat(5)).
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND
  } catch {
    return undefined
  }
}

/**
 * One autocannon run. The load generator runs in a worker thread: sharing the event loop
 * of the app under test would halve what either can do, and on two cores each gets one.
 */
export async function runLoad(target: Target, settings: LoadSettings, duration: number, round: number): Promise<Sample> {
  const cpuBefore = mainThreadCpuSeconds()
  const result = await autocannon({
    ...target.options,
    url: target.url,
    connections: settings.connections,
    pipelining: settings.pipelining,
    duration,
    workers: 1,
  })
  const cpuAfter = mainThreadCpuSeconds()
  const sample: Sample = {
    target: target.name,
    round,
    rps: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    requests: result.requests.total,
    non2xx: result.non2xx,
    errors: result.errors + result.timeouts,
    cpuPerRequest:
      cpuBefore === undefined || cpuAfter === undefined || result.requests.total === 0
        ? undefined
        : ((cpuAfter - cpuBefore) * 1e6) / result.requests.total,
  }
  if (sample.errors > 0 || (!target.allowNon2xx && sample.non2xx > 0) || sample.requests === 0) {
    throw new Error(
      `${target.name}: invalid run (${sample.requests} requests, ${sample.non2xx} non-2xx, ${sample.errors} errors/timeouts)`,
    )
  }
  return sample
}

/**
 * Warms every target up, then measures them in rounds whose order alternates (A B, B A, …)
 * so neither profits systematically from running first or last (CPU frequency, GC state,
 * TIME_WAIT sockets of the previous run).
 */
export async function compare(
  targets: readonly Target[],
  settings: LoadSettings,
  onSample: (sample: Sample) => void = () => {},
): Promise<Sample[]> {
  if (settings.warmup > 0) {
    for (const target of targets) await runLoad(target, settings, settings.warmup, 0)
  }
  const samples: Sample[] = []
  for (let round = 1; round <= settings.rounds; round++) {
    const order = round % 2 === 1 ? targets : [...targets].reverse()
    for (const target of order) {
      await sleep(500) // let the previous run's connections close
      const sample = await runLoad(target, settings, settings.duration, round)
      samples.push(sample)
      onSample(sample)
    }
  }
  return samples
}

export interface Summary {
  target: string
  rounds: number
  rps: number
  rpsStddev: number
  p50: number
  p99: number
  cpuPerRequest: number | undefined
}

export function mean(values: readonly number[]): number {
  return values.reduce((a, b) => a + b, 0) / values.length
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2
}

/** Mean throughput over the rounds; latency percentiles as the median of the rounds'. */
export function summarise(samples: readonly Sample[], target: string): Summary {
  const mine = samples.filter((s) => s.target === target)
  if (mine.length === 0) throw new Error(`no samples for ${target}`)
  const rps = mean(mine.map((s) => s.rps))
  const rpsStddev = Math.sqrt(mean(mine.map((s) => (s.rps - rps) ** 2)))
  return {
    target,
    rounds: mine.length,
    rps,
    rpsStddev,
    p50: median(mine.map((s) => s.p50)),
    p99: median(mine.map((s) => s.p99)),
    cpuPerRequest: mine.every((s) => s.cpuPerRequest !== undefined)
      ? median(mine.map((s) => s.cpuPerRequest as number))
      : undefined,
  }
}

/** real/bare throughput of each round, pairing the runs of the same round. */
export function pairedRatios(samples: readonly Sample[], numerator: string, denominator: string): number[] {
  const ratios: number[] = []
  for (const s of samples) {
    if (s.target !== numerator) continue
    const other = samples.find((o) => o.target === denominator && o.round === s.round)
    if (other) ratios.push(s.rps / other.rps)
  }
  return ratios
}

// ---------------------------------------------------------------------------------------
// Output

/** A plain-text table: the first column left-aligned (labels), the others right-aligned (figures). */
export function table(headers: readonly string[], rows: readonly (readonly (string | number)[])[]): string {
  const cells = [headers, ...rows].map((row) => row.map((c) => String(c)))
  const widths = headers.map((_, i) => Math.max(...cells.map((row) => (row[i] ?? '').length)))
  const line = (row: readonly string[]) =>
    row.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ').trimEnd()
  const [head = [], ...body] = cells
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n')
}

export function fmt(value: number, digits = 0): string {
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })
}

export function describeMachine(): string {
  const cpu = cpus()
  return `node ${process.version}, ${cpu.length} × ${cpu[0]?.model.trim() ?? 'unknown CPU'}`
}

/**
 * Other processes competing for the cores skew every figure, req/s most of all: says so
 * when the load average shows it, so a reader does not trust a run they should repeat.
 * Meaningful before a bench only, as the bench itself then keeps every core busy.
 */
export function machineLoadWarning(): string | undefined {
  const [oneMinute = 0] = loadavg()
  const cores = cpus().length
  return oneMinute > cores * 0.75
    ? `warning: load average ${fmt(oneMinute, 2)} on ${cores} cores, other processes compete with this bench; repeat it on a quiet machine`
    : undefined
}

export function describeSettings(s: LoadSettings): string {
  return `${s.connections} connections, pipelining ${s.pipelining}, ${s.warmup} s warm-up per target, ${s.rounds} alternating rounds of ${s.duration} s per target`
}
