import { join, resolve } from 'node:path'
import type { FastifyBaseLogger, FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type { Transaction } from 'kysely'
import type { DB } from '../db/types.ts'
import { createLocalBlobStore, sweepTemp } from './blob/local.ts'
import { createS3BlobStore } from './blob/s3.ts'
import type { BlobStore } from './blob/store.ts'
import type { Config } from './config.ts'
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

export function createBlobStoreFromConfig(config: BlobConfig): BlobStore {
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
    const store = withUnitOfWork(createBlobStoreFromConfig(opts.config), app.log)
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
  { name: 'blobs', fastify: '5.x', dependencies: ['unit-of-work'] },
)
