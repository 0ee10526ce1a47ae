import { type Static, Type } from '@sinclair/typebox'
import { IdParamsSchema, IdSchema, Nullable, PageQuerySchema, PageSchema, StringEnum, TimestampSchema } from './common.ts'
import { ADMINS, ALL_ROLES, defineOperation, WRITERS } from './operation.ts'

const MotifSchema = Type.String({ minLength: 1, maxLength: 2000, description: 'Motif, gardé au journal' })
const TreeTypeSchema = StringEnum(['armoire', 'casier', 'dossier', 'fichier'], { description: 'Type d’élément' })
const ContainerTypeSchema = StringEnum(['armoire', 'casier', 'dossier'], { description: 'Type de conteneur' })
const TargetSchema = Type.Object({ type: TreeTypeSchema, id: IdSchema })

// Locks

export const VerrouSchema = Type.Object(
  {
    id: IdSchema,
    cible: Type.Object({ type: StringEnum(['dossier', 'fichier']), id: IdSchema }),
    motif: Type.String(),
    created_by: Nullable(IdSchema),
    created_at: TimestampSchema,
    leve_at: Nullable(TimestampSchema),
    leve_par: Nullable(IdSchema),
  },
  { $id: 'Verrou', description: 'Un verrou : l’élément (et pour un dossier, tout son contenu) est en lecture seule' },
)
export type VerrouDto = Static<typeof VerrouSchema>

const LockBody = Type.Object({ motif: MotifSchema }, { additionalProperties: false })

function lockOperation(kind: 'fichier' | 'dossier') {
  const plural = kind === 'fichier' ? 'fichiers' : 'dossiers'
  const Label = kind === 'fichier' ? 'Fichier' : 'Dossier'
  return defineOperation({
    method: 'POST',
    url: `/${plural}/:id/verrou`,
    operationId: `lock${Label}`,
    tags: ['conformite'],
    summary: kind === 'fichier' ? 'Verrouiller un fichier' : 'Verrouiller un dossier et son contenu',
    description:
      'Un élément verrouillé est en lecture seule : ni nouvelle version, ni renommage, ni déplacement, ni suppression ' +
      '(`LOCKED`, 423)' +
      (kind === 'dossier' ? ' ; rien ne peut non plus y être ajouté, et tout ce qu’il contient est verrouillé avec lui.' : '.'),
    access: { roles: WRITERS },
    problems: [409],
    schema: { params: IdParamsSchema, body: LockBody, response: { 201: VerrouSchema } },
  })
}

function unlockOperation(kind: 'fichier' | 'dossier') {
  const plural = kind === 'fichier' ? 'fichiers' : 'dossiers'
  const Label = kind === 'fichier' ? 'Fichier' : 'Dossier'
  return defineOperation({
    method: 'DELETE',
    url: `/${plural}/:id/verrou`,
    operationId: `unlock${Label}`,
    tags: ['conformite'],
    summary: kind === 'fichier' ? 'Déverrouiller un fichier' : 'Déverrouiller un dossier',
    description: 'Par l’auteur du verrou ou un administrateur.',
    access: { roles: WRITERS },
    problems: [409],
    schema: { params: IdParamsSchema, response: { 204: Type.Null({ description: 'Déverrouillé' }) } },
  })
}

export const lockFichier = lockOperation('fichier')
export const unlockFichier = unlockOperation('fichier')
export const lockDossier = lockOperation('dossier')
export const unlockDossier = unlockOperation('dossier')

export const ActiveQuerySchema = Type.Composite([
  PageQuerySchema,
  Type.Object({ actif: Type.Boolean({ default: true, description: 'false : aussi les verrous levés' }) }),
])

export const listVerrous = defineOperation({
  method: 'GET',
  url: '/conformite/verrous',
  operationId: 'listVerrous',
  tags: ['conformite'],
  summary: 'Lister les verrous, des plus récents aux plus anciens',
  access: { roles: ALL_ROLES },
  schema: { querystring: ActiveQuerySchema, response: { 200: PageSchema(VerrouSchema, 'PageVerrous') } },
})

