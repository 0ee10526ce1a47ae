import { Type } from '@sinclair/typebox'
import { IdParamsSchema, TimestampSchema } from './common.ts'
import { ADMINS, ALL_ROLES, defineOperation } from './operation.ts'
import { EXEMPLE_SESSION_OUVERTE, MfaMethodeSchema, Password, TokensSchema } from './security.ts'
import { AUTH, PER_MAILED_USER, PER_MFA_STEP, PER_MFA_USER, PER_PASSWORD_USER } from './security-limits.ts'

const Code = Type.String({ pattern: '^[0-9 ]{6,12}$', description: 'Code à 6 chiffres (application ou e-mail)' })
const BackupCode = Type.String({ minLength: 8, maxLength: 40, description: 'Un des codes de secours, ex. 7KQ2-M9XD-4RTA' })
const BackupCodes = Type.Array(Type.String(), {
  minItems: 10,
  maxItems: 10,
  description: 'Dix codes de secours à usage unique, montrés cette fois seulement : les anciens ne valent plus rien',
})
const FacteursSchema = Type.Array(Type.Object({ methode: MfaMethodeSchema, active_depuis: TimestampSchema }), {
  description: 'Facteurs actifs',
})
/** A proof of the second factor: a current code, or one of the backup codes. */
const Proof = {
  code: Type.Optional(Code),
  code_secours: Type.Optional(BackupCode),
}

const EXEMPLE_CODES_SECOURS = [
  '7KQ2-M9XD-4RTA', 'P3LW-8ZNC-Q6YE', 'H5VB-2TJR-9KMD', 'X8FN-4QPL-7WCA', 'B2RT-6YHM-3ZKE',
  'N9DC-5WQX-8LTF', 'J4KP-7MRA-2VBH', 'T6ZE-3NCW-5QYD', 'C8LQ-9BVT-4RXM', 'W3HY-6KDP-7JNA',
]
const EXEMPLE_FACTEURS = [{ methode: 'totp', active_depuis: '2026-03-02T09:20:11.000Z' }] as const

export const enableMfa = defineOperation({
  method: 'POST',
  url: '/auth/2fa/enable',
  operationId: 'enableMfa',
  tags: ['double-authentification'],
  summary: 'Commencer l’activation de la double authentification (application TOTP ou e-mail)',
  description: 
    'Commence l’activation d’un second facteur. `totp` : répond le secret, l’URI `otpauth://` et un QR code à ' +
    'scanner avec une application d’authentification. `email` : envoie un code à 6 chiffres valable 10 minutes. ' +
    'Dans les deux cas, le facteur n’est actif qu’après POST /auth/2fa/verify avec un code qu’il a produit.',
  access: { roles: ALL_ROLES, duringMfaEnrolment: true },
  rateLimits: [AUTH, { ...PER_MAILED_USER, when: { body: 'methode', equals: 'email' } }],
  problems: ['MFA_ALREADY_ENABLED', 'KMS_UNAVAILABLE'],
  schema: {
    body: Type.Object({ methode: MfaMethodeSchema }, { additionalProperties: false }),
    response: {
      200: Type.Union(
        [
          Type.Object({
            methode: Type.Literal('totp'),
            secret: Type.String({ description: 'Le secret en base32, pour une saisie manuelle' }),
            otpauth_uri: Type.String({ description: 'URI otpauth://totp/… (SHA1, 6 chiffres, 30 secondes)' }),
            qr_code: Type.String({ description: 'L’URI en QR code, image PNG en data URL' }),
          }),
          Type.Object({
            methode: Type.Literal('email'),
            expire_at: TimestampSchema,
          }),
        ],
        { description: 'Activation en attente de vérification' },
      ),
    },
  },
  request: { body: { methode: 'totp' } },
  responses: {
    200: {
      example: {
        methode: 'totp',
        secret: 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP',
        otpauth_uri: 'otpauth://totp/Armoire:claire.martin%40cabinet-dupont.fr?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=Armoire&algorithm=SHA1&digits=6&period=30',
        qr_code: 'data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==',
      },
    },
  },
})

