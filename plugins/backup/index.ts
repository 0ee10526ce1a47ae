import multipart from '@fastify/multipart'
import type { FastifyInstance, FastifySchema, RouteOptions } from 'fastify'
import { importSauvegarde } from '../../openapi/backup.ts'
import { sweepTemp } from '../../src/blob/local.ts'
import type { BlobStore } from '../../src/blob/store.ts'
import { createBlobStoreFromConfig, localBlobRoot } from '../../src/blobs.ts'
import type { Config } from '../../src/config.ts'
import { LONG_BUCKETS } from '../../src/metrics.ts'
import { handle, registerOperations } from '../../src/routes.ts'
import { BACKUP_QUEUE, backupBindings } from './backups.ts'
import { recoverInterruptedRestores, RESTORE_QUEUE, restorationBindings, runRestore } from './restorations.ts'
import { type BackupContext, recoverInterrupted, runBackup } from './run.ts'
import { afterScheduled, scheduleBindings, tick } from './schedules.ts'
import { importArchive, type ImportLimits } from './import.ts'
import { toSauvegarde } from './repository.ts'

const RECOVER_QUEUE = 'backup.recover'
const SCHEDULE_QUEUE = 'backup.planifications'

declare module '../../src/jobs.ts' {
  interface JobPayloads {
    'backup.run': { sauvegardeId: string }
    'backup.restore': { restaurationId: string }
    'backup.recover': Record<string, never>
    'backup.planifications': Record<string, never>
  }
}

type ArchiveStoreConfig = Pick<
  Config,
  | 'BACKUP_BLOB_DRIVER'
  | 'BACKUP_BLOB_DIR'
  | 'BACKUP_BLOB_S3_ENDPOINT'
  | 'BACKUP_BLOB_S3_REGION'
  | 'BACKUP_BLOB_S3_BUCKET'
  | 'BACKUP_BLOB_S3_ACCESS_KEY_ID'
  | 'BACKUP_BLOB_S3_SECRET_ACCESS_KEY'
  | 'BACKUP_BLOB_S3_FORCE_PATH_STYLE'
  | 'BACKUP_BLOB_S3_PREFIX'
>

export type BackupConfig = Pick<Config, 'STORAGE_QUOTA_BYTES' | 'BACKUP_STALE_SECONDS'> & ImportLimits & ArchiveStoreConfig

// Temp files younger than this may belong to an archive still being written on another instance.
const STALE_TEMP_MS = 24 * 3_600_000

/**
 * Where archives go: the blob store, or the separate one BACKUP_BLOB_* names (another
 * directory, another bucket), built by the same factory; loadConfig has refused a "separate"
 * store that is the primary one.
 */
function archiveStore(app: FastifyInstance, config: ArchiveStoreConfig): BlobStore {
  const driver = config.BACKUP_BLOB_DRIVER
  if (driver === '') return app.blobs
  const store = createBlobStoreFromConfig({
    BLOB_DRIVER: driver,
    STORAGE_DIR: config.BACKUP_BLOB_DIR,
    S3_ENDPOINT: config.BACKUP_BLOB_S3_ENDPOINT,
    S3_REGION: config.BACKUP_BLOB_S3_REGION,
    S3_BUCKET: config.BACKUP_BLOB_S3_BUCKET,
    S3_ACCESS_KEY_ID: config.BACKUP_BLOB_S3_ACCESS_KEY_ID,
    S3_SECRET_ACCESS_KEY: config.BACKUP_BLOB_S3_SECRET_ACCESS_KEY,
    S3_FORCE_PATH_STYLE: config.BACKUP_BLOB_S3_FORCE_PATH_STYLE,
    S3_PREFIX: config.BACKUP_BLOB_S3_PREFIX,
  }, { metrics: app.metrics, store: 'archives' })
  app.addHook('onClose', () => store.close())
  app.blobCollector.addStore(store)
  if (driver === 'local') {
    sweepTemp(localBlobRoot({ STORAGE_DIR: config.BACKUP_BLOB_DIR }), STALE_TEMP_MS).catch((err: unknown) =>
      app.log.warn({ err }, 'could not sweep backup blob temp files'),
    )
  }
  return store
}

