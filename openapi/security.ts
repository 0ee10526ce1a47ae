import { type Static, Type } from '@sinclair/typebox'
import {
  IdParamsSchema,
  IdSchema,
  LabelSchema,
  PageQuerySchema,
  PageSchema,
  RoleSchema,
  StringEnum,
  TimestampSchema,
} from './common.ts'
import { ADMINS, ALL_ROLES, defineOperation } from './operation.ts'
import { AUTH, PER_LOGIN_EMAIL } from './security-limits.ts'

export const Email = Type.String({ format: 'email', maxLength: 254, description: 'Adresse e-mail (insensible à la casse)' })
/** A password being chosen: the policy's length is checked by the schema, the rest by the server. */
export const NewPassword = Type.String({
  minLength: 12,
  maxLength: 256,
  description: 'Au moins 12 caractères ; ni un mot de passe courant, ni l’adresse e-mail du compte',
})
/** A password already chosen, as typed at sign-in: older rules may have let shorter ones through. */
export const Password = Type.String({ minLength: 1, maxLength: 256, description: 'Le mot de passe du compte' })
/** Stored trimmed: at least one visible character, none that hides or reorders text. */
const Name = LabelSchema(200, 'Nom affiché (espaces de début et de fin retirés)')

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

// Examples, shared by the operations of the security domain and those built on it.
export const EXEMPLE_ORGANISATION_ID = '0b7e4c1a-5d2f-4a8e-9c3b-6f1d2e3a4b5c'
export const EXEMPLE_UTILISATEUR_ID = '3f6c2a9e-8b1d-4c7a-a2e5-9d0f1b3c5e7a'
export const EXEMPLE_UTILISATEUR = {
  id: EXEMPLE_UTILISATEUR_ID,
  organisation_id: EXEMPLE_ORGANISATION_ID,
  email: 'claire.martin@cabinet-dupont.fr',
  nom: 'Claire Martin',
  role: 'admin',
  actif: true,
  created_at: '2026-03-02T09:14:05.123Z',
  updated_at: '2026-03-02T09:14:05.123Z',
} as const
const EXEMPLE_MEMBRE = {
  ...EXEMPLE_UTILISATEUR,
  id: '7a1e5c3b-2d4f-4e6a-8b9c-0d1e2f3a4b5c',
  email: 'julien.petit@cabinet-dupont.fr',
  nom: 'Julien Petit',
  role: 'contributeur',
} as const
const EXEMPLE_ORGANISATION = {
  id: EXEMPLE_ORGANISATION_ID,
  nom: 'Cabinet Dupont',
  mfa_obligatoire: false,
  created_at: '2026-03-02T09:14:05.123Z',
} as const
const EXEMPLE_JETONS = {
  access_token:
    'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIzZjZjMmE5ZS04YjFkLTRjN2EtYTJlNS05ZDBmMWIzYzVlN2EiLCJzaWQiOiI1YzJiOGUxZi02YTNkLTRiOWUtOGM3Zi0xZTJkM2M0YjVhNjkiLCJpYXQiOjE3NzI0NDI4NDV9.2yXyo1J1c9b3QmVdW0oC2bq0oTgS0u5m3b7l9ZrKx0c',
  refresh_token: 'Q2hhbmdlLW1lLWV4ZW1wbGUtb3BhcXVlLXJlZnJlc2g',
  token_type: 'Bearer',
  expires_in: 900,
  mfa_enrolement_requis: false,
} as const
export const EXEMPLE_SESSION_OUVERTE = { ...EXEMPLE_JETONS, utilisateur: EXEMPLE_UTILISATEUR }
/** A sign-in needing a second factor: the same for /auth/login and the SSO return. */
export const EXEMPLE_ETAPE_MFA = {
  mfa_requis: true,
  mfa_token: 'bWZhLXN0ZXAtZXhlbXBsZS1vcGFxdWUtdG9rZW4tMzI',
  methodes: ['totp', 'code_secours'],
  expires_in: 300,
} as const

