import { randomUUID } from 'node:crypto'
import { pipeline } from 'node:stream/promises'
import { type Static, Type } from '@sinclair/typebox'
import { TypeCompiler } from '@sinclair/typebox/compiler'
import type { FastifyRequest } from 'fastify'
import { sql } from 'kysely'
import type yauzl from 'yauzl'
import type { SauvegardeRow } from '../../db/tables/backup.ts'
import { actorOf } from '../../src/audit.ts'
import { principalOf } from '../../src/auth.ts'
import type { Config } from '../../src/config.ts'
import { createEncryptStream, randomDataKey } from '../../src/crypto/segmented.ts'
import { Errors } from '../../src/errors.ts'
import { nameProblem, textProblem } from '../../src/text.ts'
import { archiveMeter, type Manifest, MANIFEST, MANIFEST_FORMAT, MANIFEST_VERSION } from './archive.ts'
import { checkArchive } from './backups.ts'
import { entries, openArchive } from './reader.ts'
import { type BackupContext, archiveAllowance, insertArchiveKey, nextRank, summarise, targetName } from './run.ts'

export type ImportLimits = Pick<Config, 'BACKUP_IMPORT_MAX_BYTES' | 'BACKUP_IMPORT_MAX_ENTRIES' | 'BACKUP_IMPORT_MAX_EXPANDED_BYTES' | 'BACKUP_IMPORT_MAX_RATIO'>

/** The multipart part that carries the archive. */
export const IMPORT_PART = 'archive'
/** What the multipart framing adds around the archive, at most, for the size checks made on Content-Length. */
const FRAMING = 64 * 1024
/** Entries smaller than this are not held to the expansion ratio: a short text deflates far. */
const RATIO_FLOOR = 64 * 1024
/** The manifest is read whole: beyond this it is refused rather than parsed. */
const MANIFEST_MAX_BYTES = 256 * 1024 * 1024

const Uuid = Type.String({ pattern: '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$' })
const Kind = Type.Union([Type.Literal('armoire'), Type.Literal('casier'), Type.Literal('dossier')])
const Text = Type.String({ maxLength: 4096 })
const Sha256 = Type.String({ pattern: '^[0-9a-f]{64}$' })
const Size = Type.Integer({ minimum: 0 })
const Timestamp = Type.String({ maxLength: 64 })
const Author = Type.Union([Uuid, Type.Null()])
const ContainerSchema = Type.Object({
  type: Kind,
  id: Uuid,
  nom: Text,
  parent: Type.Union([Type.Object({ type: Kind, id: Uuid }), Type.Null()]),
  chemin: Text,
  created_by: Author,
  created_at: Timestamp,
})
const VersionSchema = Type.Object({
  id: Uuid,
  version_number: Type.Integer({ minimum: 1 }),
  nom: Text,
  type_mime: Text,
  taille: Size,
  sha256: Sha256,
  entree: Text,
  restauree_depuis: Type.Union([Type.Integer(), Type.Null()]),
  created_by: Author,
  created_at: Timestamp,
})
const FileSchema = Type.Object({
  id: Uuid,
  dossier_id: Uuid,
  nom: Text,
  chemin: Text,
  type_mime: Text,
  taille: Size,
  sha256: Sha256,
  version_courante: Type.Integer({ minimum: 1 }),
  created_by: Author,
  created_at: Timestamp,
  versions: Type.Array(VersionSchema, { minItems: 1 }),
})
/** `manifest.json` as an import expects it: what restore reads, every field typed. */
const ManifestSchema = Type.Object({
  format: Type.Literal(MANIFEST_FORMAT),
  version_format: Type.Literal(MANIFEST_VERSION),
  organisation_id: Uuid,
  sauvegarde: Type.Object({
    id: Uuid,
    type: Type.Union(['fichier', 'dossier', 'casier', 'armoire', 'systeme'].map((t) => Type.Literal(t))),
    cible_id: Type.Union([Uuid, Type.Null()]),
    versions: Type.Union([Type.Literal('derniere'), Type.Literal('toutes')]),
    created_by: Author,
    created_at: Timestamp,
  }),
  ancetres: Type.Array(ContainerSchema),
  conteneurs: Type.Array(ContainerSchema),
  fichiers: Type.Array(FileSchema),
  absents: Type.Array(Type.Object({ fichier_id: Uuid, version_id: Uuid })),
})
const manifestCheck = TypeCompiler.Compile(ManifestSchema)

