import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { type Kysely, sql } from 'kysely'
import type { DB } from '../../db/types.ts'
import type { PageQuery } from '../../openapi/common.ts'
import {
  deleteFichier,
  downloadFichier,
  downloadVersion,
  type FileListQuery,
  getFichier,
  listFichiers,
  listVersions,
  reportLocalDeletion,
  restoreVersion,
  updateFichier,
  uploadFichier,
  uploadVersion,
} from '../../openapi/documents-fichiers.ts'
import { actorOf } from '../../src/audit.ts'
import { principalOf } from '../../src/auth.ts'
import { IntegrityError } from '../../src/crypto/segmented.ts'
import { Errors } from '../../src/errors.ts'
import { decodeCursor, page } from '../../src/pagination.ts'
import { requester } from '../../src/safeguards.ts'
import { type Binding, handle } from '../../src/routes.ts'
import { etagMatches, openPlaintext, parseRange, type Sealed, seal, UnreadableContent } from './content.ts'
import { assertLive, journalChange, trashElement } from './hierarchy.ts'
import { keyset } from './listing.ts'
import { cleanName, nameConflict } from './names.ts'
import { addUsage, allowance } from './storage.ts'
import { assertNameFreeInDossier, fichiersQuery, findFichier, LABELS, lockLive, toFichier } from './tree.ts'
import { addVersion, lockFileForVersion, receipt, toVersion, type UploadSettings, uploadNewFile, uploadNewVersion } from './upload.ts'
import { attachment } from '../../src/attachment.ts'

/** A live file's version `n` (its current one when null) with its wrapped key, or 404 naming what is missing. */
async function findVersion(db: Kysely<DB>, organisationId: string, fileId: string, n: number | null) {
  let query = db
    .selectFrom('fichiers as f')
    .innerJoin('versions_fichiers as v', 'v.fichier_id', 'f.id')
    .innerJoin('cles_chiffrement as k', 'k.id', 'v.cle_id')
    .selectAll('v')
    .select(['f.nom as fichier_nom', 'f.version_courante', 'k.cle_enveloppee', 'k.version_cle_maitre'])
    .where('f.id', '=', fileId)
    .where('f.organisation_id', '=', organisationId)
    .where('f.deleted_at', 'is', null)
  query = n === null ? query.whereRef('v.version_number', '=', 'f.version_courante') : query.where('v.version_number', '=', n)
  const row = await query.executeTakeFirst()
  if (!row) {
    if (n === null) throw new Errors.NOT_FOUND(LABELS.fichier)
    await findFichier(db, organisationId, fileId)
    throw new Errors.NOT_FOUND('Version')
  }
  return row
}

type FoundVersion = Awaited<ReturnType<typeof findVersion>>

/** A stored version that does not read back: CRITICAL in the journal, whoever noticed. */
function journalIntegrity(app: FastifyInstance, request: FastifyRequest, version: FoundVersion, error: Error, phase: string) {
  request.log.error({ err: error, version: version.id, blob: version.blob }, 'stored content failed its integrity check')
  return app.audit
    .recordAlone({
      ...actorOf(request),
      action: 'FILE_INTEGRITY_FAILED',
      target: { type: 'fichier', id: version.fichier_id, nom: version.fichier_nom },
      result: 'echec',
      details: { version_number: version.version_number, version_id: version.id, blob: version.blob, phase, erreur: error.message },
    })
    .catch((err: unknown) => request.log.error({ err }, 'could not journal an integrity failure'))
}

async function open(
  app: FastifyInstance,
  request: FastifyRequest,
  version: FoundVersion,
  range: { start: number; end: number } | null,
  phase: string,
) {
  try {
    const key = { id: version.cle_id, cle_enveloppee: version.cle_enveloppee, version_cle_maitre: version.version_cle_maitre }
    return await openPlaintext(app, version, key, range, (error) => {
      void journalIntegrity(app, request, version, error, `${phase} (en cours)`)
    })
  } catch (error) {
    if (!(error instanceof UnreadableContent)) throw error
    await journalIntegrity(app, request, version, error, phase)
    throw new Errors.INTEGRITY_ERROR()
  }
}