/**
 * The import's multipart body is read as a stream by its handler: Fastify must not validate
 * it. The schema Fastify compiles loses `body`; the OpenAPI document gets it back.
 */
function streamedImportBody(route: RouteOptions): void {
  const schema = route.schema as (FastifySchema & { consumes?: readonly string[] }) | undefined
  if (route.url !== importSauvegarde.url || !schema?.body) return
  const { body, ...validated } = schema
  route.schema = validated
  route.config = { ...route.config, swaggerTransform: ({ schema: documented, url }) => ({ schema: { ...documented, body }, url }) }
}

/**
 * The backup domain: encrypted ZIP archives of a file, a folder, a drawer, a cabinet or the
 * whole organisation, built by jobs; their verification, download, deletion and restore.
 * Reads the documents domain through its public face only.
 */
export async function backupDomain(app: FastifyInstance, opts: { config: BackupConfig }) {
  const { config } = opts
  const ctx: BackupContext = {
    app,
    store: archiveStore(app, config),
    quota: config.STORAGE_QUOTA_BYTES,
    staleSeconds: config.BACKUP_STALE_SECONDS,
    durations: {
      backup: app.metrics.histogram({
        name: 'armoire_backup_duration_seconds',
        help: 'Durée des sauvegardes, par type de cible et issue (success, failure)',
        labelNames: ['type', 'outcome'],
        buckets: LONG_BUCKETS,
      }),
      restore: app.metrics.histogram({
        name: 'armoire_restore_duration_seconds',
        help: 'Durée des restaurations, par issue (success, failure)',
        labelNames: ['outcome'],
        buckets: LONG_BUCKETS,
      }),
    },
  }
  ctx.settled = (id) => afterScheduled(ctx, id)
  await app.register(multipart, {
    limits: { fileSize: config.BACKUP_IMPORT_MAX_BYTES, files: 1, fields: 4, fieldSize: 1024, parts: 5, headerPairs: 50 },
  })
  app.addHook('onRoute', streamedImportBody)
  const importBinding = handle(importSauvegarde, async (request, reply) => {
    try {
      return reply.code(201).send(toSauvegarde(await importArchive(ctx, request, config)))
    } catch (error) {
      // A refused upload may leave its body unread: the connection closes after the answer.
      if (!request.raw.complete) reply.header('connection', 'close')
      throw error
    }
  })
  registerOperations(app, [...scheduleBindings(ctx), importBinding, ...backupBindings(ctx), ...restorationBindings(ctx)])

  // Failures are recorded on the backup itself: the job never asks pg-boss for a retry.
  await app.jobs.work(BACKUP_QUEUE, async (job) => runBackup(ctx, job.data.sauvegardeId), { retryLimit: 0, expireInSeconds: 12 * 3600 })
  await app.jobs.work(RESTORE_QUEUE, async (job) => runRestore(ctx, job.data.restaurationId), { retryLimit: 0, expireInSeconds: 12 * 3600 })
  const recover = async () => ({ sauvegardes: await recoverInterrupted(ctx), restaurations: await recoverInterruptedRestores(ctx) })
  await app.jobs.work(RECOVER_QUEUE, recover, { retryLimit: 0 })
  await app.jobs.schedule(RECOVER_QUEUE, '* * * * *', {})
  // Schedules are rows, checked every minute by one tick across instances.
  await app.jobs.work(SCHEDULE_QUEUE, async () => ({ lancees: await tick(ctx) }), { retryLimit: 0 })
  await app.jobs.schedule(SCHEDULE_QUEUE, '* * * * *', {})
  if (app.jobs.enabled) {
    app.addHook('onReady', async () => {
      recover().then(
        (failed) => (failed.sauvegardes > 0 || failed.restaurations > 0) && app.log.warn(failed, 'interrupted backups and restores failed'),
        (err: unknown) => app.log.error({ err }, 'could not recover interrupted backups'),
      )
    })
  }
}
