import { type Static, Type } from '@sinclair/typebox'
import { IdParamsSchema, IdSchema, Nullable, PageQuerySchema, PageSchema, StringEnum, TimestampSchema } from './common.ts'
import { ADMINS, ALL_ROLES, defineOperation, WRITERS } from './operation.ts'

export const BACKUP_TYPES = ['fichier', 'dossier', 'casier', 'armoire', 'systeme'] as const
export const JOB_STATUSES = ['en_attente', 'en_cours', 'terminee', 'echec'] as const

const BackupTypeSchema = StringEnum(BACKUP_TYPES, { description: 'Ce qui est sauvegardé ; `systeme` = toute l’organisation' })
const StatusSchema = StringEnum(JOB_STATUSES, { description: 'État du travail en arrière-plan' })
const VersionsSchema = StringEnum(['derniere', 'toutes'], {
  default: 'derniere',
  description: '`derniere` : la version courante de chaque fichier ; `toutes` : chaque version, sous `.versions/`',
})

const zip = (description: string) => ({
  description,
  content: { 'application/zip': { schema: { type: 'string', format: 'binary' } } },
})

const Count = (description: string) => Type.Optional(Type.Integer({ minimum: 0, description }))

/** The brief's summary of what a backup holds, with the counts of each kind of element. */
export const ContenuSchema = Type.Object(
  {
    nom: Type.String({ description: 'Nom de l’élément sauvegardé, ou « Sauvegarde système »' }),
    type: Type.String({ description: 'Type MIME d’un fichier ; `dossier`, `casier`, `armoire` ou `systeme` sinon' }),
    type_mime: Type.Optional(Type.String()),
    taille: Count('Taille en clair d’un fichier sauvegardé'),
    nombre_elements: Count('Éléments directement contenus par le conteneur sauvegardé'),
    version_number: Type.Integer({ minimum: 1, description: 'Rang de cette sauvegarde parmi celles de la même cible (1, 2, 3…)' }),
    created_by: Nullable(IdSchema),
    created_at: TimestampSchema,
    nombre_armoires: Count('Armoires dans l’archive'),
    nombre_casiers: Count('Casiers dans l’archive'),
    nombre_dossiers: Count('Dossiers dans l’archive'),
    nombre_fichiers: Count('Fichiers dans l’archive'),
    nombre_versions: Count('Versions de fichiers dans l’archive'),
    octets_en_clair: Count('Total des contenus sauvegardés, en clair'),
    origine: Type.Optional(
      Type.Object(
        {
          organisation_id: IdSchema,
          sauvegarde_id: IdSchema,
          created_at: TimestampSchema,
        },
        { description: 'Pour une archive importée : l’organisation et la sauvegarde d’où elle vient' },
      ),
    ),
  },
  { $id: 'ContenuSauvegarde' },
)

const ProgressionSchema = Type.Object({
  entrees_faites: Type.Integer({ minimum: 0 }),
  entrees_total: Type.Integer({ minimum: 0 }),
  octets_faits: Type.Integer({ minimum: 0 }),
  octets_total: Type.Integer({ minimum: 0 }),
})

const JobErrorSchema = Type.Object({
  code: Type.String({ description: 'Code de problème stable, ex. QUOTA_EXCEEDED, BACKUP_INTERRUPTED' }),
  detail: Type.String(),
})

export const VerificationSchema = Type.Object(
  {
    valide: Type.Boolean(),
    verifiee_le: TimestampSchema,
    entrees: Type.Integer({ minimum: 0, description: 'Entrées de l’archive contrôlées (CRC-32)' }),
    fichiers: Type.Integer({ minimum: 0, description: 'Versions dont le SHA-256 correspond au manifeste' }),
    erreurs: Type.Array(Type.String(), { description: 'Ce qui ne correspond pas ; vide si l’archive est intacte' }),
  },
  { $id: 'VerificationSauvegarde' },
)
export type VerificationDto = Static<typeof VerificationSchema>

