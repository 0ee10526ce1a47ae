import { randomUUID } from 'node:crypto'
import { type Kysely, sql, type Transaction } from 'kysely'
import type { DB } from '../../db/types.ts'
import type { Sealed } from './content.ts'
import { nameConflict } from './names.ts'
import { type ContainerKind, type Kind, lockLive, TABLES } from './tree.ts'
import { addVersion, insertVersion, insertVersions } from './upload.ts'

/*
 * What a restore needs of the tree: find an element wherever it is (live, in the trash, gone),
 * find a live child by name, and add containers, files and versions that never overwrite
 * anything. Every function is scoped by organisation.
 */

export type Parent = { type: ContainerKind; id: string } | null

export interface Located {
  id: string
  nom: string
  /** `trash_root`: deleted by itself, so restorable from the trash; `trashed`: deleted with a container. */
  state: 'live' | 'trash_root' | 'trashed'
  /** The element whose deletion hid this one, when in the trash. */
  suppressionId: string | null
  sha256?: string
}

/** An element of the organisation by id, in whatever state, or null when it is gone. */
export async function locate(db: Kysely<DB> | Transaction<DB>, kind: Kind, organisationId: string, id: string): Promise<Located | null> {
  const extra = kind === 'fichier' ? sql`, sha256` : sql``
  const { rows } = await sql<{ id: string; nom: string; deleted_at: Date | null; suppression_id: string | null; sha256?: string }>`
    select id, nom, deleted_at, suppression_id ${extra} from ${sql.table(TABLES[kind])}
    where id = ${id} and organisation_id = ${organisationId}`.execute(db)
  const row = rows[0]
  if (!row) return null
  const state = row.deleted_at === null ? 'live' : row.suppression_id === row.id ? 'trash_root' : 'trashed'
  return { id: row.id, nom: row.nom, state, suppressionId: row.suppression_id, ...(row.sha256 ? { sha256: row.sha256 } : {}) }
}

/** Whether no organisation uses this id for this kind: a purged element may come back under it. */
export async function idFree(db: Kysely<DB> | Transaction<DB>, kind: Kind, id: string): Promise<boolean> {
  const { rows } = await sql`select 1 from ${sql.table(TABLES[kind])} where id = ${id}`.execute(db)
  return rows.length === 0
}

/** The live siblings' namespace of a parent: what a name must not collide with (case-insensitively). */
function namespace(organisationId: string, parent: Parent, kind: Kind) {
  const live = sql`organisation_id = ${organisationId} and deleted_at is null`
  if (parent === null) return sql`select id, nom, 'armoire' as type, null as sha256 from armoires where ${live}`
  if (parent.type === 'armoire') return sql`select id, nom, 'casier' as type, null as sha256 from casiers where armoire_id = ${parent.id} and ${live}`
  if (parent.type === 'casier') {
    return sql`select id, nom, 'dossier' as type, null as sha256 from dossiers where casier_id = ${parent.id} and parent_id is null and ${live}`
  }
  const folders = sql`select id, nom, 'dossier' as type, null as sha256 from dossiers where parent_id = ${parent.id} and ${live}`
  const files = sql`select id, nom, 'fichier' as type, sha256 from fichiers where dossier_id = ${parent.id} and ${live}`
  return kind === 'dossier' || kind === 'fichier' ? sql`${folders} union all ${files}` : folders
}

/** The live element of this kind named `nom` (case-insensitively) under a parent, if any. */
export async function liveChildNamed(
  db: Kysely<DB> | Transaction<DB>,
  organisationId: string,
  parent: Parent,
  kind: Kind,
  nom: string,
): Promise<{ id: string; nom: string; sha256: string | null } | null> {
  const { rows } = await sql<{ id: string; nom: string; type: string; sha256: string | null }>`
    select * from (${namespace(organisationId, parent, kind)}) s where lower(s.nom) = lower(${nom}) and s.type = ${kind}`.execute(db)
  return rows[0] ?? null
}

/** Longer than any " (n)" a name will ever be numbered with. */
const LONGEST_SUFFIX = 12

function numbered(nom: string, n: number): string {
  const dot = nom.lastIndexOf('.')
  const [base, ext] = dot > 0 ? [nom.slice(0, dot), nom.slice(dot)] : [nom, '']
  const suffix = ` (${n})`
  return `${base.slice(0, 255 - suffix.length - ext.length)}${suffix}${ext}`
}

const escapeLike = (text: string) => text.replace(/[\\%_]/g, (c) => `\\${c}`)

