import type { ColumnType, Generated, Insertable, Selectable } from 'kysely'

type CreatedAt = ColumnType<Date, Date | string | undefined, never>
type UpdatedAt = ColumnType<Date, Date | string | undefined, Date | string>
/** numeric columns come back from pg as strings. */
type Numeric = ColumnType<string, string | number, string | number>

export type Periodicite = 'mensuelle' | 'annuelle'
export type StatutAbonnement = 'essai' | 'en_attente_paiement' | 'actif' | 'en_retard' | 'suspendu' | 'annule' | 'expire'
export type StatutPaiement = 'en_attente' | 'reussi' | 'echoue' | 'expire'
export type NaturePaiement = 'souscription' | 'renouvellement' | 'changement'

export interface PlansTable {
  code: string
  nom: string
  prix_mensuel: number
  prix_annuel: number
  quota_stockage_octets: number
  quota_membres: number
  quota_armoires: number
  essai_jours: number | null
  rang: number
  fonctionnalites: ColumnType<string[], string, string>
  actif: Generated<boolean>
}
export type Plan = Selectable<PlansTable>

export interface AbonnementsTable {
  id: Generated<string>
  organisation_id: string
  plan_code: string
  periodicite: Periodicite
  statut: StatutAbonnement
  periode_debut: Date
  periode_fin: Date
  renouvellement_auto: Generated<boolean>
  plan_demande: string | null
  periodicite_demandee: Periodicite | null
  effet_demande: 'paiement' | 'fin_periode' | null
  changement_at: Date | null
  en_retard_depuis: Date | null
  suspendu_depuis: Date | null
  rappels_envoyes: Generated<number[]>
  created_at: CreatedAt
  updated_at: UpdatedAt
}
export type Abonnement = Selectable<AbonnementsTable>

export interface AbonnementsHistoriqueTable {
  id: Generated<number>
  abonnement_id: string
  organisation_id: string
  evenement: string
  plan_code: string
  periodicite: Periodicite
  statut: StatutAbonnement
  periode_debut: Date
  periode_fin: Date
  details: ColumnType<Record<string, unknown>, string | undefined, never>
  utilisateur_id: string | null
  created_at: CreatedAt
}

export interface OrganisationsFacturationTable {
  organisation_id: string
  raison_sociale: string
  adresse: string
  ville: string | null
  pays: string | null
  ifu: string | null
  rccm: string | null
  email: string | null
  telephone: string | null
  updated_at: UpdatedAt
}
export type DetailsFacturation = Selectable<OrganisationsFacturationTable>

export interface PaiementsTable {
  id: Generated<string>
  organisation_id: string
  abonnement_id: string
  plan_code: string
  periodicite: Periodicite
  nature: NaturePaiement
  montant: number
  montant_ht: number
  montant_tva: number
  taux_tva: Numeric
  credit_prorata_ht: Generated<number>
  credit_jours: Generated<number>
  devise: Generated<string>
  moyen: 'mobile_money' | 'carte'
  reseau: string | null
  telephone: string | null
  statut: Generated<StatutPaiement>
  reference: string | null
  payment_url: string | null
  statut_fournisseur: string | null
  raison: string | null
  verifications: Generated<number>
  verifie_at: Date | null
  expire_at: Date
  created_by: string | null
  created_at: CreatedAt
  updated_at: UpdatedAt
  finalise_at: Date | null
}
export type Paiement = Selectable<PaiementsTable>
export type NewPaiement = Insertable<PaiementsTable>

export interface CompteursFacturesTable {
  serie: 'FAC' | 'AV'
  annee: number
  dernier: number
}

/** A party as the invoice names it, frozen at issue. */
export interface Partie {
  nom: string
  adresse: string
  ville?: string | null
  pays?: string | null
  ifu?: string | null
  rccm?: string | null
  email?: string | null
  telephone?: string | null
}

export interface LigneFacture {
  libelle: string
  quantite: number
  prix_unitaire_ht: number
  montant_ht: number
}

export interface FacturesTable {
  id: Generated<string>
  organisation_id: string
  type: 'facture' | 'avoir'
  serie: 'FAC' | 'AV'
  annee: number
  rang: number
  numero: string
  paiement_id: string | null
  facture_origine_id: string | null
  motif: string | null
  vendeur: ColumnType<Partie, string, never>
  acheteur: ColumnType<Partie, string, never>
  lignes: ColumnType<LigneFacture[], string, never>
  montant_ht: number
  taux_tva: Numeric
  montant_tva: number
  montant_ttc: number
  devise: string
  reference_paiement: string | null
  periode_debut: Date | null
  periode_fin: Date | null
  emise_at: CreatedAt
}
export type Facture = Selectable<FacturesTable>

export interface FacturesPdfTable {
  facture_id: string
  organisation_id: string
  sha256: string
  taille: number
  blob: string
  cle_enveloppee: Buffer
  version_cle_maitre: number
  created_at: CreatedAt
  reenveloppee_at: Date | null
}
