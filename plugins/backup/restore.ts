import type { FastifyInstance } from 'fastify'
import { sql, type Transaction } from 'kysely'
import type yauzl from 'yauzl'
import type { RapportDto } from '../../openapi/backup.ts'
import type { RestaurationRow, SauvegardeRow } from '../../db/tables/backup.ts'
import type { DB } from '../../db/types.ts'
import type { GuardedAction, GuardedObject } from '../../src/safeguards.ts'
import { Errors } from '../../src/errors.ts'
import {
  addUsage,
  allowance,
  appendVersion,
  freeName,
  idFree,
  type ImportedVersion,
  insertContainer,
  insertFiles,
  liveChildNamed,
  locate,
  type Located,
  type Parent,
  restoreFromTrash,
  type Sealed,
  seal,
} from '../documents/public.ts'
import { type Manifest, MANIFEST, MANIFEST_FORMAT, type ManifestContainer, type ManifestFile, type ManifestVersion } from './archive.ts'
import { archiveKey } from './backups.ts'
import { entries, openArchive } from './reader.ts'
import { jobError } from './repository.ts'
import type { BackupContext } from './run.ts'

type Item = RapportDto['elements'][number]
type ContainerKind = 'armoire' | 'casier' | 'dossier'

/** What a backup of each type may be restored into: the same kind (merged) or its parent's kind (placed inside). */
export const RESTORE_TARGETS: Record<SauvegardeRow['type'], readonly ContainerKind[]> = {
  fichier: ['dossier'],
  dossier: ['casier', 'dossier'],
  casier: ['armoire', 'casier'],
  armoire: ['armoire'],
  // Every armoire of the organisation merged into the one named.
  systeme: ['armoire'],
}

/** Files read and sealed at once: sealing is bound by the disk's syncs, which overlap. */
const FILE_CONCURRENCY = 8
/** New files inserted by one transaction: one journal lock, one usage update, one commit for them all. */
const INSERT_BATCH = 16

/** Errors that stop a whole restore rather than one element: nothing further could succeed. */
class Abort extends Error {
  constructor(override readonly cause: unknown) {
    super('restore aborted')
  }
}

function isIntegrity(error: unknown): boolean {
  const e = error as { name?: string; code?: string }
  return e.name === 'IntegrityError' || e.code === 'BACKUP_TAMPERED' || e.code === 'INTEGRITY_ERROR'
}

export class Report {
  readonly elements: Item[] = []

  add(item: Item): void {
    this.elements.push(item)
  }

  toJSON(): RapportDto {
    const count = (action: Item['action']) => this.elements.filter((e) => e.action === action).length
    return {
      crees: count('cree'),
      nouvelles_versions: count('nouvelle_version'),
      identiques: count('identique'),
      restaures_corbeille: count('restaure_corbeille'),
      renommes: this.elements.filter((e) => e.nom !== undefined).length,
      echecs: count('echec'),
      elements: this.elements,
    }
  }
}

/** The manifest and entries of an archive, opened for random access through the decryption. */
export async function openBackup(ctx: BackupContext, backup: SauvegardeRow) {
  const key = await archiveKey(ctx, backup)
  const zip = await openArchive({ store: ctx.store, blob: backup.chemin!, key, aad: backup.id, size: Number(backup.taille) })
  const byName = new Map<string, yauzl.Entry>()
  try {
    for await (const entry of entries(zip)) byName.set(entry.fileName, entry)
    const manifestEntry = byName.get(MANIFEST)
    if (!manifestEntry) throw new Errors.BACKUP_TAMPERED('manifest.json manque')
    const chunks: Buffer[] = []
    for await (const chunk of (await zip.openReadStreamPromise(manifestEntry)) as AsyncIterable<Buffer>) chunks.push(chunk)
    const manifest = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Manifest
    if (manifest.format !== MANIFEST_FORMAT) throw new Errors.BACKUP_TAMPERED('manifeste d’un autre format')
    return {
      manifest,
      byName,
      zip,
      close: () => {
        zip.close()
        key.fill(0)
      },
    }
  } catch (error) {
    zip.close()
    key.fill(0)
    if (isIntegrity(error) || (error as { code?: string }).code?.startsWith('BACKUP_')) throw error
    throw new Errors.BACKUP_TAMPERED((error as Error).message)
  }
}

