import type { FastifyInstance } from 'fastify'
import type { Config } from '../../src/config.ts'
import { registerOperations } from '../../src/routes.ts'
import { BACKUP_QUEUE, backupBindings } from './backups.ts'
import { recoverInterruptedRestores, RESTORE_QUEUE, restorationBindings, runRestore } from './restorations.ts'
import { type BackupContext, recoverInterrupted, runBackup } from './run.ts'
import { afterScheduled, scheduleBindings, tick } from './schedules.ts'

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

export type BackupConfig = Pick<Config, 'STORAGE_QUOTA_BYTES' | 'BACKUP_STALE_SECONDS'>

/**
 * The backup domain: encrypted ZIP archives of a file, a folder, a drawer, a cabinet or the
 * whole organisation, built by jobs; their verification, download, deletion and restore.
 * Reads the documents domain through its public face only.
 */
export async function backupDomain(app: FastifyInstance, opts: { config: BackupConfig }) {
  const { config } = opts
  const ctx: BackupContext = { app, store: app.blobs, quota: config.STORAGE_QUOTA_BYTES, staleSeconds: config.BACKUP_STALE_SECONDS }
  ctx.settled = (id) => afterScheduled(ctx, id)
  registerOperations(app, [...scheduleBindings(ctx), ...backupBindings(ctx), ...restorationBindings(ctx)])

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
