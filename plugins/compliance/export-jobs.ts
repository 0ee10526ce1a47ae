import { createHash } from 'node:crypto'
import { type Readable, Transform } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { type Kysely, sql, type Transaction } from 'kysely'
import type { ExportRgpdRow } from '../../db/tables/compliance.ts'
import type { DB } from '../../db/types.ts'
import { downloadExportRgpd, type ExportRgpdDto, getExportRgpd } from '../../openapi/compliance-exports.ts'
import { attachment } from '../../src/attachment.ts'
import { actorOf } from '../../src/audit.ts'
import { principalOf } from '../../src/auth.ts'
import { createDecryptStream, createEncryptStream, randomDataKey } from '../../src/crypto/segmented.ts'
import { Errors } from '../../src/errors.ts'
import { registerBlobColumn } from '../../src/blob-collector.ts'
import { registerWrappedColumn } from '../../src/keys.ts'
import { type Binding, handle } from '../../src/routes.ts'
import { iso } from './listing.ts'

export const EXPORT_QUEUE = 'conformite.export'
export const EXPORT_EXPIRY_QUEUE = 'conformite.export.expiration'

/** The additional data of an export's wrapped key: a key moved to another row does not open. */
const keyAad = (exportId: string) => `rgpd:export:${exportId}`

registerWrappedColumn({
  kind: 'exports_rgpd',
  table: 'exports_rgpd',
  id: 'id',
  organisation: 'organisation_id',
  wrapped: 'cle_enveloppee',
  version: 'version_cle_maitre',
  aad: keyAad,
})

registerBlobColumn({ kind: 'exports_rgpd', table: 'exports_rgpd', column: 'blob' })

export type PersonalArchive = (db: Kysely<DB>, organisationId: string, userId: string) => Promise<Readable>

export const toExport = (row: ExportRgpdRow): ExportRgpdDto => ({
  id: row.id,
  utilisateur_id: row.utilisateur_id,
  demande_par: row.demande_par,
  statut: row.statut,
  elements: row.elements,
  taille: row.taille === null ? null : Number(row.taille),
  sha256: row.sha256,
  erreur: row.erreur,
  created_at: row.created_at.toISOString(),
  terminee_le: iso(row.terminee_le),
  expire_le: iso(row.expire_le),
})

/** What a member's export would hold, counted: their journal entries and the files they created. */
export async function exportSize(db: Kysely<DB>, organisationId: string, userId: string): Promise<number> {
  const { rows } = await sql<{ n: number }>`select
      (select count(*) from journal_activite where organisation_id = ${organisationId}
        and (utilisateur_id = ${userId} or (cible_type = 'utilisateur' and cible_id = ${userId})))
      + (select count(*) from fichiers where organisation_id = ${organisationId} and created_by = ${userId}) as n`.execute(db)
  return Number(rows[0]?.n ?? 0)
}

/**
 * Records an export to build in the background and queues its job, journaled; an export of the
 * same person for the same requester still waiting or running is answered instead.
 */
export async function requestExport(app: FastifyInstance, request: FastifyRequest, userId: string, elements: number): Promise<ExportRgpdRow> {
  const { organisationId, userId: requester } = principalOf(request)
  return app.unitOfWork(async (trx) => {
    await sql`select pg_advisory_xact_lock(hashtextextended(${`exports_rgpd:${organisationId}:${userId}:${requester}`}, 0))`.execute(trx)
    const pending = await trx
      .selectFrom('exports_rgpd')
      .selectAll()
      .where('organisation_id', '=', organisationId)
      .where('utilisateur_id', '=', userId)
      .where('demande_par', '=', requester)
      .where('statut', 'in', ['en_attente', 'en_cours'])
      .executeTakeFirst()
    if (pending) return pending
    const created = await trx
      .insertInto('exports_rgpd')
      .values({ organisation_id: organisationId, utilisateur_id: userId, demande_par: requester, elements })
      .returningAll()
      .executeTakeFirstOrThrow()
    await app.jobs.sendInTransaction(trx, EXPORT_QUEUE, { exportId: created.id })
    await app.audit.record(trx, {
      ...actorOf(request),
      action: 'USER_DATA_EXPORT_REQUESTED',
      target: { type: 'utilisateur', id: userId },
      details: { export_id: created.id, elements },
    })
    return created
  })
}