export const verifyMfa = defineOperation({
  method: 'POST',
  url: '/auth/2fa/verify',
  operationId: 'verifyMfa',
  tags: ['double-authentification'],
  summary: 'Activer le facteur en attente avec un code qu’il a produit',
  description: 
    'Active le facteur commencé par POST /auth/2fa/enable avec un code qu’il vient de produire, et répond dix ' +
    'codes de secours, montrés une seule fois : à faire noter à l’utilisateur. Sans `methode`, vérifie ' +
    'l’activation commencée le plus récemment.',
  access: { roles: ALL_ROLES, duringMfaEnrolment: true },
  rateLimits: [AUTH, PER_MFA_USER],
  problems: ['MFA_NO_PENDING_ENROLMENT', 'MFA_CODE_INVALID', 'MFA_LOCKED', 'KMS_UNAVAILABLE'],
  schema: {
    body: Type.Object({ code: Code, methode: Type.Optional(MfaMethodeSchema) }, { additionalProperties: false }),
    response: {
      200: Type.Object(
        { methode: MfaMethodeSchema, facteurs: FacteursSchema, codes_secours: BackupCodes },
        { description: 'Facteur actif' },
      ),
    },
  },
  request: { body: { code: '492039', methode: 'totp' } },
  responses: { 200: { example: { methode: 'totp', facteurs: [...EXEMPLE_FACTEURS], codes_secours: EXEMPLE_CODES_SECOURS } } },
})

export const sendMfaEmailCode = defineOperation({
  method: 'POST',
  url: '/auth/2fa/email/code',
  operationId: 'sendMfaEmailCode',
  tags: ['double-authentification'],
  summary: 'Recevoir un code par e-mail (pour désactiver ou régénérer les codes de secours)',
  description: 
    'Envoie par e-mail un code à 6 chiffres valable 10 minutes, à utiliser comme `code` de POST /auth/2fa/disable ' +
    'ou POST /auth/2fa/backup-codes quand le facteur actif est l’e-mail.',
  access: { roles: ALL_ROLES },
  rateLimits: [AUTH, PER_MAILED_USER],
  problems: ['MFA_NOT_ENABLED'],
  schema: {
    response: { 202: Type.Object({ expire_at: TimestampSchema }, { description: 'Code envoyé, valable 10 minutes' }) },
  },
  responses: { 202: { example: { expire_at: '2026-03-02T10:25:00.000Z' } } },
})

export const challengeMfa = defineOperation({
  method: 'POST',
  url: '/auth/2fa/challenge',
  operationId: 'challengeMfa',
  tags: ['double-authentification'],
  summary: 'Terminer une connexion avec le second facteur',
  description: 
    'Termine une connexion commencée par POST /auth/login (ou le retour SSO) qui a répondu `mfa_requis` : ' +
    'présenter le `mfa_token` reçu avec soit un `code` (application ou e-mail), soit un `code_secours`. Un code ' +
    'TOTP déjà accepté ne l’est plus jamais ; les codes erronés sont comptés et freinés à part des mots de passe.',
  access: { public: true },
  rateLimits: [AUTH, PER_MFA_STEP],
  problems: ['BAD_REQUEST', 'MFA_TOKEN_INVALID', 'MFA_CODE_INVALID', 'MFA_SECRET_UNAVAILABLE', 'MFA_LOCKED', 'KMS_UNAVAILABLE'],
  schema: {
    body: Type.Object({ mfa_token: Type.String({ minLength: 1, maxLength: 200 }), ...Proof }, { additionalProperties: false }),
    response: { 200: TokensSchema },
  },
  request: { body: { mfa_token: 'bWZhLXN0ZXAtZXhlbXBsZS1vcGFxdWUtdG9rZW4tMzI', code: '492039' } },
  responses: { 200: { description: 'Connecté', example: EXEMPLE_SESSION_OUVERTE } },
})

export const regenerateBackupCodes = defineOperation({
  method: 'POST',
  url: '/auth/2fa/backup-codes',
  operationId: 'regenerateBackupCodes',
  tags: ['double-authentification'],
  summary: 'Régénérer les codes de secours (les anciens cessent de valoir)',
  description: 
    'Remplace les codes de secours par dix nouveaux, montrés une seule fois ; les anciens cessent aussitôt de ' +
    'valoir. À utiliser quand l’utilisateur a perdu ou épuisé ses codes ; exige un code du facteur actif ou un ' +
    'code de secours.',
  access: { roles: ALL_ROLES },
  rateLimits: [AUTH, PER_MFA_USER],
  problems: ['BAD_REQUEST', 'MFA_NOT_ENABLED', 'MFA_CODE_INVALID', 'MFA_SECRET_UNAVAILABLE', 'MFA_LOCKED', 'KMS_UNAVAILABLE'],
  schema: {
    body: Type.Object(Proof, { additionalProperties: false }),
    response: { 200: Type.Object({ codes_secours: BackupCodes }, { description: 'Nouveaux codes de secours' }) },
  },
  request: { body: { code: '492039' } },
  responses: { 200: { example: { codes_secours: EXEMPLE_CODES_SECOURS } } },
})