export const SauvegardeSchema = Type.Object(
  {
    id: IdSchema,
    type: BackupTypeSchema,
    cible_id: Nullable(IdSchema),
    declencheur: StringEnum(['manuel', 'planifie', 'import']),
    statut: StatusSchema,
    versions: VersionsSchema,
    contenu: Nullable(ContenuSchema),
    taille: Nullable(Type.Integer({ minimum: 0, description: 'Taille de l’archive ZIP, en octets' })),
    sha256: Nullable(Type.String({ description: 'SHA-256 de l’archive ZIP (en clair)' })),
    progression: ProgressionSchema,
    erreur: Nullable(JobErrorSchema),
    verifiee_le: Nullable(TimestampSchema),
    verification: Nullable(VerificationSchema),
    planification_id: Nullable(IdSchema),
    created_by: Nullable(IdSchema),
    created_at: TimestampSchema,
    demarree_le: Nullable(TimestampSchema),
    terminee_le: Nullable(TimestampSchema),
  },
  {
    $id: 'Sauvegarde',
    description:
      'Une archive ZIP chiffrée (AES-256-GCM par segments, sa propre clé) : les fichiers sous leurs chemins de ' +
      'l’arborescence, et `manifest.json` qui décrit chaque conteneur et chaque version avec son SHA-256.',
  },
)
export type SauvegardeDto = Static<typeof SauvegardeSchema>

const ReportItemSchema = Type.Object({
  type: StringEnum(['armoire', 'casier', 'dossier', 'fichier']),
  source_id: IdSchema,
  id: Nullable(IdSchema),
  chemin: Type.String({ description: 'Chemin de l’élément dans l’archive' }),
  action: StringEnum(['cree', 'nouvelle_version', 'identique', 'existant', 'restaure_corbeille', 'echec']),
  nom: Type.Optional(Type.String({ description: 'Nom donné, quand celui d’origine était pris' })),
  version_number: Type.Optional(Type.Integer()),
  code: Type.Optional(Type.String()),
  detail: Type.Optional(Type.String()),
})

export const RapportSchema = Type.Object(
  {
    crees: Type.Integer({ minimum: 0 }),
    nouvelles_versions: Type.Integer({ minimum: 0 }),
    identiques: Type.Integer({ minimum: 0 }),
    restaures_corbeille: Type.Integer({ minimum: 0 }),
    renommes: Type.Integer({ minimum: 0 }),
    echecs: Type.Integer({ minimum: 0 }),
    elements: Type.Array(ReportItemSchema),
  },
  { $id: 'RapportRestauration' },
)
export type RapportDto = Static<typeof RapportSchema>

export const RestaurationSchema = Type.Object(
  {
    id: IdSchema,
    sauvegarde_id: IdSchema,
    cible_type: Nullable(StringEnum(['armoire', 'casier', 'dossier'])),
    cible_id: Nullable(IdSchema),
    elements: Nullable(Type.Array(Type.String())),
    simulation: Type.Boolean(),
    statut: StatusSchema,
    rapport: Nullable(RapportSchema),
    erreur: Nullable(JobErrorSchema),
    created_by: Nullable(IdSchema),
    created_at: TimestampSchema,
    demarree_le: Nullable(TimestampSchema),
    terminee_le: Nullable(TimestampSchema),
  },
  { $id: 'Restauration' },
)
export type RestaurationDto = Static<typeof RestaurationSchema>

const CreateBody = Type.Object(
  {
    type: BackupTypeSchema,
    cible_id: Type.Optional(IdSchema),
    versions: Type.Optional(VersionsSchema),
  },
  { additionalProperties: false },
)

const ListQuery = Type.Composite([
  PageQuerySchema,
  Type.Object({
    type: Type.Optional(BackupTypeSchema),
    statut: Type.Optional(StatusSchema),
    cible_id: Type.Optional(IdSchema),
    depuis: Type.Optional(Type.String({ format: 'date-time', description: 'Créées à partir de cet instant' })),
    jusqu_a: Type.Optional(Type.String({ format: 'date-time', description: 'Créées avant cet instant' })),
  }),
])

