import { type Static, Type } from '@sinclair/typebox'
import { IdParamsSchema, IdSchema, NameSchema, Nullable, PageQuerySchema, PageSchema, SortOrderSchema, StringEnum, TimestampSchema } from './common.ts'
import { ALL_ROLES, defineOperation, WRITERS } from './operation.ts'

/** Also enforced in code (plugins/documents/names.ts) for names that arrive outside JSON, as upload file names. */
export const NomSchema = NameSchema

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
  'L’élément et son contenu vont à la corbeille, d’où ils peuvent être restaurés (POST /corbeille/{type}/{id}/restaurer) ' +
  'jusqu’à leur purge automatique. Un conteneur qui n’est pas vide demande `recursif=true`, pour ne rien jeter par mégarde.'

// Examples, shared with the files and trash operations.
const AUTEUR = '3f6c2a9e-8b1d-4c7a-a2e5-9d0f1b3c5e7a'
export const EXEMPLE_ARMOIRE_ID = '1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d'
export const EXEMPLE_CASIER_ID = '2b3c4d5e-6f7a-4b8c-9d0e-1f2a3b4c5d6e'
export const EXEMPLE_DOSSIER_ID = '3c4d5e6f-7a8b-4c9d-8e1f-2a3b4c5d6e7f'
const CREE = { created_by: AUTEUR, created_at: '2026-03-02T09:30:00.000Z', updated_at: '2026-03-02T09:30:00.000Z' }
export const EXEMPLE_ARMOIRE = { id: EXEMPLE_ARMOIRE_ID, nom: 'Ressources humaines', nombre_elements: 2, ...CREE }
export const EXEMPLE_CASIER = { id: EXEMPLE_CASIER_ID, armoire_id: EXEMPLE_ARMOIRE_ID, nom: 'Contrats', nombre_elements: 5, ...CREE }
export const EXEMPLE_DOSSIER = {
  id: EXEMPLE_DOSSIER_ID,
  casier_id: EXEMPLE_CASIER_ID,
  parent_id: null,
  nom: '2026',
  nombre_elements: 12,
  ...CREE,
}
const EXEMPLE_SOUS_DOSSIER = { ...EXEMPLE_DOSSIER, id: '4d5e6f7a-8b9c-4d0e-9f1a-2b3c4d5e6f70', parent_id: EXEMPLE_DOSSIER_ID, nom: 'Mars', nombre_elements: 3 }
const page = <T>(item: T) => ({ items: [item], next_cursor: null })
const LIST_QUERY = { tri: 'nom', ordre: 'asc', limit: 50 } as const

// Armoires

export const createArmoire = defineOperation({
  method: 'POST',
  url: '/armoires',
  operationId: 'createArmoire',
  tags: ['documents'],
  summary: 'Créer une armoire',
  description: 
    'Crée une armoire, le premier niveau de rangement de l’organisation (un service, un client, un exercice). Son ' +
    'nom est unique dans l’organisation, sans distinction de casse. On y crée ensuite des casiers (POST ' +
    '/armoires/{id}/casiers).',
  access: { roles: WRITERS },
  problems: ['NAME_CONFLICT', 'QUOTA_EXCEEDED'],
  schema: { body: NameBody, response: { 201: ArmoireSchema } },
  request: { body: { nom: 'Ressources humaines' } },
  responses: { 201: { description: 'L’armoire créée', example: { ...EXEMPLE_ARMOIRE, nombre_elements: 0 } } },
})

export const listArmoires = defineOperation({
  method: 'GET',
  url: '/armoires',
  operationId: 'listArmoires',
  tags: ['documents'],
  summary: 'Lister les armoires de l’organisation',
  description: 
    'Liste les armoires de l’organisation par pages, triées par nom (par défaut), date de création ou de ' +
    'modification. Pour la page suivante, repassez `next_cursor` en `cursor` avec les mêmes tri et ordre.',
  access: { roles: ALL_ROLES },
  schema: { querystring: ContainerListQuerySchema, response: { 200: PageSchema(ArmoireSchema, 'PageArmoires') } },
  request: { querystring: LIST_QUERY },
  responses: { 200: { description: 'Une page d’armoires', example: page(EXEMPLE_ARMOIRE) } },
})

