/**
 * What other domains may use of the compliance domain: nothing else of it is imported from
 * outside (eslint.config.js says so). Every function takes the executor first and is scoped
 * to one organisation.
 */
import { type Kysely, sql } from 'kysely'
import type { DB } from '../../db/types.ts'
import { prepared } from '../../src/db.ts'
import type { GuardedObject } from '../../src/safeguards.ts'
import { activeHolds } from './guard.ts'
import { ancestorsOf, descendantsOf, key } from './scope.ts'

export interface CoveringHold {
  id: string
  nom: string
}

/**
 * The active legal holds on anything a backup of `object` covers: the object, what is above it
 * (a hold there reaches it) and everything below it, trashed or not; for `organisation` (a
 * system backup), every active hold of the organisation. A backup these name is never pruned.
 */
export async function holdsCoveringBackup(db: Kysely<DB>, organisationId: string, object: GuardedObject): Promise<CoveringHold[]> {
  if (object.type === 'organisation') {
    return db.selectFrom('gels').select(['id', 'nom']).where('organisation_id', '=', organisationId).where('leve_at', 'is', null).orderBy('nom').execute()
  }
  const target = { type: object.type, id: object.id }
  const scope = new Map([...(await ancestorsOf(db, target)), ...(await descendantsOf(db, target))].map((t) => [key(t), t]))
  const holds = await activeHolds(db, organisationId, [...scope.values()])
  return [...new Map(holds.map((h) => [h.id, { id: h.id, nom: h.nom }])).values()]
}

export interface ComplianceSummary {
  /** Rules in force (not withdrawn). */
  regles_actives: number
  /** Objects a rule in force names, and files carrying a running term of their own; what lies below them is not counted again. */
  objets_sous_conservation: number
  /** Holds not released. */
  gels_actifs: number
  /** Objects named by a hold not released (what lies below them is held too, not counted again). */
  objets_sous_gel: number
  /** Files whose term has come, awaiting a review decision. */
  eliminations_en_revue: number
  /** Destructions scheduled at the end of their notice period. */
  destructions_planifiees: number
}

/**
 * The organisation's retention, holds and disposals due, as a dashboard shows them: counts
 * over the rows that name objects (rules, carried terms, held objects, open disposals), each
 * read through an index on the organisation, never by walking the tree below them.
 */
export async function complianceSummary(db: Kysely<DB>, organisationId: string): Promise<ComplianceSummary> {
  const { rows } = await sql<ComplianceSummary>`${prepared}${complianceSummaryQuery(organisationId)}`.execute(db)
  const row = rows[0]
  if (!row) throw new Error('the compliance summary answered no row')
  return row
}

/** The same as a query another statement may embed. */
export function complianceSummaryQuery(organisationId: string) {
  return sql<ComplianceSummary>`select
      (select count(*) from regles_conservation where organisation_id = ${organisationId} and retiree_at is null)::int8 as regles_actives,
      (select count(*) from (
        select cible_type, cible_id from regles_conservation where organisation_id = ${organisationId} and retiree_at is null
        union
        select 'fichier', k.fichier_id from conservations_fichiers k left join regles_conservation r on r.id = k.regle_id
          where k.organisation_id = ${organisationId} and k.jusqua > now() and (k.origine <> 'deplacement' or r.retiree_at is null)
      ) o)::int8 as objets_sous_conservation,
      (select count(*) from gels where organisation_id = ${organisationId} and leve_at is null)::int8 as gels_actifs,
      (select count(*) from (select distinct o.cible_type, o.cible_id from gels g join gels_objets o on o.gel_id = g.id
        where g.organisation_id = ${organisationId} and g.leve_at is null) h)::int8 as objets_sous_gel,
      (select count(*) filter (where statut = 'en_attente') from eliminations
        where organisation_id = ${organisationId} and statut in ('en_attente', 'planifiee'))::int8 as eliminations_en_revue,
      (select count(*) filter (where statut = 'planifiee') from eliminations
        where organisation_id = ${organisationId} and statut in ('en_attente', 'planifiee'))::int8 as destructions_planifiees`
}