const RestoreBody = Type.Object(
  {
    cible_id: Type.Optional(
      Type.String({
        format: 'uuid',
        description:
          'Conteneur qui reçoit la restauration : du même type que l’élément sauvegardé (son contenu y est fusionné) ' +
          'ou du type de son parent (l’élément y est recréé). Par défaut, l’emplacement d’origine.',
      }),
    ),
    elements: Type.Optional(
      Type.Array(Type.String({ minLength: 1, maxLength: 4096 }), {
        minItems: 1,
        maxItems: 1000,
        description: 'Limite la restauration à ces éléments du manifeste (identifiants ou chemins), avec leur contenu',
      }),
    ),
    simulation: Type.Optional(Type.Boolean({ default: false, description: 'Répond le plan sans rien changer' })),
  },
  { additionalProperties: false },
)

// Examples
const EXEMPLE_SAUVEGARDE_ID = '5a6b7c8d-9e0f-4a1b-8c2d-3e4f5a6b7c8d'
const EXEMPLE_SAUVEGARDE: SauvegardeDto = {
  id: EXEMPLE_SAUVEGARDE_ID,
  type: 'armoire',
  cible_id: '1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d',
  declencheur: 'manuel',
  statut: 'terminee',
  versions: 'derniere',
  contenu: {
    nom: 'Ressources humaines',
    type: 'armoire',
    nombre_elements: 2,
    version_number: 3,
    created_by: '3f6c2a9e-8b1d-4c7a-a2e5-9d0f1b3c5e7a',
    created_at: '2026-03-06T02:00:00.000Z',
    nombre_armoires: 1,
    nombre_casiers: 2,
    nombre_dossiers: 7,
    nombre_fichiers: 41,
    nombre_versions: 41,
    octets_en_clair: 18734112,
  },
  taille: 15022480,
  sha256: '9f8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a39281706f5e4d3c2b1a0',
  progression: { entrees_faites: 51, entrees_total: 51, octets_faits: 18734112, octets_total: 18734112 },
  erreur: null,
  verifiee_le: null,
  verification: null,
  planification_id: null,
  created_by: '3f6c2a9e-8b1d-4c7a-a2e5-9d0f1b3c5e7a',
  created_at: '2026-03-06T02:00:00.000Z',
  demarree_le: '2026-03-06T02:00:01.204Z',
  terminee_le: '2026-03-06T02:00:09.871Z',
}
const EN_ATTENTE: SauvegardeDto = {
  ...EXEMPLE_SAUVEGARDE,
  statut: 'en_attente',
  contenu: null,
  taille: null,
  sha256: null,
  progression: { entrees_faites: 0, entrees_total: 0, octets_faits: 0, octets_total: 0 },
  demarree_le: null,
  terminee_le: null,
}

const EXEMPLE_RESTAURATION: RestaurationDto = {
  id: '6b7c8d9e-0f1a-4b2c-9d3e-4f5a6b7c8d9e',
  sauvegarde_id: EXEMPLE_SAUVEGARDE_ID,
  cible_type: 'armoire',
  cible_id: '2b3c4d5e-6f7a-4b8c-9d0e-1f2a3b4c5d6e',
  elements: null,
  simulation: false,
  statut: 'terminee',
  rapport: {
    crees: 1,
    nouvelles_versions: 1,
    identiques: 1,
    restaures_corbeille: 0,
    renommes: 1,
    echecs: 0,
    elements: [
      { type: 'casier', source_id: '7c8d9e0f-1a2b-4c3d-8e4f-5a6b7c8d9e0f', id: '8d9e0f1a-2b3c-4d4e-9f5a-6b7c8d9e0f1a', chemin: 'RH/Contrats', action: 'cree', nom: 'Contrats (2)' },
      { type: 'fichier', source_id: '9e0f1a2b-3c4d-4e5f-8a6b-7c8d9e0f1a2b', id: '9e0f1a2b-3c4d-4e5f-8a6b-7c8d9e0f1a2b', chemin: 'RH/Contrats/2026/ContratRH.pdf', action: 'nouvelle_version', version_number: 4 },
      { type: 'fichier', source_id: '0f1a2b3c-4d5e-4f6a-9b7c-8d9e0f1a2b3c', id: '0f1a2b3c-4d5e-4f6a-9b7c-8d9e0f1a2b3c', chemin: 'RH/Contrats/2026/Avenant.pdf', action: 'identique' },
    ],
  },
  erreur: null,
  created_by: '3f6c2a9e-8b1d-4c7a-a2e5-9d0f1b3c5e7a',
  created_at: '2026-03-07T09:12:00.000Z',
  demarree_le: '2026-03-07T09:12:00.412Z',
  terminee_le: '2026-03-07T09:12:03.019Z',
}
const RESTAURATION_EN_ATTENTE: RestaurationDto = { ...EXEMPLE_RESTAURATION, statut: 'en_attente', rapport: null, demarree_le: null, terminee_le: null }

