import { join, resolve } from 'node:path'
import { finished } from 'node:stream'
import type { FastifyBaseLogger, FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type { Transaction } from 'kysely'
import type { DB } from '../db/types.ts'
import { createLocalBlobStore, sweepTemp } from './blob/local.ts'
import { createS3BlobStore } from './blob/s3.ts'
import type { BlobStore } from './blob/store.ts'
import type { Config } from './config.ts'
import type { Metrics } from './metrics.ts'
import { type After, type Ahead, afterOf } from './unit-of-work.ts'

/** The blob store, and how a unit of work keeps blobs and rows in step. */
export interface Blobs extends BlobStore {
  /**
   * Removes `name` if the unit of work of `on` does not commit: a blob written ahead of the rows
   * naming it. Registered in the unit of work's `ahead` (`on` its hooks), it is removed also
   * when the transaction never began.
   */
  deleteOnRollback(on: Transaction<DB> | After, name: string): void
  /** The `ahead` of a unit of work whose rows name blobs written before it: removed unless it commits, a refused BEGIN included. */
  writtenAhead(...names: string[]): Ahead
  /** Removes `name` once the unit of work of `trx` commits: the rows that named it are gone. */
  deleteOnCommit(trx: Transaction<DB>, name: string): void
}

declare module 'fastify' {
  interface FastifyInstance {
    blobs: Blobs
  }
}

type BlobConfig = Pick<
  Config,
  | 'BLOB_DRIVER'
  | 'STORAGE_DIR'
  | 'S3_ENDPOINT'
  | 'S3_REGION'
  | 'S3_BUCKET'
  | 'S3_ACCESS_KEY_ID'
  | 'S3_SECRET_ACCESS_KEY'
  | 'S3_FORCE_PATH_STYLE'
  | 'S3_PREFIX'
>

// Temp files younger than this may belong to an upload still running on another instance.
const STALE_TEMP_MS = 24 * 3_600_000

export function localBlobRoot(config: Pick<Config, 'STORAGE_DIR'>): string {
  return join(resolve(config.STORAGE_DIR), 'blobs')
}

/**
 * The store the configuration names; with `metrics`, each operation's duration is observed
 * under `store` (the documents' blobs, the backups' archives).
 */
export function createBlobStoreFromConfig(config: BlobConfig, metrics?: { metrics: Metrics; store: string }): BlobStore {
  const store = createDriver(config)
  if (!metrics) return store
  const labels = { store: metrics.store, driver: config.BLOB_DRIVER }
  return timedStore(store, (operation, outcome, seconds) => metrics.metrics.blobs.observe({ ...labels, operation, outcome }, seconds))
}

type Observer = (operation: string, outcome: Outcome, seconds: number) => void
type Outcome = 'ok' | 'error' | 'aborted'

/**
 * Observes every operation of a store: a read until its stream has ended (or failed, or was
 * left unread: `aborted`), a write from its writer's creation until its commit (an abort
 * observes `aborted`), the others until they settle.
 */
export function timedStore(store: BlobStore, observer: Observer): BlobStore {
  const since = (start: number) => (performance.now() - start) / 1000
  const observe = (operation: string, outcome: Outcome, start: number) => observer(operation, outcome, since(start))
  const timed = <A extends unknown[], T>(operation: string, fn: (...args: A) => Promise<T>) =>
    async (...args: A): Promise<T> => {
      const start = performance.now()
      try {
        const value = await fn(...args)
        observe(operation, 'ok', start)
        return value
      } catch (error) {
        observe(operation, 'error', start)
        throw error
      }
    }
  return {
    createWriter() {
      const start = performance.now()
      const writer = store.createWriter()
      let observed = false
      const once = (outcome: Outcome) => {
        if (!observed) observe('write', outcome, start)
        observed = true
      }
      return {
        name: writer.name,
        stream: writer.stream,
        commit: () =>
          writer.commit().then(
            () => once('ok'),
            (error: unknown) => {
              once('error')
              throw error
            },
          ),
        abort: () => {
          once('aborted')
          return writer.abort()
        },
      }
    },
    async read(name, range) {
      const start = performance.now()
      let stream
      try {
        stream = await store.read(name, range)
      } catch (error) {
        observe('read', 'error', start)
        throw error
      }
      finished(stream, (err) => {
        const premature = (err as NodeJS.ErrnoException | undefined)?.code === 'ERR_STREAM_PREMATURE_CLOSE'
        observe('read', err ? (premature ? 'aborted' : 'error') : 'ok', start)
      })
      return stream
    },
    delete: timed('delete', (name: string) => store.delete(name)),
    exists: timed('exists', (name: string) => store.exists(name)),
    // The collector's listing runs hourly and long: its duration says nothing of latency.
    list: () => store.list(),
    checkWritable: timed('check_writable', () => store.checkWritable()),
    close: () => store.close(),
  }
}

function createDriver(config: BlobConfig): BlobStore {
  if (config.BLOB_DRIVER === 'local') return createLocalBlobStore(localBlobRoot(config))
  const missing = (['S3_BUCKET', 'S3_ACCESS_KEY_ID', 'S3_SECRET_ACCESS_KEY'] as const).filter((k) => !config[k])
  if (missing.length > 0) throw new Error(`BLOB_DRIVER=s3 requires ${missing.join(', ')}`)
  return createS3BlobStore({
    endpoint: config.S3_ENDPOINT || undefined,
    region: config.S3_REGION,
    bucket: config.S3_BUCKET,
    accessKeyId: config.S3_ACCESS_KEY_ID,
    secretAccessKey: config.S3_SECRET_ACCESS_KEY,
    forcePathStyle: config.S3_FORCE_PATH_STYLE,
    prefix: config.S3_PREFIX,
  })
}

function withUnitOfWork(store: BlobStore, log: FastifyBaseLogger): Blobs {
  // A blob left behind is unreferenced, never read, and costs only space: worth a warning, not a failure.
  const remover = (name: string, why: string) => () =>
    store.delete(name).catch((err: unknown) => log.warn({ err, blob: name }, why))
  return Object.assign(store, {
    deleteOnRollback(on: Transaction<DB> | After, name: string) {
      afterOf(on).rollback(remover(name, 'could not remove an orphan blob'))
    },
    writtenAhead(...names: string[]): Ahead {
      return (after) => {
        for (const name of names) after.rollback(remover(name, 'could not remove an orphan blob'))
      }
    },
    deleteOnCommit(trx: Transaction<DB>, name: string) {
      afterOf(trx).commit(remover(name, 'could not remove a blob no longer referenced'))
    },
  })
}

/** The store of encrypted blobs, local disk under STORAGE_DIR/blobs or S3-compatible. */
export const blobsPlugin = fp(
  async (app: FastifyInstance, opts: { config: BlobConfig }) => {
    const store = withUnitOfWork(createBlobStoreFromConfig(opts.config, { metrics: app.metrics, store: 'blobs' }), app.log)
    app.decorate('blobs', store)
    app.addHook('onClose', () => store.close())
    if (opts.config.BLOB_DRIVER === 'local') {
      const root = localBlobRoot(opts.config)
      // Leftovers of a crash mid-upload; never under a real blob name, so never referenced.
      sweepTemp(root, STALE_TEMP_MS).then(
        (removed) => removed > 0 && app.log.info({ removed }, 'stale blob temp files removed'),
        (err: unknown) => app.log.warn({ err }, 'could not sweep blob temp files'),
      )
    }
  },
  { name: 'blobs', fastify: '5.x', dependencies: ['unit-of-work', 'metrics'] },
)
