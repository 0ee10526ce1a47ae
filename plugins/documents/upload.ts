import type { FastifyInstance, FastifyRequest } from 'fastify'
import { sql, type Transaction } from 'kysely'
import type { ReceiptDto, uploadFichier, uploadVersion, VersionDto } from '../../openapi/documents-fichiers.ts'
import type { DB } from '../../db/types.ts'
import type { VersionRow } from '../../db/tables/documents.ts'
import { actorOf } from '../../src/audit.ts'
import { principalOf } from '../../src/auth.ts'
import { Errors } from '../../src/errors.ts'
import { type GuardRequest, requester } from '../../src/safeguards.ts'
import type { TypedRequest } from '../../src/routes.ts'
import { ALGORITHM, cleanMimeType, FORMAT, type Sealed, seal } from './content.ts'
import { cleanName, invalidField, nameConflict } from './names.ts'
import { addUsage, allowance } from './storage.ts'
import { assertNameFreeInDossier, type FichierFields, LABELS, lockLive, toFichier } from './tree.ts'

export interface UploadSettings {
  quota: number
}

const SHA256 = /^[0-9a-f]{64}$/

export function toVersion(row: Pick<VersionRow, 'id' | 'fichier_id' | 'version_number' | 'nom' | 'type_mime' | 'taille' | 'sha256' | 'restauree_depuis' | 'restauree_de_sauvegarde' | 'created_by' | 'created_at'>, current: number): VersionDto {
  return {
    id: row.id,
    fichier_id: row.fichier_id,
    version_number: row.version_number,
    nom: row.nom,
    type_mime: row.type_mime,
    taille: row.taille,
    sha256: row.sha256,
    courante: row.version_number === current,
    restauree_depuis: row.restauree_depuis,
    restauree_de_sauvegarde: row.restauree_de_sauvegarde,
    created_by: row.created_by,
    created_at: row.created_at.toISOString(),
  }
}

interface VersionFields {
  organisationId: string
  fichierId: string
  versionNumber: number
  nom: string
  typeMime: string
  userId: string | null
  restoredFrom?: number
  /** The backup a restore brought the content back from. */
  restoredFromBackup?: string
}

function keyValues(sealed: Sealed, row: VersionFields) {
  return {
    id: sealed.keyId,
    organisation_id: row.organisationId,
    fichier_id: row.fichierId,
    version_id: sealed.versionId,
    algorithme: ALGORITHM,
    cle_enveloppee: sealed.key.wrapped,
    version_cle_maitre: sealed.key.masterKeyVersion,
  }
}

function versionValues(sealed: Sealed, row: VersionFields) {
  return {
    id: sealed.versionId,
    organisation_id: row.organisationId,
    fichier_id: row.fichierId,
    version_number: row.versionNumber,
    nom: row.nom,
    type_mime: row.typeMime,
    taille: sealed.size,
    sha256: sealed.sha256,
    blob: sealed.writer.name,
    taille_chiffree: sealed.encryptedSize,
    format: FORMAT,
    nonce_prefixe: sealed.noncePrefix,
    cle_id: sealed.keyId,
    restauree_depuis: row.restoredFrom ?? null,
    restauree_de_sauvegarde: row.restoredFromBackup ?? null,
    created_by: row.userId,
  }
}

/** Writes the key and version rows of sealed content; the caller has locked the file. */
export async function insertVersion(trx: Transaction<DB>, sealed: Sealed, row: VersionFields): Promise<VersionRow> {
  await trx.insertInto('cles_chiffrement').values(keyValues(sealed, row)).execute()
  return trx.insertInto('versions_fichiers').values(versionValues(sealed, row)).returningAll().executeTakeFirstOrThrow()
}

/** insertVersion for many, in two statements: a restore writes thousands. */
export async function insertVersions(trx: Transaction<DB>, versions: { sealed: Sealed; row: VersionFields }[]): Promise<void> {
  if (versions.length === 0) return
  await trx.insertInto('cles_chiffrement').values(versions.map((v) => keyValues(v.sealed, v.row))).execute()
  await trx.insertInto('versions_fichiers').values(versions.map((v) => versionValues(v.sealed, v.row))).execute()
}