export const register = defineOperation({
  method: 'POST',
  url: '/auth/register',
  operationId: 'register',
  tags: ['authentification'],
  summary: 'Créer une organisation et son premier administrateur',
  description: 
    'Crée une organisation, son premier compte (administrateur) et ouvre sa session : la réponse porte déjà les ' +
    'jetons. À utiliser une fois, pour démarrer un nouvel espace ; les membres suivants sont invités par POST ' +
    '/users. Un lien de vérification de l’adresse est envoyé par e-mail.',
  access: { public: true },
  rateLimits: [AUTH],
  problems: ['EMAIL_TAKEN', 'WEAK_PASSWORD'],
  schema: {
    body: Type.Object(
      { email: Email, mot_de_passe: NewPassword, nom: Name, organisation: Name },
      { additionalProperties: false },
    ),
    response: {
      201: Type.Object(
        { ...TokenFields, utilisateur: UtilisateurSchema, organisation: OrganisationSchema },
        { description: 'Compte créé et connecté' },
      ),
    },
  },
  request: {
    body: { email: 'claire.martin@cabinet-dupont.fr', mot_de_passe: 'Armoire-de-Claire-2026', nom: 'Claire Martin', organisation: 'Cabinet Dupont' },
  },
  responses: { 201: { example: { ...EXEMPLE_SESSION_OUVERTE, organisation: EXEMPLE_ORGANISATION } } },
})

export const login = defineOperation({
  method: 'POST',
  url: '/auth/login',
  operationId: 'login',
  tags: ['authentification'],
  summary: 'Se connecter',
  description: 
    'Échange une adresse et un mot de passe contre un jeton d’accès (15 minutes) et un jeton de rafraîchissement. ' +
    'Une adresse inconnue et un mauvais mot de passe donnent la même réponse ; les échecs répétés bloquent le ' +
    'compte quelques instants. Si le compte a la double authentification, la réponse est `{mfa_requis: true, ' +
    'mfa_token, methodes}` : terminer avec POST /auth/2fa/challenge.',
  access: { public: true },
  rateLimits: [AUTH, PER_LOGIN_EMAIL],
  problems: ['INVALID_CREDENTIALS', 'ACCOUNT_LOCKED'],
  schema: {
    body: Type.Object({ email: Email, mot_de_passe: Password }, { additionalProperties: false }),
    response: { 200: SignInSchema },
  },
  request: { body: { email: 'claire.martin@cabinet-dupont.fr', mot_de_passe: 'Armoire-de-Claire-2026' } },
  responses: { 200: { description: 'Connecté (les jetons), ou l’étape de double authentification', example: EXEMPLE_SESSION_OUVERTE } },
})

export const refresh = defineOperation({
  method: 'POST',
  url: '/auth/refresh',
  operationId: 'refreshTokens',
  tags: ['authentification'],
  summary: 'Renouveler les jetons (le jeton de rafraîchissement présenté est consommé)',
  description: 
    'Échange le jeton de rafraîchissement contre une nouvelle paire de jetons, quand le jeton d’accès a expiré ' +
    '(401 `TOKEN_INVALID`). Le jeton présenté est consommé : gardez le nouveau. Présenter un jeton déjà consommé ' +
    'révoque toute la session (vol présumé).',
  access: { public: true },
  rateLimits: [AUTH],
  problems: ['REFRESH_TOKEN_INVALID', 'REFRESH_TOKEN_REUSED'],
  schema: {
    body: Type.Object({ refresh_token: Type.String({ minLength: 1, maxLength: 200 }) }, { additionalProperties: false }),
    response: { 200: TokensSchema },
  },
  request: { body: { refresh_token: 'Q2hhbmdlLW1lLWV4ZW1wbGUtb3BhcXVlLXJlZnJlc2g' } },
  responses: { 200: { description: 'Nouveaux jetons', example: EXEMPLE_SESSION_OUVERTE } },
})

