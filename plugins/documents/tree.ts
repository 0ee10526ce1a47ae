import { type Kysely, sql, type Transaction } from 'kysely'
import type { ArmoireDto, CasierDto, DossierDto } from '../../openapi/documents.ts'
import type { FichierDto } from '../../openapi/documents-fichiers.ts'
import type { DB } from '../../db/types.ts'
import { Errors } from '../../src/errors.ts'
import { nameConflict } from './names.ts'

export type Kind = 'armoire' | 'casier' | 'dossier' | 'fichier'
export type ContainerKind = Exclude<Kind, 'fichier'>

export const TABLES = { armoire: 'armoires', casier: 'casiers', dossier: 'dossiers', fichier: 'fichiers' } as const

export const LABELS: Record<Kind, string> = { armoire: 'Armoire', casier: 'Casier', dossier: 'Dossier', fichier: 'Fichier' }

// Queries with the counts each item shows; every one is scoped by organisation and hides the trash.

export function armoiresQuery(db: Kysely<DB>, organisationId: string) {
  return db
    .selectFrom('armoires as a')
    .select(['a.id', 'a.nom', 'a.created_by', 'a.created_at', 'a.updated_at'])
    .select(sql<number>`(select count(*) from casiers c where c.armoire_id = a.id and c.deleted_at is null)`.as('nombre_elements'))
    .where('a.organisation_id', '=', organisationId)
    .where('a.deleted_at', 'is', null)
}

export function casiersQuery(db: Kysely<DB>, organisationId: string) {
  return db
    .selectFrom('casiers as c')
    .select(['c.id', 'c.armoire_id', 'c.nom', 'c.created_by', 'c.created_at', 'c.updated_at'])
    .select(
      sql<number>`(select count(*) from dossiers d where d.casier_id = c.id and d.parent_id is null and d.deleted_at is null)`.as(
        'nombre_elements',
      ),
    )
    .where('c.organisation_id', '=', organisationId)
    .where('c.deleted_at', 'is', null)
}

export function dossiersQuery(db: Kysely<DB>, organisationId: string) {
  return db
    .selectFrom('dossiers as d')
    .select(['d.id', 'd.casier_id', 'd.parent_id', 'd.nom', 'd.created_by', 'd.created_at', 'd.updated_at'])
    .select(
      sql<number>`(select count(*) from dossiers s where s.parent_id = d.id and s.deleted_at is null)
        + (select count(*) from fichiers f where f.dossier_id = d.id and f.deleted_at is null)`.as('nombre_elements'),
    )
    .where('d.organisation_id', '=', organisationId)
    .where('d.deleted_at', 'is', null)
}

export function fichiersQuery(db: Kysely<DB>, organisationId: string) {
  return db
    .selectFrom('fichiers as f')
    .select([
      'f.id',
      'f.dossier_id',
      'f.nom',
      'f.type_mime',
      'f.taille',
      'f.sha256',
      'f.version_courante',
      'f.created_by',
      'f.created_at',
      'f.updated_at',
    ])
    .where('f.organisation_id', '=', organisationId)
    .where('f.deleted_at', 'is', null)
}

interface Authored {
  id: string
  nom: string
  created_by: string | null
  created_at: Date
  updated_at: Date
}
type Counted = Authored & { nombre_elements: number | string | null }

const authorship = (r: Authored) => ({
  created_by: r.created_by,
  created_at: r.created_at.toISOString(),
  updated_at: r.updated_at.toISOString(),
})
const count = (r: Counted): number => Number(r.nombre_elements ?? 0)

export const toArmoire = (r: Counted): ArmoireDto => ({ id: r.id, nom: r.nom, nombre_elements: count(r), ...authorship(r) })

export const toCasier = (r: Counted & { armoire_id: string }): CasierDto => ({
  id: r.id,
  armoire_id: r.armoire_id,
  nom: r.nom,
  nombre_elements: count(r),
  ...authorship(r),
})

