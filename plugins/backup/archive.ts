import { createHash } from 'node:crypto'
import { type Readable, Transform, type TransformCallback } from 'node:stream'
import { finished, pipeline } from 'node:stream/promises'
import type { FastifyInstance } from 'fastify'
import yazl from 'yazl'
import type { BlobWriter } from '../../src/blob/store.ts'
import { createEncryptStream } from '../../src/crypto/segmented.ts'
import { Errors } from '../../src/errors.ts'
import {
  type ExportedContainer,
  type ExportedFile,
  type ExportedTree,
  type ExportedVersion,
  openPlaintext,
  UnreadableContent,
  versionExists,
} from '../documents/public.ts'

export const MANIFEST = 'manifest.json'
export const MANIFEST_FORMAT = 'armoire-sauvegarde'
export const MANIFEST_VERSION = 1

export interface ManifestContainer {
  type: 'armoire' | 'casier' | 'dossier'
  id: string
  nom: string
  parent: { type: 'armoire' | 'casier' | 'dossier'; id: string } | null
  chemin: string
  created_by: string | null
  created_at: string
}

export interface ManifestVersion {
  id: string
  version_number: number
  nom: string
  type_mime: string
  taille: number
  sha256: string
  entree: string
  restauree_depuis: number | null
  created_by: string | null
  created_at: string
}

export interface ManifestFile {
  id: string
  dossier_id: string
  nom: string
  chemin: string
  type_mime: string
  taille: number
  sha256: string
  version_courante: number
  created_by: string | null
  created_at: string
  /** Oldest first; the last is the current version. */
  versions: ManifestVersion[]
}

/** `manifest.json`: enough to check every entry and to restore into this or another Armoire. */
export interface Manifest {
  format: typeof MANIFEST_FORMAT
  version_format: typeof MANIFEST_VERSION
  organisation_id: string
  sauvegarde: {
    id: string
    type: 'fichier' | 'dossier' | 'casier' | 'armoire' | 'systeme'
    cible_id: string | null
    versions: 'derniere' | 'toutes'
    created_by: string | null
    created_at: string
  }
  /** The containers above the target, outermost first, so a restore can rebuild the way to it. */
  ancetres: ManifestContainer[]
  conteneurs: ManifestContainer[]
  fichiers: ManifestFile[]
  /** Versions purged while the backup ran: absent from the archive, whole or not at all. */
  absents: { fichier_id: string; version_id: string }[]
}

/**
 * Media types whose content is already compressed, or random-looking: stored as they are.
 * Text and the few binary formats that shrink well are deflated; anything unknown is stored,
 * which costs nothing and rarely loses much.
 */
const DEFLATED = [
  /^text\//,
  /\+(json|xml)$/,
  /^application\/(json|xml|javascript|x-javascript|ecmascript|x-sh|x-csh|rtf|x-tex|x-latex|sql|graphql|x-yaml|yaml|toml|x-ndjson)$/,
  /^application\/(msword|vnd\.ms-excel|vnd\.ms-powerpoint|x-msaccess|postscript|x-tar)$/,
  /^image\/(bmp|x-ms-bmp|svg\+xml|tiff|x-portable-\w+)$/,
]

export function compressible(typeMime: string): boolean {
  return DEFLATED.some((re) => re.test(typeMime))
}

/** Names in the archive: the tree's names, minus what an unzipper would read as a separator. */
const entryName = (nom: string): string => nom.replace(/\\/g, '_')

function splitExtension(name: string): [string, string] {
  const dot = name.lastIndexOf('.')
  return dot > 0 ? [name.slice(0, dot), name.slice(dot)] : [name, '']
}

/** Hands out paths unique in their directory (case-insensitively, like the desktop clients). */
class PathSpace {
  private readonly used = new Set<string>([MANIFEST])

