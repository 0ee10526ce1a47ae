import type { ColumnType, Generated, Insertable, Selectable } from 'kysely'

type CreatedAt = ColumnType<Date, Date | string | undefined, never>
type Json<T> = ColumnType<T, string | undefined, string>

export type BackupType = 'fichier' | 'dossier' | 'casier' | 'armoire' | 'systeme'
export type Declencheur = 'manuel' | 'planifie' | 'import'
export type JobStatus = 'en_attente' | 'en_cours' | 'terminee' | 'echec'
export type VersionsChoice = 'derniere' | 'toutes'

/** What went wrong: a stable problem code and a French sentence. */
export interface JobError {
  code: string
  detail: string
}

export interface Progression {
  entrees_faites?: number
  entrees_total?: number
  octets_faits?: number
  octets_total?: number
}

export interface SauvegardesTable {
  id: Generated<string>
  organisation_id: string
  type: BackupType
  cible_id: string | null
  declencheur: Declencheur
  statut: ColumnType<JobStatus, JobStatus | undefined, JobStatus>
  versions: ColumnType<VersionsChoice, VersionsChoice | undefined, VersionsChoice>
  contenu: Json<Record<string, unknown>>
  chemin: string | null
  cle_id: string | null
  taille: number | null
  sha256: string | null
  progression: Json<Progression>
  erreur: Json<JobError | null>
  verifiee_le: Date | null
  verification: Json<Record<string, unknown> | null>
  planification_id: string | null
  battement_le: Date | null
  created_by: string | null
  created_at: CreatedAt
  demarree_le: Date | null
  terminee_le: Date | null
}
export type SauvegardeRow = Selectable<SauvegardesTable>
export type NewSauvegarde = Insertable<SauvegardesTable>

export interface RestaurationsTable {
  id: Generated<string>
  organisation_id: string
  sauvegarde_id: string
  cible_type: 'armoire' | 'casier' | 'dossier' | null
  cible_id: string | null
  elements: Json<string[] | null>
  simulation: ColumnType<boolean, boolean | undefined, boolean>
  statut: ColumnType<JobStatus, JobStatus | undefined, JobStatus>
  rapport: Json<Record<string, unknown> | null>
  erreur: Json<JobError | null>
  battement_le: Date | null
  created_by: string | null
  created_at: CreatedAt
  demarree_le: Date | null
  terminee_le: Date | null
}
export type RestaurationRow = Selectable<RestaurationsTable>

/** restic/Borg `forget --keep-*`: how many of the latest, and of the last days, weeks and months. */
export interface Conservation {
  derniers: number
  quotidiennes: number
  hebdomadaires: number
  mensuelles: number
}

export interface PlanificationsSauvegardeTable {
  id: Generated<string>
  organisation_id: string
  type: BackupType
  cible_id: string | null
  frequence: string
  fuseau: ColumnType<string, string | undefined, string>
  versions: ColumnType<VersionsChoice, VersionsChoice | undefined, VersionsChoice>
  conservation: Json<Conservation>
  active: ColumnType<boolean, boolean | undefined, boolean>
  derniere_execution: Date | null
  created_by: string | null
  created_at: CreatedAt
  updated_at: ColumnType<Date, Date | string | undefined, Date | string>
}
export type PlanificationRow = Selectable<PlanificationsSauvegardeTable>
