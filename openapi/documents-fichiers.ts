import { type Static, type TProperties, Type } from '@sinclair/typebox'
import {
  IdParamsSchema,
  IdSchema,
  IntegerSchema,
  Nullable,
  PageQuerySchema,
  PageSchema,
  ProblemSchema,
  Ref,
  Sha256Schema,
  SortOrderSchema,
  StringEnum,
  TimestampSchema,
} from './common.ts'
import { EXEMPLE_DOSSIER_ID, NomSchema } from './documents.ts'
import { ALL_ROLES, defineOperation, WRITERS } from './operation.ts'

export const FichierSchema = Type.Object(
  {
    id: IdSchema,
    dossier_id: IdSchema,
    nom: Type.String(),
    type_mime: Type.String(),
    taille: Type.Integer({ description: 'Taille de la version courante, en octets' }),
    sha256: Type.String({ description: 'SHA-256 de la version courante (aussi son ETag)' }),
    version_courante: Type.Integer({ description: 'Numéro de la version courante' }),
    nombre_versions: Type.Integer(),
    created_by: Nullable(IdSchema),
    created_at: TimestampSchema,
    updated_at: TimestampSchema,
  },
  { $id: 'Fichier' },
)
export type FichierDto = Static<typeof FichierSchema>

export const VersionSchema = Type.Object(
  {
    id: IdSchema,
    fichier_id: IdSchema,
    version_number: Type.Integer({ minimum: 1 }),
    nom: Type.String({ description: 'Nom du fichier lors de l’enregistrement de cette version' }),
    type_mime: Type.String(),
    taille: Type.Integer({ description: 'Octets en clair' }),
    sha256: Type.String(),
    courante: Type.Boolean(),
    restauree_depuis: Nullable(Type.Integer({ description: 'Version dont le contenu a été restauré' })),
    restauree_de_sauvegarde: Nullable(Type.String({ format: 'uuid', description: 'Sauvegarde d’où ce contenu a été restauré' })),
    created_by: Nullable(IdSchema),
    created_at: TimestampSchema,
  },
  { $id: 'VersionFichier' },
)
export type VersionDto = Static<typeof VersionSchema>

export const ReceiptSchema = Type.Object(
  {
    fichier: FichierSchema,
    version: VersionSchema,
    sha256: Type.String(),
    taille: Type.Integer(),
    stocke_le: Type.String({ format: 'date-time', description: 'Moment où le contenu chiffré est devenu durable' }),
    suppression_locale: Type.Optional(
      Type.Object(
        { autorisee: Type.Literal(true), sha256: Type.String() },
        {
          description:
            'Présent avec `delete_after_upload=true`, après l’enregistrement durable : le client peut effacer sa copie ' +
            'locale si elle a cette empreinte, puis le signaler (POST …/suppression-locale).',
        },
      ),
    ),
  },
  { $id: 'RecuDepot', description: 'Reçu de dépôt' },
)
export type ReceiptDto = Static<typeof ReceiptSchema>

const FileSortSchema = StringEnum(['nom', 'created_at', 'updated_at', 'taille'], {
  default: 'nom',
  description: 'Clé de tri ; le nom est trié sans distinction de casse',
})
export const FileListQuerySchema = Type.Composite([PageQuerySchema, Type.Object({ tri: FileSortSchema, ordre: SortOrderSchema })])
export type FileListQuery = Static<typeof FileListQuerySchema>

export const VersionParamsSchema = Type.Object({ id: IdSchema, n: IntegerSchema({ minimum: 1, description: 'Numéro de version' }) })

const ChecksumHeaders = Type.Object({
  'x-checksum-sha256': Type.Optional(
    Type.String({ pattern: '^[0-9a-fA-F]{64}$', description: 'SHA-256 attendu du contenu ; le dépôt est refusé s’il diffère' }),
  ),
})

export const UploadQuerySchema = Type.Object({
  delete_after_upload: Type.Boolean({
    default: false,
    description: 'Le client effacera sa copie locale : le reçu l’y autorise une fois le contenu durablement enregistré',
  }),
})

/**
 * Documentation only: the parts are read as a stream by the handler, so the documents plugin
 * keeps Fastify from validating a multipart body (see plugins/documents/index.ts).
 */
