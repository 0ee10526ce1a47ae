import type { ColumnType, Generated, Insertable, Selectable, Updateable } from 'kysely'

type CreatedAt = ColumnType<Date, Date | string | undefined, never>
type UpdatedAt = ColumnType<Date, Date | string | undefined, Date | string>
export type RoleColumn = 'admin' | 'contributeur' | 'lecteur'

export interface OrganisationsTable {
  id: Generated<string>
  nom: string
  created_at: CreatedAt
  updated_at: UpdatedAt
}
export type Organisation = Selectable<OrganisationsTable>
export type NewOrganisation = Insertable<OrganisationsTable>

export interface UtilisateursTable {
  id: Generated<string>
  organisation_id: string
  email: string
  nom: string
  role: RoleColumn
  actif: Generated<boolean>
  mot_de_passe_hash: string | null
  echecs_connexion: Generated<number>
  bloque_jusqua: Date | null
  created_at: CreatedAt
  updated_at: UpdatedAt
}
export type Utilisateur = Selectable<UtilisateursTable>
export type NewUtilisateur = Insertable<UtilisateursTable>
export type UtilisateurUpdate = Updateable<UtilisateursTable>

export interface SessionsTable {
  id: Generated<string>
  organisation_id: string
  utilisateur_id: string
  ip: string | null
  user_agent: string | null
  created_at: CreatedAt
  last_used_at: Generated<Date>
  expires_at: Date
  revoked_at: Date | null
  revoked_reason: string | null
}
export type Session = Selectable<SessionsTable>

export interface JetonsRafraichissementTable {
  hash: Buffer
  session_id: string
  created_at: CreatedAt
  used_at: Date | null
}
