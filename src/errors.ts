import createError, { type FastifyErrorConstructor } from '@fastify/error'

/**
 * The one catalogue of error codes Armoire answers with. Each code is stable: clients
 * branch on it. Messages are French, like the product; `%s` takes a detail.
 */
function define(code: string, message: string, status: number): FastifyErrorConstructor {
  return createError(code, message, status)
}

export type QuotaName = 'stockage' | 'membres' | 'armoires'

/** A quota the organisation has reached: which, what it holds (when known), what is allowed, and by which plan. */
export interface QuotaBreach {
  quota: QuotaName
  used?: number
  allowed: number
  plan?: string
}

const QUOTA_WORDS: Record<QuotaName, { used: string; allowed: string }> = {
  stockage: { used: 'octets utilisés', allowed: 'autorisés' },
  membres: { used: 'membres', allowed: 'autorisés' },
  armoires: { used: 'armoires', allowed: 'autorisées' },
}

/**
 * One code, one status for every quota: 409, since the request is refused for what the
 * organisation already holds, not for its own size (an empty file is refused in a full vault).
 * A bare number is the storage quota in bytes, as the vault and backups throw it.
 */
class QuotaExceeded extends createError('QUOTA_EXCEEDED', 'Quota « %s » %s dépassé : %s', 409) {
  constructor(breach: QuotaBreach | number = 0) {
    const b: QuotaBreach = typeof breach === 'number' ? { quota: 'stockage', allowed: breach } : breach
    const words = QUOTA_WORDS[b.quota]
    const numbers =
      b.used === undefined
        ? `${b.allowed} ${b.quota === 'stockage' ? 'octets' : b.quota} ${words.allowed}`
        : `${b.used} ${words.used} pour ${b.allowed} ${words.allowed}`
    super(b.quota, b.plan ? `du plan ${b.plan}` : 'de l’organisation', numbers)
  }
}