function uploadBody<P extends TProperties>(fields: P) {
  return Type.Object(
    {
      fichier: Type.String({ format: 'binary', description: 'Le contenu ; son nom de fichier devient le nom du document' }),
      ...fields,
      sha256: Type.Optional(Sha256Schema),
      delete_after_upload: Type.Optional(Type.Boolean({ description: 'Comme le paramètre de même nom' })),
    },
    { description: 'Formulaire multipart ; les champs texte peuvent précéder ou suivre la partie `fichier`' },
  )
}


const binary = (description: string) => ({
  description,
  content: { '*/*': { schema: Type.String({ format: 'binary' }) } },
})

// Examples
const AUTEUR = '3f6c2a9e-8b1d-4c7a-a2e5-9d0f1b3c5e7a'
export const EXEMPLE_FICHIER_ID = '9d4f6b2a-1c3e-4a5b-8d7c-2e1f0a9b8c7d'
const SHA256 = '5f2b1c0d9e8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c'
const SHA256_V2 = '0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c3b2a1f0e9d'
export const EXEMPLE_FICHIER = {
  id: EXEMPLE_FICHIER_ID,
  dossier_id: EXEMPLE_DOSSIER_ID,
  nom: 'ContratRH.pdf',
  type_mime: 'application/pdf',
  taille: 48213,
  sha256: SHA256,
  version_courante: 1,
  nombre_versions: 1,
  created_by: AUTEUR,
  created_at: '2026-03-02T10:05:12.402Z',
  updated_at: '2026-03-02T10:05:12.402Z',
}
const EXEMPLE_VERSION = {
  id: '6e7f8a9b-0c1d-4e2f-8a3b-4c5d6e7f8a9b',
  fichier_id: EXEMPLE_FICHIER_ID,
  version_number: 1,
  nom: 'ContratRH.pdf',
  type_mime: 'application/pdf',
  taille: 48213,
  sha256: SHA256,
  courante: true,
  restauree_depuis: null,
  restauree_de_sauvegarde: null,
  created_by: AUTEUR,
  created_at: '2026-03-02T10:05:12.402Z',
}
const EXEMPLE_VERSION_2 = {
  ...EXEMPLE_VERSION,
  id: '7f8a9b0c-1d2e-4f3a-9b4c-5d6e7f8a9b0c',
  version_number: 2,
  taille: 51002,
  sha256: SHA256_V2,
  created_at: '2026-03-04T15:20:00.000Z',
}
const EXEMPLE_RECU = {
  fichier: EXEMPLE_FICHIER,
  version: EXEMPLE_VERSION,
  sha256: SHA256,
  taille: 48213,
  stocke_le: '2026-03-02T10:05:12.398Z',
}
const EXEMPLE_RECU_V2 = {
  fichier: { ...EXEMPLE_FICHIER, taille: 51002, sha256: SHA256_V2, version_courante: 2, nombre_versions: 2, updated_at: '2026-03-04T15:20:00.000Z' },
  version: EXEMPLE_VERSION_2,
  sha256: SHA256_V2,
  taille: 51002,
  stocke_le: '2026-03-04T15:20:00.000Z',
}
const FICHIER_PART = '(le contenu du fichier, partie « fichier » du formulaire)'

export const uploadFichier = defineOperation({
  method: 'POST',
  url: '/dossiers/:id/fichiers',
  operationId: 'uploadFichier',
  tags: ['fichiers'],
  summary: 'Déposer un fichier dans un dossier',
  description: 
    'Dépose un nouveau fichier dans un dossier : un formulaire `multipart/form-data` dont la partie `fichier` ' +
    'porte le contenu. Le contenu est haché (SHA-256) et chiffré pendant qu’il arrive, jamais conservé en clair ni ' +
    'entièrement en mémoire. Rien n’est conservé si le client interrompt l’envoi, si la taille maximale ou le ' +
    'quota est dépassé, ou si l’empreinte attendue (`X-Checksum-SHA256` ou champ `sha256`) diffère. Le nom est ' +
    'celui du champ `nom`, sinon le nom de fichier de la partie `fichier`. Pour remplacer le contenu d’un fichier ' +
    'existant, déposer une version (POST /fichiers/{id}/version).',
  access: { roles: WRITERS },
  problems: ['NAME_CONFLICT', 'QUOTA_EXCEEDED', 'CHECKSUM_MISMATCH', 'LOCKED', 'KMS_UNAVAILABLE', 'STORAGE_FULL', 'STORAGE_UNAVAILABLE'],
  schema: {
    params: IdParamsSchema,
    querystring: UploadQuerySchema,
    headers: ChecksumHeaders,
    consumes: ['multipart/form-data'],
    body: uploadBody({ nom: Type.Optional(NomSchema) }),
    response: { 201: ReceiptSchema },
  },
  request: {
    params: { id: EXEMPLE_DOSSIER_ID },
    body: { fichier: FICHIER_PART, nom: 'ContratRH.pdf', sha256: SHA256 },
  },
  responses: { 201: { description: 'Fichier enregistré : le reçu de dépôt', example: EXEMPLE_RECU } },
})