/** The live file a new version goes to, locked so that two versions added at once are numbered one after the other. */
export async function lockFileForVersion(trx: Transaction<DB>, organisationId: string, id: string): Promise<{ id: string; nom: string; version_courante: number }> {
  const current = await trx
    .selectFrom('fichiers')
    .select(['id', 'nom', 'version_courante'])
    .where('id', '=', id)
    .where('organisation_id', '=', organisationId)
    .where('deleted_at', 'is', null)
    .forNoKeyUpdate()
    .executeTakeFirst()
  if (!current) throw new Errors.NOT_FOUND(LABELS.fichier)
  return current
}

/** Makes a new current version of a file from sealed content; the caller has locked the file. */
export async function addVersion(
  trx: Transaction<DB>,
  sealed: Sealed,
  file: { id: string; nom: string; version_courante: number },
  row: { organisationId: string; typeMime: string; userId: string | null; restoredFrom?: number; restoredFromBackup?: string },
): Promise<{ fichier: FichierFields; version: VersionRow }> {
  const versionNumber = file.version_courante + 1
  const fichier = await trx
    .updateTable('fichiers')
    .set({ type_mime: row.typeMime, taille: sealed.size, sha256: sealed.sha256, version_courante: versionNumber, updated_at: sql`now()` })
    .where('id', '=', file.id)
    .returningAll()
    .executeTakeFirstOrThrow()
  const version = await insertVersion(trx, sealed, { ...row, fichierId: file.id, versionNumber, nom: file.nom })
  return { fichier, version }
}

export function receipt(
  fichier: FichierFields,
  version: VersionRow,
  storedAt: Date,
  deleteAfterUpload: boolean,
): ReceiptDto {
  return {
    fichier: toFichier(fichier),
    version: toVersion(version, fichier.version_courante),
    sha256: version.sha256,
    taille: version.taille,
    stocke_le: storedAt.toISOString(),
    ...(deleteAfterUpload ? { suppression_locale: { autorisee: true as const, sha256: version.sha256 } } : {}),
  }
}

export interface Received {
  sealed: Sealed
  /** From the `nom` field, else the part's file name; '' when `named` is false. */
  nom: string
  typeMime: string
  deleteAfterUpload: boolean
  storedAt: Date
}

/**
 * Reads a multipart upload: text fields before or after the one file part, named `fichier`,
 * whose content is sealed as it streams. With `named`, the upload names a new file (its `nom`
 * field, else the part's file name) and, when `nom` precedes the file part, `beforeContent`
 * checks that name before any byte is stored; otherwise the name is checked once all parts
 * are read. The blob is committed
 * (durable) on return; whatever fails before leaves nothing behind.
 */
export async function receive(
  app: FastifyInstance,
  request: FastifyRequest,
  opts: {
    limit: { bytes: number; quota: number } | null
    deleteAfterUpload: boolean
    named: boolean
    beforeContent?: (nom: string) => Promise<void>
    onStarted: () => void
  },
): Promise<Received> {
  if (!request.isMultipart()) throw new Errors.UNSUPPORTED_MEDIA_TYPE(request.headers['content-type'] ?? 'aucun')
  const fields = new Map<string, string>()
  let sealed: Sealed | null = null
  let filename = ''
  let mimetype: string | undefined
  const name = () => (opts.named ? cleanName(fields.get('nom') ?? filename, fields.has('nom') ? 'body.nom' : 'body.fichier') : '')
  try {
    for await (const part of request.parts()) {
      if (part.type === 'field') {
        if (part.fieldname === 'fichier') throw invalidField('body.fichier', 'la partie « fichier » doit être un fichier')
        fields.set(part.fieldname, String(part.value))
        continue
      }
      if (part.fieldname !== 'fichier') throw invalidField(`body.${part.fieldname}`, 'seule la partie « fichier » porte un contenu')
      if (sealed) throw invalidField('body.fichier', 'un seul fichier par dépôt')
      filename = part.filename
      mimetype = part.mimetype
      // A `nom` may still follow the file part and win over its file name: the name is known,
      // and checked before the content, only when `nom` came first.
      if (fields.has('nom')) await opts.beforeContent?.(name())
      opts.onStarted()
      sealed = await seal(app, part.file, opts.limit)
    }
    if (!sealed) throw invalidField('body.fichier', 'la partie « fichier » manque')
    const nom = name()
    const header = request.headers['x-checksum-sha256']
    const expected = [typeof header === 'string' ? header : undefined, fields.get('sha256')]
      .filter((v): v is string => v !== undefined)
      .map((v) => v.trim().toLowerCase())
    for (const value of expected) {
      if (!SHA256.test(value)) throw invalidField('body.sha256', 'empreinte SHA-256 hexadécimale attendue')
      if (value !== sealed.sha256) throw new Errors.CHECKSUM_MISMATCH()
    }
    const flag = fields.get('delete_after_upload')
    if (flag !== undefined && flag !== 'true' && flag !== 'false') throw invalidField('body.delete_after_upload', 'true ou false')
    await sealed.writer.commit()
    return { sealed, nom, typeMime: cleanMimeType(mimetype), deleteAfterUpload: opts.deleteAfterUpload || flag === 'true', storedAt: new Date() }
  } catch (error) {
    await sealed?.writer.abort()
    throw error
  }
}