  take(dir: string, name: string): string {
    const [base, ext] = splitExtension(name)
    for (let n = 1; ; n++) {
      const candidate = `${dir}${n === 1 ? name : `${base} (${n})${ext}`}`
      if (!this.used.has(candidate.toLowerCase())) {
        this.used.add(candidate.toLowerCase())
        return candidate
      }
    }
  }
}

export interface PlannedEntry {
  path: string
  file: ExportedFile
  version: ExportedVersion
  compress: boolean
}

export interface ArchivePlan {
  directories: string[]
  entries: PlannedEntry[]
  manifest: Manifest
  /** Plaintext bytes of every version. */
  bytes: number
  /** A generous estimate of the archive's size, for the quota check before writing. */
  estimatedSize: number
}

const iso = (d: Date) => d.toISOString()

/** Where every container and version goes in the archive, and the manifest describing it. */
export function planArchive(tree: ExportedTree, header: Omit<Manifest, 'format' | 'version_format' | 'ancetres' | 'conteneurs' | 'fichiers' | 'absents'>): ArchivePlan {
  const space = new PathSpace()
  const dirOf = new Map<string, string>()
  const describe = (c: ExportedContainer): ManifestContainer => {
    const parentDir = c.parent ? (dirOf.get(c.parent.id) ?? '') : ''
    const dir = `${space.take(parentDir, entryName(c.nom))}/`
    dirOf.set(c.id, dir)
    return { type: c.type, id: c.id, nom: c.nom, parent: c.parent, chemin: dir.slice(0, -1), created_by: c.created_by, created_at: iso(c.created_at) }
  }
  const ancetres = tree.ancestors.map(describe)
  const conteneurs = tree.containers.map(describe)
  const entries: PlannedEntry[] = []
  const fichiers: ManifestFile[] = []
  let bytes = 0
  let overhead = 0
  for (const file of tree.files) {
    const dir = dirOf.get(file.dossier_id) ?? ''
    const current = file.versions.at(-1)!
    const path = space.take(dir, entryName(file.nom))
    const versions: ManifestVersion[] = []
    for (const version of file.versions) {
      let entree = path
      if (version !== current) {
        const [base, ext] = splitExtension(path.slice(dir.length))
        entree = space.take(`${dir}.versions/`, `${base}.v${version.version_number}${ext}`)
      }
      entries.push({ path: entree, file, version, compress: compressible(version.type_mime) })
      versions.push({
        id: version.id,
        version_number: version.version_number,
        nom: version.nom,
        type_mime: version.type_mime,
        taille: version.taille,
        sha256: version.sha256,
        entree,
        restauree_depuis: version.restauree_depuis,
        created_by: version.created_by,
        created_at: iso(version.created_at),
      })
      bytes += version.taille
      // Local header, data descriptor, central record (ZIP64 and timestamp fields included), name twice, manifest line.
      overhead += 200 + 2 * Buffer.byteLength(entree) + 600
    }
    fichiers.push({
      id: file.id,
      dossier_id: file.dossier_id,
      nom: file.nom,
      chemin: path,
      type_mime: file.type_mime,
      taille: file.taille,
      sha256: file.sha256,
      version_courante: file.version_courante,
      created_by: file.created_by,
      created_at: iso(file.created_at),
      versions,
    })
  }
  const directories = [...ancetres, ...conteneurs].map((c) => `${c.chemin}/`)
  overhead += directories.reduce((sum, d) => sum + 150 + 2 * Buffer.byteLength(d) + 400, 4096)
  // Deflate never grows a stream by more than a few bytes per 16 KiB block.
  const estimatedSize = bytes + Math.ceil(bytes / 16384) * 5 + overhead
  return {
    directories,
    entries,
    manifest: { format: MANIFEST_FORMAT, version_format: MANIFEST_VERSION, ...header, ancetres, conteneurs, fichiers, absents: [] },
    bytes,
    estimatedSize,
  }
}

export interface Progress {
  entriesDone: number
  bytesDone: number
}

