import { Type } from '@sinclair/typebox'
import { IdParamsSchema, TimestampSchema } from './common.ts'
import { ADMINS, ALL_ROLES, defineOperation } from './operation.ts'
import { MfaMethodeSchema, Password, TokensSchema } from './security.ts'
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

export const enableMfa = defineOperation({
  method: 'POST',
  url: '/auth/2fa/enable',
  operationId: 'enableMfa',
  tags: ['double-authentification'],
  summary: 'Commencer l’activation de la double authentification (application TOTP ou e-mail)',
  description:
    '`totp` : répond le secret, l’URI `otpauth://` et un QR code à scanner. `email` : envoie un code à 6 chiffres valable 10 minutes. Dans les deux cas, le facteur n’est actif qu’après POST /auth/2fa/verify.',
  access: { roles: ALL_ROLES, duringMfaEnrolment: true },
  rateLimits: [AUTH, { ...PER_MAILED_USER, when: { body: 'methode', equals: 'email' } }],
  problems: [409],
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
})

export const verifyMfa = defineOperation({
  method: 'POST',
  url: '/auth/2fa/verify',
  operationId: 'verifyMfa',
  tags: ['double-authentification'],
  summary: 'Activer le facteur en attente avec un code qu’il a produit',
  description: 'Répond dix codes de secours, montrés une seule fois. Sans `methode`, vérifie l’activation commencée le plus récemment.',
  access: { roles: ALL_ROLES, duringMfaEnrolment: true },
  rateLimits: [AUTH, PER_MFA_USER],
  problems: [409],
  schema: {
    body: Type.Object({ code: Code, methode: Type.Optional(MfaMethodeSchema) }, { additionalProperties: false }),
    response: {
      200: Type.Object(
        { methode: MfaMethodeSchema, facteurs: FacteursSchema, codes_secours: BackupCodes },
        { description: 'Facteur actif' },
      ),
    },
  },
})

export const sendMfaEmailCode = defineOperation({
  method: 'POST',
  url: '/auth/2fa/email/code',
  operationId: 'sendMfaEmailCode',
  tags: ['double-authentification'],
  summary: 'Recevoir un code par e-mail (pour désactiver ou régénérer les codes de secours)',
  access: { roles: ALL_ROLES },
  rateLimits: [AUTH, PER_MAILED_USER],
  problems: [409],
  schema: {
    response: { 202: Type.Object({ expire_at: TimestampSchema }, { description: 'Code envoyé, valable 10 minutes' }) },
  },
})

export const challengeMfa = defineOperation({
  method: 'POST',
  url: '/auth/2fa/challenge',
  operationId: 'challengeMfa',
  tags: ['double-authentification'],
  summary: 'Terminer une connexion avec le second facteur',
  description:
    'Avec le `mfa_token` reçu de /auth/login (ou du retour SSO) et soit un `code`, soit un `code_secours`. Un code TOTP déjà accepté ne l’est plus jamais ; les codes erronés sont comptés et freinés à part des mots de passe.',
  access: { public: true },
  rateLimits: [AUTH, PER_MFA_STEP],
  problems: [401],
  schema: {
    body: Type.Object({ mfa_token: Type.String({ minLength: 1, maxLength: 200 }), ...Proof }, { additionalProperties: false }),
    response: { 200: TokensSchema },
  },
})

export const regenerateBackupCodes = defineOperation({
  method: 'POST',
  url: '/auth/2fa/backup-codes',
  operationId: 'regenerateBackupCodes',
  tags: ['double-authentification'],
  summary: 'Régénérer les codes de secours (les anciens cessent de valoir)',
  access: { roles: ALL_ROLES },
  rateLimits: [AUTH, PER_MFA_USER],
  problems: [409],
  schema: {
    body: Type.Object(Proof, { additionalProperties: false }),
    response: { 200: Type.Object({ codes_secours: BackupCodes }, { description: 'Nouveaux codes de secours' }) },
  },
})

export const disableMfa = defineOperation({
  method: 'POST',
  url: '/auth/2fa/disable',
  operationId: 'disableMfa',
  tags: ['double-authentification'],
  summary: 'Désactiver la double authentification (mot de passe et code exigés)',
  description: 'Sans `methode`, désactive tous les facteurs. Refusé si l’organisation exige la double authentification et qu’il n’en resterait aucun.',
  access: { roles: ALL_ROLES },
  rateLimits: [AUTH, PER_MFA_USER, PER_PASSWORD_USER],
  problems: [409],
  schema: {
    body: Type.Object(
      { mot_de_passe: Password, ...Proof, methode: Type.Optional(MfaMethodeSchema) },
      { additionalProperties: false },
    ),
    response: { 200: Type.Object({ facteurs: FacteursSchema }, { description: 'Facteurs restants' }) },
  },
})

export const resetMemberMfa = defineOperation({
  method: 'DELETE',
  url: '/users/:id/2fa',
  operationId: 'resetMemberMfa',
  tags: ['utilisateurs'],
  summary: 'Réinitialiser la double authentification d’un membre',
  description: 'Supprime ses facteurs et ses codes de secours et révoque ses sessions ; le membre est prévenu par e-mail.',
  access: { roles: ADMINS },
  problems: [409],
  schema: { params: IdParamsSchema, response: { 204: Type.Null({ description: 'Double authentification réinitialisée' }) } },
})

export const setOrganisationMfa = defineOperation({
  method: 'PUT',
  url: '/organisation/2fa',
  operationId: 'setOrganisationMfa',
  tags: ['organisation'],
  summary: 'Exiger (ou non) la double authentification de tous les membres',
  description:
    'Une fois exigée, un membre sans second facteur reçoit `mfa_enrolement_requis` à la connexion et ne peut qu’en activer un ; ses sessions ouvertes sont restreintes de même.',
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