export const listFichiers = defineOperation({
  method: 'GET',
  url: '/dossiers/:id/fichiers',
  operationId: 'listFichiers',
  tags: ['fichiers'],
  summary: 'Lister les fichiers d’un dossier',
  description: 
    'Liste les fichiers d’un dossier par pages, triés par nom (par défaut), date ou taille, avec la taille et ' +
    'l’empreinte de leur version courante. Pour la page suivante, repassez `next_cursor` en `cursor`.',
  access: { roles: ALL_ROLES },
  schema: { params: IdParamsSchema, querystring: FileListQuerySchema, response: { 200: PageSchema(FichierSchema, 'PageFichiers') } },
  request: { params: { id: EXEMPLE_DOSSIER_ID }, querystring: { tri: 'taille', ordre: 'desc', limit: 50 } },
  responses: { 200: { description: 'Une page de fichiers', example: { items: [EXEMPLE_FICHIER], next_cursor: null } } },
})

export const getFichier = defineOperation({
  method: 'GET',
  url: '/fichiers/:id',
  operationId: 'getFichier',
  tags: ['fichiers'],
  summary: 'Lire les métadonnées d’un fichier',
  description: 
    'Rend les métadonnées d’un fichier (nom, type, taille, empreinte et numéro de sa version courante), sans son ' +
    'contenu (GET /fichiers/{id}/contenu).',
  access: { roles: ALL_ROLES },
  schema: { params: IdParamsSchema, response: { 200: FichierSchema } },
  request: { params: { id: EXEMPLE_FICHIER_ID } },
  responses: { 200: { description: 'Le fichier', example: EXEMPLE_FICHIER } },
})

export const updateFichier = defineOperation({
  method: 'PATCH',
  url: '/fichiers/:id',
  operationId: 'updateFichier',
  tags: ['fichiers'],
  summary: 'Renommer un fichier ou le déplacer dans un autre dossier',
  description: 
    'Renomme un fichier (`nom`) ou le déplace dans un autre dossier de l’organisation (`dossier_id`), avec toutes ' +
    'ses versions ; le contenu ne change pas. Le nom doit être libre dans le dossier d’arrivée.',
  access: { roles: WRITERS },
  problems: ['NAME_CONFLICT', 'LOCKED'],
  schema: {
    params: IdParamsSchema,
    body: Type.Object(
      { nom: Type.Optional(NomSchema), dossier_id: Type.Optional(IdSchema) },
      { additionalProperties: false, minProperties: 1 },
    ),
    response: { 200: FichierSchema },
  },
  request: { params: { id: EXEMPLE_FICHIER_ID }, body: { nom: 'Contrat RH 2026.pdf' } },
  responses: { 200: { description: 'Le fichier modifié', example: { ...EXEMPLE_FICHIER, nom: 'Contrat RH 2026.pdf', updated_at: '2026-03-05T14:00:00.000Z' } } },
})

export const deleteFichier = defineOperation({
  method: 'DELETE',
  url: '/fichiers/:id',
  operationId: 'deleteFichier',
  tags: ['fichiers'],
  summary: 'Envoyer un fichier à la corbeille',
  description: 
    'Envoie un fichier à la corbeille ; il disparaît des listes, mais lui et toutes ses versions restent ' +
    'restaurables jusqu’à la purge de la corbeille.',
  access: { roles: WRITERS },
  problems: ['LOCKED', 'LEGAL_HOLD', 'RETENTION_ACTIVE'],
  schema: { params: IdParamsSchema, response: { 204: Type.Null({ description: 'Envoyé à la corbeille' }) } },
  request: { params: { id: EXEMPLE_FICHIER_ID } },
})

