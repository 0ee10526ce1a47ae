import { Type } from '@sinclair/typebox'
import { TimestampSchema } from './common.ts'
import { ALL_ROLES, defineOperation } from './operation.ts'
import { Email, Password } from './security.ts'
import { AUTH, PER_MAILED_USER, PER_PASSWORD_USER, PER_RESET_EMAIL } from './security-limits.ts'

const Token = Type.String({ minLength: 1, maxLength: 200, description: 'Le jeton du lien reçu par e-mail' })

export const forgotPassword = defineOperation({
  method: 'POST',
  url: '/auth/password/forgot',
  operationId: 'forgotPassword',
  tags: ['authentification'],
  summary: 'Demander un lien de réinitialisation du mot de passe',
  description:
    'Répond toujours 202, que l’adresse ait un compte ou non. Le lien, envoyé par e-mail, vaut une heure et une seule fois ; une nouvelle demande annule la précédente.',
  access: { public: true },
  rateLimits: [AUTH, PER_RESET_EMAIL],
  schema: {
    body: Type.Object({ email: Email }, { additionalProperties: false }),
    response: { 202: Type.Object({ message: Type.String() }, { description: 'Demande prise en compte' }) },
  },
})

export const resetPassword = defineOperation({
  method: 'POST',
  url: '/auth/password/reset',
  operationId: 'resetPassword',
  tags: ['authentification'],
  summary: 'Choisir un nouveau mot de passe avec le lien reçu',
  description: 'Même politique qu’à l’inscription. Toutes les sessions du compte sont révoquées ; reconnectez-vous ensuite.',
  access: { public: true },
  rateLimits: [AUTH],
  schema: {
    body: Type.Object({ token: Token, mot_de_passe: Password }, { additionalProperties: false }),
    response: { 204: Type.Null({ description: 'Mot de passe changé, sessions révoquées' }) },
  },
})

export const changePassword = defineOperation({
  method: 'PUT',
  url: '/me/password',
  operationId: 'changePassword',
  tags: ['utilisateurs'],
  summary: 'Changer mon mot de passe',
  description: 'Révoque toutes mes autres sessions ; la session courante reste ouverte.',
  access: { roles: ALL_ROLES },
  rateLimits: [PER_PASSWORD_USER],
  problems: [429],
  schema: {
    body: Type.Object({ mot_de_passe_actuel: Password, mot_de_passe: Password }, { additionalProperties: false }),
    response: { 204: Type.Null({ description: 'Mot de passe changé' }) },
  },
})

export const verifyEmail = defineOperation({
  method: 'POST',
  url: '/auth/email/verify',
  operationId: 'verifyEmail',
  tags: ['authentification'],
  summary: 'Vérifier mon adresse e-mail avec le lien reçu',
  access: { public: true },
  rateLimits: [AUTH],
  schema: {
    body: Type.Object({ token: Token }, { additionalProperties: false }),
    response: { 200: Type.Object({ email: Type.String(), email_verifie: Type.Literal(true) }, { description: 'Adresse vérifiée' }) },
  },
})

export const resendEmailVerification = defineOperation({
  method: 'POST',
  url: '/auth/email/resend',
  operationId: 'resendEmailVerification',
  tags: ['authentification'],
  summary: 'Recevoir un nouveau lien de vérification de mon adresse e-mail',
  description: 'Le lien précédent cesse de valoir.',
  access: { roles: ALL_ROLES, duringMfaEnrolment: true },
  rateLimits: [AUTH, PER_MAILED_USER],
  problems: [409],
  schema: {
    response: { 202: Type.Object({ expire_at: TimestampSchema }, { description: 'Lien envoyé' }) },
  },
})

export const passwordOperations = [forgotPassword, resetPassword, changePassword, verifyEmail, resendEmailVerification]