export const toDossier = (r: Counted & { casier_id: string; parent_id: string | null }): DossierDto => ({
  id: r.id,
  casier_id: r.casier_id,
  parent_id: r.parent_id,
  nom: r.nom,
  nombre_elements: count(r),
  ...authorship(r),
})

export interface FichierFields extends Authored {
  dossier_id: string
  type_mime: string
  taille: number
  sha256: string
  version_courante: number
}

export const toFichier = (r: FichierFields): FichierDto => ({
  id: r.id,
  dossier_id: r.dossier_id,
  nom: r.nom,
  type_mime: r.type_mime,
  taille: r.taille,
  sha256: r.sha256,
  version_courante: r.version_courante,
  // Versions go only with their file, so the numbering has no gaps.
  nombre_versions: r.version_courante,
  ...authorship(r),
})

export async function findArmoire(db: Kysely<DB>, organisationId: string, id: string): Promise<ArmoireDto> {
  const row = await armoiresQuery(db, organisationId).where('a.id', '=', id).executeTakeFirst()
  if (!row) throw new Errors.NOT_FOUND(LABELS.armoire)
  return toArmoire(row)
}

export async function findCasier(db: Kysely<DB>, organisationId: string, id: string): Promise<CasierDto> {
  const row = await casiersQuery(db, organisationId).where('c.id', '=', id).executeTakeFirst()
  if (!row) throw new Errors.NOT_FOUND(LABELS.casier)
  return toCasier(row)
}

export async function findDossier(db: Kysely<DB>, organisationId: string, id: string): Promise<DossierDto> {
  const row = await dossiersQuery(db, organisationId).where('d.id', '=', id).executeTakeFirst()
  if (!row) throw new Errors.NOT_FOUND(LABELS.dossier)
  return toDossier(row)
}

export async function findFichier(db: Kysely<DB>, organisationId: string, id: string): Promise<FichierDto> {
  const row = await fichiersQuery(db, organisationId).where('f.id', '=', id).executeTakeFirst()
  if (!row) throw new Errors.NOT_FOUND(LABELS.fichier)
  return toFichier(row)
}

export interface Locked {
  id: string
  nom: string
  /** The row's parent: armoire_id, casier_id, parent_id or dossier_id as the table has it. */
  armoire_id?: string
  casier_id?: string
  parent_id?: string | null
  dossier_id?: string
}

/**
 * Locks a live element of the organisation until the transaction ends, or answers 404.
 * `share` (FOR NO KEY UPDATE) serialises writers of its children; `exclusive` (FOR UPDATE)
 * is taken by what removes it, so no child can slip in meanwhile.
 */
export async function lockLive(
  trx: Transaction<DB>,
  kind: Kind,
  organisationId: string,
  id: string,
  mode: 'share' | 'exclusive' = 'share',
): Promise<Locked> {
  const lock = sql.raw(mode === 'share' ? 'for no key update' : 'for update')
  const { rows } = await sql<Locked>`select * from ${sql.table(TABLES[kind])}
    where id = ${id} and organisation_id = ${organisationId} and deleted_at is null ${lock}`.execute(trx)
  const row = rows[0]
  if (!row) throw new Errors.NOT_FOUND(LABELS[kind])
  return row
}

/**
 * Fichiers and sub-dossiers of one dossier share a namespace, as on the desktop that mirrors it;
 * the unique indexes see one table each, so the other table is checked here, under the
 * dossier’s lock.
 */
export async function assertNameFreeInDossier(
  trx: Transaction<DB>,
  organisationId: string,
  dossierId: string,
  nom: string,
  other: 'dossiers' | 'fichiers',
): Promise<void> {
  const column = other === 'dossiers' ? 'parent_id' : 'dossier_id'
  const { rows } = await sql`select 1 from ${sql.table(other)}
    where ${sql.ref(column)} = ${dossierId} and organisation_id = ${organisationId}
      and lower(nom) = lower(${nom}) and deleted_at is null limit 1`.execute(trx)
  if (rows.length > 0) throw new Errors.NAME_CONFLICT(nom)
}

