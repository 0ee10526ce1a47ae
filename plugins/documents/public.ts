/**
 * What other domains may use of the documents domain: nothing else of it is imported from
 * outside (eslint.config.js says so). Every function takes the executor first and is scoped
 * to one organisation: another organisation's object is not found.
 */
import type { Readable } from 'node:stream'
import type { FastifyInstance } from 'fastify'
import { type Kysely, sql, type Transaction } from 'kysely'
import type { DB } from '../../db/types.ts'
import { Errors } from '../../src/errors.ts'
import { openPlaintext } from './content.ts'
import { type Actor, type PurgeResult, purgeElement } from './trash.ts'
import { findArmoire, findCasier, findDossier, findFichier, type Kind, LABELS, lockLive } from './tree.ts'

export type { Actor, Kind, PurgeResult }
export { ALGORITHM, etagMatches, keyAad, openPlaintext, parseRange, seal, UnreadableContent } from './content.ts'
export type { Sealed } from './content.ts'
export { exportTree, versionExists } from './export.ts'
export type { ExportedContainer, ExportedFile, ExportedTree, ExportedVersion, ExportTarget } from './export.ts'
export { removeShreddedBlobs, type ShreddedFile, shredFile } from './shredding.ts'
export { addUsage, allowance, usage, usageQuery } from './storage.ts'
export { restore as restoreFromTrash } from './trash.ts'
export { appendVersion, freeName, idFree, insertContainer, insertFiles, liveChildNamed, locate } from './import.ts'
export type { ImportedVersion, Located, NewFile, Parent } from './import.ts'

export interface LiveObject {
  kind: Kind
  id: string
  nom: string
}

const FINDERS = { armoire: findArmoire, casier: findCasier, dossier: findDossier, fichier: findFichier }

/** A live (not trashed) armoire, casier, dossier or fichier of the organisation, or 404. */
export async function findLiveObject(db: Kysely<DB>, organisationId: string, kind: Kind, id: string): Promise<LiveObject> {
  const { nom } = await FINDERS[kind](db, organisationId, id)
  return { kind, id, nom }
}

/**
 * Locks a live object of the organisation until the transaction ends, or answers 404: `share`
 * keeps it (and its children's writers wait), `exclusive` is for what removes or replaces it.
 */
export async function lockLiveObject(
  trx: Transaction<DB>,
  organisationId: string,
  kind: Kind,
  id: string,
  mode: 'share' | 'exclusive' = 'share',
): Promise<LiveObject> {
  const { nom } = await lockLive(trx, kind, organisationId, id, mode)
  return { kind, id, nom }
}

/**
 * Sets the organisation's storage quota in bytes (0: unlimited; null: back to the instance's
 * default). What is already stored stays; uploads beyond the quota are refused from then on.
 */
export async function setStorageQuota(trx: Transaction<DB>, organisationId: string, bytes: number | null): Promise<void> {
  await trx
    .insertInto('stockage_organisations')
    .values({ organisation_id: organisationId, stockage_utilise: 0, quota_octets: bytes })
    .onConflict((oc) => oc.column('organisation_id').doUpdateSet({ quota_octets: bytes, updated_at: sql`now()` }))
    .execute()
}

/**
 * Destroys a trashed object and everything below it in the caller's unit of work: every data
 * key of every version is destroyed in its transaction (crypto-shredding) and journaled, the
 * blobs removed once it commits. 404 unless the object is at the top of a trash entry.
 */
export function purgeFromTrash(trx: Transaction<DB>, app: FastifyInstance, kind: Kind, id: string, actor: Actor): Promise<PurgeResult> {
  return purgeElement(trx, app, kind, id, actor)
}

export interface VersionContent {
  fichierId: string
  versionNumber: number
  nom: string
  typeMime: string
  taille: number
  sha256: string
  createdAt: Date
  /** The plaintext, decrypted and authenticated segment by segment as it is read. */
  stream: Readable
}

/**
 * The plaintext of one version of the organisation's files, trashed or not. Rejects with
 * UnreadableContent when the content does not read back (key destroyed, blob missing or
 * altered), STORAGE_UNAVAILABLE when the blob store cannot be reached; a failure later in the
 * stream is an error of the stream.
 */
export async function openVersionContent(db: Kysely<DB>, app: FastifyInstance, organisationId: string, versionId: string): Promise<VersionContent> {
  const row = await db
    .selectFrom('versions_fichiers as v')
    .innerJoin('cles_chiffrement as k', 'k.id', 'v.cle_id')
    .select(['v.id', 'v.fichier_id', 'v.version_number', 'v.nom', 'v.type_mime', 'v.taille', 'v.sha256', 'v.blob', 'v.created_at'])
    .select(['k.id as cle_id', 'k.cle_enveloppee', 'k.version_cle_maitre'])
    .where('v.id', '=', versionId)
    .where('v.organisation_id', '=', organisationId)
    .executeTakeFirst()
  if (!row) throw new Errors.NOT_FOUND('Version')
  const key = { id: row.cle_id, cle_enveloppee: row.cle_enveloppee, version_cle_maitre: row.version_cle_maitre }
  const stream = await openPlaintext(app, row, key, null, () => {})
  return {
    fichierId: row.fichier_id,
    versionNumber: row.version_number,
    nom: row.nom,
    typeMime: row.type_mime,
    taille: row.taille,
    sha256: row.sha256,
    createdAt: row.created_at,
    stream,
  }
}

/** The organisation's armoires out of the trash (what a plan's armoires quota counts). */
export async function armoireCount(db: Kysely<DB>, organisationId: string): Promise<number> {
  const { n } = await db
    .selectFrom('armoires')
    .select((eb) => eb.fn.countAll<string>().as('n'))
    .where('organisation_id', '=', organisationId)
    .where('deleted_at', 'is', null)
    .executeTakeFirstOrThrow()
  return Number(n)
}

/** The label of a kind, as problems name it (`Armoire`, `Fichier`…). */
export const kindLabel = (kind: Kind): string => LABELS[kind]
