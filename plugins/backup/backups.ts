import { createHash } from 'node:crypto'
import { crc32 } from 'node:zlib'
import { pipeline } from 'node:stream/promises'
import { Writable } from 'node:stream'
import {
  createSauvegarde,
  deleteSauvegarde,
  downloadSauvegarde,
  getSauvegarde,
  listSauvegardes,
  verifySauvegarde,
  type VerificationDto,
} from '../../openapi/backup.ts'
import type { SauvegardeRow } from '../../db/tables/backup.ts'
import { actorOf, type AuditEntry } from '../../src/audit.ts'
import { principalOf } from '../../src/auth.ts'
import { createDecryptStream, decryptRange } from '../../src/crypto/segmented.ts'
import { Errors } from '../../src/errors.ts'
import { newestFirst } from '../../src/pagination.ts'
import { requester } from '../../src/safeguards.ts'
import { type Binding, handle } from '../../src/routes.ts'
import { etagMatches, exportTree, keyAad, parseRange } from '../documents/public.ts'
import { type Manifest, MANIFEST, planArchive } from './archive.ts'
import { entries, openArchive } from './reader.ts'
import { findSauvegarde, lockSauvegarde, shredKey, toSauvegarde } from './repository.ts'
import { type BackupContext, archiveAllowance, coveredBy, nextRank, summarise, targetName, targetOf } from './run.ts'
import { attachment } from '../../src/attachment.ts'

type AuditActor = Pick<AuditEntry, 'organisationId' | 'userId' | 'ip' | 'userAgent'> & { organisationId: string }

export const BACKUP_QUEUE = 'backup.run'

/** The archive's data key, unwrapped; the caller zeroes it. */
export async function archiveKey(ctx: BackupContext, row: SauvegardeRow): Promise<Buffer> {
  if (row.statut !== 'terminee' || !row.cle_id || !row.chemin) throw new Errors.BACKUP_NOT_READY(`elle est ${row.statut.replace('_', ' ')}`)
  const key = await ctx.app.db.selectFrom('cles_chiffrement').select(['cle_enveloppee', 'version_cle_maitre']).where('id', '=', row.cle_id).executeTakeFirst()
  if (!key?.cle_enveloppee) throw new Errors.BACKUP_NOT_READY('sa clé a été détruite')
  return ctx.app.keys.unwrap(key.cle_enveloppee, key.version_cle_maitre, keyAad(row.cle_id))
}

/**
 * Reads an archive back through the decryption: its SHA-256 and size against the record,
 * then, through random access, every entry's CRC-32 and every version's SHA-256 and size
 * against the manifest. Answers what does not match; never throws for a damaged archive.
 */
export async function checkArchive(ctx: BackupContext, row: SauvegardeRow, key: Buffer): Promise<{ erreurs: string[]; entrees: number; fichiers: number; manifest: Manifest | null }> {
  const erreurs: string[] = []
  const hash = createHash('sha256')
  let size = 0
  try {
    await pipeline(
      await ctx.store.read(row.chemin!),
      createDecryptStream({ key, aad: row.id }),
      new Writable({
        write(chunk: Buffer, _encoding, callback) {
          size += chunk.length
          hash.update(chunk)
          callback()
        },
      }),
    )
  } catch (error) {
    return { erreurs: [`l’archive chiffrée ne se déchiffre pas intacte (${(error as Error).message})`], entrees: 0, fichiers: 0, manifest: null }
  }
  if (size !== Number(row.taille)) erreurs.push(`taille ${size} au lieu de ${row.taille}`)
  if (hash.digest('hex') !== row.sha256) erreurs.push('le SHA-256 de l’archive ne correspond pas')
  if (erreurs.length > 0) return { erreurs, entrees: 0, fichiers: 0, manifest: null }

  const zip = await openArchive({ store: ctx.store, blob: row.chemin!, key, aad: row.id, size })
  let entrees = 0
  let fichiers = 0
  let manifest: Manifest | null = null
  try {
    const sums = new Map<string, { sha256: string; size: number }>()
    for await (const entry of entries(zip)) {
      if (entry.fileName.endsWith('/')) continue
      const stream = await zip.openReadStreamPromise(entry)
      const digest = createHash('sha256')
      let crc = 0
      let length = 0
      const chunks: Buffer[] = []
      for await (const chunk of stream as AsyncIterable<Buffer>) {
        crc = crc32(chunk, crc)
        digest.update(chunk)
        length += chunk.length
        if (entry.fileName === MANIFEST) chunks.push(chunk)
      }
      entrees++
      if (crc !== entry.crc32) erreurs.push(`CRC-32 incorrect pour « ${entry.fileName} »`)
      if (entry.fileName === MANIFEST) manifest = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Manifest
      else sums.set(entry.fileName, { sha256: digest.digest('hex'), size: length })
    }
    if (!manifest) {
      erreurs.push('manifest.json manque')
    } else {
      for (const file of manifest.fichiers) {
        for (const version of file.versions) {
          const found = sums.get(version.entree)
          if (!found) erreurs.push(`« ${version.entree} » manque`)
          else if (found.sha256 !== version.sha256 || found.size !== version.taille) erreurs.push(`le contenu de « ${version.entree} » ne correspond pas au manifeste`)
          else fichiers++
        }
      }
    }
  } catch (error) {
    erreurs.push(`archive illisible (${(error as Error).message})`)
  } finally {
    zip.close()
  }
  return { erreurs, entrees, fichiers, manifest }
}