/** The elements of the manifest a restore covers: those named, everything below them, and the way to them. */
export function select(manifest: Manifest, wanted: string[] | null): { containers: ManifestContainer[]; files: ManifestFile[] } {
  if (!wanted) return { containers: manifest.conteneurs, files: manifest.fichiers }
  const keys = new Set(wanted)
  const matched = new Set<string>()
  const prefixes: string[] = []
  const files = new Set<ManifestFile>()
  for (const c of manifest.conteneurs) {
    if (keys.has(c.id) || keys.has(c.chemin)) {
      prefixes.push(`${c.chemin}/`)
      matched.add(keys.has(c.id) ? c.id : c.chemin)
    }
  }
  for (const f of manifest.fichiers) {
    const hit = [f.id, f.chemin, ...f.versions.map((v) => v.entree)].find((k) => keys.has(k))
    if (hit || prefixes.some((p) => f.chemin.startsWith(p))) files.add(f)
    if (hit) matched.add(hit)
  }
  const unknown = wanted.filter((k) => !matched.has(k))
  if (unknown.length > 0) throw new Errors.INVALID_TARGET(`élément inconnu du manifeste : ${unknown.slice(0, 5).join(', ')}`)
  const byId = new Map(manifest.conteneurs.map((c) => [c.id, c]))
  const needed = new Set<string>()
  const climb = (id: string | undefined) => {
    for (let c = id ? byId.get(id) : undefined; c && !needed.has(c.id); c = c.parent ? byId.get(c.parent.id) : undefined) needed.add(c.id)
  }
  for (const c of manifest.conteneurs) if (prefixes.some((p) => `${c.chemin}/`.startsWith(p))) climb(c.id)
  for (const f of files) climb(f.dossier_id)
  return { containers: manifest.conteneurs.filter((c) => needed.has(c.id)), files: manifest.fichiers.filter((f) => files.has(f)) }
}

/** A new file whose versions are sealed, waiting for the transaction that inserts it. */
interface SealedFile {
  f: ManifestFile
  dossierId: string
  id: string | undefined
  sealed: Sealed[]
  versions: ImportedVersion[]
}

/**
 * Items gathered `size` at a time and handed to `run`, one batch after another. The caller
 * that fills a batch waits for it to be run (so sealing never runs far ahead of inserting);
 * the others go on. A batch's failure is thrown to the caller that filled it, or to `flush`.
 */
class Batches<T> {
  private items: T[] = []
  private last: Promise<void> = Promise.resolve()

  constructor(
    private readonly size: number,
    private readonly run: (items: T[]) => Promise<void>,
  ) {}

  async add(item: T): Promise<void> {
    this.items.push(item)
    if (this.items.length >= this.size) await this.flush()
  }

  /** What is gathered and not yet run, taken out: nothing will run it. */
  drop(): T[] {
    return this.items.splice(0)
  }

  /** Runs what is gathered, after the batch before it. */
  async flush(): Promise<void> {
    const items = this.items.splice(0)
    const next = this.last.then(() => (items.length > 0 ? this.run(items) : undefined))
    this.last = next.catch(() => {})
    await next
  }
}

interface Options {
  ctx: BackupContext
  backup: SauvegardeRow
  restoration: RestaurationRow
  dry: boolean
  report: Report
}

/**
 * Restores (or, `dry`, plans) a backup, element by element, each in its own transaction, so
 * that a crash leaves whole elements only and a re-run skips them. It never overwrites: a
 * live file with other content gets a new version, identical content is skipped, what is
 * missing is recreated (under its original id when free), what is in the trash comes back
 * from it, and a name taken by something else gets a free one.
 */