const ContentHeaders = Type.Object({
  range: Type.Optional(Type.String({ description: 'Une seule plage : `bytes=début-fin`, `bytes=début-` ou `bytes=-longueur`' })),
  'if-none-match': Type.Optional(Type.String({ description: 'ETag déjà détenu : 304 s’il est toujours courant' })),
  'if-range': Type.Optional(Type.String({ description: 'La plage n’est servie que si cet ETag est toujours celui du contenu' })),
})

const RangeProblem = {
  description: 'Plage non satisfiable (`Content-Range: bytes */taille`)',
  content: { 'application/problem+json': { schema: Ref(ProblemSchema) } },
}


function contentResponses() {
  return {
    200: binary('Le contenu entier'),
    206: binary('La plage demandée (`Content-Range`)'),
    304: Type.Null({ description: 'Non modifié : l’ETag présenté est celui du contenu' }),
    416: RangeProblem,
  }
}

export const downloadFichier = defineOperation({
  method: 'GET',
  url: '/fichiers/:id/contenu',
  operationId: 'downloadFichier',
  tags: ['fichiers'],
  summary: 'Télécharger la version courante',
  description: 
    'Télécharge le contenu de la version courante, déchiffré en flux, avec son `Content-Type`, un ' +
    '`Content-Disposition` RFC 6266 (nom UTF-8) et `ETag` = SHA-256. Les plages (`Range`, pour reprendre un ' +
    'téléchargement ou lire un extrait) ne déchiffrent que les segments nécessaires ; `If-None-Match` évite de ' +
    'retélécharger un contenu déjà détenu. Un contenu altéré répond `INTEGRITY_ERROR` (ou interrompt la réponse ' +
    'déjà commencée) et est signalé au journal.',
  access: { roles: ALL_ROLES },
  problems: ['RANGE_NOT_SATISFIABLE', 'INTEGRITY_ERROR', 'KMS_UNAVAILABLE', 'STORAGE_UNAVAILABLE'],
  schema: { params: IdParamsSchema, headers: ContentHeaders, response: contentResponses() },
  request: { params: { id: EXEMPLE_FICHIER_ID } },
})

export const listVersions = defineOperation({
  method: 'GET',
  url: '/fichiers/:id/versions',
  operationId: 'listVersions',
  tags: ['fichiers'],
  summary: 'Lister les versions d’un fichier, de la plus récente à la plus ancienne',
  description: 
    'Liste les versions d’un fichier, de la plus récente à la plus ancienne, avec la taille, l’empreinte et ' +
    'l’auteur de chacune ; une ancienne version se télécharge (GET …/versions/{n}/contenu) ou se restaure (POST ' +
    '…/versions/{n}/restaurer).',
  access: { roles: ALL_ROLES },
  schema: { params: IdParamsSchema, querystring: PageQuerySchema, response: { 200: PageSchema(VersionSchema, 'PageVersions') } },
  request: { params: { id: EXEMPLE_FICHIER_ID }, querystring: { limit: 20 } },
  responses: {
    200: {
      description: 'Une page de versions',
      example: { items: [{ ...EXEMPLE_VERSION_2, courante: true }, { ...EXEMPLE_VERSION, courante: false }], next_cursor: null },
    },
  },
})

export const uploadVersion = defineOperation({
  method: 'POST',
  url: '/fichiers/:id/version',
  operationId: 'uploadVersion',
  tags: ['fichiers'],
  summary: 'Déposer une nouvelle version d’un fichier',
  description: 
    'Dépose une nouvelle version d’un fichier existant, qui devient sa version courante ; les versions précédentes ' +
    'restent intactes et téléchargeables. Même formulaire et mêmes garanties que le dépôt d’un fichier : haché et ' +
    'chiffré pendant l’envoi, rien de conservé si l’envoi échoue ou si l’empreinte attendue diffère.',
  access: { roles: WRITERS },
  problems: ['QUOTA_EXCEEDED', 'CHECKSUM_MISMATCH', 'LOCKED', 'KMS_UNAVAILABLE', 'STORAGE_FULL', 'STORAGE_UNAVAILABLE'],
  schema: {
    params: IdParamsSchema,
    querystring: UploadQuerySchema,
    headers: ChecksumHeaders,
    consumes: ['multipart/form-data'],
    body: uploadBody({}),
    response: { 201: ReceiptSchema },
  },
  request: { params: { id: EXEMPLE_FICHIER_ID }, body: { fichier: FICHIER_PART, sha256: SHA256_V2 } },
  responses: { 201: { description: 'Version enregistrée : le reçu de dépôt', example: EXEMPLE_RECU_V2 } },
})