/**
 * Journals a download once per session, version and address within the window: the first
 * read opens the window and is journaled (who, which version, from where, its range); reads
 * that follow inside it, Range requests of a player or a resumed download, are only counted
 * in `lectures_journalisees`, without taking the chain's lock. A window of 0 journals each one.
 */
async function journalDownload(
  app: FastifyInstance,
  request: FastifyRequest,
  version: FoundVersion,
  range: { start: number; end: number } | null,
  windowSeconds: number,
): Promise<void> {
  const { organisationId, sessionId } = principalOf(request)
  const entry = {
    ...actorOf(request),
    action: 'FILE_DOWNLOADED' as const,
    target: { type: 'fichier' as const, id: version.fichier_id, nom: version.fichier_nom },
    details: {
      version_number: version.version_number,
      version_id: version.id,
      ...(range ? { plage: `${range.start}-${range.end}` } : {}),
      ...(windowSeconds > 0 ? { fenetre_s: windowSeconds } : {}),
    },
  }
  if (windowSeconds === 0) {
    await app.audit.recordAlone(entry)
    return
  }
  await app.db.transaction().execute(async (trx) => {
    // The row's lock orders a client's concurrent reads: one of them opens the window.
    const { rows } = await sql<{ lectures: number }>`
      insert into lectures_journalisees as l (session_id, version_id, ip, organisation_id, journalise_at, derniere_lecture_at)
      values (${sessionId}, ${version.id}, ${request.ip}, ${organisationId}, now(), now())
      on conflict (session_id, version_id, ip) do update set
        lectures = case when l.journalise_at <= now() - make_interval(secs => ${windowSeconds}) then 1 else l.lectures + 1 end,
        journalise_at = case when l.journalise_at <= now() - make_interval(secs => ${windowSeconds}) then now() else l.journalise_at end,
        derniere_lecture_at = now()
      returning l.lectures`.execute(trx)
    if (rows[0]?.lectures === 1) await app.audit.record(trx, entry)
  })
}

async function serveContent(
  app: FastifyInstance,
  request: FastifyRequest,
  reply: FastifyReply,
  settings: DownloadSettings,
  fileId: string,
  n: number | null,
) {
  const { organisationId } = principalOf(request)
  const version = await findVersion(app.db, organisationId, fileId, n)
  const etag = `"${version.sha256}"`
  reply.header('etag', etag).header('accept-ranges', 'bytes').header('cache-control', 'private, no-cache')
  if (etagMatches(request.headers['if-none-match'], etag)) return reply.code(304).send()
  const ifRange = request.headers['if-range']
  let range = ifRange === undefined || ifRange === etag ? parseRange(request.headers.range, version.taille) : null
  if (range === 'unsatisfiable') {
    reply.header('content-range', `bytes */${version.taille}`)
    throw new Errors.RANGE_NOT_SATISFIABLE()
  }
  if (range && range.start === 0 && range.end === version.taille - 1) range = null
  // Opened before any content header is set, so an INTEGRITY_ERROR problem goes out clean.
  const body = request.method === 'HEAD' ? null : await open(app, request, version, range, 'téléchargement')
  reply
    .type(version.type_mime)
    .header('content-disposition', attachment(version.fichier_nom))
    // A document is data, never a page of this origin, whatever type its uploader declared.
    .header('content-security-policy', "default-src 'none'; sandbox")
    .header('content-length', range ? range.end - range.start + 1 : version.taille)
  if (range) reply.code(206).header('content-range', `bytes ${range.start}-${range.end}/${version.taille}`)
  if (!body) return reply.send()
  try {
    await journalDownload(app, request, version, range, settings.downloadWindowSeconds)
  } catch (error) {
    body.destroy()
    throw error
  }
  return reply.send(body)
}

/**
 * A refused upload may leave its body unread, piped into the multipart parser that no longer
 * reads: the connection closes after the answer rather than hang with the client still sending.
 */
async function refusingUnreadBody<T>(request: FastifyRequest, reply: FastifyReply, upload: () => Promise<T>): Promise<T> {
  try {
    return await upload()
  } catch (error) {
    if (!request.raw.complete) reply.header('connection', 'close')
    throw error
  }
}