export const createSauvegarde = defineOperation({
  method: 'POST',
  url: '/sauvegardes',
  operationId: 'createSauvegarde',
  tags: ['sauvegardes'],
  summary: 'Déclencher une sauvegarde',
  description: 
    'Déclenche la sauvegarde d’un fichier, d’un dossier, d’un casier, d’une armoire ou de toute l’organisation ' +
    '(`systeme`). Répond 202 avec la sauvegarde `en_attente` ; un travail en arrière-plan construit l’archive ' +
    '(suivre `statut` et `progression` avec GET /sauvegardes/{id}), puis elle se télécharge avec GET ' +
    '/sauvegardes/{id}/archive. Une archive qui dépasserait le quota de stockage est refusée (409 `QUOTA_EXCEEDED`).',
  access: { roles: WRITERS },
  problems: ['NOT_FOUND', 'QUOTA_EXCEEDED', 'INVALID_TARGET'],
  schema: { body: CreateBody, response: { 202: SauvegardeSchema } },
  request: { body: { type: 'armoire', cible_id: '1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d', versions: 'derniere' } },
  responses: { 202: { description: 'Sauvegarde acceptée, construite en arrière-plan', example: EN_ATTENTE } },
})

export const importSauvegarde = defineOperation({
  method: 'POST',
  url: '/sauvegardes/import',
  operationId: 'importSauvegarde',
  tags: ['sauvegardes'],
  summary: 'Importer une archive de sauvegarde (reprise après sinistre)',
  description:
    'Importe une archive ZIP produite par Armoire (GET /sauvegardes/{id}/archive, de cette instance ou d’une autre) : ' +
    'un formulaire `multipart/form-data` dont la partie `archive` porte le ZIP. L’archive est chiffrée sous sa ' +
    'propre clé pendant qu’elle arrive, jamais entièrement en mémoire ; puis son répertoire central est contrôlé ' +
    '(nombre d’entrées, tailles déclarées, taux de compression, entrées qui se chevauchent ou sortent de ' +
    'l’arborescence), son manifeste lu et vérifié, et chaque entrée contrôlée comme par POST /sauvegardes/{id}/verifier ' +
    '(CRC-32, SHA-256 contre le manifeste). Elle devient alors une sauvegarde `terminee`, `declencheur: import`, ' +
    'vérifiée, que POST /sauvegardes/{id}/restaurer restaure. Une archive refusée ne laisse rien (ni sauvegarde, ni ' +
    'clé, ni fichier) ; le refus est journalisé.',
  access: { roles: ADMINS },
  problems: ['ARCHIVE_INVALID', 'BACKUP_TAMPERED', 'QUOTA_EXCEEDED'],
  schema: {
    consumes: ['multipart/form-data'],
    body: Type.Object(
      { archive: Type.String({ format: 'binary', description: 'L’archive ZIP téléchargée d’une sauvegarde Armoire' }) },
      { description: 'Formulaire multipart : une seule partie fichier, `archive`' },
    ),
    response: { 201: SauvegardeSchema },
  },
  request: { body: { archive: 'sauvegarde-armoire-20260306-020000.zip' } },
  responses: {
    201: {
      description: 'Archive importée et vérifiée : une sauvegarde prête à restaurer',
      example: { ...EXEMPLE_SAUVEGARDE, declencheur: 'import', verifiee_le: '2026-03-08T10:00:03.000Z', verification: { valide: true, verifiee_le: '2026-03-08T10:00:03.000Z', entrees: 42, fichiers: 41, erreurs: [] } },
    },
  },
})