const invalid = (detail: string) => new Errors.ARCHIVE_INVALID(detail)

/** yauzl's refusals of an entry name that would leave the extraction directory. */
const ESCAPES = /^(invalid characters in fileName|absolute path|invalid relative path)/

/** Reads what yauzl says about a ZIP it refuses, in the import's terms. */
function refusal(error: unknown): Error {
  const message = (error as Error).message ?? String(error)
  if ((error as { name?: string }).name === 'IntegrityError') return error as Error
  if (ESCAPES.test(message)) return invalid(`une entrée sort de l’arborescence (${message})`)
  if (/central directory|end of central directory|signature/i.test(message)) return invalid(`ce n’est pas une archive ZIP lisible (${message})`)
  return invalid(message)
}

/** The parsed manifest, checked: its shape, its names, and that its ids and parents hold together. */
function wellFormed(raw: Buffer): Manifest {
  let parsed: unknown
  try {
    parsed = JSON.parse(raw.toString('utf8'))
  } catch {
    throw invalid('manifest.json n’est pas du JSON')
  }
  if (!manifestCheck.Check(parsed)) {
    const first = manifestCheck.Errors(parsed).First()
    throw invalid(`manifest.json mal formé${first ? ` (${first.path || '/'} : ${first.message})` : ''}`)
  }
  const manifest = parsed as Static<typeof ManifestSchema> as Manifest
  const containers = new Map<string, Manifest['conteneurs'][number]>()
  for (const c of [...manifest.ancetres, ...manifest.conteneurs]) {
    const problem = nameProblem(c.nom) ?? textProblem(c.chemin)
    if (problem) throw invalid(`manifest.json : le nom « ${c.nom} » ${problem}`)
    if (containers.has(c.id)) throw invalid(`manifest.json : le conteneur ${c.id} figure deux fois`)
    if ((c.type === 'armoire') !== (c.parent === null)) throw invalid(`manifest.json : le parent de ${c.id} ne convient pas à un ${c.type}`)
    if (c.parent && !containers.has(c.parent.id)) throw invalid(`manifest.json : le parent de ${c.id} n’est pas décrit avant lui`)
    containers.set(c.id, c)
  }
  for (const f of manifest.fichiers) {
    const problem = nameProblem(f.nom) ?? textProblem(f.type_mime) ?? f.versions.map((v) => nameProblem(v.nom) ?? textProblem(v.type_mime)).find(Boolean)
    if (problem) throw invalid(`manifest.json : le fichier « ${f.nom} » ${problem}`)
    if (containers.get(f.dossier_id)?.type !== 'dossier') throw invalid(`manifest.json : le dossier du fichier ${f.id} n’est pas décrit`)
  }
  const { type, cible_id: cibleId } = manifest.sauvegarde
  // A container's backup describes its target first.
  const target = type === 'fichier' ? manifest.fichiers.find((f) => f.id === cibleId) : manifest.conteneurs[0]?.id === cibleId ? manifest.conteneurs[0] : undefined
  if ((type === 'systeme') !== (cibleId === null) || (type !== 'systeme' && (!target || ('type' in target && target.type !== type)))) {
    throw invalid('manifest.json : la cible de la sauvegarde n’est pas décrite')
  }
  return manifest
}

interface Inspected {
  manifest: Manifest
  entries: number
}

