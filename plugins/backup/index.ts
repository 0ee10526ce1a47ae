import type { FastifyInstance } from 'fastify'
import type { Config } from '../../src/config.ts'
import { registerOperations } from '../../src/routes.ts'
import { BACKUP_QUEUE, backupBindings } from './backups.ts'
import { type BackupContext, recoverInterrupted, runBackup } from './run.ts'

const RECOVER_QUEUE = 'backup.recover'

declare module '../../src/jobs.ts' {
  interface JobPayloads {
    'backup.run': { sauvegardeId: string }
    'backup.recover': Record<string, never>
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
  registerOperations(app, [...backupBindings(ctx)])

  // Failures are recorded on the backup itself: the job never asks pg-boss for a retry.
  await app.jobs.work(BACKUP_QUEUE, async (job) => runBackup(ctx, job.data.sauvegardeId), { retryLimit: 0, expireInSeconds: 12 * 3600 })
  await app.jobs.work(RECOVER_QUEUE, async () => ({ failed: await recoverInterrupted(ctx) }), { retryLimit: 0 })
  await app.jobs.schedule(RECOVER_QUEUE, '* * * * *', {})
  if (app.jobs.enabled) {
    app.addHook('onReady', async () => {
      recoverInterrupted(ctx).then(
        (failed) => failed > 0 && app.log.warn({ failed }, 'interrupted backups failed'),
        (err: unknown) => app.log.error({ err }, 'could not recover interrupted backups'),
      )
    })
  }
}
