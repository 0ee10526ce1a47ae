import type { Generated } from 'kysely'

/** Counters of one organisation, or of one delta (`stats_deltas`): what each column counts. */
export interface Counters {
  armoires: Generated<number>
  casiers: Generated<number>
  dossiers: Generated<number>
  /** Live files, and files in the trash (deleted by themselves or with a container). */
  fichiers: Generated<number>
  fichiers_corbeille: Generated<number>
  versions: Generated<number>
  /** Trash entries: elements deleted by themselves. */
  elements_corbeille: Generated<number>
  /** Current versions of live files; every version of live files; every version of trashed files. */
  octets_courants: Generated<number>
  octets_vivants: Generated<number>
  octets_corbeille: Generated<number>
}

export interface StatsOrganisationsTable extends Counters {
  organisation_id: string
  /** IANA zone of the organisation's days (rollups and series). */
  fuseau_horaire: Generated<string>
  recompte_at: Date | null
  updated_at: Generated<Date>
}

export interface StatsDeltasTable extends Counters {
  id: Generated<number>
  organisation_id: string
  armoire_id: string | null
  utilisateur_id: string | null
}

export interface StatsArmoiresTable {
  armoire_id: string
  organisation_id: string
  fichiers: Generated<number>
  octets: Generated<number>
}

export interface StatsMembresTable {
  organisation_id: string
  utilisateur_id: string
  versions: Generated<number>
  octets: Generated<number>
}

export interface StatsActiviteJourTable {
  organisation_id: string
  jour: string
  action: string
  resultat: string
  n: number
}

export interface StatsActiviteMembresTable extends StatsActiviteJourTable {
  utilisateur_id: string
  octets: number
}

export interface StatsMembresJourTable {
  organisation_id: string
  jour: string
  utilisateur_id: string
  n: number
}

/** The monthly twins of the daily rollups: `mois` is the month's first day. */
export interface StatsActiviteMoisTable {
  organisation_id: string
  mois: string
  action: string
  resultat: string
  n: number
}

export interface StatsActiviteMembresMoisTable extends StatsActiviteMoisTable {
  utilisateur_id: string
  octets: number
}

export interface StatsMembresMoisTable {
  organisation_id: string
  mois: string
  utilisateur_id: string
  n: number
}

export interface StatsMembresActiviteTable {
  organisation_id: string
  utilisateur_id: string
  derniere_activite_at: Date
  derniere_connexion_at: Date | null
}

export interface StatsJournalTable {
  organisation_id: string
  verifie_at: Date
  intact: boolean
  entrees: number | null
}