/**
 * The central directory of an archive just stored, held to the limits before any entry is
 * decompressed (entry count, declared sizes, expansion ratio, entries overlapping one another:
 * the ZIP bombs), then its manifest, read, parsed and checked against the entries. yauzl
 * refuses names that leave the tree (`../`, absolute paths, backslashes) and, while the
 * entries are read later, content longer than declared.
 */
async function inspect(zip: yauzl.ZipFile, limits: ImportLimits): Promise<Inspected> {
  if (zip.entryCount > limits.BACKUP_IMPORT_MAX_ENTRIES) {
    throw invalid(`${zip.entryCount} entrées, au-delà des ${limits.BACKUP_IMPORT_MAX_ENTRIES} acceptées (bombe ZIP ?)`)
  }
  const byName = new Map<string, yauzl.Entry>()
  const spans: [number, number, string][] = []
  let expanded = 0
  try {
    for await (const entry of entries(zip)) {
      if (byName.has(entry.fileName)) throw invalid(`l’entrée « ${entry.fileName} » figure deux fois`)
      byName.set(entry.fileName, entry)
      if (entry.isEncrypted()) throw invalid(`l’entrée « ${entry.fileName} » est chiffrée`)
      expanded += entry.uncompressedSize
      if (expanded > limits.BACKUP_IMPORT_MAX_EXPANDED_BYTES) {
        throw invalid(`les entrées déclarent plus de ${limits.BACKUP_IMPORT_MAX_EXPANDED_BYTES} octets décompressés (bombe ZIP ?)`)
      }
      if (entry.uncompressedSize > RATIO_FLOOR && entry.uncompressedSize > entry.compressedSize * limits.BACKUP_IMPORT_MAX_RATIO) {
        throw invalid(`l’entrée « ${entry.fileName} » se décompresse plus de ${limits.BACKUP_IMPORT_MAX_RATIO} fois (bombe ZIP ?)`)
      }
      // The local header (30 bytes and the name, at least) and the data that follows it.
      spans.push([entry.relativeOffsetOfLocalHeader, entry.relativeOffsetOfLocalHeader + 30 + entry.fileNameLength + entry.compressedSize, entry.fileName])
    }
  } catch (error) {
    if ((error as { code?: string }).code === 'ARCHIVE_INVALID') throw error
    throw refusal(error)
  }
  spans.sort((a, b) => a[0] - b[0])
  for (let i = 1; i < spans.length; i++) {
    if (spans[i]![0] < spans[i - 1]![1]) throw invalid(`les entrées « ${spans[i - 1]![2]} » et « ${spans[i]![2]} » se chevauchent (bombe ZIP ?)`)
  }

  const manifestEntry = byName.get(MANIFEST)
  if (!manifestEntry) throw invalid('manifest.json manque : ce n’est pas une archive produite par Armoire')
  if (manifestEntry.uncompressedSize > MANIFEST_MAX_BYTES) throw invalid('manifest.json est trop grand')
  const chunks: Buffer[] = []
  try {
    for await (const chunk of (await zip.openReadStreamPromise(manifestEntry)) as AsyncIterable<Buffer>) chunks.push(chunk)
  } catch (error) {
    throw refusal(error)
  }
  const manifest = wellFormed(Buffer.concat(chunks))

  const described = new Set<string>([MANIFEST, ...[...manifest.ancetres, ...manifest.conteneurs].map((c) => `${c.chemin}/`)])
  for (const f of manifest.fichiers) {
    for (const v of f.versions) {
      const entry = byName.get(v.entree)
      if (!entry) throw new Errors.BACKUP_TAMPERED(`« ${v.entree} » manque dans l’archive`)
      if (entry.uncompressedSize !== v.taille) throw new Errors.BACKUP_TAMPERED(`« ${v.entree} » déclare ${entry.uncompressedSize} octets, le manifeste ${v.taille}`)
      described.add(v.entree)
    }
  }
  const stray = [...byName.keys()].find((name) => !described.has(name) && !name.endsWith('/'))
  if (stray) throw invalid(`l’entrée « ${stray} » n’est pas décrite par manifest.json`)
  return { manifest, entries: byName.size }
}

