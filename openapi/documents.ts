import { type Static, Type } from '@sinclair/typebox'
import { IdParamsSchema, IdSchema, Nullable, PageQuerySchema, PageSchema, SortOrderSchema, StringEnum, TimestampSchema } from './common.ts'
import { ALL_ROLES, defineOperation, WRITERS } from './operation.ts'

/** Also enforced in code (plugins/documents/names.ts) for names that arrive outside JSON, as upload file names. */
export const NomSchema = Type.String({
  minLength: 1,
  maxLength: 255,
  pattern: '^(?!\\s*$)(?!\\s*\\.{1,2}\\s*$)[^/\\u0000-\\u001F\\u007F-\\u009F]+$',
  description:
    'Nom affiché : 1 à 255 caractères, sans « / » ni caractère de contrôle, ni « . » ou « .. » ; les espaces ' +
    'de début et de fin sont retirés. Unique parmi les éléments voisins, sans distinction de casse.',
})

const Authorship = {
  created_by: Nullable(IdSchema),
  created_at: TimestampSchema,
  updated_at: TimestampSchema,
}

export const ArmoireSchema = Type.Object(
  {
    id: IdSchema,
    nom: Type.String(),
    nombre_elements: Type.Integer({ description: 'Casiers qu’elle contient (hors corbeille)' }),
    ...Authorship,
  },
  { $id: 'Armoire' },
)
export type ArmoireDto = Static<typeof ArmoireSchema>

export const CasierSchema = Type.Object(
  {
    id: IdSchema,
    armoire_id: IdSchema,
    nom: Type.String(),
    nombre_elements: Type.Integer({ description: 'Dossiers de premier niveau qu’il contient (hors corbeille)' }),
    ...Authorship,
  },
  { $id: 'Casier' },
)
export type CasierDto = Static<typeof CasierSchema>

export const DossierSchema = Type.Object(
  {
    id: IdSchema,
    casier_id: IdSchema,
    parent_id: Nullable(IdSchema),
    nom: Type.String(),
    nombre_elements: Type.Integer({ description: 'Sous-dossiers et fichiers qu’il contient directement (hors corbeille)' }),
    ...Authorship,
  },
  { $id: 'Dossier', description: '`parent_id` est null pour un dossier à la racine de son casier' },
)
export type DossierDto = Static<typeof DossierSchema>

const ContainerSortSchema = StringEnum(['nom', 'created_at', 'updated_at'], {
  default: 'nom',
  description: 'Clé de tri ; le nom est trié sans distinction de casse',
})
export const ContainerListQuerySchema = Type.Composite([
  PageQuerySchema,
  Type.Object({ tri: ContainerSortSchema, ordre: SortOrderSchema }),
])
export type ContainerListQuery = Static<typeof ContainerListQuerySchema>

export const DeleteQuerySchema = Type.Object({
  recursif: Type.Boolean({
    default: false,
    description: 'Obligatoire (true) pour envoyer à la corbeille un conteneur qui n’est pas vide, avec tout son contenu',
  }),
})

const NameBody = Type.Object({ nom: NomSchema }, { additionalProperties: false })
const Deleted = Type.Null({ description: 'Envoyé à la corbeille' })
const DELETE_DESCRIPTION =
  'L’élément et son contenu vont à la corbeille, d’où ils peuvent être restaurés jusqu’à leur purge automatique.'

// Armoires

export const createArmoire = defineOperation({
  method: 'POST',
  url: '/armoires',
  operationId: 'createArmoire',
  tags: ['documents'],
  summary: 'Créer une armoire',
  access: { roles: WRITERS },
  problems: [409],
  schema: { body: NameBody, response: { 201: ArmoireSchema } },
})

export const listArmoires = defineOperation({
  method: 'GET',
  url: '/armoires',
  operationId: 'listArmoires',
  tags: ['documents'],
  summary: 'Lister les armoires de l’organisation',
  access: { roles: ALL_ROLES },
  schema: { querystring: ContainerListQuerySchema, response: { 200: PageSchema(ArmoireSchema, 'PageArmoires') } },
})

export const getArmoire = defineOperation({
  method: 'GET',
  url: '/armoires/:id',
  operationId: 'getArmoire',
  tags: ['documents'],
  summary: 'Lire une armoire',
  access: { roles: ALL_ROLES },
  schema: { params: IdParamsSchema, response: { 200: ArmoireSchema } },
})

export const updateArmoire = defineOperation({
  method: 'PATCH',
  url: '/armoires/:id',
  operationId: 'updateArmoire',
  tags: ['documents'],
  summary: 'Renommer une armoire',
  access: { roles: WRITERS },
  problems: [409],
  schema: { params: IdParamsSchema, body: NameBody, response: { 200: ArmoireSchema } },
})

export const deleteArmoire = defineOperation({
  method: 'DELETE',
  url: '/armoires/:id',
  operationId: 'deleteArmoire',
  tags: ['documents'],
  summary: 'Envoyer une armoire à la corbeille',
  description: DELETE_DESCRIPTION,
  access: { roles: WRITERS },
  problems: [409],
  schema: { params: IdParamsSchema, querystring: DeleteQuerySchema, response: { 204: Deleted } },
})

// Casiers

export const createCasier = defineOperation({
  method: 'POST',
  url: '/armoires/:id/casiers',
  operationId: 'createCasier',
  tags: ['documents'],
  summary: 'Créer un casier dans une armoire',
  access: { roles: WRITERS },
  problems: [409],
  schema: { params: IdParamsSchema, body: NameBody, response: { 201: CasierSchema } },
})