/**
 * Makes version `n` of a file its newest version again, as a fresh copy under a new key:
 * each version keeps its own key, and nothing is overwritten. Content that no longer matches
 * its recorded SHA-256 is refused with INTEGRITY_ERROR and journaled, and nothing is stored.
 */
async function restoreFileVersion(app: FastifyInstance, request: FastifyRequest, id: string, n: number, defaultQuota: number) {
  const { organisationId, userId } = principalOf(request)
  const source = await findVersion(app.db, organisationId, id, n)
  const guarded = { ...requester(request), object: { type: 'fichier' as const, id }, action: 'version' as const }
  await app.safeguards.assertMayChange(app.db, guarded)
  const quota = (await app.entitlements.assertMayAdd(app.db, organisationId, 'version')).storageQuota ?? defaultQuota
  const limit = await allowance(app.db, organisationId, quota)
  const plaintext = await open(app, request, source, null, 'restauration')
  let sealed: Sealed
  try {
    sealed = await seal(app, plaintext, limit)
  } catch (error) {
    // Already journaled by open()'s late-failure hook.
    if (error instanceof IntegrityError) throw new Errors.INTEGRITY_ERROR()
    throw error
  }
  try {
    if (sealed.sha256 !== source.sha256) {
      await journalIntegrity(app, request, source, new Error('restored content differs from its recorded SHA-256'), 'restauration')
      throw new Errors.INTEGRITY_ERROR()
    }
    await sealed.writer.commit()
  } catch (error) {
    await sealed.writer.abort()
    throw error
  }
  const storedAt = new Date()
  const added = await app.unitOfWork(async (trx) => {
    const current = await lockFileForVersion(trx, organisationId, id)
    await app.safeguards.assertMayChange(trx, guarded)
    const added = await addVersion(trx, sealed, current, { organisationId, typeMime: source.type_mime, userId, restoredFrom: n })
    await addUsage(trx, organisationId, sealed.size, quota)
    await app.audit.record(trx, {
      ...actorOf(request),
      action: 'FILE_VERSION_RESTORED',
      target: { type: 'fichier', id, nom: current.nom },
      details: { depuis: n, version_number: added.version.version_number, version_id: added.version.id, sha256: added.version.sha256 },
    })
    return added
  }, app.blobs.writtenAhead(sealed.writer.name))
  return { ...added, storedAt }
}

export interface DownloadSettings {
  /** A session's downloads of a version, from one address, are journaled once per this many seconds. */
  downloadWindowSeconds: number
}

/** Forgets download windows long closed: an hour past the window, a row only takes room. */
export async function purgeDownloadWindows(app: FastifyInstance, windowSeconds: number): Promise<number> {
  const result = await app.db
    .deleteFrom('lectures_journalisees')
    .where('journalise_at', '<', sql<Date>`now() - make_interval(secs => ${windowSeconds + 3600})`)
    .executeTakeFirst()
  return Number(result.numDeletedRows)
}

/** One page of a live dossier's files. */
async function filesOfDossier(db: Kysely<DB>, organisationId: string, dossierId: string, query: FileListQuery) {
  await assertLive(db, 'dossier', organisationId, dossierId)
  return keyset('f', query).page(fichiersQuery(db, organisationId).where('f.dossier_id', '=', dossierId), toFichier)
}

/** Renames and/or moves a file to another live dossier, journaled last. */
async function changeFichier(app: FastifyInstance, request: FastifyRequest, id: string, change: { nom?: string; dossier_id?: string }): Promise<void> {
  const { organisationId } = principalOf(request)
  await app.db.transaction().execute(async (trx) => {
    const current = await lockLive(trx, 'fichier', organisationId, id)
    const nom = change.nom === undefined ? current.nom : cleanName(change.nom)
    const from = current.dossier_id!
    const to = change.dossier_id ?? from
    await lockLive(trx, 'dossier', organisationId, to)
    await assertNameFreeInDossier(trx, organisationId, to, nom, 'dossiers')
    const guarded = { ...requester(request), object: { type: 'fichier' as const, id } }
    if (nom !== current.nom) await app.safeguards.assertMayChange(trx, { ...guarded, action: 'rename' })
    if (to !== from) await app.safeguards.assertMayChange(trx, { ...guarded, action: 'move', destination: { type: 'dossier', id: to } })
    await trx
      .updateTable('fichiers')
      .set({ nom, dossier_id: to, updated_at: sql`now()` })
      .where('id', '=', id)
      .execute()
      .catch((error: unknown) => nameConflict(error, nom))
    await journalChange(app, trx, request, { type: 'fichier', id }, {
      from: current.nom,
      to: nom,
      ...(to !== from ? { movedFrom: { dossier_id: from }, movedTo: { dossier_id: to } } : {}),
    })
  })
}

