import { randomUUID } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import { sql, type Transaction } from 'kysely'
import type { Histogram } from 'prom-client'
import type { DB } from '../../db/types.ts'
import type { SauvegardeRow } from '../../db/tables/backup.ts'
import { registerBlobColumn } from '../../src/blob-collector.ts'
import type { BlobStore } from '../../src/blob/store.ts'
import { randomDataKey } from '../../src/crypto/segmented.ts'
import { Errors } from '../../src/errors.ts'
import type { GuardedObject } from '../../src/safeguards.ts'
import { ALGORITHM, type ExportTarget, exportTree, keyAad, usage } from '../documents/public.ts'
import { type ArchivePlan, planArchive, type Progress, writeArchive } from './archive.ts'
import { backupUsage, jobError, shredKey } from './repository.ts'

export interface BackupContext {
  app: FastifyInstance
  /** Where archives go: the blob store, or the separate one BACKUP_BLOB_* names. */
  store: BlobStore
  /** The default storage quota (0 = unlimited), as documents counts it. */
  quota: number
  staleSeconds: number
  /** Runs once a backup's job has ended, whatever the outcome (scheduled backups prune or mail). */
  settled?: (backupId: string) => Promise<void>
  /** Backup and restore jobs' durations, from their claim to their outcome recorded. */
  durations: { backup: Histogram<'type' | 'outcome'>; restore: Histogram<'outcome'> }
}

/** Starts timing a job; the function returned observes it, in seconds. */
export function timer(): () => number {
  const start = performance.now()
  return () => (performance.now() - start) / 1000
}

// An archive's blob, in the blob store or the separate archive store (collected there too).
registerBlobColumn({ kind: 'archives', table: 'sauvegardes', column: 'chemin' })

export const targetOf = (row: Pick<SauvegardeRow, 'type' | 'cible_id'>): ExportTarget =>
  row.type === 'systeme' ? { type: 'systeme', id: null } : { type: row.type, id: row.cible_id! }

/** What a backup covers, as the safeguard is asked about it: a system backup covers the whole organisation. */
export const coveredBy = (row: Pick<SauvegardeRow, 'type' | 'cible_id' | 'organisation_id'>): GuardedObject =>
  row.type === 'systeme' ? { type: 'organisation', id: row.organisation_id } : { type: row.type, id: row.cible_id! }

const LABEL = { fichier: 'Fichier', dossier: 'Dossier', casier: 'Casier', armoire: 'Armoire' } as const

/** The brief's summary of a backup: the target's metadata, its rank among the target's backups, the counts. */
/** What a summary counts: an exported tree, or the manifest of an imported archive. */
export interface Summarised {
  containers: readonly { id: string; nom: string; type: string; parent: { id: string } | null }[]
  files: readonly { nom: string; type_mime: string; taille: number; dossier_id: string; versions: readonly { taille: number }[] }[]
}

export function summarise(row: Pick<SauvegardeRow, 'type' | 'cible_id' | 'created_by' | 'created_at'>, tree: Summarised, versionNumber: number) {
  const count = (type: string) => tree.containers.filter((c) => c.type === type).length
  const versions = tree.files.reduce((n, f) => n + f.versions.length, 0)
  const common = {
    version_number: versionNumber,
    created_by: row.created_by,
    created_at: row.created_at.toISOString(),
    nombre_armoires: count('armoire'),
    nombre_casiers: count('casier'),
    nombre_dossiers: count('dossier'),
    nombre_fichiers: tree.files.length,
    nombre_versions: versions,
    octets_en_clair: tree.files.reduce((n, f) => n + f.versions.reduce((m, v) => m + v.taille, 0), 0),
  }
  if (row.type === 'systeme') return { nom: 'Sauvegarde système', type: 'systeme', ...common }
  if (row.type === 'fichier') {
    const file = tree.files[0]!
    return { nom: file.nom, type: file.type_mime, type_mime: file.type_mime, taille: file.taille, ...common }
  }
  const root = tree.containers[0]!
  const children =
    tree.containers.filter((c) => c.parent?.id === root.id).length + tree.files.filter((f) => f.dossier_id === root.id).length
  return { nom: root.nom, type: row.type, nombre_elements: children, ...common }
}

/** The rank of a new backup among those of its target, counted under a lock so that two never share one. */
export async function nextRank(trx: Transaction<DB>, organisationId: string, type: SauvegardeRow['type'], cibleId: string | null): Promise<number> {
  await sql`select pg_advisory_xact_lock(hashtextextended(${`sauvegardes:${organisationId}:${type}:${cibleId}`}, 0))`.execute(trx)
  const { rows } = await sql<{ n: string }>`select count(*) as n from sauvegardes
    where organisation_id = ${organisationId} and type = ${type} and cible_id is not distinct from ${cibleId}::uuid`.execute(trx)
  return Number(rows[0]?.n ?? 0) + 1
}

