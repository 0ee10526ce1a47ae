import { type Static, Type } from '@sinclair/typebox'
import {
  IdParamsSchema,
  IdSchema,
  PageQuerySchema,
  PageSchema,
  RoleSchema,
  StringEnum,
  TimestampSchema,
} from './common.ts'
import { ADMINS, ALL_ROLES, defineOperation } from './operation.ts'
import { AUTH, PER_LOGIN_EMAIL } from './security-limits.ts'

export const Email = Type.String({ format: 'email', maxLength: 254, description: 'Adresse e-mail (insensible à la casse)' })
export const Password = Type.String({ minLength: 1, maxLength: 256, description: 'Au moins 12 caractères, pas un mot de passe courant' })
const Name = Type.String({ minLength: 1, maxLength: 200 })

export const UtilisateurSchema = Type.Object(
  {
    id: IdSchema,
    organisation_id: IdSchema,
    email: Type.String(),
    nom: Type.String(),
    role: RoleSchema,
    actif: Type.Boolean(),
    created_at: TimestampSchema,
    updated_at: TimestampSchema,
  },
  { $id: 'Utilisateur' },
)
export type UtilisateurDto = Static<typeof UtilisateurSchema>

export const OrganisationSchema = Type.Object(
  {
    id: IdSchema,
    nom: Type.String(),
    mfa_obligatoire: Type.Boolean({ description: 'Les membres doivent activer la double authentification' }),
    created_at: TimestampSchema,
  },
  { $id: 'Organisation' },
)

const TokenFields = {
  access_token: Type.String({ description: 'JWT à présenter dans `Authorization: Bearer` (15 minutes)' }),
  refresh_token: Type.String({ description: 'Jeton opaque à usage unique pour POST /auth/refresh' }),
  token_type: Type.Literal('Bearer'),
  expires_in: Type.Integer({ description: 'Durée de validité du jeton d’accès, en secondes' }),
  mfa_enrolement_requis: Type.Boolean({
    description:
      'L’organisation exige la double authentification et ce compte n’en a pas : la session ne peut que l’activer (POST /auth/2fa/enable puis /auth/2fa/verify)',
  }),
}
export const TokensSchema = Type.Object({ ...TokenFields, utilisateur: UtilisateurSchema }, { $id: 'Jetons' })

export const MFA_METHODES = ['totp', 'email'] as const
export const MfaMethodeSchema = StringEnum(MFA_METHODES, { description: 'totp : application d’authentification ; email : code envoyé par e-mail' })

export const MfaChallengeSchema = Type.Object(
  {
    mfa_requis: Type.Literal(true),
    mfa_token: Type.String({ description: 'À présenter une seule fois à POST /auth/2fa/challenge, dans les 5 minutes' }),
    methodes: Type.Array(StringEnum([...MFA_METHODES, 'code_secours'] as const), {
      description: 'Les moyens acceptés ; avec `email`, un code vient d’être envoyé',
    }),
    expires_in: Type.Integer({ description: 'Durée de validité du mfa_token, en secondes' }),
  },
  { $id: 'EtapeDoubleAuthentification' },
)

/** What a sign-in answers: the tokens, or the second step when the account has 2FA. */
export const SignInSchema = Type.Union([TokensSchema, MfaChallengeSchema], {
  description: 'Les jetons, ou `mfa_requis` quand le compte a la double authentification',
})

export const register = defineOperation({
  method: 'POST',
  url: '/auth/register',
  operationId: 'register',
  tags: ['authentification'],
  summary: 'Créer une organisation et son premier administrateur',
  access: { public: true },
  rateLimits: [AUTH],
  problems: [409],
  schema: {
    body: Type.Object(
      { email: Email, mot_de_passe: Password, nom: Name, organisation: Name },
      { additionalProperties: false },
    ),
    response: {
      201: Type.Object(
        { ...TokenFields, utilisateur: UtilisateurSchema, organisation: OrganisationSchema },
        { description: 'Compte créé et connecté' },
      ),
    },
  },
})

export const login = defineOperation({
  method: 'POST',
  url: '/auth/login',
  operationId: 'login',
  tags: ['authentification'],
  summary: 'Se connecter',
  description:
    'Une adresse inconnue et un mauvais mot de passe donnent la même réponse. Si le compte a la double authentification, la réponse est `{mfa_requis: true, mfa_token, methodes}` : terminer avec POST /auth/2fa/challenge.',
  access: { public: true },
  rateLimits: [AUTH, PER_LOGIN_EMAIL],
  problems: [401],
  schema: {
    body: Type.Object({ email: Email, mot_de_passe: Password }, { additionalProperties: false }),
    response: { 200: SignInSchema },
  },
})