export const getArmoire = defineOperation({
  method: 'GET',
  url: '/armoires/:id',
  operationId: 'getArmoire',
  tags: ['documents'],
  summary: 'Lire une armoire',
  description: 
    'Rend une armoire et le nombre de casiers qu’elle contient. Celle d’une autre organisation, ou dans la ' +
    'corbeille, répond 404.',
  access: { roles: ALL_ROLES },
  schema: { params: IdParamsSchema, response: { 200: ArmoireSchema } },
  request: { params: { id: EXEMPLE_ARMOIRE_ID } },
  responses: { 200: { description: 'L’armoire', example: EXEMPLE_ARMOIRE } },
})

export const updateArmoire = defineOperation({
  method: 'PATCH',
  url: '/armoires/:id',
  operationId: 'updateArmoire',
  tags: ['documents'],
  summary: 'Renommer une armoire',
  description: 'Renomme une armoire ; son contenu ne change pas. Le nouveau nom doit être libre dans l’organisation.',
  access: { roles: WRITERS },
  problems: ['NAME_CONFLICT', 'LOCKED'],
  schema: { params: IdParamsSchema, body: NameBody, response: { 200: ArmoireSchema } },
  request: { params: { id: EXEMPLE_ARMOIRE_ID }, body: { nom: 'RH et paie' } },
  responses: { 200: { description: 'L’armoire renommée', example: { ...EXEMPLE_ARMOIRE, nom: 'RH et paie', updated_at: '2026-03-05T14:00:00.000Z' } } },
})

export const deleteArmoire = defineOperation({
  method: 'DELETE',
  url: '/armoires/:id',
  operationId: 'deleteArmoire',
  tags: ['documents'],
  summary: 'Envoyer une armoire à la corbeille',
  description: DELETE_DESCRIPTION,
  access: { roles: WRITERS },
  problems: ['NOT_EMPTY', 'LOCKED', 'LEGAL_HOLD', 'RETENTION_ACTIVE'],
  schema: { params: IdParamsSchema, querystring: DeleteQuerySchema, response: { 204: Deleted } },
  request: { params: { id: EXEMPLE_ARMOIRE_ID }, querystring: { recursif: true } },
})

// Casiers

export const createCasier = defineOperation({
  method: 'POST',
  url: '/armoires/:id/casiers',
  operationId: 'createCasier',
  tags: ['documents'],
  summary: 'Créer un casier dans une armoire',
  description: 
    'Crée un casier dans une armoire ; son nom est unique dans l’armoire. On y range ensuite des dossiers (POST ' +
    '/casiers/{id}/dossiers).',
  access: { roles: WRITERS },
  problems: ['NAME_CONFLICT'],
  schema: { params: IdParamsSchema, body: NameBody, response: { 201: CasierSchema } },
  request: { params: { id: EXEMPLE_ARMOIRE_ID }, body: { nom: 'Contrats' } },
  responses: { 201: { description: 'Le casier créé', example: { ...EXEMPLE_CASIER, nombre_elements: 0 } } },
})

export const listCasiers = defineOperation({
  method: 'GET',
  url: '/armoires/:id/casiers',
  operationId: 'listCasiers',
  tags: ['documents'],
  summary: 'Lister les casiers d’une armoire',
  description: 
    'Liste les casiers d’une armoire par pages, triés par nom (par défaut) ou par date. Pour la page suivante, ' +
    'repassez `next_cursor` en `cursor`.',
  access: { roles: ALL_ROLES },
  schema: { params: IdParamsSchema, querystring: ContainerListQuerySchema, response: { 200: PageSchema(CasierSchema, 'PageCasiers') } },
  request: { params: { id: EXEMPLE_ARMOIRE_ID }, querystring: LIST_QUERY },
  responses: { 200: { description: 'Une page de casiers', example: page(EXEMPLE_CASIER) } },
})