/** A problem code and its French detail for the export's record; internals stay in the server's logs. */
function jobError(error: unknown): { code: string; detail: string } {
  const e = error as { code?: string; statusCode?: number; message?: string }
  if (e.code && e.code in Errors && (e.statusCode ?? 500) < 500) return { code: e.code, detail: e.message ?? e.code }
  return { code: 'INTERNAL_ERROR', detail: 'Erreur interne pendant le travail en arrière-plan (détails dans les journaux du serveur)' }
}

/** A stream that hashes and counts what passes through it. */
function meter() {
  const hash = createHash('sha256')
  let size = 0
  const stream = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      hash.update(chunk)
      size += chunk.length
      callback(null, chunk)
    },
  })
  return { stream, result: () => ({ size, sha256: hash.digest('hex') }) }
}

/**
 * The job that builds one export: claims it, writes the ZIP through encryption under a data key
 * of its own into the blob store, then records it `terminee` until `keepHours` from now,
 * journaled. A failure leaves it `echec` with its `erreur`, its partial blob removed.
 */
export async function runExport(app: FastifyInstance, archive: PersonalArchive, id: string, keepHours: number): Promise<void> {
  const { db } = app
  // A retry after a crash takes the export back from `en_cours`.
  const claimed = await db
    .updateTable('exports_rgpd')
    .set({ statut: 'en_cours' })
    .where('id', '=', id)
    .where('statut', 'in', ['en_attente', 'en_cours'])
    .returningAll()
    .executeTakeFirst()
  if (!claimed) return
  const actor = { organisationId: claimed.organisation_id, userId: claimed.demande_par }
  const target = { type: 'utilisateur' as const, id: claimed.utilisateur_id }
  const dataKey = randomDataKey()
  const writer = app.blobs.createWriter()
  try {
    const counted = meter()
    await pipeline(await archive(db, claimed.organisation_id, claimed.utilisateur_id), counted.stream, createEncryptStream({ key: dataKey, aad: id }), writer.stream)
    const wrapped = await app.keys.wrap(dataKey, keyAad(id))
    await writer.commit()
    const { size, sha256 } = counted.result()
    await app.unitOfWork(async (trx) => {
      const done = await trx
        .updateTable('exports_rgpd')
        .set({
          statut: 'terminee',
          blob: writer.name,
          cle_enveloppee: wrapped.wrapped,
          version_cle_maitre: wrapped.masterKeyVersion,
          taille: size,
          sha256,
          terminee_le: sql`now()`,
          expire_le: sql`now() + make_interval(hours => ${keepHours})`,
        })
        .where('id', '=', id)
        .where('statut', '=', 'en_cours')
        .returning('id')
        .executeTakeFirst()
      if (!done) throw new Error(`export ${id} changed while it was built`)
      await app.audit.record(trx, { ...actor, action: 'USER_DATA_EXPORTED', target, details: { export_id: id, differe: true, taille: size, sha256 } })
    }, app.blobs.writtenAhead(writer.name))
  } catch (error) {
    await writer.abort()
    const erreur = jobError(error)
    app.log[erreur.code === 'INTERNAL_ERROR' ? 'error' : 'warn']({ err: error, export: id }, 'GDPR export failed')
    await app.unitOfWork(async (trx) => {
      const failed = await trx.updateTable('exports_rgpd').set({ statut: 'echec', erreur: JSON.stringify(erreur), terminee_le: sql`now()` })
        .where('id', '=', id).where('statut', '=', 'en_cours').returning('id').executeTakeFirst()
      if (failed) await app.audit.record(trx, { ...actor, action: 'USER_DATA_EXPORT_FAILED', target, result: 'echec', details: { export_id: id, ...erreur } })
    })
  } finally {
    dataKey.fill(0)
  }
}