export const refresh = defineOperation({
  method: 'POST',
  url: '/auth/refresh',
  operationId: 'refreshTokens',
  tags: ['authentification'],
  summary: 'Renouveler les jetons (le jeton de rafraîchissement présenté est consommé)',
  description: 'Présenter un jeton déjà consommé révoque toute la session.',
  access: { public: true },
  rateLimits: [AUTH],
  problems: [401],
  schema: {
    body: Type.Object({ refresh_token: Type.String({ minLength: 1, maxLength: 200 }) }, { additionalProperties: false }),
    response: { 200: TokensSchema },
  },
})

export const logout = defineOperation({
  method: 'POST',
  url: '/auth/logout',
  operationId: 'logout',
  tags: ['authentification'],
  summary: 'Révoquer la session courante',
  access: { roles: ALL_ROLES, duringMfaEnrolment: true },
  rateLimits: [AUTH],
  schema: { response: { 204: Type.Null({ description: 'Session révoquée' }) } },
})

const SessionSchema = Type.Object(
  {
    id: IdSchema,
    created_at: TimestampSchema,
    last_used_at: TimestampSchema,
    expires_at: TimestampSchema,
    ip: Type.Union([Type.String(), Type.Null()]),
    user_agent: Type.Union([Type.String(), Type.Null()]),
    courante: Type.Boolean({ description: 'La session de cette requête' }),
  },
  { $id: 'Session' },
)

export const listSessions = defineOperation({
  method: 'GET',
  url: '/auth/sessions',
  operationId: 'listSessions',
  tags: ['authentification'],
  summary: 'Lister mes sessions actives',
  access: { roles: ALL_ROLES },
  rateLimits: [AUTH],
  schema: { response: { 200: Type.Object({ items: Type.Array(SessionSchema) }, { description: 'Sessions actives, les plus récentes d’abord' }) } },
})

export const revokeSession = defineOperation({
  method: 'DELETE',
  url: '/auth/sessions/:id',
  operationId: 'revokeSession',
  tags: ['authentification'],
  summary: 'Révoquer une de mes sessions',
  access: { roles: ALL_ROLES },
  rateLimits: [AUTH],
  schema: { params: IdParamsSchema, response: { 204: Type.Null({ description: 'Session révoquée' }) } },
})

export const acceptInvitation = defineOperation({
  method: 'POST',
  url: '/auth/invitation/accepter',
  operationId: 'acceptInvitation',
  tags: ['authentification'],
  summary: 'Accepter une invitation en choisissant son mot de passe',
  access: { public: true },
  rateLimits: [AUTH],
  schema: {
    body: Type.Object({ token: Type.String({ minLength: 1, maxLength: 200 }), mot_de_passe: Password }, { additionalProperties: false }),
    response: { 200: TokensSchema },
  },
})

export const me = defineOperation({
  method: 'GET',
  url: '/me',
  operationId: 'getMe',
  tags: ['utilisateurs'],
  summary: 'Mon compte, mon organisation, mon rôle et ma sécurité',
  access: { roles: ALL_ROLES, duringMfaEnrolment: true },
  schema: {
    response: {
      200: Type.Object(
        {
          utilisateur: UtilisateurSchema,
          organisation: OrganisationSchema,
          role: RoleSchema,
          email_verifie: Type.Boolean({ description: 'L’adresse e-mail a été vérifiée' }),
          facteurs_mfa: Type.Array(
            Type.Object({ methode: MfaMethodeSchema, active_depuis: TimestampSchema }),
            { description: 'Facteurs de double authentification actifs (jamais leurs secrets)' },
          ),
          codes_secours_restants: Type.Integer({ description: 'Codes de secours encore utilisables' }),
          mfa_enrolement_requis: Type.Boolean({ description: 'Cette session ne peut qu’activer la double authentification' }),
        },
        { description: 'L’appelant' },
      ),
    },
  },
})

export const UsersQuerySchema = Type.Composite([
  PageQuerySchema,
  Type.Object({
    role: Type.Optional(RoleSchema),
    actif: Type.Optional(Type.Boolean()),
    q: Type.Optional(Type.String({ minLength: 1, maxLength: 100, description: 'Recherche dans le nom et l’e-mail' })),
  }),
])

export const listUsers = defineOperation({
  method: 'GET',
  url: '/users',
  operationId: 'listUsers',
  tags: ['utilisateurs'],
  summary: 'Lister les membres de l’organisation',
  access: { roles: ADMINS },
  schema: { querystring: UsersQuerySchema, response: { 200: PageSchema(UtilisateurSchema, 'PageUtilisateurs') } },
})

export const createUser = defineOperation({
  method: 'POST',
  url: '/users',
  operationId: 'createUser',
  tags: ['utilisateurs'],
  summary: 'Inviter un membre (un e-mail d’invitation lui est envoyé)',
  access: { roles: ADMINS },
  problems: [409],
  schema: {
    body: Type.Object({ email: Email, nom: Name, role: RoleSchema }, { additionalProperties: false }),
    response: { 201: Type.Object({ utilisateur: UtilisateurSchema, invitation_expire_at: TimestampSchema }, { description: 'Membre invité' }) },
  },
})