/** The summary of an imported backup: the manifest's target and counts, and where it comes from. */
function contenuOf(row: SauvegardeRow, manifest: Manifest, rank: number) {
  const tree = {
    containers: manifest.sauvegarde.type === 'fichier' ? [] : manifest.conteneurs,
    files: manifest.fichiers,
  }
  return {
    ...summarise({ ...row, type: manifest.sauvegarde.type, cible_id: manifest.sauvegarde.cible_id }, tree, rank),
    origine: { organisation_id: manifest.organisation_id, sauvegarde_id: manifest.sauvegarde.id, created_at: manifest.sauvegarde.created_at },
  }
}

/**
 * POST /sauvegardes/import: streams the uploaded archive into the archive store, encrypted
 * under a data key of its own (as a backup's archive is), beating a heartbeat so that a crash
 * mid-upload is swept like an interrupted backup; then checks it as POST …/verifier does,
 * after its central directory and manifest passed the import's own checks. A refused archive
 * leaves nothing: no row, no key, no blob; the refusal is journaled.
 */
export async function importArchive(ctx: BackupContext, request: FastifyRequest, limits: ImportLimits): Promise<SauvegardeRow> {
  const { app, store } = ctx
  const { db } = app
  const { organisationId, userId } = principalOf(request)
  if (!request.isMultipart()) throw new Errors.UNSUPPORTED_MEDIA_TYPE(request.headers['content-type'] ?? 'aucun')
  const id = randomUUID()
  const dataKey = randomDataKey()
  const writer = store.createWriter()
  const blob = writer.name
  let recorded = false
  const heartbeat = setInterval(() => {
    db.updateTable('sauvegardes').set({ battement_le: sql`now()` }).where('id', '=', id).where('statut', '=', 'en_cours').execute()
      .catch((err: unknown) => app.log.warn({ err, sauvegarde: id }, 'import heartbeat failed'))
  }, Math.min(5_000, (ctx.staleSeconds * 1000) / 4))
  try {
    // Refused on the announced size, before anything is read.
    const declared = Number(request.headers['content-length'] ?? 0)
    if (declared > limits.BACKUP_IMPORT_MAX_BYTES + FRAMING) throw new Errors.PAYLOAD_TOO_LARGE()
    const allowance = await archiveAllowance(ctx, organisationId, Math.max(0, declared - FRAMING))
    const row = await db.transaction().execute(async (trx) => {
      const keyId = await insertArchiveKey(ctx, trx, organisationId, id, dataKey)
      return trx
        .insertInto('sauvegardes')
        .values({
          id,
          organisation_id: organisationId,
          // Known from the manifest once the archive is in.
          type: 'systeme',
          cible_id: null,
          declencheur: 'import',
          statut: 'en_cours',
          contenu: JSON.stringify({}),
          progression: JSON.stringify({ entrees_faites: 0, entrees_total: 0, octets_faits: 0, octets_total: 0 }),
          chemin: blob,
          cle_id: keyId,
          created_by: userId,
          demarree_le: sql`now()`,
          battement_le: sql`now()`,
        })
        .returningAll()
        .executeTakeFirstOrThrow()
    })
    recorded = true

    const meter = archiveMeter(allowance)
    let received = false
    for await (const part of request.parts()) {
      if (part.type === 'field') continue
      if (part.fieldname !== IMPORT_PART || received) {
        part.file.resume()
        throw Object.assign(new Errors.VALIDATION_ERROR(), { fields: [{ field: `body.${part.fieldname}`, message: `une seule partie fichier, nommée « ${IMPORT_PART} »` }] })
      }
      received = true
      await pipeline(part.file, meter.stream, createEncryptStream({ key: dataKey, aad: id }), writer.stream)
    }
    if (!received) throw Object.assign(new Errors.VALIDATION_ERROR(), { fields: [{ field: `body.${IMPORT_PART}`, message: 'la partie « archive » manque' }] })
    await writer.commit()
    const archive = meter.result()
    const stored = { ...row, taille: archive.size, sha256: archive.sha256, statut: 'terminee' as const }

    let zip: yauzl.ZipFile
    try {
      zip = await openArchive({ store, blob, key: dataKey, aad: id, size: archive.size })
    } catch (error) {
      throw refusal(error)
    }
    let inspected: Inspected
    try {
      inspected = await inspect(zip, limits)
    } finally {
      zip.close()
    }
    const { manifest } = inspected
    const checked = await checkArchive(ctx, stored, dataKey)
    if (checked.erreurs.length > 0) throw new Errors.BACKUP_TAMPERED(checked.erreurs.slice(0, 3).join(' ; '))

    const versions = manifest.fichiers.reduce((n, f) => n + f.versions.length, 0)
    const bytes = manifest.fichiers.reduce((n, f) => n + f.versions.reduce((m, v) => m + v.taille, 0), 0)
    const verifiedAt = new Date()
    const verification = { valide: true, verifiee_le: verifiedAt.toISOString(), entrees: checked.entrees, fichiers: checked.fichiers, erreurs: [] }
    const done = await db.transaction().execute(async (trx) => {
      const { type, cible_id: cibleId, versions: choice } = manifest.sauvegarde
      const contenu = contenuOf(row, manifest, await nextRank(trx, organisationId, type, cibleId))
      const finished = await trx
        .updateTable('sauvegardes')
        .set({
          type,
          cible_id: cibleId,
          versions: choice,
          statut: 'terminee',
          contenu: JSON.stringify(contenu),
          taille: archive.size,
          sha256: archive.sha256,
          progression: JSON.stringify({ entrees_faites: versions, entrees_total: versions, octets_faits: bytes, octets_total: bytes }),
          verifiee_le: verifiedAt,
          verification: JSON.stringify(verification),
          terminee_le: sql`now()`,
          battement_le: null,
        })
        .where('id', '=', id)
        .where('statut', '=', 'en_cours')
        .returningAll()
        .executeTakeFirst()
      if (!finished) throw new Errors.BACKUP_INTERRUPTED()
      await app.audit.record(trx, {
        ...actorOf(request),
        action: 'BACKUP_IMPORTED',
        target: { type: 'sauvegarde', id, nom: targetName(finished) },
        details: {
          type,
          cible_id: cibleId,
          taille: archive.size,
          sha256: archive.sha256,
          entrees: checked.entrees,
          fichiers: checked.fichiers,
          origine: contenu.origine,
        },
      })
      return finished
    })
    return done
  } catch (error) {
    await writer.abort()
    await store.delete(blob).catch((err: unknown) => app.log.warn({ err, blob }, 'could not remove a refused import’s blob'))
    const code = (error as { code?: string }).code ?? 'ABORTED'
    await db.transaction().execute(async (trx) => {
      if (recorded) {
        await trx.deleteFrom('sauvegardes').where('id', '=', id).execute()
        await trx.deleteFrom('cles_chiffrement').where('sauvegarde_id', '=', id).execute()
      }
      await app.audit.record(trx, {
        ...actorOf(request),
        action: 'BACKUP_IMPORTED',
        target: { type: 'sauvegarde', id: null },
        result: 'echec',
        details: { raison: code, detail: (error as Error).message?.slice(0, 500) ?? null, client_deconnecte: request.raw.destroyed },
      })
    }).catch((err: unknown) => app.log.error({ err, sauvegarde: id }, 'could not undo a refused import'))
    throw error
  } finally {
    clearInterval(heartbeat)
    dataKey.fill(0)
  }
}
