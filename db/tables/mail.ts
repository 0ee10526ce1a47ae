import type { ColumnType, Generated, Insertable, Selectable, Updateable } from 'kysely'

type CreatedAt = ColumnType<Date, Date | string | undefined, never>

/**
 * `en_attente` waits for delivery, `envoye` was accepted by the SMTP server, `echec` failed
 * after every retry, `non_envoye` was kept here because no SMTP server is configured.
 */
export type StatutCourriel = 'en_attente' | 'envoye' | 'echec' | 'non_envoye'

export interface CourrielsTable {
  id: Generated<string>
  organisation_id: string | null
  destinataire: string
  sujet: string
  texte: string
  html: string | null
  kind: string
  /** Files attached by reference (`{source, id}`), read from their source when the mail is sent. */
  pieces_jointes: ColumnType<{ source: string; id: string }[], string | undefined, never>
  statut: Generated<StatutCourriel>
  tentatives: Generated<number>
  derniere_erreur: string | null
  created_at: CreatedAt
  sent_at: Date | null
}
export type Courriel = Selectable<CourrielsTable>
export type NewCourriel = Insertable<CourrielsTable>
export type CourrielUpdate = Updateable<CourrielsTable>