export const getCasier = defineOperation({
  method: 'GET',
  url: '/casiers/:id',
  operationId: 'getCasier',
  tags: ['documents'],
  summary: 'Lire un casier',
  description: 
    'Rend un casier, son armoire et le nombre de dossiers à sa racine. Un casier d’une autre organisation, ou dans ' +
    'la corbeille, répond 404.',
  access: { roles: ALL_ROLES },
  schema: { params: IdParamsSchema, response: { 200: CasierSchema } },
  request: { params: { id: EXEMPLE_CASIER_ID } },
  responses: { 200: { description: 'Le casier', example: EXEMPLE_CASIER } },
})

export const updateCasier = defineOperation({
  method: 'PATCH',
  url: '/casiers/:id',
  operationId: 'updateCasier',
  tags: ['documents'],
  summary: 'Renommer un casier ou le déplacer dans une autre armoire',
  description: 
    'Renomme un casier (`nom`) ou le déplace dans une autre armoire de l’organisation (`armoire_id`), avec tout ' +
    'son contenu ; seuls les champs envoyés changent.',
  access: { roles: WRITERS },
  problems: ['NAME_CONFLICT', 'LOCKED'],
  schema: {
    params: IdParamsSchema,
    body: Type.Object(
      { nom: Type.Optional(NomSchema), armoire_id: Type.Optional(IdSchema) },
      { additionalProperties: false, minProperties: 1 },
    ),
    response: { 200: CasierSchema },
  },
  request: { params: { id: EXEMPLE_CASIER_ID }, body: { nom: 'Contrats de travail' } },
  responses: { 200: { description: 'Le casier modifié', example: { ...EXEMPLE_CASIER, nom: 'Contrats de travail', updated_at: '2026-03-05T14:00:00.000Z' } } },
})

export const deleteCasier = defineOperation({
  method: 'DELETE',
  url: '/casiers/:id',
  operationId: 'deleteCasier',
  tags: ['documents'],
  summary: 'Envoyer un casier à la corbeille',
  description: DELETE_DESCRIPTION,
  access: { roles: WRITERS },
  problems: ['NOT_EMPTY', 'LOCKED', 'LEGAL_HOLD', 'RETENTION_ACTIVE'],
  schema: { params: IdParamsSchema, querystring: DeleteQuerySchema, response: { 204: Deleted } },
  request: { params: { id: EXEMPLE_CASIER_ID }, querystring: { recursif: true } },
})

// Dossiers

export const createDossier = defineOperation({
  method: 'POST',
  url: '/casiers/:id/dossiers',
  operationId: 'createDossier',
  tags: ['documents'],
  summary: 'Créer un dossier à la racine d’un casier',
  description: 
    'Crée un dossier à la racine d’un casier ; son nom est unique parmi ses voisins. Les fichiers se déposent dans ' +
    'un dossier (POST /dossiers/{id}/fichiers) ; les sous-dossiers se créent avec POST /dossiers/{id}/dossiers.',
  access: { roles: WRITERS },
  problems: ['NAME_CONFLICT'],
  schema: { params: IdParamsSchema, body: NameBody, response: { 201: DossierSchema } },
  request: { params: { id: EXEMPLE_CASIER_ID }, body: { nom: '2026' } },
  responses: { 201: { description: 'Le dossier créé', example: { ...EXEMPLE_DOSSIER, nombre_elements: 0 } } },
})

export const listDossiers = defineOperation({
  method: 'GET',
  url: '/casiers/:id/dossiers',
  operationId: 'listDossiers',
  tags: ['documents'],
  summary: 'Lister les dossiers à la racine d’un casier',
  description: 
    'Liste les dossiers à la racine d’un casier par pages ; les sous-dossiers se lisent avec GET ' +
    '/dossiers/{id}/dossiers.',
  access: { roles: ALL_ROLES },
  schema: { params: IdParamsSchema, querystring: ContainerListQuerySchema, response: { 200: PageSchema(DossierSchema, 'PageDossiers') } },
  request: { params: { id: EXEMPLE_CASIER_ID }, querystring: LIST_QUERY },
  responses: { 200: { description: 'Une page de dossiers', example: page(EXEMPLE_DOSSIER) } },
})

