import { type Kysely, sql } from 'kysely'
import type { ActionTerme, ModeConservation } from '../../db/tables/compliance.ts'
import type { DB } from '../../db/types.ts'

/** One term that applies to a file: inherited from a rule above it, or carried by the file itself. */
export interface Term {
  fichier_id: string
  origine: 'heritee' | 'deplacement' | 'prolongation' | 'conservation'
  regle_id: string | null
  regle_nom: string | null
  source_type: 'armoire' | 'casier' | 'dossier' | null
  source_id: string | null
  depart: Date | null
  /** Null: no end yet (the start event has not happened, or kept indefinitely). */
  jusqua: Date | null
  action_terme: ActionTerme
  mode: ModeConservation
}

/** A rule's length as an interval, from its duration and unit. */
export const ruleInterval = (duree: unknown, unite: unknown) =>
  sql`case ${unite} when 'jours' then make_interval(days => ${duree}) when 'mois' then make_interval(months => ${duree})
    else make_interval(years => ${duree}) end`

/**
 * The start of a rule's term for a file: its creation, its last change, the earliest closure
 * of a folder above it, or the rule's fixed date.
 */
const departOf = sql`case r.evenement
    when 'creation' then f.created_at
    when 'derniere_modification' then f.updated_at
    when 'date' then r.date_depart
    else (select min(c.cloture_at) from clotures_dossiers c
      join conformite_ancetres('fichier', f.id) up on up.cible_type = 'dossier' and up.cible_id = c.dossier_id)
  end`

/** Every term applying to the files, one row per rule and carried term. */
export async function termsOf(db: Kysely<DB>, organisationId: string, fileIds: readonly string[]): Promise<Term[]> {
  if (fileIds.length === 0) return []
  const { rows } = await sql<Term>`
    select fichier_id, 'heritee' as origine, regle_id, regle_nom, source_type, source_id, depart,
        case when depart is not null then depart + ${ruleInterval(sql.ref('duree'), sql.ref('unite'))} end as jusqua, action_terme, mode
      from (select f.id as fichier_id, r.id as regle_id, r.nom as regle_nom, r.cible_type as source_type, r.cible_id as source_id,
          ${departOf} as depart, r.duree, r.unite, r.action_terme, r.mode
        from fichiers f
        cross join lateral conformite_ancetres('fichier', f.id) a
        join regles_conservation r on r.cible_type = a.cible_type and r.cible_id = a.cible_id and r.retiree_at is null
        where f.id = any(${fileIds}::uuid[]) and f.organisation_id = ${organisationId} and r.organisation_id = ${organisationId}) t
    union all
    select k.fichier_id, k.origine, k.regle_id, r.nom, r.cible_type, r.cible_id, null, case when isfinite(k.jusqua) then k.jusqua end,
        k.action_terme, k.mode
      from conservations_fichiers k left join regles_conservation r on r.id = k.regle_id
      where k.fichier_id = any(${fileIds}::uuid[]) and k.organisation_id = ${organisationId}
        and (k.origine <> 'deplacement' or r.retiree_at is null)`.execute(db)
  return rows
}

/** The term that governs: the longest (no end beats any end); at equal ends, a review beats destruction. */
export function governing(terms: readonly Term[]): Term | null {
  let best: Term | null = null
  for (const t of terms) {
    if (!best) {
      best = t
      continue
    }
    const a = t.jusqua?.getTime() ?? Infinity
    const b = best.jusqua?.getTime() ?? Infinity
    if (a > b || (a === b && t.action_terme === 'revue' && best.action_terme === 'destruction')) best = t
  }
  return best
}

/** Per file, the term still running at `now`, if any. */
export function activeTerms(terms: readonly Term[], now = new Date()): Map<string, Term> {
  const byFile = new Map<string, Term[]>()
  for (const t of terms) byFile.set(t.fichier_id, [...(byFile.get(t.fichier_id) ?? []), t])
  const active = new Map<string, Term>()
  for (const [id, list] of byFile) {
    const g = governing(list)
    if (g && (g.jusqua === null || g.jusqua > now)) active.set(id, g)
  }
  return active
}

/** "2031-05-01" for a term, "sans échéance" for none. */
export const termText = (t: Pick<Term, 'jusqua'>): string => (t.jusqua ? `jusqu’au ${t.jusqua.toISOString().slice(0, 10)}` : 'sans échéance pour l’instant')
