import { type Kysely, sql } from 'kysely'
import type { TreeType } from '../../db/tables/compliance.ts'
import type { DB } from '../../db/types.ts'

export interface Target {
  type: TreeType
  id: string
}

/** The object and every element above it. */
export async function ancestorsOf(db: Kysely<DB>, target: Target): Promise<Target[]> {
  const { rows } = await sql<{ cible_type: TreeType; cible_id: string }>`select cible_type, cible_id
    from conformite_ancetres(${target.type}, ${target.id}::uuid) where cible_id is not null`.execute(db)
  return rows.map((r) => ({ type: r.cible_type, id: r.cible_id }))
}

/** The object and every element below it, trashed or not. */
export async function descendantsOf(db: Kysely<DB>, target: Target): Promise<Target[]> {
  if (target.type === 'fichier') return [target]
  const { rows } = await sql<{ cible_type: TreeType; cible_id: string }>`select cible_type, cible_id
    from conformite_descendants(${target.type}, ${target.id}::uuid)`.execute(db)
  return rows.map((r) => ({ type: r.cible_type, id: r.cible_id }))
}

/** A `(cible_type, cible_id) in (…)` condition over targets; false for none. */
export function amongTargets(targets: readonly Target[], alias: string) {
  if (targets.length === 0) return sql<boolean>`false`
  const type = sql.ref(`${alias}.cible_type`)
  const id = sql.ref(`${alias}.cible_id`)
  return sql<boolean>`(${type}, ${id}) in (${sql.join(targets.map((t) => sql`(${t.type}::text, ${t.id}::uuid)`))})`
}

export const key = (t: Target): string => `${t.type}:${t.id}`

/** The label of an element with its name, read from its table: « Dossier « RH » ». */
export async function describe(db: Kysely<DB>, organisationId: string, target: Target): Promise<string> {
  const table = { armoire: 'armoires', casier: 'casiers', dossier: 'dossiers', fichier: 'fichiers' }[target.type]
  const { rows } = await sql<{ nom: string }>`select nom from ${sql.table(table)}
    where id = ${target.id} and organisation_id = ${organisationId}`.execute(db)
  const label = { armoire: 'l’armoire', casier: 'le casier', dossier: 'le dossier', fichier: 'le fichier' }[target.type]
  return rows[0] ? `${label} « ${rows[0].nom} »` : label
}
