import { Type } from '@sinclair/typebox'
import { TimestampSchema } from './common.ts'
import { ALL_ROLES, defineOperation } from './operation.ts'
import { Email, NewPassword, Password } from './security.ts'

const Token = Type.String({ minLength: 1, maxLength: 200, description: 'Le jeton du lien reçu par e-mail' })

export const forgotPassword = defineOperation({
  method: 'POST',
  url: '/auth/password/forgot',
  operationId: 'forgotPassword',
  tags: ['authentification'],
  summary: 'Demander un lien de réinitialisation du mot de passe',
  description: 
    'Envoie un lien de réinitialisation du mot de passe à l’adresse, si elle a un compte actif. Répond toujours ' +
    '202, que l’adresse ait un compte ou non, pour ne rien révéler. Le lien vaut une heure et une seule fois ; une ' +
    'nouvelle demande annule la précédente. Le jeton du lien se présente à POST /auth/password/reset.',
  access: { public: true },
  schema: {
    body: Type.Object({ email: Email }, { additionalProperties: false }),
    response: { 202: Type.Object({ message: Type.String() }, { description: 'Demande prise en compte' }) },
  },
  request: { body: { email: 'claire.martin@cabinet-dupont.fr' } },
  responses: { 202: { example: { message: 'Si un compte existe pour cette adresse, un lien de réinitialisation vient d’être envoyé.' } } },
})

export const resetPassword = defineOperation({
  method: 'POST',
  url: '/auth/password/reset',
  operationId: 'resetPassword',
  tags: ['authentification'],
  summary: 'Choisir un nouveau mot de passe avec le lien reçu',
  description: 
    'Choisit un nouveau mot de passe avec le jeton du lien reçu par e-mail (POST /auth/password/forgot), même ' +
    'politique qu’à l’inscription. Toutes les sessions du compte sont révoquées : reconnectez-vous ensuite avec ' +
    'POST /auth/login.',
  access: { public: true },
  problems: ['PASSWORD_RESET_TOKEN_INVALID', 'WEAK_PASSWORD'],
  schema: {
    body: Type.Object({ token: Token, mot_de_passe: NewPassword }, { additionalProperties: false }),
    response: { 204: Type.Null({ description: 'Mot de passe changé, sessions révoquées' }) },
  },
  request: { body: { token: 'cmVzZXQtZXhlbXBsZS1vcGFxdWUtdG9rZW4tMzItb2N0', mot_de_passe: 'Nouveau-depart-2026' } },
})

export const changePassword = defineOperation({
  method: 'PUT',
  url: '/me/password',
  operationId: 'changePassword',
  tags: ['utilisateurs'],
  summary: 'Changer mon mot de passe',
  description: 
    'Change le mot de passe de l’appelant, qui donne l’actuel. Révoque toutes ses autres sessions ; la session ' +
    'courante reste ouverte. Un e-mail prévient le titulaire du compte.',
  access: { roles: ALL_ROLES },
  problems: ['INVALID_CREDENTIALS', 'ACCOUNT_LOCKED', 'WEAK_PASSWORD'],
  schema: {
    body: Type.Object({ mot_de_passe_actuel: Password, mot_de_passe: NewPassword }, { additionalProperties: false }),
    response: { 204: Type.Null({ description: 'Mot de passe changé' }) },
  },
  request: { body: { mot_de_passe_actuel: 'Armoire-de-Claire-2026', mot_de_passe: 'Armoire-de-Claire-2027' } },
})

export const verifyEmail = defineOperation({
  method: 'POST',
  url: '/auth/email/verify',
  operationId: 'verifyEmail',
  tags: ['authentification'],
  summary: 'Vérifier mon adresse e-mail avec le lien reçu',
  description: 
    'Vérifie l’adresse e-mail du compte avec le jeton du lien envoyé à l’inscription ou par POST ' +
    '/auth/email/resend. Public : le lien s’ouvre souvent sur un autre appareil que celui de la session.',
  access: { public: true },
  problems: ['EMAIL_TOKEN_INVALID'],
  schema: {
    body: Type.Object({ token: Token }, { additionalProperties: false }),
    response: { 200: Type.Object({ email: Type.String(), email_verifie: Type.Literal(true) }, { description: 'Adresse vérifiée' }) },
  },
  request: { body: { token: 'dmVyaWYtZXhlbXBsZS1vcGFxdWUtdG9rZW4tMzItb2N0ZXQ' } },
  responses: { 200: { example: { email: 'claire.martin@cabinet-dupont.fr', email_verifie: true } } },
})

export const resendEmailVerification = defineOperation({
  method: 'POST',
  url: '/auth/email/resend',
  operationId: 'resendEmailVerification',
  tags: ['authentification'],
  summary: 'Recevoir un nouveau lien de vérification de mon adresse e-mail',
  description: 
    'Envoie un nouveau lien de vérification de l’adresse e-mail de l’appelant, quand le premier est perdu ou ' +
    'expiré ; le lien précédent cesse de valoir.',
  access: { roles: ALL_ROLES, duringMfaEnrolment: true },
  problems: ['EMAIL_ALREADY_VERIFIED'],
  schema: {
    response: { 202: Type.Object({ expire_at: TimestampSchema }, { description: 'Lien envoyé' }) },
  },
  responses: { 202: { example: { expire_at: '2026-03-03T10:00:00.000Z' } } },
})

export const passwordOperations = [forgotPassword, resetPassword, changePassword, verifyEmail, resendEmailVerification]