// Retention rules

const UniteSchema = StringEnum(['jours', 'mois', 'annees'], { description: 'Unité de la durée' })
const EvenementSchema = StringEnum(['creation', 'derniere_modification', 'cloture', 'date'], {
  description:
    'Point de départ : création du fichier, sa dernière modification, la clôture de son dossier (le plus proche clôturé), ' +
    'ou une date fixe (`date_depart`)',
})
const ActionTermeSchema = StringEnum(['revue', 'destruction'], {
  description: 'À l’échéance : file de revue, ou destruction après le préavis sauf opposition',
})
const ModeSchema = StringEnum(['gouvernance', 'conformite'], {
  description:
    '`gouvernance` : un administrateur peut la raccourcir ou la retirer, avec un motif ; `conformite` : personne, ' +
    'administrateur compris, ne peut la raccourcir ni la retirer, seulement la prolonger',
})

export const RegleSchema = Type.Object(
  {
    id: IdSchema,
    nom: Type.String(),
    cible: Type.Object({ type: ContainerTypeSchema, id: IdSchema }),
    duree: Type.Integer(),
    unite: UniteSchema,
    evenement: EvenementSchema,
    date_depart: Nullable(TimestampSchema),
    action_terme: ActionTermeSchema,
    mode: ModeSchema,
    created_by: Nullable(IdSchema),
    created_at: TimestampSchema,
    updated_at: TimestampSchema,
    retiree_at: Nullable(TimestampSchema),
    motif_retrait: Nullable(Type.String()),
  },
  { $id: 'RegleConservation', description: 'Règle de conservation, héritée par tout ce qui est sous sa cible' },
)
export type RegleDto = Static<typeof RegleSchema>

const DureeSchema = Type.Integer({ minimum: 1, maximum: 100000, description: 'Durée, dans l’unité' })

export const NewRegleSchema = Type.Object(
  {
    nom: Type.String({ minLength: 1, maxLength: 255 }),
    cible: Type.Object({ type: ContainerTypeSchema, id: IdSchema }, { additionalProperties: false }),
    duree: DureeSchema,
    unite: UniteSchema,
    evenement: EvenementSchema,
    date_depart: Type.Optional(Type.String({ format: 'date-time', description: 'Avec `evenement: date` seulement' })),
    action_terme: ActionTermeSchema,
    mode: ModeSchema,
  },
  { additionalProperties: false },
)

export const RegleUpdateSchema = Type.Object(
  {
    nom: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })),
    duree: Type.Optional(DureeSchema),
    unite: Type.Optional(UniteSchema),
    evenement: Type.Optional(EvenementSchema),
    date_depart: Type.Optional(Type.String({ format: 'date-time' })),
    action_terme: Type.Optional(ActionTermeSchema),
    mode: Type.Optional(ModeSchema),
    motif: Type.Optional(MotifSchema),
  },
  { additionalProperties: false },
)

export const listRegles = defineOperation({
  method: 'GET',
  url: '/conformite/regles',
  operationId: 'listRegles',
  tags: ['conformite'],
  summary: 'Lister les règles de conservation',
  access: { roles: ALL_ROLES },
  schema: { querystring: ActiveQuerySchema, response: { 200: PageSchema(RegleSchema, 'PageRegles') } },
})

export const createRegle = defineOperation({
  method: 'POST',
  url: '/conformite/regles',
  operationId: 'createRegle',
  tags: ['conformite'],
  summary: 'Créer une règle de conservation sur une armoire, un casier ou un dossier',
  description: 'Quand plusieurs règles s’appliquent à un fichier, la plus longue l’emporte.',
  access: { roles: ADMINS },
  problems: [422],
  schema: { body: NewRegleSchema, response: { 201: RegleSchema } },
})

export const getRegle = defineOperation({
  method: 'GET',
  url: '/conformite/regles/:id',
  operationId: 'getRegle',
  tags: ['conformite'],
  summary: 'Lire une règle de conservation',
  access: { roles: ALL_ROLES },
  schema: { params: IdParamsSchema, response: { 200: RegleSchema } },
})