export const logout = defineOperation({
  method: 'POST',
  url: '/auth/logout',
  operationId: 'logout',
  tags: ['authentification'],
  summary: 'Révoquer la session courante',
  description: 
    'Révoque la session de ce jeton : le jeton d’accès et le jeton de rafraîchissement cessent de valoir dès la ' +
    'requête suivante. À appeler quand l’utilisateur se déconnecte.',
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
  description: 
    'Liste les sessions ouvertes de l’appelant (appareil, adresse IP, dernière utilisation), pour repérer un ' +
    'appareil inconnu et le révoquer avec DELETE /auth/sessions/{id}.',
  access: { roles: ALL_ROLES },
  rateLimits: [AUTH],
  schema: { response: { 200: Type.Object({ items: Type.Array(SessionSchema) }, { description: 'Sessions actives, les plus récentes d’abord' }) } },
  responses: {
    200: {
      example: {
        items: [
          {
            id: '5c2b8e1f-6a3d-4b9e-8c7f-1e2d3c4b5a69',
            created_at: '2026-03-02T09:14:05.123Z',
            last_used_at: '2026-03-02T11:02:41.870Z',
            expires_at: '2026-04-01T09:14:05.123Z',
            ip: '203.0.113.24',
            user_agent: 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) Firefox/128.0',
            courante: true,
          },
        ],
      },
    },
  },
})

export const revokeSession = defineOperation({
  method: 'DELETE',
  url: '/auth/sessions/:id',
  operationId: 'revokeSession',
  tags: ['authentification'],
  summary: 'Révoquer une de mes sessions',
  description: 
    'Révoque une des sessions de l’appelant (un appareil perdu, un poste partagé) ; elle cesse de valoir dès la ' +
    'requête suivante. La session d’un autre compte répond 404.',
  access: { roles: ALL_ROLES },
  rateLimits: [AUTH],
  schema: { params: IdParamsSchema, response: { 204: Type.Null({ description: 'Session révoquée' }) } },
  request: { params: { id: '5c2b8e1f-6a3d-4b9e-8c7f-1e2d3c4b5a69' } },
})

export const acceptInvitation = defineOperation({
  method: 'POST',
  url: '/auth/invitation/accepter',
  operationId: 'acceptInvitation',
  tags: ['authentification'],
  summary: 'Accepter une invitation en choisissant son mot de passe',
  description: 
    'Termine une invitation reçue par e-mail : le membre choisit son mot de passe et sa session s’ouvre. Le jeton ' +
    'vient du lien de l’invitation ; il ne sert qu’une fois.',
  access: { public: true },
  rateLimits: [AUTH],
  problems: ['INVITATION_INVALID', 'WEAK_PASSWORD'],
  schema: {
    body: Type.Object({ token: Type.String({ minLength: 1, maxLength: 200 }), mot_de_passe: NewPassword }, { additionalProperties: false }),
    response: { 200: TokensSchema },
  },
  request: { body: { token: 'aW52aXRhdGlvbi1leGVtcGxlLW9wYXF1ZS10b2tlbi0zMg', mot_de_passe: 'Julien-rejoint-2026' } },
  responses: { 200: { description: 'Invitation acceptée, session ouverte', example: { ...EXEMPLE_JETONS, utilisateur: EXEMPLE_MEMBRE } } },
})