/** A label for the journal: "Armoire « RH »". */
export function targetName(row: Pick<SauvegardeRow, 'type' | 'contenu'>): string {
  const nom = (row.contenu as { nom?: string }).nom
  if (row.type === 'systeme') return 'Sauvegarde système'
  return nom ? `${LABEL[row.type]} « ${nom} »` : LABEL[row.type]
}

/** Bytes the organisation may still fill with an archive, or null when unlimited; QUOTA_EXCEEDED if the estimate does not fit. */
export async function archiveAllowance(ctx: BackupContext, organisationId: string, estimate: number): Promise<{ bytes: number; quota: number } | null> {
  const { used, quota } = await usage(ctx.app.db, organisationId, ctx.quota)
  if (quota === 0) return null
  const left = quota - used - (await backupUsage(ctx.app.db, organisationId))
  if (estimate > left) throw new Errors.QUOTA_EXCEEDED(quota)
  return { bytes: left, quota }
}

/** Records the archive's data key, wrapped by the master key, in cles_chiffrement; answers its id. */
export async function insertArchiveKey(ctx: BackupContext, trx: Transaction<DB>, organisationId: string, backupId: string, dataKey: Buffer): Promise<string> {
  const keyId = randomUUID()
  const wrapped = await ctx.app.keys.wrap(dataKey, keyAad(keyId))
  await trx
    .insertInto('cles_chiffrement')
    .values({
      id: keyId,
      organisation_id: organisationId,
      fichier_id: null,
      version_id: null,
      sauvegarde_id: backupId,
      algorithme: ALGORITHM,
      cle_enveloppee: wrapped.wrapped,
      version_cle_maitre: wrapped.masterKeyVersion,
    })
    .execute()
  return keyId
}

const actorOfRow = (row: SauvegardeRow) => ({ organisationId: row.organisation_id, userId: row.created_by })
const target = (row: SauvegardeRow) => ({ type: 'sauvegarde' as const, id: row.id, nom: targetName(row) })

/**
 * The job that builds one backup: claims it, snapshots the tree, checks the quota, then
 * streams the encrypted archive into the store under a new data key, beating a heartbeat so
 * that a crash is noticed. Whatever fails leaves the backup `echec` with its `erreur`, its key
 * shredded and its partial blob removed; a backup never shows `terminee` unless whole.
 */