/** One page of a live file's versions, newest first. */
async function versionsOf(db: Kysely<DB>, organisationId: string, id: string, { limit, cursor }: PageQuery) {
  const file = await findFichier(db, organisationId, id)
  let query = db
    .selectFrom('versions_fichiers')
    .selectAll()
    .where('fichier_id', '=', file.id)
    .where('organisation_id', '=', organisationId)
  if (cursor) {
    const [before] = decodeCursor<[number]>(cursor, ['int32'])
    query = query.where('version_number', '<', before)
  }
  const rows = await query.orderBy('version_number', 'desc').limit(limit + 1).execute()
  return page(rows, limit, (row) => toVersion(row, file.version_courante), (row) => [row.version_number])
}

/** Journals that a device deleted its local copy of version `n`, refused when its checksum is not that version's. */
async function recordLocalDeletion(app: FastifyInstance, request: FastifyRequest, id: string, n: number, report: { appareil: string; sha256: string }) {
  const { appareil } = report
  const sha256 = report.sha256.toLowerCase()
  const version = await findVersion(app.db, principalOf(request).organisationId, id, n)
  const actor = actorOf(request)
  const target = { type: 'fichier' as const, id, nom: version.fichier_nom }
  const details = { version_number: n, version_id: version.id, appareil, sha256 }
  if (sha256 !== version.sha256) {
    await app.audit.recordAlone({ ...actor, action: 'FILE_LOCAL_DELETION', target, result: 'refus', details: { ...details, attendu: version.sha256 } })
    throw new Errors.CHECKSUM_MISMATCH()
  }
  const entry = await app.db.transaction().execute((trx) => app.audit.record(trx, { ...actor, action: 'FILE_LOCAL_DELETION', target, details }))
  return { fichier_id: id, version_number: n, appareil, sha256: version.sha256, enregistree_le: entry.created_at.toISOString() }
}

export function fileBindings(app: FastifyInstance, settings: UploadSettings & DownloadSettings): Binding[] {
  const { db } = app
  const organisationOf = (request: FastifyRequest) => principalOf(request).organisationId
  return [
    handle(uploadFichier, async (request, reply) =>
      reply.code(201).send(await refusingUnreadBody(request, reply, () => uploadNewFile(app, request, settings))),
    ),

    handle(uploadVersion, async (request, reply) =>
      reply.code(201).send(await refusingUnreadBody(request, reply, () => uploadNewVersion(app, request, settings))),
    ),

    handle(listFichiers, async (request) => filesOfDossier(db, organisationOf(request), request.params.id, request.query)),

    handle(getFichier, async (request) => findFichier(db, organisationOf(request), request.params.id)),

    handle(updateFichier, async (request) => {
      await changeFichier(app, request, request.params.id, request.body)
      return findFichier(db, organisationOf(request), request.params.id)
    }),

    handle(deleteFichier, async (request, reply) => {
      await trashElement(app, request, 'fichier', request.params.id, false)
      return reply.code(204).send(null)
    }),

    handle(downloadFichier, async (request, reply) => serveContent(app, request, reply, settings, request.params.id, null)),

    handle(downloadVersion, async (request, reply) => serveContent(app, request, reply, settings, request.params.id, request.params.n)),

    handle(listVersions, async (request) => versionsOf(db, organisationOf(request), request.params.id, request.query)),

    handle(restoreVersion, async (request, reply) => {
      const { id, n } = request.params
      const { fichier, version, storedAt } = await restoreFileVersion(app, request, id, n, settings.quota)
      return reply.code(201).send(receipt(fichier, version, storedAt, false))
    }),

    handle(reportLocalDeletion, async (request) => recordLocalDeletion(app, request, request.params.id, request.params.n, request.body)),
  ]
}
