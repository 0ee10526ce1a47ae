import { Type } from '@sinclair/typebox'
import { RoleSchema, StringEnum } from './common.ts'
import { ADMINS, defineOperation } from './operation.ts'
import { EXEMPLE_SESSION_OUVERTE, SignInSchema } from './security.ts'

export const SSO_PROVIDERS = ['google', 'microsoft'] as const
export type SsoProvider = (typeof SSO_PROVIDERS)[number]

const ProviderParams = Type.Object({ fournisseur: StringEnum(SSO_PROVIDERS, { description: 'Fournisseur OpenID Connect' }) })

export const ssoStart = defineOperation({
  method: 'GET',
  url: '/auth/sso/:fournisseur/start',
  operationId: 'ssoStart',
  tags: ['sso'],
  summary: 'Se connecter avec Google ou Microsoft : redirige vers le fournisseur',
  description: 
    'Redirige le navigateur vers la page de connexion de Google ou Microsoft (PKCE S256, `state` et `nonce`). Un ' +
    'cookie lie le retour à ce navigateur : ouvrez cette adresse dans le navigateur de l’utilisateur (lien ou ' +
    'redirection), pas avec fetch.',
  access: { public: true },
  problems: ['SSO_PROVIDER_UNKNOWN', 'SSO_PROVIDER_ERROR'],
  schema: {
    params: ProviderParams,
    response: {
      302: {
        type: 'null',
        description: 'Redirection vers la page de connexion du fournisseur',
        headers: { location: { type: 'string', format: 'uri', description: 'L’adresse d’autorisation du fournisseur' } },
      },
    },
  },
  request: { params: { fournisseur: 'google' } },
})

export const ssoCallback = defineOperation({
  method: 'GET',
  url: '/auth/sso/:fournisseur/callback',
  operationId: 'ssoCallback',
  tags: ['sso'],
  summary: 'Retour du fournisseur : échange du code et connexion',
  description: 
    'Adresse de retour à déclarer chez le fournisseur. Échange le code (avec le vérificateur PKCE), valide le ' +
    'jeton d’identité (émetteur, audience, signature, nonce, expiration) et connecte avec les mêmes jetons que ' +
    '/auth/login — ou l’étape de double authentification. Les comptes sont liés par adresse e-mail vérifiée ; une ' +
    'adresse inconnue dont le domaine est rattaché à une organisation y crée un membre.',
  access: { public: true },
  problems: ['SSO_PROVIDER_UNKNOWN', 'SSO_STATE_INVALID', 'SSO_FAILED', 'SSO_EMAIL_UNVERIFIED', 'SSO_ACCOUNT_UNKNOWN', 'SSO_ACCOUNT_DISABLED', 'SSO_PROVIDER_ERROR', 'EMAIL_TAKEN'],
  schema: {
    params: ProviderParams,
    querystring: Type.Object({
      code: Type.Optional(Type.String({ maxLength: 4096 })),
      state: Type.Optional(Type.String({ maxLength: 512 })),
      iss: Type.Optional(Type.String({ maxLength: 2048 })),
      error: Type.Optional(Type.String({ maxLength: 256 })),
      error_description: Type.Optional(Type.String({ maxLength: 2048 })),
    }),
    response: { 200: SignInSchema },
  },
  request: { params: { fournisseur: 'google' }, querystring: { code: '4/0AeanS0ZexempleDeCode', state: 'c3RhdGUtZXhlbXBsZQ' } },
  responses: { 200: { description: 'Connecté (les jetons), ou l’étape de double authentification', example: EXEMPLE_SESSION_OUVERTE } },
})

const DomainSchema = Type.Object(
  {
    domaine: Type.String({
      pattern: '^(?=.{3,253}$)([a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\\.)+[a-zA-Z]{2,63}$',
      description: 'Domaine d’adresse e-mail, ex. cabinet-dupont.fr',
    }),
    role_defaut: RoleSchema,
  },
  { additionalProperties: false },
)

const SsoSettingsSchema = Type.Object(
  {
    domaines: Type.Array(DomainSchema),
    fournisseurs: Type.Array(StringEnum(SSO_PROVIDERS), { description: 'Fournisseurs configurés sur cette instance' }),
  },
  { description: 'Réglages SSO de l’organisation' },
)

export const getOrganisationSso = defineOperation({
  method: 'GET',
  url: '/organisation/sso',
  operationId: 'getOrganisationSso',
  tags: ['organisation'],
  summary: 'Domaines e-mail rattachés à l’organisation pour le SSO',
  description: 
    'Rend les domaines d’adresse e-mail rattachés à l’organisation, avec le rôle donné aux personnes qui arrivent ' +
    'par SSO, et les fournisseurs configurés sur cette instance. Réservé aux administrateurs.',
  access: { roles: ADMINS },
  schema: { response: { 200: SsoSettingsSchema } },
  responses: { 200: { example: { domaines: [{ domaine: 'cabinet-dupont.fr', role_defaut: 'lecteur' }], fournisseurs: ['google', 'microsoft'] } } },
})

export const setOrganisationSso = defineOperation({
  method: 'PUT',
  url: '/organisation/sso',
  operationId: 'setOrganisationSso',
  tags: ['organisation'],
  summary: 'Rattacher des domaines e-mail à l’organisation, avec un rôle par défaut',
  description: 
    'Remplace la liste des domaines rattachés. Une personne inconnue dont l’adresse vérifiée est dans un de ces ' +
    'domaines devient membre à sa première connexion SSO, avec le rôle par défaut. Un domaine doit être celui de ' +
    'l’adresse vérifiée d’un administrateur de l’organisation, et ne peut pas être celui d’une messagerie publique.',
  access: { roles: ADMINS },
  problems: ['SSO_DOMAIN_TAKEN', 'SSO_DOMAIN_NOT_ALLOWED'],
  schema: {
    body: Type.Object({ domaines: Type.Array(DomainSchema, { maxItems: 50 }) }, { additionalProperties: false }),
    response: { 200: SsoSettingsSchema },
  },
  request: { body: { domaines: [{ domaine: 'cabinet-dupont.fr', role_defaut: 'lecteur' }] } },
  responses: { 200: { example: { domaines: [{ domaine: 'cabinet-dupont.fr', role_defaut: 'lecteur' }], fournisseurs: ['google', 'microsoft'] } } },
})

export const ssoOperations = [ssoStart, ssoCallback, getOrganisationSso, setOrganisationSso]
