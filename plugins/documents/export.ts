import { type Kysely, sql } from 'kysely'
import type { DB } from '../../db/types.ts'
import { Errors } from '../../src/errors.ts'
import { type ContainerKind, type Kind, LABELS, TABLES } from './tree.ts'

/** What a backup sees of the tree: live elements only, read in one snapshot. */
export interface ExportedContainer {
  type: ContainerKind
  id: string
  nom: string
  parent: { type: ContainerKind; id: string } | null
  created_by: string | null
  created_at: Date
}

export interface ExportedVersion {
  id: string
  version_number: number
  nom: string
  type_mime: string
  taille: number
  sha256: string
  blob: string
  cle_id: string
  cle_enveloppee: Buffer | null
  version_cle_maitre: number
  restauree_depuis: number | null
  created_by: string | null
  created_at: Date
}

export interface ExportedFile {
  id: string
  dossier_id: string
  nom: string
  type_mime: string
  taille: number
  sha256: string
  version_courante: number
  created_by: string | null
  created_at: Date
  updated_at: Date
  /** Oldest first; only the current one unless every version was asked for. */
  versions: ExportedVersion[]
}

export interface ExportedTree {
  /** The containers above the target, outermost first (empty for an armoire or the system). */
  ancestors: ExportedContainer[]
  /** The target (unless a file or the system) and every container below it, parents first. */
  containers: ExportedContainer[]
  files: ExportedFile[]
}

export type ExportTarget = { type: Kind; id: string } | { type: 'systeme'; id: null }

interface ContainerRow {
  type: ContainerKind
  id: string
  nom: string
  parent_type: ContainerKind | null
  parent_id: string | null
  created_by: string | null
  created_at: Date
}

const toContainer = (r: ContainerRow): ExportedContainer => ({
  type: r.type,
  id: r.id,
  nom: r.nom,
  parent: r.parent_type && r.parent_id ? { type: r.parent_type, id: r.parent_id } : null,
  created_by: r.created_by,
  created_at: r.created_at,
})

const CONTAINER_COLUMNS = {
  armoire: sql`'armoire'::text as type, id, nom, null::text as parent_type, null::uuid as parent_id, created_by, created_at`,
  casier: sql`'casier'::text as type, id, nom, 'armoire'::text as parent_type, armoire_id as parent_id, created_by, created_at`,
  dossier: sql`'dossier'::text as type, id, nom, case when parent_id is null then 'casier' else 'dossier' end as parent_type,
    coalesce(parent_id, casier_id) as parent_id, created_by, created_at`,
}

/** Orders folders so that each comes after its parent. */
function parentsFirst(containers: ExportedContainer[]): ExportedContainer[] {
  const byId = new Map(containers.map((c) => [c.id, c]))
  const depth = new Map<string, number>()
  const depthOf = (c: ExportedContainer): number => {
    const known = depth.get(c.id)
    if (known !== undefined) return known
    const parent = c.parent ? byId.get(c.parent.id) : undefined
    const d = parent ? depthOf(parent) + 1 : 0
    depth.set(c.id, d)
    return d
  }
  const rank = { armoire: 0, casier: 1, dossier: 2 }
  return [...containers].sort((a, b) => rank[a.type] - rank[b.type] || depthOf(a) - depthOf(b) || (a.nom < b.nom ? -1 : 1))
}

/**
 * The live tree under a target (or the whole organisation) with each file's versions and
 * wrapped keys, read in one repeatable-read snapshot: what a backup archives. 404 when the
 * target is not a live element of the organisation.
 */