/** Journals an upload that failed once content had started to arrive. */
function journalFailure(app: FastifyInstance, request: FastifyRequest, target: { id: string | null; nom?: string }, error: unknown) {
  const code = (error as { code?: string }).code ?? 'ABORTED'
  return app.audit
    .recordAlone({
      ...actorOf(request),
      action: 'FILE_UPLOADED',
      target: { type: 'fichier', ...target },
      result: 'echec',
      details: { raison: code, client_deconnecte: request.raw.destroyed },
    })
    .catch((err: unknown) => request.log.warn({ err }, 'could not journal a failed upload'))
}

/**
 * What is asked before the content is read (and again under the lock): the safeguards and the
 * plan. Answers the quota (the plan's replaces the configured default; a read-only subscription
 * adds nothing) and the bytes it still allows.
 */
async function admit(app: FastifyInstance, request: FastifyRequest, guarded: GuardRequest, addition: 'fichier' | 'version', settings: UploadSettings) {
  const { organisationId } = principalOf(request)
  await app.safeguards.assertMayChange(app.db, guarded)
  const quota = (await app.entitlements.assertMayAdd(app.db, organisationId, addition)).storageQuota ?? settings.quota
  return { quota, limit: await allowance(app.db, organisationId, quota) }
}

/** `receive`, a failure journaled against `target` once the content started. */
async function receiveJournaled(
  app: FastifyInstance,
  request: FastifyRequest,
  target: { id: string | null; nom?: string },
  opts: Omit<Parameters<typeof receive>[2], 'onStarted'>,
): Promise<Received> {
  let started = false
  try {
    return await receive(app, request, { ...opts, onStarted: () => (started = true) })
  } catch (error) {
    if (started) await journalFailure(app, request, target, error)
    throw error
  }
}