export const createSousDossier = defineOperation({
  method: 'POST',
  url: '/dossiers/:id/dossiers',
  operationId: 'createSousDossier',
  tags: ['documents'],
  summary: 'Créer un sous-dossier',
  description: 'Crée un dossier dans un dossier, à n’importe quelle profondeur ; son nom est unique parmi ses voisins.',
  access: { roles: WRITERS },
  problems: ['NAME_CONFLICT', 'LOCKED'],
  schema: { params: IdParamsSchema, body: NameBody, response: { 201: DossierSchema } },
  request: { params: { id: EXEMPLE_DOSSIER_ID }, body: { nom: 'Mars' } },
  responses: { 201: { description: 'Le sous-dossier créé', example: { ...EXEMPLE_SOUS_DOSSIER, nombre_elements: 0 } } },
})

export const listSousDossiers = defineOperation({
  method: 'GET',
  url: '/dossiers/:id/dossiers',
  operationId: 'listSousDossiers',
  tags: ['documents'],
  summary: 'Lister les sous-dossiers d’un dossier',
  description: 
    'Liste les sous-dossiers directs d’un dossier par pages ; ses fichiers se lisent avec GET ' +
    '/dossiers/{id}/fichiers.',
  access: { roles: ALL_ROLES },
  schema: { params: IdParamsSchema, querystring: ContainerListQuerySchema, response: { 200: PageSchema(DossierSchema, 'PageSousDossiers') } },
  request: { params: { id: EXEMPLE_DOSSIER_ID }, querystring: LIST_QUERY },
  responses: { 200: { description: 'Une page de sous-dossiers', example: page(EXEMPLE_SOUS_DOSSIER) } },
})

export const getDossier = defineOperation({
  method: 'GET',
  url: '/dossiers/:id',
  operationId: 'getDossier',
  tags: ['documents'],
  summary: 'Lire un dossier',
  description: 
    'Rend un dossier, son casier, son dossier parent (null à la racine) et le nombre d’éléments qu’il contient ' +
    'directement.',
  access: { roles: ALL_ROLES },
  schema: { params: IdParamsSchema, response: { 200: DossierSchema } },
  request: { params: { id: EXEMPLE_DOSSIER_ID } },
  responses: { 200: { description: 'Le dossier', example: EXEMPLE_DOSSIER } },
})

export const updateDossier = defineOperation({
  method: 'PATCH',
  url: '/dossiers/:id',
  operationId: 'updateDossier',
  tags: ['documents'],
  summary: 'Renommer ou déplacer un dossier',
  description: 
    'Renomme ou déplace un dossier ; seuls les champs envoyés changent. Déplacer : `parent_id` désigne le nouveau ' +
    'dossier parent (son casier suit), ou null pour la racine du casier courant ou de `casier_id` ; `casier_id` ' +
    'seul place le dossier à la racine de ce casier. Un dossier ne peut pas être déplacé dans lui-même ni dans ' +
    'l’un de ses descendants ; ses sous-dossiers et fichiers le suivent.',
  access: { roles: WRITERS },
  problems: ['NAME_CONFLICT', 'INVALID_MOVE', 'LOCKED'],
  schema: {
    params: IdParamsSchema,
    body: Type.Object(
      { nom: Type.Optional(NomSchema), casier_id: Type.Optional(IdSchema), parent_id: Type.Optional(Nullable(IdSchema)) },
      { additionalProperties: false, minProperties: 1 },
    ),
    response: { 200: DossierSchema },
  },
  request: { params: { id: '4d5e6f7a-8b9c-4d0e-9f1a-2b3c4d5e6f70' }, body: { parent_id: null } },
  responses: { 200: { description: 'Le dossier modifié', example: { ...EXEMPLE_SOUS_DOSSIER, parent_id: null, updated_at: '2026-03-05T14:00:00.000Z' } } },
})

export const deleteDossier = defineOperation({
  method: 'DELETE',
  url: '/dossiers/:id',
  operationId: 'deleteDossier',
  tags: ['documents'],
  summary: 'Envoyer un dossier à la corbeille',
  description: DELETE_DESCRIPTION,
  access: { roles: WRITERS },
  problems: ['NOT_EMPTY', 'LOCKED', 'LEGAL_HOLD', 'RETENTION_ACTIVE'],
  schema: { params: IdParamsSchema, querystring: DeleteQuerySchema, response: { 204: Deleted } },
  request: { params: { id: EXEMPLE_DOSSIER_ID }, querystring: { recursif: true } },
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