export const listCasiers = defineOperation({
  method: 'GET',
  url: '/armoires/:id/casiers',
  operationId: 'listCasiers',
  tags: ['documents'],
  summary: 'Lister les casiers d’une armoire',
  access: { roles: ALL_ROLES },
  schema: { params: IdParamsSchema, querystring: ContainerListQuerySchema, response: { 200: PageSchema(CasierSchema, 'PageCasiers') } },
})

export const getCasier = defineOperation({
  method: 'GET',
  url: '/casiers/:id',
  operationId: 'getCasier',
  tags: ['documents'],
  summary: 'Lire un casier',
  access: { roles: ALL_ROLES },
  schema: { params: IdParamsSchema, response: { 200: CasierSchema } },
})

export const updateCasier = defineOperation({
  method: 'PATCH',
  url: '/casiers/:id',
  operationId: 'updateCasier',
  tags: ['documents'],
  summary: 'Renommer un casier ou le déplacer dans une autre armoire',
  access: { roles: WRITERS },
  problems: [409],
  schema: {
    params: IdParamsSchema,
    body: Type.Object(
      { nom: Type.Optional(NomSchema), armoire_id: Type.Optional(IdSchema) },
      { additionalProperties: false, minProperties: 1 },
    ),
    response: { 200: CasierSchema },
  },
})

export const deleteCasier = defineOperation({
  method: 'DELETE',
  url: '/casiers/:id',
  operationId: 'deleteCasier',
  tags: ['documents'],
  summary: 'Envoyer un casier à la corbeille',
  description: DELETE_DESCRIPTION,
  access: { roles: WRITERS },
  problems: [409],
  schema: { params: IdParamsSchema, querystring: DeleteQuerySchema, response: { 204: Deleted } },
})

// Dossiers

export const createDossier = defineOperation({
  method: 'POST',
  url: '/casiers/:id/dossiers',
  operationId: 'createDossier',
  tags: ['documents'],
  summary: 'Créer un dossier à la racine d’un casier',
  access: { roles: WRITERS },
  problems: [409],
  schema: { params: IdParamsSchema, body: NameBody, response: { 201: DossierSchema } },
})

export const listDossiers = defineOperation({
  method: 'GET',
  url: '/casiers/:id/dossiers',
  operationId: 'listDossiers',
  tags: ['documents'],
  summary: 'Lister les dossiers à la racine d’un casier',
  access: { roles: ALL_ROLES },
  schema: { params: IdParamsSchema, querystring: ContainerListQuerySchema, response: { 200: PageSchema(DossierSchema, 'PageDossiers') } },
})

export const createSousDossier = defineOperation({
  method: 'POST',
  url: '/dossiers/:id/dossiers',
  operationId: 'createSousDossier',
  tags: ['documents'],
  summary: 'Créer un sous-dossier',
  access: { roles: WRITERS },
  problems: [409],
  schema: { params: IdParamsSchema, body: NameBody, response: { 201: DossierSchema } },
})

export const listSousDossiers = defineOperation({
  method: 'GET',
  url: '/dossiers/:id/dossiers',
  operationId: 'listSousDossiers',
  tags: ['documents'],
  summary: 'Lister les sous-dossiers d’un dossier',
  access: { roles: ALL_ROLES },
  schema: { params: IdParamsSchema, querystring: ContainerListQuerySchema, response: { 200: PageSchema(DossierSchema, 'PageSousDossiers') } },
})

export const getDossier = defineOperation({
  method: 'GET',
  url: '/dossiers/:id',
  operationId: 'getDossier',
  tags: ['documents'],
  summary: 'Lire un dossier',
  access: { roles: ALL_ROLES },
  schema: { params: IdParamsSchema, response: { 200: DossierSchema } },
})

export const updateDossier = defineOperation({
  method: 'PATCH',
  url: '/dossiers/:id',
  operationId: 'updateDossier',
  tags: ['documents'],
  summary: 'Renommer ou déplacer un dossier',
  description:
    'Déplacer : `parent_id` désigne le nouveau dossier parent (son casier suit), ou null pour la racine du casier ' +
    'courant ou de `casier_id` ; `casier_id` seul place le dossier à la racine de ce casier. Un dossier ne peut pas ' +
    'être déplacé dans lui-même ni dans l’un de ses descendants ; ses sous-dossiers et fichiers le suivent.',
  access: { roles: WRITERS },
  problems: [409],
  schema: {
    params: IdParamsSchema,
    body: Type.Object(
      { nom: Type.Optional(NomSchema), casier_id: Type.Optional(IdSchema), parent_id: Type.Optional(Nullable(IdSchema)) },
      { additionalProperties: false, minProperties: 1 },
    ),
    response: { 200: DossierSchema },
  },
})

export const deleteDossier = defineOperation({
  method: 'DELETE',
  url: '/dossiers/:id',
  operationId: 'deleteDossier',
  tags: ['documents'],
  summary: 'Envoyer un dossier à la corbeille',
  description: DELETE_DESCRIPTION,
  access: { roles: WRITERS },
  problems: [409],
  schema: { params: IdParamsSchema, querystring: DeleteQuerySchema, response: { 204: Deleted } },
})

export const hierarchyOperations = [
  createArmoire,
  listArmoires,
  getArmoire,
  updateArmoire,
  deleteArmoire,
  createCasier,
  listCasiers,
  getCasier,
  updateCasier,
  deleteCasier,
  createDossier,
  listDossiers,
  createSousDossier,
  listSousDossiers,
  getDossier,
  updateDossier,
  deleteDossier,
]