/** POST /dossiers/{id}/fichiers: a new file in a folder. */
export async function uploadNewFile(
  app: FastifyInstance,
  request: TypedRequest<typeof uploadFichier.schema>,
  settings: UploadSettings,
): Promise<ReceiptDto> {
  const { organisationId, userId } = principalOf(request)
  const folderId = request.params.id
  const { db } = app
  const folder = await db
    .selectFrom('dossiers')
    .select('id')
    .where('id', '=', folderId)
    .where('organisation_id', '=', organisationId)
    .where('deleted_at', 'is', null)
    .executeTakeFirst()
  if (!folder) throw new Errors.NOT_FOUND(LABELS.dossier)
  // Asked before the content is read, and again under the folder's lock.
  const guarded = { ...requester(request), object: { type: 'dossier' as const, id: folderId }, action: 'add' as const }
  const { quota, limit } = await admit(app, request, guarded, 'fichier', settings)
  const received = await receiveJournaled(app, request, { id: null }, {
    limit,
    deleteAfterUpload: request.query.delete_after_upload,
    named: true,
    // Refuses a name already taken before a possibly large content is read in vain.
    beforeContent: async (nom) => {
      const taken = await sql`select 1 from fichiers
          where dossier_id = ${folderId} and organisation_id = ${organisationId} and lower(nom) = lower(${nom}) and deleted_at is null
        union all select 1 from dossiers
          where parent_id = ${folderId} and organisation_id = ${organisationId} and lower(nom) = lower(${nom}) and deleted_at is null`.execute(db)
      if (taken.rows.length > 0) throw new Errors.NAME_CONFLICT(nom)
    },
  })
  const { sealed, nom, typeMime } = received
  try {
    const { fichier, version } = await app.unitOfWork(async (trx) => {
      await lockLive(trx, 'dossier', organisationId, folderId)
      await app.safeguards.assertMayChange(trx, guarded)
      await assertNameFreeInDossier(trx, organisationId, folderId, nom, 'dossiers')
      const fichier = await trx
        .insertInto('fichiers')
        .values({
          organisation_id: organisationId,
          dossier_id: folderId,
          nom,
          type_mime: typeMime,
          taille: sealed.size,
          sha256: sealed.sha256,
          version_courante: 1,
          created_by: userId,
        })
        .returningAll()
        .executeTakeFirstOrThrow()
        .catch((error: unknown) => nameConflict(error, nom))
      const version = await insertVersion(trx, sealed, { organisationId, fichierId: fichier.id, versionNumber: 1, nom, typeMime, userId })
      await addUsage(trx, organisationId, sealed.size, quota)
      await app.audit.record(trx, {
        ...actorOf(request),
        action: 'FILE_UPLOADED',
        target: { type: 'fichier', id: fichier.id, nom },
        details: { dossier_id: folderId, version_number: 1, version_id: version.id, taille: version.taille, sha256: version.sha256 },
      })
      return { fichier, version }
    }, app.blobs.writtenAhead(sealed.writer.name))
    return receipt(fichier, version, received.storedAt, received.deleteAfterUpload)
  } catch (error) {
    await journalFailure(app, request, { id: null, nom }, error)
    throw error
  }
}

/** POST /fichiers/{id}/version: new content for an existing file. */
export async function uploadNewVersion(
  app: FastifyInstance,
  request: TypedRequest<typeof uploadVersion.schema>,
  settings: UploadSettings,
): Promise<ReceiptDto> {
  const { organisationId, userId } = principalOf(request)
  const fileId = request.params.id
  const { db } = app
  const file = await db
    .selectFrom('fichiers')
    .select(['id', 'nom'])
    .where('id', '=', fileId)
    .where('organisation_id', '=', organisationId)
    .where('deleted_at', 'is', null)
    .executeTakeFirst()
  if (!file) throw new Errors.NOT_FOUND(LABELS.fichier)
  const guarded = { ...requester(request), object: { type: 'fichier' as const, id: fileId }, action: 'version' as const }
  const { quota, limit } = await admit(app, request, guarded, 'version', settings)
  const received = await receiveJournaled(app, request, file, { limit, deleteAfterUpload: request.query.delete_after_upload, named: false })
  const { sealed, typeMime } = received
  try {
    const { fichier, version } = await app.unitOfWork(async (trx) => {
      const current = await lockFileForVersion(trx, organisationId, fileId)
      await app.safeguards.assertMayChange(trx, guarded)
      const added = await addVersion(trx, sealed, current, { organisationId, typeMime, userId })
      await addUsage(trx, organisationId, sealed.size, quota)
      await app.audit.record(trx, {
        ...actorOf(request),
        action: 'FILE_VERSION_ADDED',
        target: { type: 'fichier', id: fileId, nom: current.nom },
        details: {
          version_number: added.version.version_number,
          version_id: added.version.id,
          taille: added.version.taille,
          sha256: added.version.sha256,
        },
      })
      return added
    }, app.blobs.writtenAhead(sealed.writer.name))
    return receipt(fichier, version, received.storedAt, received.deleteAfterUpload)
  } catch (error) {
    await journalFailure(app, request, file, error)
    throw error
  }
}