export async function runBackup(ctx: BackupContext, id: string): Promise<void> {
  const { app, store } = ctx
  const { db } = app
  const claimed = await db.transaction().execute(async (trx) => {
    const row = await trx
      .updateTable('sauvegardes')
      .set({ statut: 'en_cours', demarree_le: sql`now()`, battement_le: sql`now()` })
      .where('id', '=', id)
      .where('statut', '=', 'en_attente')
      .returningAll()
      .executeTakeFirst()
    if (row) await app.audit.record(trx, { ...actorOfRow(row), action: 'BACKUP_STARTED', target: target(row), details: { type: row.type, cible_id: row.cible_id } })
    return row
  })
  // Done, deleted, or taken by another attempt (whose interruption the recovery sweep reports).
  if (!claimed) return
  const elapsed = timer()
  let outcome: 'success' | 'failure' = 'failure'

  let writer: ReturnType<BlobStore['createWriter']> | null = null
  let keyId: string | null = null
  const progress: Progress = { entriesDone: 0, bytesDone: 0 }
  let plan: ArchivePlan | null = null
  let lost = false
  const beat = async () => {
    const updated = await db
      .updateTable('sauvegardes')
      .set({
        battement_le: sql`now()`,
        progression: JSON.stringify({
          entrees_faites: progress.entriesDone,
          entrees_total: plan?.entries.length ?? 0,
          octets_faits: progress.bytesDone,
          octets_total: plan?.bytes ?? 0,
        }),
      })
      .where('id', '=', id)
      .where('statut', '=', 'en_cours')
      .executeTakeFirst()
    if (Number(updated.numUpdatedRows) === 0) lost = true
  }
  const heartbeat = setInterval(() => {
    beat().catch((err: unknown) => app.log.warn({ err, sauvegarde: id }, 'backup heartbeat failed'))
  }, Math.min(5_000, (ctx.staleSeconds * 1000) / 4))
  const dataKey = randomDataKey()
  try {
    const tree = await exportTree(db, claimed.organisation_id, targetOf(claimed), claimed.versions === 'toutes')
    plan = planArchive(tree, {
      organisation_id: claimed.organisation_id,
      sauvegarde: {
        id,
        type: claimed.type,
        cible_id: claimed.cible_id,
        versions: claimed.versions,
        created_by: claimed.created_by,
        created_at: claimed.created_at.toISOString(),
      },
    })
    const limit = await archiveAllowance(ctx, claimed.organisation_id, plan.estimatedSize)
    writer = store.createWriter()
    const blob = writer.name
    keyId = await db.transaction().execute(async (trx) => {
      const made = await insertArchiveKey(ctx, trx, claimed.organisation_id, id, dataKey)
      await trx.updateTable('sauvegardes').set({ chemin: blob, cle_id: made }).where('id', '=', id).execute()
      return made
    })
    await beat()
    const archive = await writeArchive(app, claimed.organisation_id, plan, { key: dataKey, aad: id, writer, limit, progress })
    if (lost) throw new Errors.BACKUP_INTERRUPTED()
    await writer.commit()
    const manifest = plan.manifest
    const contenu = {
      ...(claimed.contenu as Record<string, unknown>),
      ...summarise(claimed, tree, (claimed.contenu as { version_number?: number }).version_number ?? 1),
      ...(manifest.absents.length > 0 ? { versions_absentes: manifest.absents.length } : {}),
    }
    const finished = await db.transaction().execute(async (trx) => {
      const done = await trx
        .updateTable('sauvegardes')
        .set({
          statut: 'terminee',
          taille: archive.size,
          sha256: archive.sha256,
          contenu: JSON.stringify(contenu),
          progression: JSON.stringify({
            entrees_faites: progress.entriesDone,
            entrees_total: plan!.entries.length,
            octets_faits: progress.bytesDone,
            octets_total: plan!.bytes,
          }),
          terminee_le: sql`now()`,
          battement_le: null,
        })
        .where('id', '=', id)
        .where('statut', '=', 'en_cours')
        .where('chemin', '=', blob)
        .returningAll()
        .executeTakeFirst()
      if (!done) return null
      await app.audit.record(trx, {
        ...actorOfRow(done),
        action: 'BACKUP_CREATED',
        target: target(done),
        details: { type: done.type, cible_id: done.cible_id, taille: archive.size, sha256: archive.sha256, entrees: progress.entriesDone, absents: manifest.absents.length },
      })
      return done
    })
    if (!finished) throw new Errors.BACKUP_INTERRUPTED()
    outcome = 'success'
  } catch (error) {
    await writer?.abort()
    await fail(ctx, claimed, error, writer?.name ?? null, keyId)
  } finally {
    clearInterval(heartbeat)
    dataKey.fill(0)
    ctx.durations.backup.observe({ type: claimed.type, outcome }, elapsed())
  }
  await ctx.settled?.(id).catch((err: unknown) => app.log.error({ err, sauvegarde: id }, 'what follows a backup failed'))
}

/** Marks a backup failed (unless already), shreds its key and removes its blob; journaled. */
export async function fail(ctx: BackupContext, row: SauvegardeRow, error: unknown, blob: string | null, keyId: string | null): Promise<void> {
  const { app } = ctx
  const erreur = jobError(error)
  if (erreur.code === 'INTERNAL_ERROR') app.log.error({ err: error, sauvegarde: row.id }, 'backup failed')
  else app.log.warn({ code: erreur.code, sauvegarde: row.id }, 'backup failed')
  await app.db.transaction().execute(async (trx) => {
    const failed = await trx
      .updateTable('sauvegardes')
      .set({ statut: 'echec', erreur: JSON.stringify(erreur), terminee_le: sql`now()`, battement_le: null })
      .where('id', '=', row.id)
      .where('statut', 'in', ['en_attente', 'en_cours'])
      .returningAll()
      .executeTakeFirst()
    await shredKey(trx, keyId ?? failed?.cle_id ?? null, null)
    if (failed) await app.audit.record(trx, { ...actorOfRow(failed), action: 'BACKUP_FAILED', target: target(failed), result: 'echec', details: { ...erreur } })
  })
  const name = blob ?? row.chemin
  if (name) await ctx.store.delete(name).catch((err: unknown) => app.log.warn({ err, blob: name }, 'could not remove a failed backup’s blob'))
}

/**
 * Backups whose job stopped beating (its process was killed, the database restarted) are
 * failed with BACKUP_INTERRUPTED, their keys shredded and partial blobs removed. Runs at
 * start-up and every minute, on whichever instance gets there first.
 */
export async function recoverInterrupted(ctx: BackupContext): Promise<number> {
  const { rows } = await sql<SauvegardeRow>`select * from sauvegardes
    where statut = 'en_cours' and coalesce(battement_le, demarree_le) < now() - make_interval(secs => ${ctx.staleSeconds})`.execute(ctx.app.db)
  for (const row of rows) {
    await fail(ctx, row, new Errors.BACKUP_INTERRUPTED(), row.chemin, row.cle_id)
    await ctx.settled?.(row.id).catch((err: unknown) => ctx.app.log.error({ err, sauvegarde: row.id }, 'what follows a backup failed'))
  }
  return rows.length
}