export interface BackupRequest {
  type: SauvegardeRow['type']
  cibleId: string | null
  versions: SauvegardeRow['versions']
  declencheur: SauvegardeRow['declencheur']
  planificationId: string | null
}

/**
 * Records a backup `en_attente` and queues its job, journaled: the target must be a live
 * element of the organisation (404) and its archive must fit the quota (409) — both checked
 * on a snapshot now, and again by the job.
 */
export async function requestBackup(ctx: BackupContext, actor: AuditActor, req: BackupRequest): Promise<SauvegardeRow> {
  const { app } = ctx
  const { organisationId, userId } = actor
  const { type, cibleId, versions } = req
  if ((type === 'systeme') !== (cibleId === null)) {
    throw new Errors.INVALID_TARGET(type === 'systeme' ? 'une sauvegarde système ne prend pas de cible_id' : 'cible_id est requis pour ce type')
  }
  const probe = { type, cible_id: cibleId, created_by: userId, created_at: new Date() }
  const tree = await exportTree(app.db, organisationId, targetOf(probe), versions === 'toutes')
  const plan = planArchive(tree, {
    organisation_id: organisationId,
    sauvegarde: { id: '', type, cible_id: cibleId, versions, created_by: userId, created_at: probe.created_at.toISOString() },
  })
  await archiveAllowance(ctx, organisationId, plan.estimatedSize)
  return app.unitOfWork(async (trx) => {
    const contenu = summarise(probe, tree, await nextRank(trx, organisationId, type, cibleId))
    const created = await trx
      .insertInto('sauvegardes')
      .values({
        organisation_id: organisationId,
        type,
        cible_id: cibleId,
        declencheur: req.declencheur,
        planification_id: req.planificationId,
        versions,
        contenu: JSON.stringify(contenu),
        progression: JSON.stringify({ entrees_faites: 0, entrees_total: plan.entries.length, octets_faits: 0, octets_total: plan.bytes }),
        created_by: userId,
      })
      .returningAll()
      .executeTakeFirstOrThrow()
    await app.jobs.sendInTransaction(trx, BACKUP_QUEUE, { sauvegardeId: created.id })
    await app.audit.record(trx, {
      ...actor,
      action: 'BACKUP_REQUESTED',
      target: { type: 'sauvegarde', id: created.id, nom: targetName(created) },
      details: { type, cible_id: cibleId, versions, declencheur: req.declencheur, ...(req.planificationId ? { planification_id: req.planificationId } : {}) },
    })
    return created
  })
}


