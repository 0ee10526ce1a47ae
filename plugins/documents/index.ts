import multipart from '@fastify/multipart'
import type { FastifyInstance, FastifySchema, RouteOptions } from 'fastify'
import type { Config } from '../../src/config.ts'
import { registerOperations, requireKernel } from '../../src/routes.ts'
import { fileBindings, purgeDownloadWindows } from './files.ts'
import { hierarchyBindings } from './hierarchy.ts'
import { purgeExpiredTrash, trashBindings } from './trash.ts'

const TRASH_PURGE_QUEUE = 'documents.corbeille.purge'
const WINDOWS_PURGE_QUEUE = 'documents.lectures.purge'

declare module '../../src/jobs.ts' {
  interface JobPayloads {
    'documents.corbeille.purge': Record<string, never>
    'documents.lectures.purge': Record<string, never>
  }
}

export type DocumentsConfig = Pick<Config, 'UPLOAD_MAX_BYTES' | 'STORAGE_QUOTA_BYTES' | 'TRASH_RETENTION_DAYS' | 'DOWNLOAD_JOURNAL_WINDOW_SECONDS'>

/**
 * A multipart body is read as a stream by its handler, so Fastify must not validate it (there
 * is nothing parsed to validate); the contract still documents it. The schema Fastify
 * compiles loses `body`, and the OpenAPI document gets it back through `swaggerTransform`.
 */
function streamedMultipartBodies(route: RouteOptions): void {
  const schema = route.schema as (FastifySchema & { consumes?: readonly string[] }) | undefined
  if (!schema?.body || !schema.consumes?.includes('multipart/form-data')) return
  const { body, ...validated } = schema
  route.schema = validated
  route.config = { ...route.config, swaggerTransform: ({ schema: documented, url }) => ({ schema: { ...documented, body }, url }) }
}

/**
 * The documents domain: armoires › casiers › dossiers › fichiers, their versions, encrypted
 * content and trash.
 */
export async function documentsDomain(app: FastifyInstance, opts: { config: DocumentsConfig }) {
  requireKernel(app, 'documents', ['db', 'jobs', 'audit', 'keys', 'blobs', 'auth-guard', 'rate-limits', 'unit-of-work'])
  const { config } = opts
  await app.register(multipart, {
    limits: { fileSize: config.UPLOAD_MAX_BYTES, files: 1, fields: 10, fieldSize: 4096, parts: 12, headerPairs: 50 },
  })
  app.addHook('onRoute', streamedMultipartBodies)
  registerOperations(app, [
    ...hierarchyBindings(app),
    ...fileBindings(app, { quota: config.STORAGE_QUOTA_BYTES, downloadWindowSeconds: config.DOWNLOAD_JOURNAL_WINDOW_SECONDS }),
    ...trashBindings(app, config.TRASH_RETENTION_DAYS),
  ])

  await app.jobs.work(TRASH_PURGE_QUEUE, async () => {
    const purged = await purgeExpiredTrash(app, config.TRASH_RETENTION_DAYS)
    if (purged > 0) app.log.info({ purged }, 'trash entries past retention purged')
    return { purged }
  })
  await app.jobs.schedule(TRASH_PURGE_QUEUE, '17 3 * * *', {})
  await app.jobs.work(WINDOWS_PURGE_QUEUE, async () => ({ purged: await purgeDownloadWindows(app, config.DOWNLOAD_JOURNAL_WINDOW_SECONDS) }))
  await app.jobs.schedule(WINDOWS_PURGE_QUEUE, '41 * * * *', {})
}