export async function exportTree(db: Kysely<DB>, organisationId: string, target: ExportTarget, allVersions: boolean): Promise<ExportedTree> {
  return db
    .transaction()
    .setIsolationLevel('repeatable read')
    .execute(async (trx) => {
      const org = organisationId
      const live = sql`organisation_id = ${org} and deleted_at is null`
      const select = async (kind: ContainerKind, where: ReturnType<typeof sql>) =>
        (await sql<ContainerRow>`select ${CONTAINER_COLUMNS[kind]} from ${sql.table(TABLES[kind])} where ${live} and ${where}`.execute(trx)).rows.map(
          toContainer,
        )
      const one = async (kind: ContainerKind, id: string): Promise<ExportedContainer> => {
        const [row] = await select(kind, sql`id = ${id}`)
        if (!row) throw new Errors.NOT_FOUND(LABELS[kind])
        return row
      }
      const above = async (first: ExportedContainer | null): Promise<ExportedContainer[]> => {
        const chain: ExportedContainer[] = []
        for (let c = first; c; c = c.parent ? await one(c.parent.type, c.parent.id) : null) chain.unshift(c)
        return chain
      }

      let ancestors: ExportedContainer[] = []
      let containers: ExportedContainer[] = []
      let fileFilter: ReturnType<typeof sql>
      if (target.type === 'systeme') {
        containers = [...(await select('armoire', sql`true`)), ...(await select('casier', sql`true`)), ...(await select('dossier', sql`true`))]
        fileFilter = sql`true`
      } else if (target.type === 'fichier') {
        const { rows } = await sql<{ dossier_id: string }>`select dossier_id from fichiers where id = ${target.id} and ${live}`.execute(trx)
        if (!rows[0]) throw new Errors.NOT_FOUND(LABELS.fichier)
        ancestors = await above(await one('dossier', rows[0].dossier_id))
        fileFilter = sql`f.id = ${target.id}`
      } else {
        const root = await one(target.type, target.id)
        ancestors = await above(root.parent ? await one(root.parent.type, root.parent.id) : null)
        if (target.type === 'armoire') {
          const casiers = await select('casier', sql`armoire_id = ${root.id}`)
          const dossiers = casiers.length
            ? await select('dossier', sql`casier_id = any(${casiers.map((c) => c.id)}::uuid[])`)
            : []
          containers = [root, ...casiers, ...dossiers]
        } else if (target.type === 'casier') {
          containers = [root, ...(await select('dossier', sql`casier_id = ${root.id}`))]
        } else {
          const below = await select(
            'dossier',
            sql`id in (with recursive sous(id) as (
                select id from dossiers where parent_id = ${root.id} and organisation_id = ${org}
                union all select d.id from dossiers d join sous on d.parent_id = sous.id where d.organisation_id = ${org}
              ) select id from sous)`,
          )
          containers = [root, ...below]
        }
        const folders = containers.filter((c) => c.type === 'dossier').map((c) => c.id)
        fileFilter = sql`f.dossier_id = any(${folders}::uuid[])`
      }

      const versions = await sql<ExportedVersion & { fichier_id: string; f_nom: string; f_type_mime: string; f_taille: number; f_sha256: string; version_courante: number; dossier_id: string; f_created_by: string | null; f_created_at: Date; f_updated_at: Date }>`
        select f.id as fichier_id, f.dossier_id, f.nom as f_nom, f.type_mime as f_type_mime, f.taille as f_taille, f.sha256 as f_sha256,
          f.version_courante, f.created_by as f_created_by, f.created_at as f_created_at, f.updated_at as f_updated_at,
          v.id, v.version_number, v.nom, v.type_mime, v.taille, v.sha256, v.blob, v.cle_id, v.restauree_depuis, v.created_by, v.created_at,
          k.cle_enveloppee, k.version_cle_maitre
        from fichiers f
        join versions_fichiers v on v.fichier_id = f.id
        join cles_chiffrement k on k.id = v.cle_id
        where f.organisation_id = ${org} and f.deleted_at is null and ${fileFilter}
          ${allVersions ? sql`` : sql`and v.version_number = f.version_courante`}
        order by f.dossier_id, lower(f.nom), f.id, v.version_number`.execute(trx)

      const files: ExportedFile[] = []
      for (const r of versions.rows) {
        let file = files.at(-1)
        if (file?.id !== r.fichier_id) {
          file = {
            id: r.fichier_id,
            dossier_id: r.dossier_id,
            nom: r.f_nom,
            type_mime: r.f_type_mime,
            taille: Number(r.f_taille),
            sha256: r.f_sha256,
            version_courante: r.version_courante,
            created_by: r.f_created_by,
            created_at: r.f_created_at,
            updated_at: r.f_updated_at,
            versions: [],
          }
          files.push(file)
        }
        file.versions.push({
          id: r.id,
          version_number: r.version_number,
          nom: r.nom,
          type_mime: r.type_mime,
          taille: Number(r.taille),
          sha256: r.sha256,
          blob: r.blob,
          cle_id: r.cle_id,
          cle_enveloppee: r.cle_enveloppee,
          version_cle_maitre: r.version_cle_maitre,
          restauree_depuis: r.restauree_depuis,
          created_by: r.created_by,
          created_at: r.created_at,
        })
      }
      return { ancestors, containers: parentsFirst(containers), files }
    })
}

/** Whether a version still exists (a backup skips one purged while it ran). */
export async function versionExists(db: Kysely<DB>, organisationId: string, versionId: string): Promise<boolean> {
  const row = await db
    .selectFrom('versions_fichiers as v')
    .innerJoin('cles_chiffrement as k', 'k.id', 'v.cle_id')
    .select('v.id')
    .where('v.id', '=', versionId)
    .where('v.organisation_id', '=', organisationId)
    .where('k.cle_enveloppee', 'is not', null)
    .executeTakeFirst()
  return row !== undefined
}