export const listSauvegardes = defineOperation({
  method: 'GET',
  url: '/sauvegardes',
  operationId: 'listSauvegardes',
  tags: ['sauvegardes'],
  summary: 'Lister les sauvegardes de l’organisation, les plus récentes d’abord',
  description: 
    'Liste les sauvegardes de l’organisation par pages, les plus récentes d’abord, filtrées par type, statut, ' +
    'cible ou période ; pour retrouver l’archive à télécharger ou à restaurer.',
  access: { roles: ALL_ROLES },
  schema: { querystring: ListQuery, response: { 200: PageSchema(SauvegardeSchema, 'PageSauvegardes') } },
  request: { querystring: { statut: 'terminee', limit: 20 } },
  responses: { 200: { description: 'Une page de sauvegardes', example: { items: [EXEMPLE_SAUVEGARDE], next_cursor: null } } },
})

export const getSauvegarde = defineOperation({
  method: 'GET',
  url: '/sauvegardes/:id',
  operationId: 'getSauvegarde',
  tags: ['sauvegardes'],
  summary: 'Lire une sauvegarde et sa progression',
  description: 
    'Rend une sauvegarde : son statut et sa progression pendant la construction, puis son contenu, sa taille, son ' +
    'empreinte et sa dernière vérification. À interroger après POST /sauvegardes jusqu’au statut `terminee` ou ' +
    '`echec`.',
  access: { roles: ALL_ROLES },
  schema: { params: IdParamsSchema, response: { 200: SauvegardeSchema } },
  request: { params: { id: EXEMPLE_SAUVEGARDE_ID } },
  responses: { 200: { description: 'La sauvegarde', example: EXEMPLE_SAUVEGARDE } },
})

export const downloadSauvegarde = defineOperation({
  method: 'GET',
  url: '/sauvegardes/:id/archive',
  operationId: 'downloadSauvegarde',
  tags: ['sauvegardes'],
  summary: 'Télécharger l’archive ZIP d’une sauvegarde',
  description: 
    'Télécharge l’archive ZIP d’une sauvegarde terminée, déchiffrée au fil de l’envoi ; `Range` (reprendre un ' +
    'téléchargement) et `If-None-Match` (ETag = SHA-256 de l’archive) sont pris en charge. Réservé aux ' +
    'administrateurs.',
  access: { roles: ADMINS },
  problems: ['BACKUP_NOT_READY', 'RANGE_NOT_SATISFIABLE', 'INTEGRITY_ERROR'],
  schema: {
    params: IdParamsSchema,
    headers: Type.Object({
      range: Type.Optional(Type.String({ description: 'Une seule plage : `bytes=début-fin`, `bytes=début-` ou `bytes=-longueur`' })),
      'if-none-match': Type.Optional(Type.String({ description: 'ETag déjà détenu : 304 s’il est toujours celui de l’archive' })),
    }),
    response: {
      200: zip('L’archive ZIP entière'),
      206: zip('La plage demandée (`Content-Range`)'),
      304: Type.Null({ description: 'Non modifiée : l’ETag présenté est celui de l’archive' }),
    },
  },
  request: { params: { id: EXEMPLE_SAUVEGARDE_ID } },
})

export const verifySauvegarde = defineOperation({
  method: 'POST',
  url: '/sauvegardes/:id/verifier',
  operationId: 'verifySauvegarde',
  tags: ['sauvegardes'],
  summary: 'Vérifier l’intégrité d’une sauvegarde',
  description:
    'Relit l’archive stockée à travers le déchiffrement : son SHA-256, le CRC-32 de chaque entrée et le SHA-256 de ' +
    'chaque fichier contre le manifeste. Le résultat est enregistré (`verifiee_le`, `verification`) et journalisé.',
  access: { roles: ADMINS },
  problems: ['BACKUP_NOT_READY', 'INTEGRITY_ERROR'],
  schema: { params: IdParamsSchema, response: { 200: VerificationSchema } },
  request: { params: { id: EXEMPLE_SAUVEGARDE_ID } },
  responses: {
    200: {
      description: 'Résultat de la vérification',
      example: { valide: true, verifiee_le: '2026-03-06T08:00:00.000Z', entrees: 51, fichiers: 41, erreurs: [] },
    },
  },
})

