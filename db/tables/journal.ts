import type { ColumnType, Generated, Insertable, Selectable } from 'kysely'

export type Resultat = 'succes' | 'echec' | 'refus'
export type Severite = 'LOW' | 'MEDIUM' | 'HIGH' | 'CRITICAL'

export interface JournalActiviteTable {
  id: Generated<number>
  organisation_id: string | null
  sequence: number
  utilisateur_id: string | null
  action: string
  cible_type: string | null
  cible_id: string | null
  cible_nom: string | null
  resultat: Resultat
  severite: Severite
  ip: string | null
  user_agent: string | null
  details: ColumnType<Record<string, unknown>, string, string>
  created_at: Date
  hash_precedent: Buffer | null
  hash: Buffer
  /** 1: one SHA-256 over everything, by the app; 2: content digest by the app, chained by `journal_ajouter`; 3: as 2, the content in RFC 8785 form. */
  version_hash: Generated<1 | 2 | 3>
}
export type JournalEntry = Selectable<JournalActiviteTable>
export type NewJournalEntry = Insertable<JournalActiviteTable>

/** A removal of entries at the journal's term: verification resumes after `jusqua_sequence`, from `hash_reprise`. */
export interface JournalElagagesTable {
  id: Generated<number>
  organisation_id: string | null
  jusqua_sequence: number
  hash_reprise: Buffer
  entrees: number
  avant: Date
  created_at: ColumnType<Date, Date | string | undefined, never>
}

/** The key checkpoints are signed with, wrapped by the master key. */
export interface ClesJournalTable {
  id: string
  organisation_id: string | null
  cle_enveloppee: Buffer
  version_cle_maitre: number
  created_at: Generated<Date>
}

/** A chain's end, signed: verification checks the chain against the newest one. */
export interface JournalPointsControleTable {
  id: Generated<number>
  organisation_id: string | null
  sequence: number
  hash: Buffer
  cle_id: string
  signature: Buffer
  created_at: Date
}
export type JournalCheckpoint = Selectable<JournalPointsControleTable>