/** Destroys the archives of exports past their term (key first, then blob); each journaled. */
export async function expireExports(app: FastifyInstance): Promise<number> {
  const rows = await app.db.selectFrom('exports_rgpd').selectAll().where('statut', '=', 'terminee').where('expire_le', '<=', new Date()).execute()
  for (const row of rows) {
    await app.unitOfWork(async (trx) => {
      const gone = await trx.updateTable('exports_rgpd').set({ statut: 'expiree', cle_enveloppee: null, version_cle_maitre: null, blob: null })
        .where('id', '=', row.id).where('statut', '=', 'terminee').returning('id').executeTakeFirst()
      if (!gone) return
      if (row.blob) app.blobs.deleteOnCommit(trx, row.blob)
      await app.audit.record(trx, { organisationId: row.organisation_id, userId: null, action: 'USER_DATA_EXPORT_EXPIRED', target: { type: 'utilisateur', id: row.utilisateur_id }, details: { export_id: row.id } })
    })
  }
  return rows.length
}

/** A member's stored exports destroyed with their account (a GDPR erasure): keys now, blobs once it commits. */
export async function shredExportsOf(app: FastifyInstance, trx: Transaction<DB>, organisationId: string, userId: string): Promise<number> {
  const rows = await trx
    .selectFrom('exports_rgpd')
    .select(['id', 'blob'])
    .where('organisation_id', '=', organisationId)
    .where('utilisateur_id', '=', userId)
    .where('statut', '=', 'terminee')
    .forUpdate()
    .execute()
  if (rows.length === 0) return 0
  await trx
    .updateTable('exports_rgpd')
    .set({ statut: 'expiree', cle_enveloppee: null, version_cle_maitre: null, blob: null })
    .where('id', 'in', rows.map((r) => r.id))
    .execute()
  for (const row of rows) if (row.blob) app.blobs.deleteOnCommit(trx, row.blob)
  return rows.length
}

/** An export the caller may see: the one who asked for it, or an admin of its organisation. */
async function visibleExport(db: Kysely<DB>, request: FastifyRequest, id: string): Promise<ExportRgpdRow> {
  const { organisationId, userId, role } = principalOf(request)
  const row = await db.selectFrom('exports_rgpd').selectAll().where('id', '=', id).where('organisation_id', '=', organisationId).executeTakeFirst()
  if (!row || (role !== 'admin' && row.demande_par !== userId)) throw new Errors.NOT_FOUND('Export')
  return row
}

export function exportJobBindings(app: FastifyInstance): Binding[] {
  const { db } = app
  return [
    handle(getExportRgpd, async (request) => toExport(await visibleExport(db, request, request.params.id))),

    handle(downloadExportRgpd, async (request, reply: FastifyReply) => {
      const row = await visibleExport(db, request, request.params.id)
      if (row.statut !== 'terminee' || !row.blob || !row.cle_enveloppee || row.version_cle_maitre === null) {
        throw new Errors.EXPORT_NOT_READY(row.statut === 'expiree' ? 'son archive a expiré, demandez-en un nouveau' : `il est ${row.statut.replace('_', ' ')}`)
      }
      const key = await app.keys.unwrap(row.cle_enveloppee, row.version_cle_maitre, keyAad(row.id))
      const decrypt = createDecryptStream({ key, aad: row.id })
      try {
        pipeline(await app.blobs.read(row.blob), decrypt).catch(() => {})
      } catch (error) {
        key.fill(0)
        throw error
      }
      decrypt.once('close', () => key.fill(0))
      decrypt.once('error', (err) => request.log.error({ err, export: row.id }, 'GDPR export archive failed its integrity check while sent'))
      await app.audit.recordAlone({
        ...actorOf(request),
        action: 'USER_DATA_EXPORT_DOWNLOADED',
        target: { type: 'utilisateur', id: row.utilisateur_id },
        details: { export_id: row.id, taille: row.taille, sha256: row.sha256 },
      })
      return reply
        .type('application/zip')
        .header('content-disposition', attachment(`donnees-${row.utilisateur_id}.zip`))
        .header('content-length', row.taille)
        .header('etag', `"${row.sha256}"`)
        .header('cache-control', 'private, no-store')
        .send(decrypt)
    }),
  ]
}
