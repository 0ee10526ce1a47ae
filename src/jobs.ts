import type { FastifyBaseLogger, FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { CompiledQuery, type Kysely, sql, type Transaction } from 'kysely'
import PgBoss from 'pg-boss'
import type { PoolConfig } from 'pg'
import type { DB } from '../db/types.ts'
import { optionalAfterOf } from './unit-of-work.ts'

/**
 * The payload of every queue, by name. Each domain adds its own queues where it defines them:
 * `declare module '../../src/jobs.ts' { interface JobPayloads { 'backup.run': { ... } } }`.
 */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type -- filled by declaration merging
export interface JobPayloads {}

export type JobName = keyof JobPayloads & string
export type Job<N extends JobName> = PgBoss.JobWithMetadata<JobPayloads[N]>
export type JobHandler<N extends JobName> = (job: Job<N>) => Promise<unknown>

/** Per-queue defaults, applied to every job of the queue (and updated when they change). */
export interface QueueSettings {
  retryLimit?: number
  retryDelay?: number
  retryBackoff?: boolean
  expireInSeconds?: number
  /** Where jobs go once their retries are spent; the queue is created too. */
  deadLetter?: JobName
}

export interface WorkSettings extends QueueSettings {
  /** Jobs of this queue processed at once by this instance. */
  concurrency?: number
}

export type SendOptions = Omit<PgBoss.SendOptions, 'db'>

export interface Jobs {
  /** False when JOBS_ENABLED is off: nothing runs and nothing can be queued. */
  readonly enabled: boolean
  send<N extends JobName>(name: N, data: JobPayloads[N], options?: SendOptions): Promise<string | null>
  /**
   * Queues a job inside the caller's transaction: it exists only if the transaction commits,
   * and this instance's workers of the queue fetch it as soon as the unit of work commits.
   */
  sendInTransaction<N extends JobName>(
    trx: Transaction<DB>,
    name: N,
    data: JobPayloads[N],
    options?: SendOptions,
  ): Promise<string | null>
  /** Creates the queue if needed and processes its jobs on this instance, one per worker at a time. */
  work<N extends JobName>(name: N, handler: JobHandler<N>, settings?: WorkSettings): Promise<void>
  /** Sends `data` to the queue on a cron schedule (UTC unless `tz`), once across all instances. */
  schedule<N extends JobName>(name: N, cron: string, data: JobPayloads[N], options?: PgBoss.ScheduleOptions): Promise<void>
  /** Makes this instance's workers of the queue fetch now instead of at their next poll. */
  wake(name: JobName): void
  /** The pg-boss instance, for what this wrapper leaves out; null when disabled. */
  readonly boss: PgBoss | null
}

declare module 'fastify' {
  interface FastifyInstance {
    jobs: Jobs
  }
}

export interface JobsOptions {
  enabled: boolean
  url: string
  pollingIntervalSeconds: number
  /** How long close() waits for running jobs before failing them back to their queue. */
  stopTimeoutMs: number
}

export class JobsDisabledError extends Error {
  override name = 'JobsDisabledError'
  constructor() {
    super('background jobs are disabled (JOBS_ENABLED=false): nothing would ever run this job')
  }
}

// An arbitrary constant naming the lock under which instances create pg-boss queues.
const QUEUE_LOCK_KEY = 7_240_451_104

/**
 * Runs `fn` while holding a session advisory lock. pg-boss 10 creates a queue's partition
 * without a lock of its own, and two instances doing it at once deadlock.
 */
async function underQueueLock<T>(db: Kysely<DB>, fn: () => Promise<T>): Promise<T> {
  return db.connection().execute(async (conn) => {
    await sql`select pg_advisory_lock(${QUEUE_LOCK_KEY})`.execute(conn)
    try {
      return await fn()
    } finally {
      await sql`select pg_advisory_unlock(${QUEUE_LOCK_KEY})`.execute(conn)
    }
  })
}

/** pg-boss runs its statements through the caller's transaction when given this. */
function inTransaction(trx: Transaction<DB>): PgBoss.Db {
  return {
    executeSql: async (text, values) => {
      const result = await trx.executeQuery(CompiledQuery.raw(text, values))
      return { rows: result.rows as unknown[] }
    },
  }
}

function checkInserted(name: string, id: string | null, options: SendOptions): string | null {
  // pg-boss answers null both for a job a singleton option deduplicated, which is the
  // caller's intent, and for a queue that does not exist, which would lose the job silently.
  const deduplicating = options.singletonKey || options.singletonSeconds || options.singletonMinutes || options.singletonHours || options.id
  if (id === null && !deduplicating) throw new Error(`job queue "${name}" does not exist: register its worker first`)
  return id
}

function disabledJobs(log: FastifyBaseLogger): Jobs {
  const refuse = async (): Promise<never> => {
    throw new JobsDisabledError()
  }
  return {
    enabled: false,
    boss: null,
    send: refuse,
    sendInTransaction: refuse,
    work: async (name) => log.debug({ queue: name }, 'jobs disabled: worker not started'),
    schedule: async (name) => log.debug({ queue: name }, 'jobs disabled: schedule not recorded'),
    wake: () => {},
  }
}

/** Told of every failed attempt of a job; `final` when no retry is left. */
export type FailureListener = (queue: string, final: boolean) => void

export function createJobs(boss: PgBoss, db: Kysely<DB>, log: FastifyBaseLogger, pollingIntervalSeconds: number, failed: FailureListener = () => {}): Jobs {
  const workerIds = new Map<string, string[]>()
  // One function per queue, so that a unit of work queuing many jobs wakes its workers once.
  const wakers = new Map<string, () => void>()
  const wakerOf = (name: string) => {
    let waker = wakers.get(name)
    if (!waker) wakers.set(name, (waker = () => wake(name)))
    return waker
  }
  function wake(name: string): void {
    for (const id of workerIds.get(name) ?? []) boss.notifyWorker(id)
  }

  async function ensureQueue(name: string, settings: QueueSettings = {}): Promise<void> {
    const { deadLetter, ...rest } = settings
    const options = { name, ...rest, ...(deadLetter ? { deadLetter } : {}) }
    await underQueueLock(db, async () => {
      if (deadLetter) await boss.createQueue(deadLetter)
      await boss.createQueue(name, options)
      // createQueue keeps an existing queue as it is; settings changed since must still apply.
      await boss.updateQueue(name, options)
    })
  }

  return {
    enabled: true,
    boss,
    async send(name, data, options = {}) {
      return checkInserted(name, await boss.send(name, data as object, options), options)
    },
    async sendInTransaction(trx, name, data, options = {}) {
      const id = checkInserted(name, await boss.send(name, data as object, { ...options, db: inTransaction(trx) }), options)
      optionalAfterOf(trx)?.commit(wakerOf(name))
      return id
    },
    async work(name, handler, settings = {}) {
      const { concurrency = 1, ...queue } = settings
      await ensureQueue(name, queue)
      const run = async ([job]: PgBoss.JobWithMetadata<JobPayloads[typeof name]>[]) => {
        if (!job) return undefined
        try {
          return await handler(job)
        } catch (error) {
          const last = job.retryCount >= job.retryLimit
          failed(name, last)
          log[last ? 'error' : 'warn'](
            { err: error, queue: name, job: job.id, attempt: job.retryCount + 1, retryLimit: job.retryLimit },
            last ? 'job failed, no retry left' : 'job failed, will retry',
          )
          throw error
        }
      }
      const ids = workerIds.get(name) ?? []
      for (let i = 0; i < concurrency; i++) {
        ids.push(await boss.work(name, { includeMetadata: true, batchSize: 1, pollingIntervalSeconds }, run))
      }
      workerIds.set(name, ids)
    },
    async schedule(name, cron, data, options = {}) {
      await ensureQueue(name)
      await boss.schedule(name, cron, data as object, options)
    },
    wake,
  }
}

// A scrape waits this long for the count, then reports no depth rather than hold the scrape.
const DEPTH_TIMEOUT_MS = 1_000

/**
 * Jobs waiting (created, retry) or running (active), by queue, counted at each scrape: one
 * grouped count over what pg-boss's fetch index covers. Finished jobs are not counted: pg-boss
 * archives them, and the failure counter says what failed.
 */
function queueDepth(app: FastifyInstance): void {
  app.metrics.gauge({
    name: 'armoire_jobs',
    help: 'Tâches en attente (created, retry) ou en cours (active), par file et état',
    labelNames: ['queue', 'state'],
    async collect() {
      this.reset()
      try {
        const rows = await app.db.transaction().execute(async (trx) => {
          await sql`set local statement_timeout = ${sql.lit(DEPTH_TIMEOUT_MS)}`.execute(trx)
          const { rows } = await sql<{ name: string; state: string; count: number }>`
            select name, state::text as state, count(*)::int as count from pgboss.job
            where state < 'completed' group by name, state`.execute(trx)
          return rows
        })
        for (const row of rows) this.set({ queue: row.name, state: row.state }, row.count)
      } catch (err) {
        app.log.warn({ err }, 'job queue depth not collected')
      }
    },
  })
}

/**
 * Passed through to pg-boss's pool (its types do not list it). pg-pool never answers a
 * checkout still queued when the pool ends: a worker whose fetch waited for one of the five
 * connections at stop never stopped, and pg-boss's stop loop polled for it forever, keeping
 * the process alive. A bounded wait fails that fetch, and the worker, told to stop, stops.
 */
const BOUNDED_CHECKOUT: Pick<PoolConfig, 'connectionTimeoutMillis'> = { connectionTimeoutMillis: 5_000 }

/**
 * The job queue on the application's PostgreSQL (schema `pgboss`). Safe with several
 * instances: pg-boss claims each job with SKIP LOCKED and takes advisory locks for its own
 * schema changes, maintenance and cron.
 */
export const jobsPlugin = fp(
  async (app: FastifyInstance, opts: JobsOptions) => {
    if (!opts.enabled) {
      app.decorate('jobs', disabledJobs(app.log))
      return
    }
    const boss = new PgBoss({
      connectionString: opts.url,
      schema: 'pgboss',
      application_name: 'armoire-jobs',
      max: 5,
      ...BOUNDED_CHECKOUT,
      pollingIntervalSeconds: opts.pollingIntervalSeconds,
    })
    // Without a listener an 'error' event (a lost connection, say) would crash the process.
    // node-postgres' errors carry their client, connection settings and cancel key included: log what went wrong, not that.
    boss.on('error', (err: Error & { code?: string }) =>
      app.log.error({ err: { type: err.name, message: err.message, code: err.code, stack: err.stack } }, 'job queue error'),
    )
    // start() creates pg-boss's own cron queue: under the same lock as ours.
    await underQueueLock(app.db, () => boss.start())
    const failures = app.metrics.counter({
      name: 'armoire_jobs_failed_total',
      help: 'Tentatives de tâches en échec, par file ; final="true" quand aucune nouvelle tentative ne suit',
      labelNames: ['queue', 'final'],
    })
    app.decorate('jobs', createJobs(boss, app.db, app.log, opts.pollingIntervalSeconds, (queue, final) => failures.inc({ queue, final: String(final) })))
    queueDepth(app)
    app.addHook('onClose', async () => {
      // Running jobs get stopTimeoutMs to finish; those still running are then failed, so that
      // they are retried, here or on another instance.
      await boss.stop({ graceful: true, wait: true, close: true, timeout: opts.stopTimeoutMs })
    })
  },
  { name: 'jobs', fastify: '5.x', dependencies: ['db', 'metrics'] },
)