export const updateUser = defineOperation({
  method: 'PUT',
  url: '/users/:id',
  operationId: 'updateUser',
  tags: ['utilisateurs'],
  summary: 'Changer le rôle, le nom ou l’activation d’un membre',
  description: 'Désactiver un membre révoque toutes ses sessions. L’organisation garde toujours un administrateur actif.',
  access: { roles: ADMINS },
  problems: [409],
  schema: {
    params: IdParamsSchema,
    body: Type.Object(
      { role: Type.Optional(RoleSchema), nom: Type.Optional(Name), actif: Type.Optional(Type.Boolean()) },
      { additionalProperties: false, minProperties: 1 },
    ),
    response: { 200: UtilisateurSchema },
  },
})

export const RESULTATS = ['succes', 'echec', 'refus'] as const
export const SEVERITES = ['LOW', 'MEDIUM', 'HIGH', 'CRITICAL'] as const

export const JournalEntrySchema = Type.Object(
  {
    id: Type.Integer(),
    sequence: Type.Integer(),
    utilisateur_id: Type.Union([IdSchema, Type.Null()]),
    action: Type.String(),
    cible_type: Type.Union([Type.String(), Type.Null()]),
    cible_id: Type.Union([Type.String(), Type.Null()]),
    cible_nom: Type.Union([Type.String(), Type.Null()]),
    resultat: StringEnum(RESULTATS),
    severite: StringEnum(SEVERITES),
    ip: Type.Union([Type.String(), Type.Null()]),
    user_agent: Type.Union([Type.String(), Type.Null()]),
    details: Type.Record(Type.String(), Type.Unknown()),
    created_at: TimestampSchema,
    message: Type.String({ description: 'La phrase du journal, ex. « [2025-06-01 15:22] – user_id=… a supprimé le fichier ID=… “ContratRH.pdf” »' }),
  },
  { $id: 'EntreeJournal' },
)

const JournalFilters = {
  utilisateur_id: Type.Optional(IdSchema),
  action: Type.Optional(Type.String({ maxLength: 64 })),
  cible_type: Type.Optional(Type.String({ maxLength: 32 })),
  cible_id: Type.Optional(Type.String({ maxLength: 64 })),
  severite: Type.Optional(StringEnum(SEVERITES)),
  resultat: Type.Optional(StringEnum(RESULTATS)),
  depuis: Type.Optional(Type.String({ format: 'date-time' })),
  jusqua: Type.Optional(Type.String({ format: 'date-time' })),
}
export const JournalQuerySchema = Type.Composite([PageQuerySchema, Type.Object(JournalFilters)])
export type JournalFilter = Static<typeof JournalQuerySchema>

export const listJournal = defineOperation({
  method: 'GET',
  url: '/journal',
  operationId: 'listJournal',
  tags: ['journal'],
  summary: 'Consulter le journal d’activité (le plus récent d’abord)',
  access: { roles: ADMINS },
  schema: { querystring: JournalQuerySchema, response: { 200: PageSchema(JournalEntrySchema, 'PageJournal') } },
})

export const exportJournal = defineOperation({
  method: 'GET',
  url: '/journal/export',
  operationId: 'exportJournal',
  tags: ['journal'],
  summary: 'Exporter le journal filtré (CSV ou JSON, en flux)',
  access: { roles: ADMINS },
  schema: {
    querystring: Type.Object({ format: StringEnum(['csv', 'json'] as const, { default: 'json' }), ...JournalFilters }),
    response: {
      200: {
        description: 'Le journal filtré, du plus ancien au plus récent',
        content: {
          'text/csv': { schema: { type: 'string' } },
          'application/json': { schema: Type.Array(JournalEntrySchema) },
        },
      },
    },
  },
})

export const verifyJournal = defineOperation({
  method: 'GET',
  url: '/journal/verification',
  operationId: 'verifyJournal',
  tags: ['journal'],
  summary: 'Vérifier l’intégrité de la chaîne du journal',
  access: { roles: ADMINS },
  schema: {
    response: {
      200: Type.Object(
        {
          intact: Type.Boolean(),
          nombre_entrees: Type.Integer({ description: 'Entrées vérifiées avant la première rupture (ou toutes)' }),
          premiere_rupture: Type.Union([
            Type.Object({ id: Type.Integer(), sequence: Type.Integer(), raison: Type.String() }),
            Type.Null(),
          ]),
        },
        { description: 'Résultat de la vérification' },
      ),
    },
  },
})

export const securityOperations = [
  register,
  login,
  refresh,
  logout,
  listSessions,
  revokeSession,
  acceptInvitation,
  me,
  listUsers,
  createUser,
  updateUser,
  listJournal,
  exportJournal,
  verifyJournal,
]