export const updateRegle = defineOperation({
  method: 'PATCH',
  url: '/conformite/regles/:id',
  operationId: 'updateRegle',
  tags: ['conformite'],
  summary: 'Modifier une règle de conservation',
  description:
    'Prolonger est toujours permis. Raccourcir (durée plus courte, autre point de départ, destruction au lieu de revue, ' +
    'passage en gouvernance) : refusé en mode conformité (`RETENTION_COMPLIANCE_MODE`), permis en gouvernance avec un `motif`.',
  access: { roles: ADMINS },
  problems: [409, 422],
  schema: { params: IdParamsSchema, body: RegleUpdateSchema, response: { 200: RegleSchema } },
})

export const deleteRegle = defineOperation({
  method: 'DELETE',
  url: '/conformite/regles/:id',
  operationId: 'deleteRegle',
  tags: ['conformite'],
  summary: 'Retirer une règle de gouvernance, avec un motif',
  description: 'Une règle en mode conformité ne peut pas être retirée. La règle retirée reste lisible, avec son motif.',
  access: { roles: ADMINS },
  problems: [409],
  schema: {
    params: IdParamsSchema,
    body: Type.Object({ motif: MotifSchema }, { additionalProperties: false }),
    response: { 204: Type.Null({ description: 'Retirée' }) },
  },
})

export const ClotureSchema = Type.Object(
  { dossier_id: IdSchema, cloture_at: TimestampSchema, cloture_par: Nullable(IdSchema), motif: Nullable(Type.String()) },
  { $id: 'Cloture', description: 'La clôture d’un dossier : point de départ des règles `cloture`' },
)

export const closeDossier = defineOperation({
  method: 'POST',
  url: '/dossiers/:id/cloture',
  operationId: 'closeDossier',
  tags: ['conformite'],
  summary: 'Clôturer un dossier',
  description: 'Fait partir les durées de conservation comptées depuis la clôture, pour tout ce que le dossier contient.',
  access: { roles: WRITERS },
  problems: [409],
  schema: {
    params: IdParamsSchema,
    body: Type.Object({ motif: Type.Optional(MotifSchema) }, { additionalProperties: false }),
    response: { 201: ClotureSchema },
  },
})

export const TermeSchema = Type.Object({
  origine: StringEnum(['heritee', 'deplacement', 'prolongation', 'conservation'], {
    description:
      '`heritee` : d’une règle au-dessus du fichier ; `deplacement` : d’une règle que le fichier a quittée (son échéance le ' +
      'suit) ; `prolongation`, `conservation` : décidées en revue',
  }),
  regle: Nullable(Type.Object({ id: IdSchema, nom: Type.String(), mode: ModeSchema })),
  depuis: Nullable(Type.Object({ type: ContainerTypeSchema, id: IdSchema }, { description: 'Où la règle est attachée' })),
  depart: Nullable(TimestampSchema),
  jusqua: Nullable(Type.String({ format: 'date-time', description: 'null : sans échéance pour l’instant (dossier non clôturé, conservation indéfinie)' })),
  action_terme: ActionTermeSchema,
  mode: ModeSchema,
})

export const ConservationSchema = Type.Object(
  {
    fichier_id: IdSchema,
    sous_conservation: Type.Boolean(),
    jusqua: Nullable(TimestampSchema),
    regle_determinante: Nullable(Type.Object({ id: IdSchema, nom: Type.String() })),
    action_terme: Nullable(ActionTermeSchema),
    termes: Type.Array(TermeSchema),
    verrous: Type.Array(VerrouSchema),
    gels: Type.Array(Type.Object({ id: IdSchema, nom: Type.String(), depuis: TargetSchema })),
  },
  { $id: 'Conservation', description: 'Ce qui s’applique à un fichier : règles, d’où, jusqu’à quand ; verrous et gels' },
)