export function backupBindings(ctx: BackupContext): Binding[] {
  const { app } = ctx
  const { db } = app
  return [
    handle(createSauvegarde, async (request, reply) => {
      const { organisationId, userId } = principalOf(request)
      const { type, cible_id: cibleId = null, versions = 'derniere' } = request.body
      const row = await requestBackup(ctx, { ...actorOf(request), organisationId, userId }, { type, cibleId, versions, declencheur: 'manuel', planificationId: null })
      return reply.code(202).send(toSauvegarde(row))
    }),

    handle(listSauvegardes, async (request) => {
      const { organisationId } = principalOf(request)
      const { limit, cursor, type, statut, cible_id: cibleId, depuis, jusqu_a: jusqua } = request.query
      let query = db
        .selectFrom('sauvegardes')
        .selectAll()
        .where('organisation_id', '=', organisationId)
      if (type) query = query.where('type', '=', type)
      if (statut) query = query.where('statut', '=', statut)
      if (cibleId) query = query.where('cible_id', '=', cibleId)
      if (depuis) query = query.where('created_at', '>=', new Date(depuis))
      if (jusqua) query = query.where('created_at', '<', new Date(jusqua))
      return newestFirst(query, 'sauvegardes', { limit, cursor }, toSauvegarde)
    }),

    handle(getSauvegarde, async (request) => toSauvegarde(await findSauvegarde(db, principalOf(request).organisationId, request.params.id))),

    handle(downloadSauvegarde, async (request, reply) => {
      const { organisationId } = principalOf(request)
      const row = await findSauvegarde(db, organisationId, request.params.id)
      const key = await archiveKey(ctx, row)
      const size = Number(row.taille)
      const etag = `"${row.sha256}"`
      reply.header('etag', etag).header('accept-ranges', 'bytes').header('cache-control', 'private, no-store')
      if (etagMatches(request.headers['if-none-match'], etag)) {
        key.fill(0)
        return reply.code(304).send(null)
      }
      let range = parseRange(request.headers.range, size)
      if (range === 'unsatisfiable') {
        key.fill(0)
        reply.header('content-range', `bytes */${size}`)
        throw new Errors.RANGE_NOT_SATISFIABLE()
      }
      if (range && range.start === 0 && range.end === size - 1) range = null
      let body
      try {
        if (range) {
          body = await decryptRange((r) => ctx.store.read(row.chemin!, r), { key, aad: row.id, plainSize: size, ...range })
        } else {
          const decrypt = createDecryptStream({ key, aad: row.id })
          pipeline(await ctx.store.read(row.chemin!), decrypt).catch(() => {})
          body = decrypt
        }
      } catch (error) {
        key.fill(0)
        throw error
      }
      body.once('close', () => key.fill(0))
      body.once('error', (err) => request.log.error({ err, sauvegarde: row.id }, 'backup archive failed its integrity check while sent'))
      await app.audit.recordAlone({
        ...actorOf(request),
        action: 'BACKUP_DOWNLOADED',
        target: { type: 'sauvegarde', id: row.id, nom: targetName(row) },
        details: { taille: size, ...(range ? { plage: `${range.start}-${range.end}` } : {}) },
      })
      const date = row.created_at.toISOString().slice(0, 19).replace(/[-:]/g, '').replace('T', '-')
      reply
        .type('application/zip')
        .header('content-disposition', attachment(`sauvegarde-${row.type}-${date}.zip`))
        .header('content-length', range ? range.end - range.start + 1 : size)
      if (range) reply.code(206).header('content-range', `bytes ${range.start}-${range.end}/${size}`)
      return reply.send(body)
    }),

    handle(verifySauvegarde, async (request) => {
      const { organisationId } = principalOf(request)
      const row = await findSauvegarde(db, organisationId, request.params.id)
      const key = await archiveKey(ctx, row)
      let result
      try {
        result = await checkArchive(ctx, row, key)
      } finally {
        key.fill(0)
      }
      const verifiedAt = new Date()
      const verification: VerificationDto = {
        valide: result.erreurs.length === 0,
        verifiee_le: verifiedAt.toISOString(),
        entrees: result.entrees,
        fichiers: result.fichiers,
        erreurs: result.erreurs.slice(0, 100),
      }
      await db.transaction().execute(async (trx) => {
        await trx
          .updateTable('sauvegardes')
          .set({ verifiee_le: verifiedAt, verification: JSON.stringify(verification) })
          .where('id', '=', row.id)
          .execute()
        await app.audit.record(trx, {
          ...actorOf(request),
          action: 'BACKUP_VERIFIED',
          target: { type: 'sauvegarde', id: row.id, nom: targetName(row) },
          result: verification.valide ? 'succes' : 'echec',
          ...(verification.valide ? {} : { severity: 'CRITICAL' as const }),
          details: { valide: verification.valide, entrees: verification.entrees, fichiers: verification.fichiers, erreurs: verification.erreurs.slice(0, 10) },
        })
      })
      return verification
    }),

    handle(deleteSauvegarde, async (request, reply) => {
      const { organisationId, userId } = principalOf(request)
      const row = await db.transaction().execute(async (trx) => {
        const found = await lockSauvegarde(trx, organisationId, request.params.id)
        if (found.statut === 'en_cours') throw new Errors.BACKUP_RUNNING()
        // A backup covering what a legal hold covers is kept.
        await app.safeguards.assertMayChange(trx, { ...requester(request), object: coveredBy(found), action: 'prune' })
        await shredKey(trx, found.cle_id, userId)
        await trx.deleteFrom('sauvegardes').where('id', '=', found.id).execute()
        await app.audit.record(trx, {
          ...actorOf(request),
          action: 'BACKUP_DELETED',
          target: { type: 'sauvegarde', id: found.id, nom: targetName(found) },
          details: { type: found.type, cible_id: found.cible_id, cle_detruite: found.cle_id, taille: found.taille, sha256: found.sha256 },
        })
        return found
      })
      // The key is gone already: a blob left behind by a failure here is unreadable noise.
      if (row.chemin) await ctx.store.delete(row.chemin).catch((err: unknown) => app.log.warn({ err, blob: row.chemin }, 'could not remove a deleted backup’s blob'))
      return reply.code(204).send(null)
    }),
  ]
}
