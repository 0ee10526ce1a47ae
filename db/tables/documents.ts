import type { ColumnType, Generated, Insertable, Selectable, Updateable } from 'kysely'

type CreatedAt = ColumnType<Date, Date | string | undefined, never>
type UpdatedAt = ColumnType<Date, Date | string | undefined, Date | string>

/** Set together when an element goes to the trash; `suppression_id` names the deleted root. */
interface TrashColumns {
  deleted_at: Date | null
  deleted_by: string | null
  suppression_id: string | null
}

export interface ArmoiresTable extends TrashColumns {
  id: Generated<string>
  organisation_id: string
  nom: string
  created_by: string | null
  created_at: CreatedAt
  updated_at: UpdatedAt
}
export type ArmoireRow = Selectable<ArmoiresTable>

export interface CasiersTable extends TrashColumns {
  id: Generated<string>
  organisation_id: string
  armoire_id: string
  nom: string
  created_by: string | null
  created_at: CreatedAt
  updated_at: UpdatedAt
}
export type CasierRow = Selectable<CasiersTable>

export interface DossiersTable extends TrashColumns {
  id: Generated<string>
  organisation_id: string
  casier_id: string
  parent_id: string | null
  nom: string
  created_by: string | null
  created_at: CreatedAt
  updated_at: UpdatedAt
}
export type DossierRow = Selectable<DossiersTable>

export interface FichiersTable extends TrashColumns {
  id: Generated<string>
  organisation_id: string
  dossier_id: string
  nom: string
  type_mime: string
  taille: number
  sha256: string
  version_courante: number
  created_by: string | null
  created_at: CreatedAt
  updated_at: UpdatedAt
}
export type FichierRow = Selectable<FichiersTable>
export type FichierUpdate = Updateable<FichiersTable>

export interface VersionsFichiersTable {
  id: string
  organisation_id: string
  fichier_id: string
  version_number: number
  nom: string
  type_mime: string
  taille: number
  sha256: string
  blob: string
  taille_chiffree: number
  format: string
  nonce_prefixe: Buffer
  cle_id: string
  restauree_depuis: number | null
  /** The backup a restore brought this version back from. */
  restauree_de_sauvegarde: ColumnType<string | null, string | null | undefined, string | null>
  created_by: string | null
  created_at: CreatedAt
}
export type VersionRow = Selectable<VersionsFichiersTable>
export type NewVersion = Insertable<VersionsFichiersTable>

export interface ClesChiffrementTable {
  id: string
  organisation_id: string
  /** A file version's key names its file and version; a backup archive's key, its backup. */
  fichier_id: string | null
  version_id: string | null
  sauvegarde_id: ColumnType<string | null, string | null | undefined, string | null>
  algorithme: string
  /** Null once destroyed: nothing is left to unwrap. */
  cle_enveloppee: Buffer | null
  version_cle_maitre: number
  created_at: CreatedAt
  reenveloppee_at: Date | null
  detruite_at: Date | null
  detruite_par: string | null
}
export type CleRow = Selectable<ClesChiffrementTable>

export interface StockageOrganisationsTable {
  organisation_id: string
  stockage_utilise: Generated<number>
  quota_octets: number | null
  updated_at: UpdatedAt
}

/** The window in which a session's downloads of a version, from one address, are journaled once. */
export interface LecturesJournaliseesTable {
  session_id: string
  version_id: string
  ip: string
  organisation_id: string
  journalise_at: Date
  derniere_lecture_at: Date
  lectures: Generated<number>
}