export const getConservation = defineOperation({
  method: 'GET',
  url: '/fichiers/:id/conservation',
  operationId: 'getConservation',
  tags: ['conformite'],
  summary: 'Conservation, verrous et gels qui s’appliquent à un fichier',
  access: { roles: ALL_ROLES },
  schema: { params: IdParamsSchema, response: { 200: ConservationSchema } },
})

// Legal holds

export const GelSchema = Type.Object(
  {
    id: IdSchema,
    nom: Type.String(),
    motif: Type.String(),
    reference: Nullable(Type.String()),
    objets: Type.Array(Type.Object({ type: TreeTypeSchema, id: IdSchema, origine: StringEnum(['explicite', 'deplacement']), added_at: TimestampSchema })),
    created_by: Nullable(IdSchema),
    created_at: TimestampSchema,
    leve_at: Nullable(TimestampSchema),
    leve_par: Nullable(IdSchema),
    motif_levee: Nullable(Type.String()),
  },
  { $id: 'GelJuridique', description: 'Gel juridique : rien de ce qu’il couvre ne peut être supprimé, purgé, détruit ni effacé' },
)
export type GelDto = Static<typeof GelSchema>

const ObjetsSchema = Type.Array(Type.Object({ type: TreeTypeSchema, id: IdSchema }, { additionalProperties: false }), {
  minItems: 1,
  maxItems: 500,
  description: 'Éléments couverts, récursivement (y compris ce qui y sera ajouté plus tard)',
})

export const listGels = defineOperation({
  method: 'GET',
  url: '/conformite/gels',
  operationId: 'listGels',
  tags: ['conformite'],
  summary: 'Lister les gels juridiques',
  access: { roles: ALL_ROLES },
  schema: { querystring: ActiveQuerySchema, response: { 200: PageSchema(GelSchema, 'PageGels') } },
})

export const createGel = defineOperation({
  method: 'POST',
  url: '/conformite/gels',
  operationId: 'createGel',
  tags: ['conformite'],
  summary: 'Poser un gel juridique',
  access: { roles: ADMINS },
  schema: {
    body: Type.Object(
      {
        nom: Type.String({ minLength: 1, maxLength: 255 }),
        motif: MotifSchema,
        reference: Type.Optional(Type.String({ maxLength: 255, description: 'Référence de l’affaire' })),
        objets: ObjetsSchema,
      },
      { additionalProperties: false },
    ),
    response: { 201: GelSchema },
  },
})

export const getGel = defineOperation({
  method: 'GET',
  url: '/conformite/gels/:id',
  operationId: 'getGel',
  tags: ['conformite'],
  summary: 'Lire un gel juridique',
  access: { roles: ALL_ROLES },
  schema: { params: IdParamsSchema, response: { 200: GelSchema } },
})

export const addGelObjets = defineOperation({
  method: 'POST',
  url: '/conformite/gels/:id/objets',
  operationId: 'addGelObjets',
  tags: ['conformite'],
  summary: 'Étendre un gel à d’autres éléments',
  access: { roles: ADMINS },
  problems: [409],
  schema: {
    params: IdParamsSchema,
    body: Type.Object({ objets: ObjetsSchema }, { additionalProperties: false }),
    response: { 200: GelSchema },
  },
})

export const releaseGel = defineOperation({
  method: 'POST',
  url: '/conformite/gels/:id/levee',
  operationId: 'releaseGel',
  tags: ['conformite'],
  summary: 'Lever un gel juridique, avec un motif',
  access: { roles: ADMINS },
  problems: [409],
  schema: {
    params: IdParamsSchema,
    body: Type.Object({ motif: MotifSchema }, { additionalProperties: false }),
    response: { 200: GelSchema },
  },
})

export const complianceOperations = [
  lockFichier,
  unlockFichier,
  lockDossier,
  unlockDossier,
  listVerrous,
  listRegles,
  createRegle,
  getRegle,
  updateRegle,
  deleteRegle,
  closeDossier,
  getConservation,
  listGels,
  createGel,
  getGel,
  addGelObjets,
  releaseGel,
]
