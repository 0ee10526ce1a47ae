import type { ColumnType, Generated, Insertable, Selectable, Updateable } from 'kysely'

type CreatedAt = ColumnType<Date, Date | string | undefined, never>
type UpdatedAt = ColumnType<Date, Date | string | undefined, Date | string>
export type RoleColumn = 'admin' | 'contributeur' | 'lecteur'

export interface OrganisationsTable {
  id: Generated<string>
  nom: string
  mfa_obligatoire: Generated<boolean>
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
  email_verifie_at: Date | null
  echecs_mfa: Generated<number>
  mfa_bloque_jusqua: Date | null
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
  second_facteur: Generated<boolean>
  enrolement_mfa: Generated<boolean>
}
export type Session = Selectable<SessionsTable>

export interface JetonsRafraichissementTable {
  hash: Buffer
  session_id: string
  created_at: CreatedAt
  used_at: Date | null
}

export interface InvitationsTable {
  hash: Buffer
  organisation_id: string
  utilisateur_id: string
  created_by: string | null
  created_at: CreatedAt
  expires_at: Date
  used_at: Date | null
}

export type MethodeMfa = 'totp' | 'email'

export interface FacteursMfaTable {
  id: string
  organisation_id: string
  utilisateur_id: string
  methode: MethodeMfa
  /** TOTP only: the secret wrapped by the master key (`app.keys`), never in clear. */
  secret_chiffre: Buffer | null
  version_cle_maitre: number | null
  /** TOTP only: the last time step accepted, so a code is never accepted twice. */
  dernier_pas: number | null
  /** E-mail only: the SHA-256 of the code last sent, and when it stops being valid. */
  code_hash: Buffer | null
  code_expire_at: Date | null
  active_at: Date | null
  created_at: CreatedAt
}
export type FacteurMfa = Selectable<FacteursMfaTable>

export interface CodesSecoursTable {
  utilisateur_id: string
  hash: Buffer
  organisation_id: string
  created_at: CreatedAt
  used_at: Date | null
}

export type UsageJeton = 'reinitialisation_mot_de_passe' | 'verification_email' | 'mfa' | 'etat_sso'

export interface JetonsUsageUniqueTable {
  hash: Buffer
  usage: UsageJeton
  organisation_id: string | null
  utilisateur_id: string | null
  donnees: ColumnType<Record<string, unknown>, string | undefined, string>
  tentatives: Generated<number>
  created_at: CreatedAt
  expires_at: Date
  used_at: Date | null
}
export type JetonUsageUnique = Selectable<JetonsUsageUniqueTable>

export interface IdentitesSsoTable {
  id: Generated<string>
  organisation_id: string
  utilisateur_id: string
  fournisseur: string
  emetteur: string
  sujet: string
  email: string
  created_at: CreatedAt
  last_login_at: Generated<Date>
}

export interface SsoDomainesTable {
  domaine: string
  organisation_id: string
  role_defaut: RoleColumn
  created_at: CreatedAt
}
