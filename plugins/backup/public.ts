/** What other domains may ask of the backup domain. */
import { type Kysely, sql } from 'kysely'
import type { BackupType } from '../../db/tables/backup.ts'
import type { DB } from '../../db/types.ts'
import { prepared } from '../../src/db.ts'

export interface BackupTargetSummary {
  type: BackupType
  cible_id: string | null
  derniere_reussie: Date | null
  derniere_verifiee: Date | null
  echecs: number
}

export interface BackupSummary {
  /** Bytes of the finished (and running) archives, counted in the organisation's storage. */
  octets: number
  /** Per target (a tree element, or the whole organisation): last success, last verification, failures. */
  cibles: BackupTargetSummary[]
  echecs_30_jours: number
}

/** An organisation's backups at a glance: one pass over its backup rows (a few per target, never its files). */
export async function backupSummary(db: Kysely<DB>, organisationId: string): Promise<BackupSummary> {
  return summariseBackups((await sql<BackupTargetRow>`${prepared}${backupTargetsQuery(organisationId)}`.execute(db)).rows)
}

export type BackupTargetRow = BackupTargetSummary & { octets: number; echecs_recents: number }

/** Per target, what `summariseBackups` sums: a query another statement may embed. */
export function backupTargetsQuery(organisationId: string) {
  return sql<BackupTargetRow>`select type, cible_id,
      max(terminee_le) filter (where statut = 'terminee') as derniere_reussie,
      max(verifiee_le) as derniere_verifiee,
      count(*) filter (where statut = 'echec')::int8 as echecs,
      count(*) filter (where statut = 'echec' and created_at > now() - interval '30 days')::int8 as echecs_recents,
      coalesce(sum(taille) filter (where statut in ('terminee', 'en_cours')), 0)::int8 as octets
    from sauvegardes where organisation_id = ${organisationId}
    group by type, cible_id order by type, cible_id`
}

export function summariseBackups(rows: BackupTargetRow[]): BackupSummary {
  return {
    octets: rows.reduce((sum, r) => sum + r.octets, 0),
    cibles: rows.map(({ type, cible_id, derniere_reussie, derniere_verifiee, echecs }) => ({ type, cible_id, derniere_reussie, derniere_verifiee, echecs })),
    echecs_30_jours: rows.reduce((sum, r) => sum + r.echecs_recents, 0),
  }
}