export const disableMfa = defineOperation({
  method: 'POST',
  url: '/auth/2fa/disable',
  operationId: 'disableMfa',
  tags: ['double-authentification'],
  summary: 'Désactiver la double authentification (mot de passe et code exigés)',
  description: 
    'Désactive un facteur (ou tous, sans `methode`) ; exige le mot de passe et un code du facteur ou un code de ' +
    'secours. Refusé si l’organisation exige la double authentification et qu’il n’en resterait aucun. Un e-mail ' +
    'prévient le titulaire du compte.',
  access: { roles: ALL_ROLES },
  rateLimits: [AUTH, PER_MFA_USER, PER_PASSWORD_USER],
  problems: ['BAD_REQUEST', 'INVALID_CREDENTIALS', 'ACCOUNT_LOCKED', 'MFA_NOT_ENABLED', 'MFA_CODE_INVALID', 'MFA_SECRET_UNAVAILABLE', 'MFA_LOCKED', 'MFA_REQUIRED_BY_ORGANISATION', 'KMS_UNAVAILABLE'],
  schema: {
    body: Type.Object(
      { mot_de_passe: Password, ...Proof, methode: Type.Optional(MfaMethodeSchema) },
      { additionalProperties: false },
    ),
    response: { 200: Type.Object({ facteurs: FacteursSchema }, { description: 'Facteurs restants' }) },
  },
  request: { body: { mot_de_passe: 'Armoire-de-Claire-2026', code: '492039', methode: 'totp' } },
  responses: { 200: { example: { facteurs: [] } } },
})

export const resetMemberMfa = defineOperation({
  method: 'DELETE',
  url: '/users/:id/2fa',
  operationId: 'resetMemberMfa',
  tags: ['utilisateurs'],
  summary: 'Réinitialiser la double authentification d’un membre',
  description: 
    'Pour un membre qui a perdu son téléphone et ses codes de secours : supprime ses facteurs et ses codes de ' +
    'secours et révoque ses sessions ; il se reconnecte avec son mot de passe et en active un nouveau. Le membre ' +
    'est prévenu par e-mail. Réservé aux administrateurs, jamais sur son propre compte.',
  access: { roles: ADMINS },
  problems: ['MFA_RESET_SELF', 'MFA_NOT_ENABLED'],
  schema: { params: IdParamsSchema, response: { 204: Type.Null({ description: 'Double authentification réinitialisée' }) } },
  request: { params: { id: '7a1e5c3b-2d4f-4e6a-8b9c-0d1e2f3a4b5c' } },
})

export const setOrganisationMfa = defineOperation({
  method: 'PUT',
  url: '/organisation/2fa',
  operationId: 'setOrganisationMfa',
  tags: ['organisation'],
  summary: 'Exiger (ou non) la double authentification de tous les membres',
  description: 
    'Exige (ou n’exige plus) la double authentification de tous les membres. Une fois exigée, un membre sans ' +
    'second facteur reçoit `mfa_enrolement_requis` à la connexion et ne peut qu’en activer un ; ses sessions ' +
    'ouvertes sont restreintes de même. La réponse compte les membres encore sans second facteur.',
  access: { roles: ADMINS },
  schema: {
    body: Type.Object({ obligatoire: Type.Boolean() }, { additionalProperties: false }),
    response: {
      200: Type.Object(
        {
          obligatoire: Type.Boolean(),
          membres_sans_2fa: Type.Integer({ description: 'Membres actifs sans second facteur' }),
        },
        { description: 'Exigence enregistrée' },
      ),
    },
  },
  request: { body: { obligatoire: true } },
  responses: { 200: { example: { obligatoire: true, membres_sans_2fa: 3 } } },
})

export const mfaOperations = [
  enableMfa,
  verifyMfa,
  sendMfaEmailCode,
  challengeMfa,
  regenerateBackupCodes,
  disableMfa,
  resetMemberMfa,
  setOrganisationMfa,
]