export const deleteSauvegarde = defineOperation({
  method: 'DELETE',
  url: '/sauvegardes/:id',
  operationId: 'deleteSauvegarde',
  tags: ['sauvegardes'],
  summary: 'Détruire une sauvegarde',
  description: 
    'Détruit une sauvegarde dont on n’a plus besoin : la clé de données de l’archive est détruite ' +
    '(crypto-effacement), puis l’archive ; c’est journalisé. Refusé pendant la construction.',
  access: { roles: ADMINS },
  problems: ['BACKUP_RUNNING', 'LEGAL_HOLD'],
  schema: { params: IdParamsSchema, response: { 204: Type.Null({ description: 'Détruite' }) } },
  request: { params: { id: EXEMPLE_SAUVEGARDE_ID } },
})

export const restoreSauvegarde = defineOperation({
  method: 'POST',
  url: '/sauvegardes/:id/restaurer',
  operationId: 'restoreSauvegarde',
  tags: ['sauvegardes'],
  summary: 'Restaurer une sauvegarde (sans jamais écraser)',
  description:
    'Restaure une sauvegarde à son emplacement d’origine (par défaut) ou dans un autre conteneur. Un fichier existant au contenu différent reçoit une nouvelle version ; un contenu identique (même SHA-256) est ' +
    'ignoré ; ce qui manque est recréé, ce qui est à la corbeille en revient. Un nom pris reçoit un nom unique. ' +
    'Répond 202 (travail en arrière-plan), ou 200 avec le plan quand `simulation` est vrai.',
  access: { roles: ADMINS },
  problems: ['BACKUP_NOT_READY', 'BACKUP_TAMPERED', 'INVALID_TARGET'],
  schema: { params: IdParamsSchema, body: RestoreBody, response: { 200: RestaurationSchema, 202: RestaurationSchema } },
  request: { params: { id: EXEMPLE_SAUVEGARDE_ID }, body: { cible_id: '2b3c4d5e-6f7a-4b8c-9d0e-1f2a3b4c5d6e', simulation: true } },
  responses: {
    200: { description: 'Simulation : le plan, sans rien changer', example: { ...EXEMPLE_RESTAURATION, simulation: true } },
    202: { description: 'Restauration acceptée, menée en arrière-plan', example: RESTAURATION_EN_ATTENTE },
  },
})

export const listRestaurations = defineOperation({
  method: 'GET',
  url: '/restaurations',
  operationId: 'listRestaurations',
  tags: ['sauvegardes'],
  summary: 'Lister les restaurations, les plus récentes d’abord',
  description: 'Liste les restaurations de l’organisation par pages, les plus récentes d’abord, éventuellement celles d’une sauvegarde.',
  access: { roles: ADMINS },
  schema: {
    querystring: Type.Composite([PageQuerySchema, Type.Object({ sauvegarde_id: Type.Optional(IdSchema) })]),
    response: { 200: PageSchema(RestaurationSchema, 'PageRestaurations') },
  },
  request: { querystring: { sauvegarde_id: EXEMPLE_SAUVEGARDE_ID, limit: 20 } },
  responses: { 200: { description: 'Une page de restaurations', example: { items: [EXEMPLE_RESTAURATION], next_cursor: null } } },
})

export const getRestauration = defineOperation({
  method: 'GET',
  url: '/restaurations/:id',
  operationId: 'getRestauration',
  tags: ['sauvegardes'],
  summary: 'Lire une restauration et son rapport',
  description:
    'Rend une restauration : son statut pendant le travail, puis son rapport (créés, nouvelles versions, identiques, ' +
    'revenus de la corbeille, renommés, échecs, avec identifiants et chemins). À interroger après POST …/restaurer.',
  access: { roles: ADMINS },
  schema: { params: IdParamsSchema, response: { 200: RestaurationSchema } },
  request: { params: { id: EXEMPLE_RESTAURATION.id } },
  responses: { 200: { description: 'La restauration', example: EXEMPLE_RESTAURATION } },
})

export const backupOperations = [
  createSauvegarde,
  importSauvegarde,
  listSauvegardes,
  getSauvegarde,
  downloadSauvegarde,
  verifySauvegarde,
  deleteSauvegarde,
  restoreSauvegarde,
  listRestaurations,
  getRestauration,
]