export async function restoreBackup(opts: Options): Promise<void> {
  const { ctx, backup, restoration, dry, report } = opts
  const { app } = ctx
  const { db } = app
  const org = restoration.organisation_id
  const userId = restoration.created_by
  const archive = await openBackup(ctx, backup)
  const { manifest } = archive
  const type = manifest.sauvegarde.type
  const rootId = manifest.sauvegarde.cible_id
  const cible = restoration.cible_id && restoration.cible_type ? { type: restoration.cible_type, id: restoration.cible_id } : null
  const mode: 'original' | 'merge' | 'inside' = !cible ? 'original' : cible.type === type || type === 'systeme' ? 'merge' : 'inside'
  const original = mode === 'original' && manifest.organisation_id === org
  const { containers, files } = select(manifest, restoration.elements)
  /** Source id → id here; null for what a simulation would create. */
  const map = new Map<string, string | null>()
  const revived = new Set<string>()
  const actor = { organisationId: org, userId }
  const base = (c: { id: string; chemin: string }, kind: Item['type']) => ({ type: kind, source_id: c.id, chemin: c.chemin })

  const guard = (trx: Transaction<DB>, object: GuardedObject, action: GuardedAction) =>
    app.safeguards.assertMayChange(trx, { organisationId: org, userId, object, action })
  const restored = (target: { type: Item['type']; id: string; nom: string }, details: Record<string, unknown>) => ({
    ...actor,
    action: 'BACKUP_ITEM_RESTORED' as const,
    target,
    details: { sauvegarde_id: backup.id, restauration_id: restoration.id, ...details },
  })
  const journal = (trx: Transaction<DB>, target: { type: Item['type']; id: string; nom: string }, details: Record<string, unknown>) =>
    app.audit.record(trx, restored(target, details))
  const isLive = (found: Located | null) => found?.state === 'live' || (found?.suppressionId ? revived.has(found.suppressionId) : false)

  const fromTrash = async (kind: Item['type'], found: Located, chemin: string): Promise<boolean> => {
    if (dry) {
      revived.add(found.id)
      return true
    }
    try {
      await db.transaction().execute(async (trx) => {
        await restoreFromTrash(trx, kind, found.id, org)
        await journal(trx, { type: kind, id: found.id, nom: found.nom }, { action: 'restaure_corbeille', chemin })
      })
      return true
    } catch (error) {
      // Its name is taken now, or its container is still in the trash: recreated instead.
      if (!['NAME_CONFLICT', 'PARENT_IN_TRASH'].includes((error as { code?: string }).code ?? '')) throw error
      return false
    }
  }

  const container = async (c: ManifestContainer): Promise<void> => {
    if (mode === 'merge' && (c.id === rootId || (type === 'systeme' && c.type === 'armoire'))) {
      map.set(c.id, cible!.id)
      report.add({ ...base(c, c.type), id: cible!.id, action: 'existant' })
      return
    }
    let parent: { type: ContainerKind; id: string | null } | null = c.parent ? { type: c.parent.type, id: map.get(c.parent.id) ?? null } : null
    if (mode === 'inside' && c.id === rootId) parent = cible
    if (original) {
      const found = await locate(db, c.type, org, c.id)
      if (isLive(found)) {
        map.set(c.id, found!.id)
        report.add({ ...base(c, c.type), id: found!.id, action: 'existant' })
        return
      }
      if (found?.state === 'trash_root' && (await fromTrash(c.type, found, c.chemin))) {
        map.set(c.id, found.id)
        report.add({ ...base(c, c.type), id: found.id, action: 'restaure_corbeille' })
        return
      }
      await createContainer(c, parent, !found && (await idFree(db, c.type, c.id)) ? c.id : undefined)
      return
    }
    if (parent === null || parent.id !== null) {
      const existing = await liveChildNamed(db, org, parent as Parent, c.type, c.nom)
      if (existing) {
        map.set(c.id, existing.id)
        report.add({ ...base(c, c.type), id: existing.id, action: 'existant' })
        return
      }
    }
    await createContainer(c, parent, undefined)
  }

  const createContainer = async (c: ManifestContainer, parent: { type: ContainerKind; id: string | null } | null, id: string | undefined) => {
    if (parent && parent.id === null) {
      map.set(c.id, null)
      report.add({ ...base(c, c.type), id: null, action: 'cree' })
      return
    }
    const where = parent as Parent
    if (dry) {
      const nom = await freeName(db, org, where, c.type, c.nom)
      map.set(c.id, null)
      report.add({ ...base(c, c.type), id: null, action: 'cree', ...(nom !== c.nom ? { nom } : {}) })
      return
    }
    const created = await db.transaction().execute(async (trx) => {
      if (where) await guard(trx, where, 'add')
      const made = await insertContainer(trx, { kind: c.type, organisationId: org, parent: where, nom: c.nom, userId, ...(id ? { id } : {}) })
      await journal(trx, { type: c.type, id: made.id, nom: made.nom }, { action: 'cree', chemin: c.chemin, source_id: c.id })
      return made
    })
    map.set(c.id, created.id)
    report.add({ ...base(c, c.type), id: created.id, action: 'cree', ...(created.nom !== c.nom ? { nom: created.nom } : {}) })
  }

  /** An archived version's content, sealed into a new blob (committed) after its SHA-256 matched the manifest. */
  const sealEntry = async (v: ManifestVersion): Promise<Sealed> => {
    const entry = archive.byName.get(v.entree)
    if (!entry) throw new Abort(new Errors.BACKUP_TAMPERED(`« ${v.entree} » manque dans l’archive`))
    const limit = await allowance(db, org, ctx.quota).catch((error: unknown) => {
      throw new Abort(error)
    })
    let sealed: Sealed
    try {
      sealed = await seal(app, await archive.zip.openReadStreamPromise(entry), limit)
    } catch (error) {
      throw new Abort(isIntegrity(error) || (error as { code?: string }).code === 'QUOTA_EXCEEDED' ? error : new Errors.BACKUP_TAMPERED((error as Error).message))
    }
    if (sealed.sha256 !== v.sha256 || sealed.size !== v.taille) {
      await sealed.writer.abort()
      throw new Abort(new Errors.BACKUP_TAMPERED(`le contenu de « ${v.entree} » ne correspond pas au manifeste`))
    }
    await sealed.writer.commit()
    return sealed
  }

  const removeBlobs = async (sealed: Sealed[]) => {
    for (const s of sealed) await app.blobs.delete(s.writer.name).catch((err: unknown) => app.log.warn({ err }, 'could not remove a restored blob'))
  }

  const newVersion = async (f: ManifestFile, fileId: string, sameFile: boolean) => {
    const current = f.versions.at(-1)!
    if (dry) {
      report.add({ ...base(f, 'fichier'), id: fileId, action: 'nouvelle_version' })
      return
    }
    const sealed = await sealEntry(current)
    const added = await app.unitOfWork(async (trx) => {
      await guard(trx, { type: 'fichier', id: fileId }, 'version')
      const v = await appendVersion(trx, { organisationId: org, fichierId: fileId, userId, backupId: backup.id }, {
        sealed,
        typeMime: current.type_mime,
        restoredFrom: sameFile ? current.version_number : null,
      })
      await addUsage(trx, org, sealed.size, ctx.quota)
      await journal(trx, { type: 'fichier', id: fileId, nom: v.nom }, { action: 'nouvelle_version', chemin: f.chemin, version_number: v.versionNumber, sha256: current.sha256 })
      return v
    }, app.blobs.writtenAhead(sealed.writer.name))
    report.add({ ...base(f, 'fichier'), id: fileId, action: 'nouvelle_version', version_number: added.versionNumber })
  }

  const recreate = async (f: ManifestFile, dossierId: string | null, id: string | undefined) => {
    if (dossierId === null) {
      report.add({ ...base(f, 'fichier'), id: null, action: 'cree' })
      return
    }
    if (dry) {
      const nom = await freeName(db, org, { type: 'dossier', id: dossierId }, 'fichier', f.nom)
      report.add({ ...base(f, 'fichier'), id: null, action: 'cree', ...(nom !== f.nom ? { nom } : {}) })
      return
    }
    const chosen = backup.versions === 'toutes' ? f.versions : [f.versions.at(-1)!]
    const sealed: Sealed[] = []
    const versions: ImportedVersion[] = []
    try {
      for (const v of chosen) {
        const s = await sealEntry(v)
        sealed.push(s)
        versions.push({ sealed: s, typeMime: v.type_mime, restoredFrom: null })
      }
    } catch (error) {
      // Those sealed before the one that failed: no unit of work holds them yet.
      await removeBlobs(sealed)
      throw error
    }
    await inserts.add({ f, dossierId, id, sealed, versions })
  }

  /**
   * Inserts sealed new files, counts their bytes and journals each, in `trx`, in the order a
   * single file's transaction takes its locks. The guards go first: a refusal is journaled
   * in a transaction of its own, which must not wait for this one's hold on the journal.
   */
  const insertAll = async (trx: Transaction<DB>, items: SealedFile[]) => {
    for (const dossierId of new Set(items.map((item) => item.dossierId))) await guard(trx, { type: 'dossier', id: dossierId }, 'add')
    const made = await insertFiles(
      trx,
      { organisationId: org, userId, backupId: backup.id },
      items.map(({ f, dossierId, id, versions }) => ({ dossierId, nom: f.nom, versions, ...(id ? { id } : {}) })),
    )
    await addUsage(trx, org, items.reduce((n, item) => n + item.sealed.reduce((m, s) => m + s.size, 0), 0), ctx.quota)
    await app.audit.recordAll(
      trx,
      items.map(({ f, versions }, i) => restored({ type: 'fichier', id: made[i]!.id, nom: made[i]!.nom }, { action: 'cree', chemin: f.chemin, source_id: f.id, versions: versions.length })),
    )
    return made
  }
  const reportCreated = ({ f }: SealedFile, created: { id: string; nom: string; versionNumber: number }) =>
    report.add({ ...base(f, 'fichier'), id: created.id, action: 'cree', version_number: created.versionNumber, ...(created.nom !== f.nom ? { nom: created.nom } : {}) })
  const insertOne = async (item: SealedFile) => {
    const [created] = await app.unitOfWork((trx) => insertAll(trx, [item]), app.blobs.writtenAhead(...item.sealed.map((s) => s.writer.name)))
    reportCreated(item, created!)
  }
  // A batch is all or nothing; when it fails, its files go one by one, so that only the one at
  // fault fails (its blobs removed with its rollback) and the others are created.
  const inserts = new Batches<SealedFile>(INSERT_BATCH, async (items) => {
    let made: Awaited<ReturnType<typeof insertAll>> | null = null
    try {
      made = await app.unitOfWork((trx) => insertAll(trx, items))
    } catch {
      // Retried below, one transaction each.
    }
    if (made) {
      items.forEach((item, i) => reportCreated(item, made[i]!))
      return
    }
    for (const [i, item] of items.entries()) {
      try {
        await attempt(item.f, 'fichier', () => insertOne(item))
      } catch (error) {
        await removeBlobs(items.slice(i + 1).flatMap((rest) => rest.sealed))
        throw error
      }
    }
  })

  const file = async (f: ManifestFile) => {
    const current = f.versions.at(-1)
    if (!current) return
    const dossierTarget = mode === 'inside' && type === 'fichier' ? cible!.id : (map.get(f.dossier_id) ?? null)
    if (original) {
      let found = await locate(db, 'fichier', org, f.id)
      if (found?.state === 'trash_root' && (await fromTrash('fichier', found, f.chemin))) {
        if (!dry) found = await locate(db, 'fichier', org, f.id)
        else found = { ...found, state: 'live' }
        if (found?.sha256 === current.sha256) {
          report.add({ ...base(f, 'fichier'), id: found.id, action: 'restaure_corbeille' })
          return
        }
      }
      if (found && isLive(found)) {
        if (found.sha256 === current.sha256) report.add({ ...base(f, 'fichier'), id: found.id, action: 'identique' })
        else await newVersion(f, found.id, true)
        return
      }
      await recreate(f, dossierTarget, !found && (await idFree(db, 'fichier', f.id)) ? f.id : undefined)
      return
    }
    if (dossierTarget !== null) {
      const existing = await liveChildNamed(db, org, { type: 'dossier', id: dossierTarget }, 'fichier', f.nom)
      if (existing) {
        if (existing.sha256 === current.sha256) report.add({ ...base(f, 'fichier'), id: existing.id, action: 'identique' })
        else await newVersion(f, existing.id, false)
        return
      }
    }
    await recreate(f, dossierTarget, undefined)
  }

  const attempt = async (what: { id: string; chemin: string }, kind: Item['type'], step: () => Promise<void>) => {
    try {
      await step()
    } catch (error) {
      if (error instanceof Abort) throw error.cause
      if (isIntegrity(error)) throw error
      const { code, detail } = jobError(error)
      if (code === 'QUOTA_EXCEEDED') throw error
      if (code === 'INTERNAL_ERROR') app.log.error({ err: error, restauration: restoration.id, element: what.id }, 'an element could not be restored')
      report.add({ ...base(what, kind), id: null, action: 'echec', code, detail })
    }
  }

  try {
    if (mode === 'original') for (const c of manifest.ancetres) await attempt(c, c.type, () => container(c))
    for (const c of containers) await attempt(c, c.type, () => container(c))
    // Files go a few at a time: sealing one (reading, encrypting, syncing its blob) overlaps
    // the others', and new files are inserted in batches while the next ones are sealed.
    let next = 0
    let failure: { error: unknown } | null = null
    const worker = async () => {
      for (let i = next++; i < files.length && !failure; i = next++) {
        await attempt(files[i]!, 'fichier', () => file(files[i]!)).catch((error: unknown) => (failure ??= { error }))
      }
    }
    await Promise.all(Array.from({ length: Math.min(FILE_CONCURRENCY, files.length) }, worker))
    if (!failure) await inserts.flush().catch((error: unknown) => (failure = { error }))
    if (failure) {
      // What was sealed and not yet handed to a transaction has no row to name it.
      await removeBlobs(inserts.drop().flatMap((item) => item.sealed))
      throw (failure as { error: unknown }).error
    }
  } finally {
    archive.close()
  }
}

