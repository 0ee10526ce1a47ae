import type { FastifyInstance } from 'fastify'
import { sql, type Transaction } from 'kysely'
import type { DB } from '../../db/types.ts'
import { Errors } from '../../src/errors.ts'
import { releaseUsage } from './storage.ts'

export interface ShreddedVersion {
  id: string
  version_number: number
  nom: string
  type_mime: string
  taille: number
  sha256: string
  blob: string
  cle_id: string
  created_at: Date
}

export interface ShreddedFile {
  id: string
  nom: string
  versions: ShreddedVersion[]
  bytes: number
}

/**
 * Destroys one file, live or in the trash, in the caller's transaction: every version's data
 * key is destroyed (crypto-shredding), the file's rows go, its bytes leave the quota. Once the
 * transaction commits, its blobs are unreadable noise for `removeShreddedBlobs`. The caller
 * journals and has asked the safeguards first.
 */
export async function shredFile(trx: Transaction<DB>, organisationId: string, fileId: string, userId: string | null): Promise<ShreddedFile> {
  const { rows } = await sql<{ id: string; nom: string }>`select id, nom from fichiers
    where id = ${fileId} and organisation_id = ${organisationId} for update`.execute(trx)
  const file = rows[0]
  if (!file) throw new Errors.NOT_FOUND('Fichier')
  const versions = await trx
    .selectFrom('versions_fichiers')
    .select(['id', 'version_number', 'nom', 'type_mime', 'taille', 'sha256', 'blob', 'cle_id', 'created_at'])
    .where('fichier_id', '=', fileId)
    .where('organisation_id', '=', organisationId)
    .orderBy('version_number')
    .execute()
  if (versions.length > 0) {
    await trx
      .updateTable('cles_chiffrement')
      .set({ cle_enveloppee: null, detruite_at: sql`now()`, detruite_par: userId })
      .where(sql<boolean>`id = any(${versions.map((v) => v.cle_id)}::uuid[])`)
      .execute()
  }
  await trx.deleteFrom('fichiers').where('id', '=', fileId).execute()
  const bytes = versions.reduce((sum, v) => sum + v.taille, 0)
  await releaseUsage(trx, organisationId, bytes)
  return { id: file.id, nom: file.nom, versions, bytes }
}

/** Removes the blobs of a shredded file once its transaction has committed. */
export async function removeShreddedBlobs(app: FastifyInstance, file: ShreddedFile): Promise<void> {
  for (const version of file.versions) {
    // The key is gone already; a blob left behind by a failure here is unreadable noise.
    await app.blobs.delete(version.blob).catch((err: unknown) => app.log.warn({ err, blob: version.blob }, 'could not remove a shredded blob'))
  }
}
