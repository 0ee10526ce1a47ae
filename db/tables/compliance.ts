import type { ColumnType, Generated, Selectable } from 'kysely'

type CreatedAt = ColumnType<Date, Date | string | undefined, never>
type UpdatedAt = ColumnType<Date, Date | string | undefined, Date | string>

export type TreeType = 'armoire' | 'casier' | 'dossier' | 'fichier'
export type Unite = 'jours' | 'mois' | 'annees'
export type Evenement = 'creation' | 'derniere_modification' | 'cloture' | 'date'
export type ActionTerme = 'revue' | 'destruction'
export type ModeConservation = 'gouvernance' | 'conformite'

export interface VerrousTable {
  id: Generated<string>
  organisation_id: string
  cible_type: 'dossier' | 'fichier'
  cible_id: string
  motif: string
  created_by: string | null
  created_at: CreatedAt
  leve_at: Date | null
  leve_par: string | null
  motif_levee: string | null
}
export type VerrouRow = Selectable<VerrousTable>

export interface ReglesConservationTable {
  id: Generated<string>
  organisation_id: string
  nom: string
  cible_type: Exclude<TreeType, 'fichier'>
  cible_id: string
  duree: number
  unite: Unite
  evenement: Evenement
  date_depart: Date | null
  action_terme: ActionTerme
  mode: ModeConservation
  created_by: string | null
  created_at: CreatedAt
  updated_at: UpdatedAt
  retiree_at: Date | null
  retiree_par: string | null
  motif_retrait: string | null
}
export type RegleRow = Selectable<ReglesConservationTable>

export interface CloturesDossiersTable {
  dossier_id: string
  organisation_id: string
  cloture_at: Generated<Date>
  cloture_par: string | null
  motif: string | null
}

export interface ConservationsFichiersTable {
  id: Generated<string>
  organisation_id: string
  fichier_id: string
  regle_id: string | null
  origine: 'deplacement' | 'prolongation' | 'conservation'
  jusqua: Date | string
  action_terme: ActionTerme
  mode: ModeConservation
  motif: string | null
  created_by: string | null
  created_at: CreatedAt
}

export interface GelsTable {
  id: Generated<string>
  organisation_id: string
  nom: string
  motif: string
  reference: string | null
  created_by: string | null
  created_at: CreatedAt
  leve_at: Date | null
  leve_par: string | null
  motif_levee: string | null
}
export type GelRow = Selectable<GelsTable>

export interface GelsObjetsTable {
  gel_id: string
  organisation_id: string
  cible_type: TreeType
  cible_id: string
  origine: Generated<'explicite' | 'deplacement'>
  added_by: string | null
  added_at: CreatedAt
}

export type StatutElimination = 'en_attente' | 'planifiee' | 'detruite' | 'prolongee' | 'conservee' | 'annulee'

export interface EliminationsTable {
  id: Generated<string>
  organisation_id: string
  fichier_id: string
  fichier_nom: string
  regle_id: string | null
  action_terme: ActionTerme
  terme: Date
  statut: StatutElimination
  destruction_prevue_at: Date | null
  decision: 'approuver' | 'prolonger' | 'conserver' | 'opposer' | null
  decide_par: string | null
  decide_at: Date | null
  motif: string | null
  certificat_id: string | null
  created_at: CreatedAt
}
export type EliminationRow = Selectable<EliminationsTable>

export interface CertificatsDestructionTable {
  id: Generated<string>
  organisation_id: string
  contenu: ColumnType<Record<string, unknown>, string, never>
  empreinte: string
  created_at: CreatedAt
}

export type StatutExport = 'en_attente' | 'en_cours' | 'terminee' | 'echec' | 'expiree'

export interface ExportsRgpdTable {
  id: Generated<string>
  organisation_id: string
  utilisateur_id: string
  demande_par: string | null
  statut: ColumnType<StatutExport, StatutExport | undefined, StatutExport>
  elements: number
  blob: string | null
  cle_enveloppee: Buffer | null
  version_cle_maitre: number | null
  taille: number | null
  sha256: string | null
  erreur: ColumnType<{ code: string; detail: string } | null, string | null | undefined, string | null>
  created_at: CreatedAt
  terminee_le: Date | null
  expire_le: Date | null
}
export type ExportRgpdRow = Selectable<ExportsRgpdTable>