/** `nom`, or "nom (2)", "nom (3)"… : the first name no live sibling takes. */
export async function freeName(db: Kysely<DB> | Transaction<DB>, organisationId: string, parent: Parent, kind: Kind, nom: string): Promise<string> {
  const siblings = namespace(organisationId, parent, kind)
  // The usual case, a free name, is one probe of the siblings' unique index on lower(nom);
  // only a taken one reads the names it could be numbered into, which all start alike.
  const { rows: same } = await sql`select 1 from (${siblings}) s where lower(s.nom) = lower(${nom}) limit 1`.execute(db)
  if (same.length === 0) return nom
  const dot = nom.lastIndexOf('.')
  const stem = (dot > 0 ? nom.slice(0, dot) : nom).slice(0, 255 - LONGEST_SUFFIX - (dot > 0 ? nom.length - dot : 0))
  const { rows } = await sql<{ nom: string }>`
    select lower(nom) as nom from (${siblings}) s where lower(s.nom) like lower(${escapeLike(stem)}) || '%'`.execute(db)
  const taken = new Set(rows.map((r) => r.nom))
  for (let n = 1; ; n++) {
    const candidate = n === 1 ? nom : numbered(nom, n)
    if (!taken.has(candidate.toLowerCase())) return candidate
  }
}

/**
 * A new container under a live parent (locked), under a free name; `id` keeps the original
 * identity of a purged element. Answers its id and the name it got.
 */
export async function insertContainer(
  trx: Transaction<DB>,
  row: { kind: ContainerKind; organisationId: string; parent: Parent; nom: string; id?: string; userId: string | null },
): Promise<{ id: string; nom: string }> {
  const { kind, organisationId, parent } = row
  if (parent) await lockLive(trx, parent.type, organisationId, parent.id)
  const nom = await freeName(trx, organisationId, parent, kind, row.nom)
  const common = { organisation_id: organisationId, nom, created_by: row.userId, ...(row.id ? { id: row.id } : {}) }
  const created =
    kind === 'armoire'
      ? await trx.insertInto('armoires').values(common).returning('id').executeTakeFirstOrThrow().catch((e: unknown) => nameConflict(e, nom))
      : kind === 'casier'
        ? await trx.insertInto('casiers').values({ ...common, armoire_id: parent!.id }).returning('id').executeTakeFirstOrThrow().catch((e: unknown) => nameConflict(e, nom))
        : await (async () => {
            let casierId = parent!.id
            if (parent!.type === 'dossier') {
              const up = await trx.selectFrom('dossiers').select('casier_id').where('id', '=', parent!.id).executeTakeFirstOrThrow()
              casierId = up.casier_id
            }
            return trx
              .insertInto('dossiers')
              .values({ ...common, casier_id: casierId, parent_id: parent!.type === 'dossier' ? parent!.id : null })
              .returning('id')
              .executeTakeFirstOrThrow()
              .catch((e: unknown) => nameConflict(e, nom))
          })()
  return { id: created.id, nom }
}

export interface ImportedVersion {
  sealed: Sealed
  typeMime: string
  /** The version number it had where it came from, when the file is the same one. */
  restoredFrom: number | null
}

export interface NewFile {
  dossierId: string
  nom: string
  /** The original identity of a purged file, when it is free. */
  id?: string
  /** Oldest first; the last one becomes the current version. */
  versions: ImportedVersion[]
}

/**
 * New files under live dossiers (locked), each under a free name, with their versions: in a
 * handful of statements however many they are, since a restore inserts thousands and every
 * round trip waits its turn on a busy machine. Answers each file's id, name and current
 * version number, in the order given.
 */