export const Errors = {
  BAD_REQUEST: define('BAD_REQUEST', 'Requête invalide : %s', 400),
  VALIDATION_ERROR: define('VALIDATION_ERROR', 'Les données envoyées sont invalides', 400),
  UNAUTHENTICATED: define('UNAUTHENTICATED', 'Authentification requise', 401),
  TOKEN_INVALID: define('TOKEN_INVALID', 'Jeton d’accès invalide ou expiré', 401),
  SESSION_REVOKED: define('SESSION_REVOKED', 'Session révoquée ou expirée', 401),
  FORBIDDEN: define('FORBIDDEN', 'Votre rôle ne permet pas cette action', 403),
  NOT_FOUND: define('NOT_FOUND', '%s introuvable', 404),
  ROUTE_NOT_FOUND: define('ROUTE_NOT_FOUND', 'Aucune opération %s %s', 404),
  METHOD_NOT_ALLOWED: define('METHOD_NOT_ALLOWED', 'La méthode %s n’est pas acceptée à cette adresse ; méthodes acceptées : %s', 405),
  URL_INVALID: define('URL_INVALID', 'L’adresse demandée contient un encodage invalide (un « % » doit être suivi de deux chiffres hexadécimaux)', 400),
  URI_TOO_LONG: define('URI_TOO_LONG', 'Un paramètre du chemin dépasse la longueur autorisée', 414),
  HEADERS_TOO_LARGE: define('HEADERS_TOO_LARGE', 'Les en-têtes de la requête dépassent la taille autorisée', 431),
  REQUEST_TIMEOUT: define('REQUEST_TIMEOUT', 'La requête n’est pas arrivée en entier à temps', 408),
  MULTIPART_INVALID: define('MULTIPART_INVALID', 'Formulaire multipart mal formé : %s', 400),
  CONFLICT: define('CONFLICT', '%s', 409),
  PAYLOAD_TOO_LARGE: define('PAYLOAD_TOO_LARGE', 'Le corps de la requête dépasse la taille autorisée', 413),
  UNSUPPORTED_MEDIA_TYPE: define('UNSUPPORTED_MEDIA_TYPE', 'Type de contenu non pris en charge : %s', 415),
  RATE_LIMITED: define('RATE_LIMITED', 'Trop de requêtes, réessayez dans %s', 429),
  WEAK_PASSWORD: define('WEAK_PASSWORD', 'Mot de passe refusé : %s', 400),
  INVALID_CURSOR: define('INVALID_CURSOR', 'Curseur de pagination invalide', 400),
  INVALID_CREDENTIALS: define('INVALID_CREDENTIALS', 'Adresse e-mail ou mot de passe incorrect', 401),
  REFRESH_TOKEN_INVALID: define('REFRESH_TOKEN_INVALID', 'Jeton de rafraîchissement invalide ou expiré', 401),
  REFRESH_TOKEN_REUSED: define('REFRESH_TOKEN_REUSED', 'Jeton de rafraîchissement déjà utilisé : la session est révoquée', 401),
  INVITATION_INVALID: define('INVITATION_INVALID', 'Invitation invalide, expirée ou déjà utilisée', 400),
  EMAIL_TAKEN: define('EMAIL_TAKEN', 'Un compte existe déjà avec cette adresse e-mail', 409),
  LAST_ADMIN: define('LAST_ADMIN', 'L’organisation doit garder au moins un administrateur actif', 409),
  ACCOUNT_LOCKED: define('ACCOUNT_LOCKED', 'Trop de tentatives de connexion, réessayez dans %s secondes', 429),
  // Two-factor authentication
  MFA_CODE_INVALID: define('MFA_CODE_INVALID', 'Code de vérification invalide, expiré ou déjà utilisé', 401),
  MFA_TOKEN_INVALID: define('MFA_TOKEN_INVALID', 'Étape de double authentification invalide, expirée ou déjà utilisée : reconnectez-vous', 401),
  MFA_LOCKED: define('MFA_LOCKED', 'Trop de codes erronés, réessayez dans %s secondes', 429),
  MFA_ALREADY_ENABLED: define('MFA_ALREADY_ENABLED', 'Cette méthode de double authentification est déjà active', 409),
  MFA_NOT_ENABLED: define('MFA_NOT_ENABLED', 'La double authentification n’est pas active sur ce compte', 409),
  MFA_NO_PENDING_ENROLMENT: define('MFA_NO_PENDING_ENROLMENT', 'Aucune activation de double authentification en attente : appelez d’abord /auth/2fa/enable', 409),
  MFA_ENROLMENT_REQUIRED: define('MFA_ENROLMENT_REQUIRED', 'Votre organisation exige la double authentification : activez-la pour continuer', 403),
  MFA_REQUIRED_BY_ORGANISATION: define('MFA_REQUIRED_BY_ORGANISATION', 'Votre organisation exige la double authentification : elle ne peut pas être désactivée', 409),
  MFA_SECRET_UNAVAILABLE: define(
    'MFA_SECRET_UNAVAILABLE',
    'Le secret de votre application d’authentification ne peut plus être lu (clé maître retirée) : utilisez un code de secours, ou demandez à un administrateur de réinitialiser votre double authentification',
    409,
  ),
  MFA_RESET_SELF: define('MFA_RESET_SELF', 'Pour votre propre compte, désactivez la double authentification avec votre mot de passe et un code', 409),
  // Passwords and e-mail verification
  PASSWORD_RESET_TOKEN_INVALID: define('PASSWORD_RESET_TOKEN_INVALID', 'Lien de réinitialisation invalide, expiré ou déjà utilisé', 400),
  EMAIL_TOKEN_INVALID: define('EMAIL_TOKEN_INVALID', 'Lien de vérification invalide, expiré ou déjà utilisé', 400),
  EMAIL_ALREADY_VERIFIED: define('EMAIL_ALREADY_VERIFIED', 'Cette adresse e-mail est déjà vérifiée', 409),
  // SSO
  SSO_PROVIDER_UNKNOWN: define('SSO_PROVIDER_UNKNOWN', 'Fournisseur SSO « %s » inconnu ou non configuré', 404),
  SSO_PROVIDER_ERROR: define('SSO_PROVIDER_ERROR', 'Le fournisseur SSO ne répond pas correctement', 502),
  SSO_STATE_INVALID: define('SSO_STATE_INVALID', 'Retour SSO refusé : paramètre state inconnu, expiré, déjà utilisé ou venant d’un autre navigateur', 400),
  SSO_FAILED: define('SSO_FAILED', 'Connexion SSO refusée : %s', 401),
  SSO_EMAIL_UNVERIFIED: define('SSO_EMAIL_UNVERIFIED', 'Le fournisseur SSO n’atteste pas que cette adresse e-mail est vérifiée', 403),
  SSO_ACCOUNT_UNKNOWN: define('SSO_ACCOUNT_UNKNOWN', 'Aucun compte Armoire pour cette adresse, et son domaine n’est rattaché à aucune organisation', 403),
  SSO_ACCOUNT_DISABLED: define('SSO_ACCOUNT_DISABLED', 'Ce compte Armoire est désactivé', 403),
  SSO_DOMAIN_TAKEN: define('SSO_DOMAIN_TAKEN', 'Le domaine « %s » est déjà rattaché à une autre organisation', 409),
  SSO_DOMAIN_NOT_ALLOWED: define('SSO_DOMAIN_NOT_ALLOWED', 'Domaine « %s » refusé : %s', 422),
  // Documents
  NAME_CONFLICT: define('NAME_CONFLICT', 'Un élément nommé « %s » existe déjà à cet endroit', 409),
  NOT_EMPTY: define('NOT_EMPTY', '%s n’est pas vide : confirmez la suppression de son contenu avec recursif=true', 409),
  INVALID_MOVE: define('INVALID_MOVE', 'Déplacement impossible : %s', 409),
  PARENT_IN_TRASH: define('PARENT_IN_TRASH', 'Le conteneur parent est dans la corbeille : restaurez-le d’abord', 409),
  QUOTA_EXCEEDED: QuotaExceeded,
  CHECKSUM_MISMATCH: define('CHECKSUM_MISMATCH', 'La somme SHA-256 annoncée ne correspond pas au contenu', 422),
  RANGE_NOT_SATISFIABLE: define('RANGE_NOT_SATISFIABLE', 'Plage d’octets non satisfiable', 416),
  INTEGRITY_ERROR: define('INTEGRITY_ERROR', 'Le contenu stocké a échoué au contrôle d’intégrité', 500),
  KMS_UNAVAILABLE: define('KMS_UNAVAILABLE', 'Le service de gestion des clés (KMS) ne répond pas : réessayez dans un instant', 503),
  // Backups
  BACKUP_NOT_READY: define('BACKUP_NOT_READY', 'La sauvegarde n’est pas disponible : %s', 409),
  BACKUP_RUNNING: define('BACKUP_RUNNING', 'La sauvegarde est en cours : attendez sa fin', 409),
  BACKUP_INTERRUPTED: define('BACKUP_INTERRUPTED', 'La sauvegarde a été interrompue avant sa fin (arrêt ou panne du serveur) : relancez-la', 500),
  RESTORE_INTERRUPTED: define('RESTORE_INTERRUPTED', 'La restauration a été interrompue avant sa fin (arrêt ou panne du serveur) : relancez-la, ce qui est déjà restauré sera ignoré', 500),
  BACKUP_TAMPERED: define('BACKUP_TAMPERED', 'L’archive de la sauvegarde a échoué au contrôle d’intégrité : %s', 422),
  ARCHIVE_INVALID: define('ARCHIVE_INVALID', 'Archive refusée : %s', 422),
  INVALID_TARGET: define('INVALID_TARGET', 'Cible invalide : %s', 422),
  // Compliance
  LOCKED: define('LOCKED', '%s', 423),
  ALREADY_LOCKED: define('ALREADY_LOCKED', '%s est déjà verrouillé', 409),
  NOT_LOCKED: define('NOT_LOCKED', '%s n’est pas verrouillé', 409),
  RETENTION_ACTIVE: define('RETENTION_ACTIVE', '%s', 409),
  LEGAL_HOLD: define('LEGAL_HOLD', '%s', 409),
  RETENTION_COMPLIANCE_MODE: define('RETENTION_COMPLIANCE_MODE', 'La règle « %s » est en mode conformité : elle ne peut être que prolongée, jamais raccourcie ni retirée', 409),
  REASON_REQUIRED: define('REASON_REQUIRED', 'Un motif est obligatoire pour %s', 422),
  ALREADY_CLOSED: define('ALREADY_CLOSED', 'Le dossier « %s » est déjà clôturé', 409),
  HOLD_RELEASED: define('HOLD_RELEASED', 'Le gel « %s » est levé', 409),
  EXPORT_NOT_READY: define('EXPORT_NOT_READY', 'L’export n’est pas disponible : %s', 409),
  DISPOSAL_DECIDED: define('DISPOSAL_DECIDED', 'Cette élimination est déjà tranchée (%s)', 409),
  // Billing
  SUBSCRIPTION_INACTIVE: define('SUBSCRIPTION_INACTIVE', 'Abonnement %s : l’espace est en lecture seule jusqu’au paiement (les données restent consultables)', 402),
  NOTHING_DUE: define('NOTHING_DUE', 'Aucun montant n’est dû : choisissez d’abord un plan payant (POST /abonnement/choisir)', 409),
  PAYMENT_PENDING: define('PAYMENT_PENDING', 'Un paiement est déjà en attente de confirmation (%s) : attendez son issue', 409),
  PAYMENT_REFUSED: define('PAYMENT_REFUSED', 'Paiement refusé par FeexPay : %s', 422),
  PAYMENT_PROVIDER_UNAVAILABLE: define('PAYMENT_PROVIDER_UNAVAILABLE', 'FeexPay est momentanément injoignable : le paiement reste en attente et sera vérifié', 502),
  METRICS_UNAUTHORIZED: define('METRICS_UNAUTHORIZED', 'Jeton de supervision absent ou invalide', 401),
  WEBHOOK_UNAUTHORIZED: define('WEBHOOK_UNAUTHORIZED', 'Secret de notification absent ou invalide', 401),
  PDF_NOT_READY: define('PDF_NOT_READY', 'Le PDF de la facture est en cours de production : réessayez dans quelques secondes', 503),
  INTERNAL_ERROR: define('INTERNAL_ERROR', 'Erreur interne du serveur', 500),
  SERVICE_UNAVAILABLE: define('SERVICE_UNAVAILABLE', 'Service momentanément indisponible', 503),
  // Outages: the request was sound, a dependency was not; nothing was recorded, retry later.
  DATABASE_UNAVAILABLE: define('DATABASE_UNAVAILABLE', 'La base de données est momentanément injoignable : rien n’a été enregistré, réessayez dans quelques secondes', 503),
  STORAGE_UNAVAILABLE: define('STORAGE_UNAVAILABLE', 'Le stockage des documents est momentanément injoignable : rien n’a été enregistré, réessayez plus tard', 503),
  STORAGE_FULL: define('STORAGE_FULL', 'Le stockage des documents est plein : rien n’a été enregistré, l’exploitant doit libérer ou ajouter de l’espace', 507),
} as const

export type ErrorCode = keyof typeof Errors

/** Problem codes that `defineOperation` may list as a documented outcome of an operation. */
export const ErrorStatus = Object.fromEntries(
  Object.entries(Errors).map(([code, E]) => [code, new E().statusCode as number]),
) as Record<ErrorCode, number>