/** Journals the end of a restore, or its failure, with its counts. */
export async function finishRestore(
  app: FastifyInstance,
  restoration: RestaurationRow,
  backup: Pick<SauvegardeRow, 'id' | 'type' | 'contenu'>,
  report: Report,
  error: unknown,
): Promise<void> {
  const rapport = report.toJSON()
  const erreur = error ? jobError(error) : null
  if (error && erreur?.code === 'INTERNAL_ERROR') app.log.error({ err: error, restauration: restoration.id }, 'restore failed')
  const { elements, ...counts } = rapport
  await app.db.transaction().execute(async (trx) => {
    const done = await trx
      .updateTable('restaurations')
      .set({
        statut: error ? 'echec' : 'terminee',
        rapport: JSON.stringify(rapport),
        ...(erreur ? { erreur: JSON.stringify(erreur) } : {}),
        terminee_le: sql`now()`,
        battement_le: null,
      })
      .where('id', '=', restoration.id)
      .where('statut', 'in', ['en_attente', 'en_cours'])
      .returning('id')
      .executeTakeFirst()
    if (!done || restoration.simulation) return
    await app.audit.record(trx, {
      organisationId: restoration.organisation_id,
      userId: restoration.created_by,
      action: error ? 'RESTORE_FAILED' : 'BACKUP_RESTORED',
      target: { type: 'sauvegarde', id: backup.id, nom: (backup.contenu as { nom?: string }).nom ?? null },
      ...(error ? { result: 'echec' as const } : {}),
      details: { restauration_id: restoration.id, cible_id: restoration.cible_id, ...counts, elements: elements.length, ...(erreur ? { erreur } : {}) },
    })
  })
}