export const me = defineOperation({
  method: 'GET',
  url: '/me',
  operationId: 'getMe',
  tags: ['utilisateurs'],
  summary: 'Mon compte, mon organisation, mon rôle et ma sécurité',
  description: 
    'Rend le compte de l’appelant, son organisation, son rôle et l’état de sa sécurité (adresse vérifiée, facteurs ' +
    'de double authentification, codes de secours restants). À appeler au démarrage du front pour savoir qui est ' +
    'connecté et ce qu’il peut faire.',
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
  responses: {
    200: {
      example: {
        utilisateur: EXEMPLE_UTILISATEUR,
        organisation: EXEMPLE_ORGANISATION,
        role: 'admin',
        email_verifie: true,
        facteurs_mfa: [{ methode: 'totp', active_depuis: '2026-03-02T09:20:11.000Z' }],
        codes_secours_restants: 10,
        mfa_enrolement_requis: false,
      },
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
  description: 
    'Liste les membres de l’organisation par pages, filtrés par rôle, activation ou recherche dans le nom et ' +
    'l’e-mail. Réservé aux administrateurs, pour gérer les accès.',
  access: { roles: ADMINS },
  schema: { querystring: UsersQuerySchema, response: { 200: PageSchema(UtilisateurSchema, 'PageUtilisateurs') } },
  request: { querystring: { role: 'contributeur', actif: true, limit: 20 } },
  responses: { 200: { description: 'Une page de membres', example: { items: [EXEMPLE_MEMBRE], next_cursor: null } } },
})

export const createUser = defineOperation({
  method: 'POST',
  url: '/users',
  operationId: 'createUser',
  tags: ['utilisateurs'],
  summary: 'Inviter un membre (un e-mail d’invitation lui est envoyé)',
  description: 
    'Crée le compte d’un nouveau membre avec son rôle et lui envoie une invitation par e-mail (valable 7 jours) ; ' +
    'il choisit son mot de passe avec POST /auth/invitation/accepter. Réservé aux administrateurs.',
  access: { roles: ADMINS },
  problems: ['EMAIL_TAKEN', 'QUOTA_EXCEEDED'],
  schema: {
    body: Type.Object({ email: Email, nom: Name, role: RoleSchema }, { additionalProperties: false }),
    response: { 201: Type.Object({ utilisateur: UtilisateurSchema, invitation_expire_at: TimestampSchema }, { description: 'Membre invité' }) },
  },
  request: { body: { email: 'julien.petit@cabinet-dupont.fr', nom: 'Julien Petit', role: 'contributeur' } },
  responses: { 201: { example: { utilisateur: EXEMPLE_MEMBRE, invitation_expire_at: '2026-03-09T10:00:00.000Z' } } },
})

export const updateUser = defineOperation({
  method: 'PUT',
  url: '/users/:id',
  operationId: 'updateUser',
  tags: ['utilisateurs'],
  summary: 'Changer le rôle, le nom ou l’activation d’un membre',
  description: 
    'Change le rôle, le nom ou l’activation d’un membre ; seuls les champs envoyés changent. Désactiver un membre ' +
    'révoque toutes ses sessions ; un changement de rôle vaut dès sa requête suivante. L’organisation garde ' +
    'toujours un administrateur actif.',
  access: { roles: ADMINS },
  problems: ['LAST_ADMIN', 'QUOTA_EXCEEDED'],
  schema: {
    params: IdParamsSchema,
    body: Type.Object(
      { role: Type.Optional(RoleSchema), nom: Type.Optional(Name), actif: Type.Optional(Type.Boolean()) },
      { additionalProperties: false, minProperties: 1 },
    ),
    response: { 200: UtilisateurSchema },
  },
  request: { params: { id: '7a1e5c3b-2d4f-4e6a-8b9c-0d1e2f3a4b5c' }, body: { role: 'lecteur' } },
  responses: { 200: { description: 'Le membre modifié', example: { ...EXEMPLE_MEMBRE, role: 'lecteur', updated_at: '2026-03-05T16:40:00.000Z' } } },
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

const EXEMPLE_ENTREE_JOURNAL = {
  id: 1042,
  sequence: 1042,
  utilisateur_id: EXEMPLE_UTILISATEUR_ID,
  action: 'FILE_UPLOADED',
  cible_type: 'fichier',
  cible_id: '9d4f6b2a-1c3e-4a5b-8d7c-2e1f0a9b8c7d',
  cible_nom: 'ContratRH.pdf',
  resultat: 'succes',
  severite: 'LOW',
  ip: '203.0.113.24',
  user_agent: 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) Firefox/128.0',
  details: { taille: 48213, version_number: 1 },
  created_at: '2026-03-02T10:05:12.402Z',
  message: '[2026-03-02 10:05] – user_id=3f6c2a9e-8b1d-4c7a-a2e5-9d0f1b3c5e7a a ajouté le fichier ID=9d4f6b2a-1c3e-4a5b-8d7c-2e1f0a9b8c7d “ContratRH.pdf”',
} as const

export const listJournal = defineOperation({
  method: 'GET',
  url: '/journal',
  operationId: 'listJournal',
  tags: ['journal'],
  summary: 'Consulter le journal d’activité (le plus récent d’abord)',
  description: 
    'Parcourt le journal d’activité de l’organisation, du plus récent au plus ancien, par pages : connexions, ' +
    'refus d’accès, actions sur les documents. Les filtres se combinent (membre, action, cible, gravité, résultat, ' +
    'période). Réservé aux administrateurs.',
  access: { roles: ADMINS },
  schema: { querystring: JournalQuerySchema, response: { 200: PageSchema(JournalEntrySchema, 'PageJournal') } },
  request: { querystring: { action: 'FILE_UPLOADED', depuis: '2026-03-01T00:00:00Z', limit: 50 } },
  responses: { 200: { description: 'Une page d’entrées', example: { items: [EXEMPLE_ENTREE_JOURNAL], next_cursor: 'MTA0Mg' } } },
})

export const exportJournal = defineOperation({
  method: 'GET',
  url: '/journal/export',
  operationId: 'exportJournal',
  tags: ['journal'],
  summary: 'Exporter le journal filtré (CSV ou JSON, en flux)',
  description: 
    'Exporte en un seul téléchargement, en CSV ou en JSON, les entrées qui passent les mêmes filtres que GET ' +
    '/journal, du plus ancien au plus récent, pour un audit ou un tableur. L’export lui-même est inscrit au ' +
    'journal.',
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
  request: { querystring: { format: 'csv', depuis: '2026-03-01T00:00:00Z', jusqua: '2026-04-01T00:00:00Z' } },
  responses: { 200: { example: [EXEMPLE_ENTREE_JOURNAL] } },
})

export const CheckpointSchema = Type.Object(
  {
    sequence: Type.Integer({ description: 'Séquence de la dernière entrée couverte' }),
    hash: Type.String({ description: 'Empreinte (hexadécimale) de cette entrée' }),
    cle_id: Type.String({ description: 'Clé de signature' }),
    signature: Type.String({ description: 'HMAC-SHA256 (hexadécimal) de la forme RFC 8785 de {v, organisation_id, sequence, hash, created_at}' }),
    created_at: TimestampSchema,
  },
  { $id: 'PointControle' },
)

const EXEMPLE_POINT_CONTROLE = {
  sequence: 1042,
  hash: '9f2c6d1e7a4b3c5d8e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7',
  cle_id: 'points-controle-1',
  signature: '4a1d0c9b8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b',
  created_at: '2026-03-02T10:20:00.000Z',
}

export const verifyJournal = defineOperation({
  method: 'GET',
  url: '/journal/verification',
  operationId: 'verifyJournal',
  tags: ['journal'],
  summary: 'Vérifier l’intégrité de la chaîne du journal',
  description: 
    'Recalcule la chaîne d’empreintes du journal, de la première entrée à la dernière, et dit si elle est intacte ' +
    'ou où elle est rompue (entrée modifiée ou supprimée). À lancer lors d’un audit ou après un incident.',
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
          point_controle: Type.Union([CheckpointSchema, Type.Null()], { description: 'Le point de contrôle signé le plus récent, contre lequel la chaîne est vérifiée' }),
        },
        { description: 'Résultat de la vérification' },
      ),
    },
  },
  responses: { 200: { example: { intact: true, nombre_entrees: 1042, premiere_rupture: null, point_controle: EXEMPLE_POINT_CONTROLE } } },
})

export const createJournalCheckpoint = defineOperation({
  method: 'POST',
  url: '/journal/points-controle',
  operationId: 'createJournalCheckpoint',
  tags: ['journal'],
  summary: 'Signer maintenant la fin de la chaîne du journal',
  description:
    'Signe (HMAC-SHA256, sous une clé que seule la clé maître ouvre) la séquence et l’empreinte de la dernière entrée du ' +
    'journal, avec l’heure. Un point de contrôle est aussi créé toutes les dix minutes ; la vérification confronte la chaîne ' +
    'au plus récent, si bien qu’une suppression des dernières entrées ou un recalcul de la chaîne se voient.',
  access: { roles: ADMINS },
  schema: { response: { 201: CheckpointSchema } },
  responses: { 201: { description: 'Le point de contrôle (le précédent si la chaîne n’a pas bougé)', example: EXEMPLE_POINT_CONTROLE } },
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
  createJournalCheckpoint,
]