export interface WrittenArchive {
  size: number
  sha256: string
}

/**
 * Counts and hashes an archive's plaintext on its way to the cipher; beyond `limit` bytes it
 * fails with QUOTA_EXCEEDED.
 */
export function archiveMeter(limit: { bytes: number; quota: number } | null): { stream: Transform; result: () => WrittenArchive } {
  const hash = createHash('sha256')
  let size = 0
  const stream = new Transform({
    transform(chunk: Buffer, _encoding, callback: TransformCallback) {
      size += chunk.length
      if (limit && size > limit.bytes) return callback(new Errors.QUOTA_EXCEEDED(limit.quota))
      hash.update(chunk)
      callback(null, chunk)
    },
  })
  return { stream, result: () => ({ size, sha256: hash.digest('hex') }) }
}

/**
 * Streams the planned archive into `writer`, encrypted under `key` with the backup id as
 * associated data: each version is decrypted from its blob as yazl reads it, one at a time,
 * so memory holds a few segments whatever the sizes. The ZIP is hashed and counted on its way
 * to the cipher; beyond `limit` bytes it fails with QUOTA_EXCEEDED.
 */
export async function writeArchive(
  app: FastifyInstance,
  organisationId: string,
  plan: ArchivePlan,
  opts: { key: Buffer; aad: string; writer: BlobWriter; limit: { bytes: number; quota: number } | null; progress: Progress },
): Promise<WrittenArchive> {
  const meter = archiveMeter(opts.limit)
  const zip = new yazl.ZipFile()
  // A PassThrough, typed loosely by @types/yazl.
  const output = zip.outputStream as Readable
  const written = pipeline(output, meter.stream, createEncryptStream({ key: opts.key, aad: opts.aad }), opts.writer.stream)
  // yazl reports a source's failure on the ZipFile itself.
  const failed = new Promise<never>((_resolve, reject) => zip.once('error', reject))
  failed.catch(() => {})
  const stop = (error: Error) => {
    output.destroy(error)
    return written.catch(() => {}).then(() => {
      throw error
    })
  }

  for (const dir of plan.directories) zip.addEmptyDirectory(dir, {})
  for (const entry of plan.entries) {
    const { version } = entry
    let stream
    try {
      stream = await openPlaintext(app, version, { id: version.cle_id, cle_enveloppee: version.cle_enveloppee, version_cle_maitre: version.version_cle_maitre }, null, () => {})
    } catch (error) {
      if (error instanceof UnreadableContent && !(await versionExists(app.db, organisationId, version.id))) {
        // Purged since the snapshot: left out whole, and said so.
        plan.manifest.absents.push({ fichier_id: entry.file.id, version_id: version.id })
        continue
      }
      await stop(new Errors.INTEGRITY_ERROR())
    }
    const consumed = finished(stream!)
    zip.addReadStream(stream!, entry.path, {
      size: version.taille,
      compress: entry.compress,
      mtime: version.created_at,
      mode: 0o100640,
    })
    try {
      await Promise.race([consumed, written, failed])
    } catch (error) {
      await stop(error instanceof UnreadableContent || (error as Error).name === 'IntegrityError' ? new Errors.INTEGRITY_ERROR() : (error as Error))
    }
    opts.progress.entriesDone++
    opts.progress.bytesDone += version.taille
  }
  if (plan.manifest.absents.length > 0) {
    const gone = new Set(plan.manifest.absents.map((a) => a.version_id))
    plan.manifest.fichiers = plan.manifest.fichiers
      .map((f) => ({ ...f, versions: f.versions.filter((v) => !gone.has(v.id)) }))
      .filter((f) => f.versions.length > 0)
  }
  zip.addBuffer(Buffer.from(JSON.stringify(plan.manifest, null, 2)), MANIFEST, { compress: true, mtime: new Date() })
  zip.end()
  await Promise.race([written, failed]).catch(stop)
  return meter.result()
}
