import type { FastifyInstance } from 'fastify'
import type { Config } from '../../src/config.ts'
import { registerOperations } from '../../src/routes.ts'
import { disposalBindings, sweepDisposals } from './disposal.ts'
import { EXPORT_EXPIRY_QUEUE, EXPORT_QUEUE, expireExports, exportJobBindings, runExport } from './export-jobs.ts'
import { exportBindings, personalArchive } from './exports.ts'
import { createGuard } from './guard.ts'
import { holdBindings } from './holds.ts'
import { pruneJournal } from './journal-term.ts'
import { lockBindings } from './locks.ts'
import { ruleBindings } from './rules.ts'

const DISPOSAL_QUEUE = 'conformite.eliminations'
const JOURNAL_TERM_QUEUE = 'conformite.journal.elagage'

declare module '../../src/jobs.ts' {
  interface JobPayloads {
    'conformite.eliminations': Record<string, never>
    'conformite.journal.elagage': Record<string, never>
    'conformite.export': { exportId: string }
    'conformite.export.expiration': Record<string, never>
  }
}

/**
 * The compliance domain: locks, retention rules, legal holds, disposal at term with
 * destruction certificates, the journal's own term. It fills the kernel's
 * safeguard, which documents (and backup, security) ask before anything destructive.
 */
export async function complianceDomain(app: FastifyInstance, opts: { config: Config }) {
  const { config } = opts
  app.safeguards.fill(createGuard(app))
  registerOperations(app, [...lockBindings(app), ...ruleBindings(app), ...holdBindings(app), ...disposalBindings(app), ...exportBindings(app, { threshold: config.GDPR_EXPORT_JOB_THRESHOLD }), ...exportJobBindings(app)])

  await app.jobs.work(DISPOSAL_QUEUE, async () => {
    const done = await sweepDisposals(app, config.DISPOSAL_NOTICE_DAYS)
    if (done.proposees + done.detruites > 0) app.log.info(done, 'retention terms swept')
    return done
  })
  await app.jobs.schedule(DISPOSAL_QUEUE, '41 2 * * *', {})
  await app.jobs.work(JOURNAL_TERM_QUEUE, async () => {
    const removed = await pruneJournal(app, config.JOURNAL_RETENTION_DAYS)
    if (removed > 0) app.log.info({ removed }, 'journal entries past their term removed')
    return { removed }
  })
  await app.jobs.schedule(JOURNAL_TERM_QUEUE, '23 4 * * *', {})
  // Failures are recorded on the export; a retry is for a worker that died while building it.
  await app.jobs.work(EXPORT_QUEUE, async (job) => runExport(app, personalArchive, job.data.exportId, config.GDPR_EXPORT_KEEP_HOURS), { retryLimit: 2, retryDelay: 30, expireInSeconds: 3600 })
  await app.jobs.work(EXPORT_EXPIRY_QUEUE, async () => ({ expirees: await expireExports(app) }), { retryLimit: 0 })
  await app.jobs.schedule(EXPORT_EXPIRY_QUEUE, '17 * * * *', {})
}