/** Whether a live element holds live children (what deleting it without `recursif` refuses). */
export async function hasLiveChildren(trx: Transaction<DB>, organisationId: string, kind: ContainerKind, id: string): Promise<boolean> {
  const org = organisationId
  const query =
    kind === 'armoire'
      ? sql`select exists (select 1 from casiers where armoire_id = ${id} and organisation_id = ${org} and deleted_at is null) as some`
      : kind === 'casier'
        ? sql`select exists (select 1 from dossiers
            where casier_id = ${id} and parent_id is null and organisation_id = ${org} and deleted_at is null) as some`
        : sql`select exists (select 1 from dossiers where parent_id = ${id} and organisation_id = ${org} and deleted_at is null)
            or exists (select 1 from fichiers where dossier_id = ${id} and organisation_id = ${org} and deleted_at is null) as some`
  const { rows } = await query.execute(trx)
  return (rows[0] as { some: boolean }).some
}

/** The ids of a dossier and of every dossier below it, trashed or not. */
export function dossierSubtree(organisationId: string, id: string) {
  return sql`with recursive sous(id) as (
      select id from dossiers where id = ${id} and organisation_id = ${organisationId}
      union all
      select d.id from dossiers d join sous on d.parent_id = sous.id where d.organisation_id = ${organisationId}
    ) select id from sous`
}

/** Every dossier id under an element (the dossier itself included), trashed or not. */
export function dossiersUnder(organisationId: string, kind: ContainerKind, id: string) {
  if (kind === 'dossier') return dossierSubtree(organisationId, id)
  if (kind === 'casier') return sql`select id from dossiers where casier_id = ${id} and organisation_id = ${organisationId}`
  return sql`select d.id from dossiers d join casiers c on c.id = d.casier_id
    where c.armoire_id = ${id} and d.organisation_id = ${organisationId}`
}

/** Whether `ancestor` is `id` itself or one of its ancestors. */
export async function isSelfOrAncestor(trx: Transaction<DB>, organisationId: string, ancestor: string, id: string): Promise<boolean> {
  const { rows } = await sql`with recursive up(id, parent_id) as (
      select id, parent_id from dossiers where id = ${id} and organisation_id = ${organisationId}
      union all
      select d.id, d.parent_id from dossiers d join up on d.id = up.parent_id
    ) select 1 from up where id = ${ancestor} limit 1`.execute(trx)
  return rows.length > 0
}

/** Serialises sub-dossier moves of one organisation, so two crossing moves cannot make a cycle. */
export async function lockDossierMoves(trx: Transaction<DB>, organisationId: string): Promise<void> {
  await sql`select pg_advisory_xact_lock(hashtextextended(${`dossiers:deplacement:${organisationId}`}, 0))`.execute(trx)
}

export interface DossierPlace {
  nom: string
  parentId: string | null
  casierId: string
}

/** Writes a dossier's name and place; a name taken in its container answers NAME_CONFLICT. */
export async function updateDossierRow(trx: Transaction<DB>, id: string, place: DossierPlace): Promise<void> {
  await trx
    .updateTable('dossiers')
    .set({ nom: place.nom, parent_id: place.parentId, casier_id: place.casierId, updated_at: sql`now()` })
    .where('id', '=', id)
    .execute()
    .catch((error: unknown) => nameConflict(error, place.nom))
}

/** Every dossier below `id` (trashed or not) takes the casier `id` moved to. */
export async function moveSubDossiersToCasier(trx: Transaction<DB>, organisationId: string, id: string, casierId: string): Promise<void> {
  await sql`update dossiers set casier_id = ${casierId}
    where id in (${dossierSubtree(organisationId, id)}) and id <> ${id}`.execute(trx)
}