export const downloadVersion = defineOperation({
  method: 'GET',
  url: '/fichiers/:id/versions/:n/contenu',
  operationId: 'downloadVersion',
  tags: ['fichiers'],
  summary: 'Télécharger une version donnée',
  description: 
    'Télécharge le contenu d’une version donnée (numéro `n`), avec les mêmes en-têtes, plages et contrôles ' +
    'd’intégrité que le téléchargement de la version courante.',
  access: { roles: ALL_ROLES },
  problems: ['RANGE_NOT_SATISFIABLE', 'INTEGRITY_ERROR', 'KMS_UNAVAILABLE', 'STORAGE_UNAVAILABLE'],
  schema: { params: VersionParamsSchema, headers: ContentHeaders, response: contentResponses() },
  request: { params: { id: EXEMPLE_FICHIER_ID, n: 1 } },
})

export const restoreVersion = defineOperation({
  method: 'POST',
  url: '/fichiers/:id/versions/:n/restaurer',
  operationId: 'restoreVersion',
  tags: ['fichiers'],
  summary: 'Restaurer une ancienne version',
  description: 
    'Remet en version courante le contenu d’une ancienne version : il devient une nouvelle version (numéro ' +
    'suivant), aucune version n’est écrasée. À utiliser pour annuler une modification.',
  access: { roles: WRITERS },
  problems: ['QUOTA_EXCEEDED', 'INTEGRITY_ERROR', 'LOCKED', 'KMS_UNAVAILABLE', 'STORAGE_FULL', 'STORAGE_UNAVAILABLE'],
  schema: { params: VersionParamsSchema, response: { 201: ReceiptSchema } },
  request: { params: { id: EXEMPLE_FICHIER_ID, n: 1 } },
  responses: {
    201: {
      description: 'Version restaurée : le reçu de la nouvelle version',
      example: {
        ...EXEMPLE_RECU_V2,
        fichier: { ...EXEMPLE_RECU_V2.fichier, taille: 48213, sha256: SHA256, version_courante: 3, nombre_versions: 3 },
        version: { ...EXEMPLE_VERSION, id: '8a9b0c1d-2e3f-4a4b-8c5d-6e7f8a9b0c1d', version_number: 3, restauree_depuis: 1 },
        sha256: SHA256,
        taille: 48213,
      },
    },
  },
})

export const reportLocalDeletion = defineOperation({
  method: 'POST',
  url: '/fichiers/:id/versions/:n/suppression-locale',
  operationId: 'reportLocalDeletion',
  tags: ['fichiers'],
  summary: 'Signaler la suppression de la copie locale après dépôt',
  description: 
    'Pour le client de bureau qui a déposé avec `delete_after_upload=true` : une fois sa copie locale effacée (le ' +
    'reçu l’y autorise), il le signale ici ; l’effacement est inscrit au journal si l’empreinte est celle de la ' +
    'version.',
  access: { roles: WRITERS },
  problems: ['CHECKSUM_MISMATCH'],
  schema: {
    params: VersionParamsSchema,
    body: Type.Object(
      {
        appareil: Type.String({ minLength: 1, maxLength: 200, description: 'Poste qui a effacé sa copie' }),
        sha256: Sha256Schema,
      },
      { additionalProperties: false },
    ),
    response: {
      200: Type.Object(
        {
          fichier_id: IdSchema,
          version_number: Type.Integer(),
          appareil: Type.String(),
          sha256: Type.String(),
          enregistree_le: TimestampSchema,
        },
        { description: 'Suppression locale inscrite au journal' },
      ),
    },
  },
  request: { params: { id: EXEMPLE_FICHIER_ID, n: 1 }, body: { appareil: 'PC-ACCUEIL-02', sha256: SHA256 } },
  responses: {
    200: {
      example: { fichier_id: EXEMPLE_FICHIER_ID, version_number: 1, appareil: 'PC-ACCUEIL-02', sha256: SHA256, enregistree_le: '2026-03-02T10:06:00.000Z' },
    },
  },
})

export const fileOperations = [
  uploadFichier,
  listFichiers,
  getFichier,
  updateFichier,
  deleteFichier,
  downloadFichier,
  listVersions,
  uploadVersion,
  downloadVersion,
  restoreVersion,
  reportLocalDeletion,
]
