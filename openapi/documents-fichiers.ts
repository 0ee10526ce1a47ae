import { type Static, Type } from '@sinclair/typebox'
import {
  IdParamsSchema,
  IdSchema,
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
import { NomSchema } from './documents.ts'
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

export const VersionParamsSchema = Type.Object({ id: IdSchema, n: Type.Integer({ minimum: 1, description: 'Numéro de version' }) })

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
function uploadBody(withName: boolean) {
  return Type.Object(
    {
      fichier: Type.String({ format: 'binary', description: 'Le contenu ; son nom de fichier devient le nom du document' }),
      ...(withName ? { nom: Type.Optional(NomSchema) } : {}),
      sha256: Type.Optional(Sha256Schema),
      delete_after_upload: Type.Optional(Type.Boolean({ description: 'Comme le paramètre de même nom' })),
    },
    { description: 'Formulaire multipart ; les champs texte peuvent précéder ou suivre la partie `fichier`' },
  )
}

const UPLOAD_DESCRIPTION =
  'Le contenu est haché (SHA-256) et chiffré pendant qu’il arrive, jamais conservé en clair ni entièrement en mémoire. ' +
  'Rien n’est conservé si le client interrompt l’envoi, si la taille maximale ou le quota est dépassé, ou si ' +
  'l’empreinte attendue (`X-Checksum-SHA256` ou champ `sha256`) diffère.'

const binary = (description: string) => ({
  description,
  content: { '*/*': { schema: Type.String({ format: 'binary' }) } },
})

export const uploadFichier = defineOperation({
  method: 'POST',
  url: '/dossiers/:id/fichiers',
  operationId: 'uploadFichier',
  tags: ['fichiers'],
  summary: 'Déposer un fichier dans un dossier',
  description: `${UPLOAD_DESCRIPTION} Le nom est celui du champ \`nom\`, sinon le nom de fichier de la partie \`fichier\`.`,
  access: { roles: WRITERS },
  problems: [409, 413, 415, 422],
  schema: {
    params: IdParamsSchema,
    querystring: UploadQuerySchema,
    headers: ChecksumHeaders,
    consumes: ['multipart/form-data'],
    body: uploadBody(true),
    response: { 201: ReceiptSchema },
  },
})

export const listFichiers = defineOperation({
  method: 'GET',
  url: '/dossiers/:id/fichiers',
  operationId: 'listFichiers',
  tags: ['fichiers'],
  summary: 'Lister les fichiers d’un dossier',
  access: { roles: ALL_ROLES },
  schema: { params: IdParamsSchema, querystring: FileListQuerySchema, response: { 200: PageSchema(FichierSchema, 'PageFichiers') } },
})

export const getFichier = defineOperation({
  method: 'GET',
  url: '/fichiers/:id',
  operationId: 'getFichier',
  tags: ['fichiers'],
  summary: 'Lire les métadonnées d’un fichier',
  access: { roles: ALL_ROLES },
  schema: { params: IdParamsSchema, response: { 200: FichierSchema } },
})

export const updateFichier = defineOperation({
  method: 'PATCH',
  url: '/fichiers/:id',
  operationId: 'updateFichier',
  tags: ['fichiers'],
  summary: 'Renommer un fichier ou le déplacer dans un autre dossier',
  access: { roles: WRITERS },
  problems: [409],
  schema: {
    params: IdParamsSchema,
    body: Type.Object(
      { nom: Type.Optional(NomSchema), dossier_id: Type.Optional(IdSchema) },
      { additionalProperties: false, minProperties: 1 },
    ),
    response: { 200: FichierSchema },
  },
})

export const deleteFichier = defineOperation({
  method: 'DELETE',
  url: '/fichiers/:id',
  operationId: 'deleteFichier',
  tags: ['fichiers'],
  summary: 'Envoyer un fichier à la corbeille',
  description: 'Le fichier et toutes ses versions restent restaurables jusqu’à la purge de la corbeille.',
  access: { roles: WRITERS },
  schema: { params: IdParamsSchema, response: { 204: Type.Null({ description: 'Envoyé à la corbeille' }) } },
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

const CONTENT_DESCRIPTION =
  'Contenu déchiffré en flux, avec son `Content-Type`, un `Content-Disposition` RFC 6266 (nom UTF-8) et ' +
  '`ETag` = SHA-256. Les plages (`Range`) ne déchiffrent que les segments nécessaires. Un contenu altéré répond ' +
  '`INTEGRITY_ERROR` (ou interrompt la réponse déjà commencée) et est signalé au journal.'

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
  description: CONTENT_DESCRIPTION,
  access: { roles: ALL_ROLES },
  schema: { params: IdParamsSchema, headers: ContentHeaders, response: contentResponses() },
})

export const listVersions = defineOperation({
  method: 'GET',
  url: '/fichiers/:id/versions',
  operationId: 'listVersions',
  tags: ['fichiers'],
  summary: 'Lister les versions d’un fichier, de la plus récente à la plus ancienne',
  access: { roles: ALL_ROLES },
  schema: { params: IdParamsSchema, querystring: PageQuerySchema, response: { 200: PageSchema(VersionSchema, 'PageVersions') } },
})

export const uploadVersion = defineOperation({
  method: 'POST',
  url: '/fichiers/:id/version',
  operationId: 'uploadVersion',
  tags: ['fichiers'],
  summary: 'Déposer une nouvelle version d’un fichier',
  description: `${UPLOAD_DESCRIPTION} Les versions précédentes restent intactes.`,
  access: { roles: WRITERS },
  problems: [413, 415, 422],
  schema: {
    params: IdParamsSchema,
    querystring: UploadQuerySchema,
    headers: ChecksumHeaders,
    consumes: ['multipart/form-data'],
    body: uploadBody(false),
    response: { 201: ReceiptSchema },
  },
})

export const downloadVersion = defineOperation({
  method: 'GET',
  url: '/fichiers/:id/versions/:n/contenu',
  operationId: 'downloadVersion',
  tags: ['fichiers'],
  summary: 'Télécharger une version donnée',
  description: CONTENT_DESCRIPTION,
  access: { roles: ALL_ROLES },
  schema: { params: VersionParamsSchema, headers: ContentHeaders, response: contentResponses() },
})

export const restoreVersion = defineOperation({
  method: 'POST',
  url: '/fichiers/:id/versions/:n/restaurer',
  operationId: 'restoreVersion',
  tags: ['fichiers'],
  summary: 'Restaurer une ancienne version',
  description: 'Le contenu de la version devient une nouvelle version courante ; aucune version n’est écrasée.',
  access: { roles: WRITERS },
  problems: [413],
  schema: { params: VersionParamsSchema, response: { 201: ReceiptSchema } },
})

export const reportLocalDeletion = defineOperation({
  method: 'POST',
  url: '/fichiers/:id/versions/:n/suppression-locale',
  operationId: 'reportLocalDeletion',
  tags: ['fichiers'],
  summary: 'Signaler la suppression de la copie locale après dépôt',
  description: 'Inscrit au journal l’effacement par le client de bureau de sa copie, si son empreinte est celle de la version.',
  access: { roles: WRITERS },
  problems: [422],
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
