import type { Severite } from '../db/tables/journal.ts'

interface ActionSpec {
  /** The French verb phrase of the journal sentence: "user_id=3 a supprimé le fichier …". */
  readonly verbe: string
  readonly severite: Severite
}

/**
 * The one catalogue of journal actions. Every domain journals with these codes; the
 * sentence of each entry is built from the verb and the target.
 */
export const ACTIONS = {
  // Sign-in and sessions
  USER_REGISTERED: { verbe: 'a créé son compte et', severite: 'MEDIUM' },
  LOGIN_SUCCEEDED: { verbe: 's’est connecté à', severite: 'LOW' },
  LOGIN_FAILED: { verbe: 'a échoué à se connecter à', severite: 'MEDIUM' },
  ACCOUNT_LOCKED: { verbe: 'a provoqué le blocage temporaire de', severite: 'HIGH' },
  LOGOUT: { verbe: 's’est déconnecté de', severite: 'LOW' },
  TOKEN_REFRESHED: { verbe: 'a renouvelé', severite: 'LOW' },
  REFRESH_TOKEN_REUSED: { verbe: 'a réutilisé un jeton déjà renouvelé de', severite: 'HIGH' },
  SESSION_REVOKED: { verbe: 'a révoqué', severite: 'MEDIUM' },
  ACCESS_DENIED: { verbe: 's’est vu refuser l’accès à', severite: 'MEDIUM' },
  // Users and the organisation
  USER_INVITED: { verbe: 'a invité', severite: 'MEDIUM' },
  INVITATION_ACCEPTED: { verbe: 'a accepté l’invitation pour', severite: 'MEDIUM' },
  USER_UPDATED: { verbe: 'a modifié', severite: 'MEDIUM' },
  USER_ROLE_CHANGED: { verbe: 'a changé le rôle de', severite: 'HIGH' },
  USER_DEACTIVATED: { verbe: 'a désactivé', severite: 'HIGH' },
  USER_REACTIVATED: { verbe: 'a réactivé', severite: 'MEDIUM' },
  JOURNAL_EXPORTED: { verbe: 'a exporté', severite: 'MEDIUM' },
  JOURNAL_VERIFIED: { verbe: 'a vérifié l’intégrité de', severite: 'LOW' },
  JOURNAL_CHECKPOINTED: { verbe: 'a signé un point de contrôle de', severite: 'LOW' },
  // Two-factor, passwords, SSO
  MFA_ENABLED: { verbe: 'a activé la double authentification sur', severite: 'MEDIUM' },
  MFA_DISABLED: { verbe: 'a désactivé la double authentification sur', severite: 'HIGH' },
  MFA_RESET: { verbe: 'a réinitialisé la double authentification de', severite: 'HIGH' },
  MFA_CHALLENGE_FAILED: { verbe: 'a échoué à la double authentification de', severite: 'MEDIUM' },
  PASSWORD_CHANGED: { verbe: 'a changé le mot de passe de', severite: 'MEDIUM' },
  PASSWORD_RESET: { verbe: 'a réinitialisé le mot de passe de', severite: 'HIGH' },
  SSO_LOGIN: { verbe: 's’est connecté par SSO à', severite: 'LOW' },
  MFA_ENROLMENT_STARTED: { verbe: 'a commencé l’activation de la double authentification sur', severite: 'LOW' },
  MFA_EMAIL_CODE_SENT: { verbe: 'a demandé un code de vérification par e-mail pour', severite: 'LOW' },
  MFA_CHALLENGE_STARTED: { verbe: 'a ouvert une étape de double authentification pour', severite: 'LOW' },
  MFA_LOCKED: { verbe: 'a provoqué le blocage temporaire de la double authentification de', severite: 'HIGH' },
  MFA_BACKUP_CODES_REGENERATED: { verbe: 'a régénéré les codes de secours de', severite: 'MEDIUM' },
  MFA_SECRET_UNREADABLE: { verbe: 'n’a pas pu lire le secret de double authentification de', severite: 'CRITICAL' },
  MFA_POLICY_CHANGED: { verbe: 'a changé l’exigence de double authentification de', severite: 'HIGH' },
  PASSWORD_RESET_REQUESTED: { verbe: 'a demandé la réinitialisation du mot de passe de', severite: 'MEDIUM' },
  EMAIL_VERIFICATION_SENT: { verbe: 'a demandé un lien de vérification d’adresse pour', severite: 'LOW' },
  EMAIL_VERIFIED: { verbe: 'a vérifié l’adresse e-mail de', severite: 'LOW' },
  NEW_DEVICE_ALERT: { verbe: 's’est connecté depuis un appareil inconnu (alerte envoyée) à', severite: 'MEDIUM' },
  SSO_LOGIN_REFUSED: { verbe: 's’est vu refuser la connexion SSO à', severite: 'MEDIUM' },
  SSO_ACCOUNT_LINKED: { verbe: 'a lié une identité SSO à', severite: 'MEDIUM' },
  SSO_USER_CREATED: { verbe: 'a rejoint par SSO', severite: 'MEDIUM' },
  SSO_SETTINGS_CHANGED: { verbe: 'a modifié les domaines SSO de', severite: 'HIGH' },
  // Documents
  CREATED: { verbe: 'a créé', severite: 'LOW' },
  RENAMED: { verbe: 'a renommé', severite: 'LOW' },
  MOVED: { verbe: 'a déplacé', severite: 'LOW' },
  DELETED: { verbe: 'a supprimé', severite: 'MEDIUM' },
  RESTORED_FROM_TRASH: { verbe: 'a restauré de la corbeille', severite: 'LOW' },
  PURGED: { verbe: 'a détruit définitivement', severite: 'HIGH' },
  FILE_UPLOADED: { verbe: 'a ajouté', severite: 'LOW' },
  FILE_VERSION_ADDED: { verbe: 'a ajouté une nouvelle version à', severite: 'LOW' },
  FILE_VERSION_RESTORED: { verbe: 'a restauré une ancienne version de', severite: 'MEDIUM' },
  FILE_DOWNLOADED: { verbe: 'a téléchargé', severite: 'LOW' },
  FILE_LOCAL_DELETION: { verbe: 'a confirmé la suppression locale de', severite: 'LOW' },
  FILE_INTEGRITY_FAILED: { verbe: 'a détecté une altération de', severite: 'CRITICAL' },
  MASTER_KEY_ROTATED: { verbe: 'a changé la clé maître de', severite: 'HIGH' },
  // Backups, billing, compliance
  BACKUP_REQUESTED: { verbe: 'a demandé', severite: 'LOW' },
  BACKUP_STARTED: { verbe: 'a commencé', severite: 'LOW' },
  BACKUP_CREATED: { verbe: 'a terminé', severite: 'MEDIUM' },
  BACKUP_FAILED: { verbe: 'n’a pas pu terminer', severite: 'HIGH' },
  BACKUP_VERIFIED: { verbe: 'a vérifié', severite: 'LOW' },
  BACKUP_DOWNLOADED: { verbe: 'a téléchargé', severite: 'MEDIUM' },
  BACKUP_DELETED: { verbe: 'a détruit', severite: 'HIGH' },
  BACKUP_IMPORTED: { verbe: 'a importé', severite: 'HIGH' },
  BACKUP_SCHEDULE_CHANGED: { verbe: 'a modifié', severite: 'MEDIUM' },
  RESTORE_REQUESTED: { verbe: 'a demandé la restauration de', severite: 'MEDIUM' },
  BACKUP_ITEM_RESTORED: { verbe: 'a restauré depuis une sauvegarde', severite: 'MEDIUM' },
  BACKUP_RESTORED: { verbe: 'a restauré', severite: 'HIGH' },
  RESTORE_FAILED: { verbe: 'n’a pas pu restaurer', severite: 'HIGH' },
  SUBSCRIPTION_CHOSEN: { verbe: 'a choisi', severite: 'MEDIUM' },
  PAYMENT_STARTED: { verbe: 'a lancé', severite: 'MEDIUM' },
  PAYMENT_SUCCEEDED: { verbe: 'a réglé', severite: 'MEDIUM' },
  PAYMENT_FAILED: { verbe: 'a échoué à régler', severite: 'MEDIUM' },
  PAYMENT_WEBHOOK_REFUSED: { verbe: 'a reçu une notification de paiement refusée pour', severite: 'HIGH' },
  SUBSCRIPTION_CHANGED: { verbe: 'a fait évoluer', severite: 'MEDIUM' },
  INVOICE_ISSUED: { verbe: 'a émis', severite: 'LOW' },
  CREDIT_NOTE_ISSUED: { verbe: 'a émis un avoir sur', severite: 'HIGH' },
  BILLING_DETAILS_UPDATED: { verbe: 'a modifié les coordonnées de facturation de', severite: 'MEDIUM' },
  RETENTION_SET: { verbe: 'a fixé la durée de conservation de', severite: 'MEDIUM' },
  LOCKED: { verbe: 'a verrouillé', severite: 'MEDIUM' },
  UNLOCKED: { verbe: 'a déverrouillé', severite: 'HIGH' },
  RETENTION_EXTENDED: { verbe: 'a prolongé', severite: 'MEDIUM' },
  RETENTION_SHORTENED: { verbe: 'a raccourci', severite: 'HIGH' },
  RETENTION_REMOVED: { verbe: 'a retiré', severite: 'HIGH' },
  FOLDER_CLOSED: { verbe: 'a clôturé', severite: 'MEDIUM' },
  LEGAL_HOLD_PLACED: { verbe: 'a posé', severite: 'HIGH' },
  LEGAL_HOLD_EXTENDED: { verbe: 'a étendu', severite: 'MEDIUM' },
  LEGAL_HOLD_RELEASED: { verbe: 'a levé', severite: 'HIGH' },
  CHANGE_REFUSED: { verbe: 's’est vu refuser une modification de', severite: 'MEDIUM' },
  DISPOSAL_PROPOSED: { verbe: 'a proposé l’élimination de', severite: 'MEDIUM' },
  DISPOSAL_DECIDED: { verbe: 'a tranché', severite: 'HIGH' },
  DESTROYED: { verbe: 'a détruit à échéance', severite: 'HIGH' },
  USER_DATA_EXPORTED: { verbe: 'a exporté les données personnelles de', severite: 'MEDIUM' },
  USER_ERASED: { verbe: 'a effacé les données personnelles de', severite: 'HIGH' },
  EVIDENCE_EXPORTED: { verbe: 'a exporté le dossier de preuve de', severite: 'MEDIUM' },
  JOURNAL_PRUNED: { verbe: 'a élagué à échéance', severite: 'HIGH' },
  // Statistics
  STATS_TIMEZONE_CHANGED: { verbe: 'a changé le fuseau horaire des statistiques de', severite: 'LOW' },
} as const satisfies Record<string, ActionSpec>

export type Action = keyof typeof ACTIONS

/** How each kind of target reads in a sentence, with its article. */
export const TARGETS = {
  organisation: 'l’organisation',
  utilisateur: 'l’utilisateur',
  session: 'la session',
  journal: 'le journal',
  armoire: 'l’armoire',
  casier: 'le casier',
  dossier: 'le dossier',
  fichier: 'le fichier',
  version: 'la version',
  sauvegarde: 'la sauvegarde',
  planification: 'la planification de sauvegarde',
  restauration: 'la restauration',
  abonnement: 'l’abonnement',
  paiement: 'le paiement',
  facture: 'la facture',
  operation: 'l’opération',
  regle: 'la règle de conservation',
  gel: 'le gel juridique',
  elimination: 'l’élimination',
  certificat: 'le certificat de destruction',
} as const

export type TargetType = keyof typeof TARGETS