export async function insertFiles(
  trx: Transaction<DB>,
  row: { organisationId: string; userId: string | null; backupId: string },
  files: NewFile[],
): Promise<{ id: string; nom: string; versionNumber: number }[]> {
  const { organisationId } = row
  const dossiers = [...new Set(files.map((f) => f.dossierId))].sort()
  for (const dossierId of dossiers) await lockLive(trx, 'dossier', organisationId, dossierId)
  // The usual case, every name free, is one probe of the siblings' unique indexes; a taken name,
  // or one the batch uses twice, is numbered by insertFile once the others are in. PostgreSQL
  // lowers the names, as the indexes do.
  const { rows: probed } = await sql<{ low: string; taken: boolean }>`
    select lower(n.nom) as low,
      exists (select 1 from fichiers f where f.dossier_id = n.dossier and f.organisation_id = ${organisationId}
          and f.deleted_at is null and lower(f.nom) = lower(n.nom))
        or exists (select 1 from dossiers d where d.parent_id = n.dossier and d.organisation_id = ${organisationId}
          and d.deleted_at is null and lower(d.nom) = lower(n.nom)) as taken
    from unnest(${files.map((f) => f.dossierId)}::uuid[], ${files.map((f) => f.nom)}::text[]) with ordinality as n(dossier, nom, i)
    order by n.i`.execute(trx)
  const used = new Set<string>()
  const later: number[] = []
  const now: { index: number; id: string; file: NewFile; first: ImportedVersion }[] = []
  for (const [index, file] of files.entries()) {
    const key = `${file.dossierId}/${probed[index]!.low}`
    const first = file.versions[0]
    if (!first) throw new Error('a file needs at least one version')
    if (probed[index]!.taken || used.has(key)) later.push(index)
    else {
      used.add(key)
      now.push({ index, id: file.id ?? randomUUID(), file, first })
    }
  }
  const made: { id: string; nom: string; versionNumber: number }[] = []
  if (now.length > 0) {
    await trx
      .insertInto('fichiers')
      .values(
        now.map(({ id, file, first }) => ({
          id,
          organisation_id: organisationId,
          dossier_id: file.dossierId,
          nom: file.nom,
          type_mime: first.typeMime,
          taille: first.sealed.size,
          sha256: first.sealed.sha256,
          version_courante: 1,
          created_by: row.userId,
        })),
      )
      .execute()
      .catch((e: unknown) => nameConflict(e, now.map(({ file }) => file.nom).join(', ')))
    const versionRow = (id: string, file: NewFile, v: ImportedVersion) =>
      ({ organisationId, fichierId: id, versionNumber: 1, nom: file.nom, typeMime: v.typeMime, userId: row.userId, restoredFromBackup: row.backupId })
    await insertVersions(trx, now.map(({ id, file, first }) => ({ sealed: first.sealed, row: versionRow(id, file, first) })))
    for (const { index, id, file } of now) {
      made[index] = { id, nom: file.nom, versionNumber: await addVersions(trx, organisationId, row, { id, nom: file.nom, version_courante: 1 }, file.versions.slice(1)) }
    }
  }
  for (const index of later) made[index] = await insertFile(trx, { ...row, ...files[index]! })
  return made
}

/** The later versions of a file just inserted, each made current in turn; answers the last number. */
async function addVersions(
  trx: Transaction<DB>,
  organisationId: string,
  row: { userId: string | null; backupId: string },
  file: { id: string; nom: string; version_courante: number },
  versions: ImportedVersion[],
): Promise<number> {
  let current = file
  for (const v of versions) {
    const added = await addVersion(trx, v.sealed, current, { organisationId, typeMime: v.typeMime, userId: row.userId, restoredFromBackup: row.backupId })
    current = { ...file, version_courante: added.version.version_number }
  }
  return current.version_courante
}

/** One new file under a free name, numbered when its name is taken; the dossier is locked. */
async function insertFile(
  trx: Transaction<DB>,
  row: { organisationId: string; dossierId: string; nom: string; id?: string; userId: string | null; backupId: string; versions: ImportedVersion[] },
): Promise<{ id: string; nom: string; versionNumber: number }> {
  const { organisationId, dossierId } = row
  const nom = await freeName(trx, organisationId, { type: 'dossier', id: dossierId }, 'fichier', row.nom)
  const [first, ...rest] = row.versions
  if (!first) throw new Error('a file needs at least one version')
  const fichier = await trx
    .insertInto('fichiers')
    .values({
      ...(row.id ? { id: row.id } : {}),
      organisation_id: organisationId,
      dossier_id: dossierId,
      nom,
      type_mime: first.typeMime,
      taille: first.sealed.size,
      sha256: first.sealed.sha256,
      version_courante: 1,
      created_by: row.userId,
    })
    .returning(['id', 'nom', 'version_courante'])
    .executeTakeFirstOrThrow()
    .catch((e: unknown) => nameConflict(e, nom))
  await insertVersion(trx, first.sealed, {
    organisationId,
    fichierId: fichier.id,
    versionNumber: 1,
    nom,
    typeMime: first.typeMime,
    userId: row.userId,
    restoredFromBackup: row.backupId,
  })
  return { id: fichier.id, nom, versionNumber: await addVersions(trx, organisationId, row, fichier, rest) }
}

/** A new current version of a live file (locked), its content brought back from a backup. */
export async function appendVersion(
  trx: Transaction<DB>,
  row: { organisationId: string; fichierId: string; userId: string | null; backupId: string },
  version: ImportedVersion,
): Promise<{ versionNumber: number; nom: string }> {
  const current = await trx
    .selectFrom('fichiers')
    .select(['id', 'nom', 'version_courante'])
    .where('id', '=', row.fichierId)
    .where('organisation_id', '=', row.organisationId)
    .where('deleted_at', 'is', null)
    .forNoKeyUpdate()
    .executeTakeFirstOrThrow()
  const added = await addVersion(trx, version.sealed, current, {
    organisationId: row.organisationId,
    typeMime: version.typeMime,
    userId: row.userId,
    ...(version.restoredFrom !== null ? { restoredFrom: version.restoredFrom } : {}),
    restoredFromBackup: row.backupId,
  })
  return { versionNumber: added.version.version_number, nom: current.nom }
}
