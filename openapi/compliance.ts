import { type Static, Type } from '@sinclair/typebox'
import { IdParamsSchema, IdSchema, PageQuerySchema, PageSchema, StringEnum, TimestampSchema } from './common.ts'
import { Nullable } from './documents.ts'
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

// Examples
const AUTEUR = '3f6c2a9e-8b1d-4c7a-a2e5-9d0f1b3c5e7a'
const EXEMPLE_ID = { fichier: '9d4f6b2a-1c3e-4a5b-8d7c-2e1f0a9b8c7d', dossier: '3c4d5e6f-7a8b-4c9d-8e1f-2a3b4c5d6e7f' } as const
const EXEMPLE_VERROU = {
  id: '0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d',
  cible: { type: 'fichier', id: EXEMPLE_ID.fichier },
  motif: 'Contrat signé : plus aucune modification',
  created_by: AUTEUR,
  created_at: '2026-03-06T09:00:00.000Z',
  leve_at: null,
  leve_par: null,
} as const
const EXEMPLE_REGLE_ID = '1b2c3d4e-5f6a-4b7c-8d9e-0f1a2b3c4d5e'
const EXEMPLE_REGLE = {
  id: EXEMPLE_REGLE_ID,
  nom: 'Bulletins de paie : 50 ans',
  cible: { type: 'casier', id: '2b3c4d5e-6f7a-4b8c-9d0e-1f2a3b4c5d6e' },
  duree: 50,
  unite: 'annees',
  evenement: 'creation',
  date_depart: null,
  action_terme: 'revue',
  mode: 'conformite',
  created_by: AUTEUR,
  created_at: '2026-03-06T09:00:00.000Z',
  updated_at: '2026-03-06T09:00:00.000Z',
  retiree_at: null,
  motif_retrait: null,
} as const
const EXEMPLE_GEL_ID = '2c3d4e5f-6a7b-4c8d-9e0f-1a2b3c4d5e6f'
const EXEMPLE_GEL: GelDto = {
  id: EXEMPLE_GEL_ID,
  nom: 'Litige prud’homal Petit',
  motif: 'Conservation des pièces pendant la procédure',
  reference: 'RG 26/00412',
  objets: [{ type: 'dossier', id: EXEMPLE_ID.dossier, origine: 'explicite', added_at: '2026-03-06T09:30:00.000Z' }],
  created_by: AUTEUR,
  created_at: '2026-03-06T09:30:00.000Z',
  leve_at: null,
  leve_par: null,
  motif_levee: null,
}
const page = <T>(item: T) => ({ items: [item], next_cursor: null })

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
    problems: ['ALREADY_LOCKED'],
    schema: { params: IdParamsSchema, body: LockBody, response: { 201: VerrouSchema } },
    request: { params: { id: EXEMPLE_ID[kind] }, body: { motif: 'Contrat signé : plus aucune modification' } },
    responses: {
      201: {
        description: 'Verrou posé',
        example: { ...EXEMPLE_VERROU, cible: { type: kind, id: EXEMPLE_ID[kind] } },
      },
    },
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
    description:
      'Lève le verrou : l’élément redevient modifiable. Réservé à l’auteur du verrou et aux administrateurs ; le verrou ' +
      'levé reste lisible (GET /conformite/verrous?actif=false).',
    access: { roles: WRITERS },
    problems: ['NOT_LOCKED'],
    schema: { params: IdParamsSchema, response: { 204: Type.Null({ description: 'Déverrouillé' }) } },
    request: { params: { id: EXEMPLE_ID[kind] } },
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
  description: 
    'Liste les verrous de l’organisation par pages, des plus récents aux plus anciens : les verrous actifs, ou ' +
    'aussi les levés avec `actif=false`.',
  access: { roles: ALL_ROLES },
  schema: { querystring: ActiveQuerySchema, response: { 200: PageSchema(VerrouSchema, 'PageVerrous') } },
  request: { querystring: { actif: true, limit: 50 } },
  responses: { 200: { description: 'Une page de verrous', example: page(EXEMPLE_VERROU) } },
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
  description: 
    'Liste les règles de conservation de l’organisation par pages : les règles en vigueur, ou aussi les retirées ' +
    'avec `actif=false`. Pour savoir ce qui s’applique à un fichier précis, GET /fichiers/{id}/conservation.',
  access: { roles: ALL_ROLES },
  schema: { querystring: ActiveQuerySchema, response: { 200: PageSchema(RegleSchema, 'PageRegles') } },
  request: { querystring: { actif: true, limit: 50 } },
  responses: { 200: { description: 'Une page de règles', example: page(EXEMPLE_REGLE) } },
})

export const createRegle = defineOperation({
  method: 'POST',
  url: '/conformite/regles',
  operationId: 'createRegle',
  tags: ['conformite'],
  summary: 'Créer une règle de conservation sur une armoire, un casier ou un dossier',
  description: 
    'Pose une durée de conservation sur une armoire, un casier ou un dossier : tout ce qu’il contient, et ce qui y ' +
    'sera ajouté, ne peut être supprimé avant l’échéance. Quand plusieurs règles s’appliquent à un fichier, la ' +
    'plus longue l’emporte. Réservé aux administrateurs.',
  access: { roles: ADMINS },
  problems: ['BAD_REQUEST'],
  schema: { body: NewRegleSchema, response: { 201: RegleSchema } },
  request: {
    body: {
      nom: 'Bulletins de paie : 50 ans',
      cible: { type: 'casier', id: '2b3c4d5e-6f7a-4b8c-9d0e-1f2a3b4c5d6e' },
      duree: 50,
      unite: 'annees',
      evenement: 'creation',
      action_terme: 'revue',
      mode: 'conformite',
    },
  },
  responses: { 201: { description: 'La règle créée', example: EXEMPLE_REGLE } },
})

export const getRegle = defineOperation({
  method: 'GET',
  url: '/conformite/regles/:id',
  operationId: 'getRegle',
  tags: ['conformite'],
  summary: 'Lire une règle de conservation',
  description: 
    'Rend une règle de conservation, sa cible, sa durée et son mode ; une règle retirée reste lisible avec son ' +
    'motif.',
  access: { roles: ALL_ROLES },
  schema: { params: IdParamsSchema, response: { 200: RegleSchema } },
  request: { params: { id: EXEMPLE_REGLE_ID } },
  responses: { 200: { description: 'La règle', example: EXEMPLE_REGLE } },
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
  problems: ['BAD_REQUEST', 'RETENTION_COMPLIANCE_MODE', 'REASON_REQUIRED'],
  schema: { params: IdParamsSchema, body: RegleUpdateSchema, response: { 200: RegleSchema } },
  request: { params: { id: EXEMPLE_REGLE_ID }, body: { duree: 60 } },
  responses: { 200: { description: 'La règle modifiée', example: { ...EXEMPLE_REGLE, duree: 60, updated_at: '2026-03-07T10:00:00.000Z' } } },
})

export const deleteRegle = defineOperation({
  method: 'DELETE',
  url: '/conformite/regles/:id',
  operationId: 'deleteRegle',
  tags: ['conformite'],
  summary: 'Retirer une règle de gouvernance, avec un motif',
  description: 
    'Retire une règle en mode gouvernance, avec un motif : ce qu’elle protégeait redevient supprimable (sauf autre ' +
    'règle). Une règle en mode conformité ne peut pas être retirée. La règle retirée reste lisible, avec son motif.',
  access: { roles: ADMINS },
  problems: ['RETENTION_COMPLIANCE_MODE'],
  schema: {
    params: IdParamsSchema,
    body: Type.Object({ motif: MotifSchema }, { additionalProperties: false }),
    response: { 204: Type.Null({ description: 'Retirée' }) },
  },
  request: { params: { id: EXEMPLE_REGLE_ID }, body: { motif: 'Règle remplacée par la politique 2026' } },
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
  description: 
    'Clôture un dossier (une affaire terminée, un exercice arrêté) : les durées de conservation comptées depuis la ' +
    'clôture partent maintenant, pour tout ce que le dossier contient.',
  access: { roles: WRITERS },
  problems: ['ALREADY_CLOSED'],
  schema: {
    params: IdParamsSchema,
    body: Type.Object({ motif: Type.Optional(MotifSchema) }, { additionalProperties: false }),
    response: { 201: ClotureSchema },
  },
  request: { params: { id: '3c4d5e6f-7a8b-4c9d-8e1f-2a3b4c5d6e7f' }, body: { motif: 'Exercice 2025 arrêté' } },
  responses: {
    201: {
      description: 'Dossier clôturé',
      example: { dossier_id: '3c4d5e6f-7a8b-4c9d-8e1f-2a3b4c5d6e7f', cloture_at: '2026-03-07T10:00:00.000Z', cloture_par: AUTEUR, motif: 'Exercice 2025 arrêté' },
    },
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
  description: 
    'Dit pourquoi un fichier ne peut pas être supprimé, ou jusqu’à quand : chaque règle qui s’applique et d’où ' +
    'elle vient, l’échéance qui l’emporte, les verrous et les gels juridiques qui le couvrent.',
  access: { roles: ALL_ROLES },
  schema: { params: IdParamsSchema, response: { 200: ConservationSchema } },
  request: { params: { id: EXEMPLE_ID.fichier } },
  responses: {
    200: {
      description: 'Ce qui s’applique au fichier',
      example: {
        fichier_id: EXEMPLE_ID.fichier,
        sous_conservation: true,
        jusqua: '2076-03-02T10:05:12.402Z',
        regle_determinante: { id: EXEMPLE_REGLE_ID, nom: 'Bulletins de paie : 50 ans' },
        action_terme: 'revue',
        termes: [
          {
            origine: 'heritee',
            regle: { id: EXEMPLE_REGLE_ID, nom: 'Bulletins de paie : 50 ans', mode: 'conformite' },
            depuis: { type: 'casier', id: '2b3c4d5e-6f7a-4b8c-9d0e-1f2a3b4c5d6e' },
            depart: '2026-03-02T10:05:12.402Z',
            jusqua: '2076-03-02T10:05:12.402Z',
            action_terme: 'revue',
            mode: 'conformite',
          },
        ],
        verrous: [],
        gels: [],
      },
    },
  },
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
  description: 
    'Liste les gels juridiques de l’organisation par pages : les gels en vigueur, ou aussi les levés avec ' +
    '`actif=false`.',
  access: { roles: ALL_ROLES },
  schema: { querystring: ActiveQuerySchema, response: { 200: PageSchema(GelSchema, 'PageGels') } },
  request: { querystring: { actif: true, limit: 50 } },
  responses: { 200: { description: 'Une page de gels', example: page(EXEMPLE_GEL) } },
})

export const createGel = defineOperation({
  method: 'POST',
  url: '/conformite/gels',
  operationId: 'createGel',
  tags: ['conformite'],
  summary: 'Poser un gel juridique',
  description: 
    'Pose un gel juridique (litige, enquête, contrôle) sur des éléments : rien de ce qu’il couvre, ni ce qui y ' +
    'sera ajouté, ne peut être supprimé, purgé ni détruit tant qu’il n’est pas levé, quelles que soient les règles ' +
    'de conservation. Réservé aux administrateurs.',
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
  request: {
    body: {
      nom: 'Litige prud’homal Petit',
      motif: 'Conservation des pièces pendant la procédure',
      reference: 'RG 26/00412',
      objets: [{ type: 'dossier', id: EXEMPLE_ID.dossier }],
    },
  },
  responses: { 201: { description: 'Le gel posé', example: EXEMPLE_GEL } },
})

export const getGel = defineOperation({
  method: 'GET',
  url: '/conformite/gels/:id',
  operationId: 'getGel',
  tags: ['conformite'],
  summary: 'Lire un gel juridique',
  description: 
    'Rend un gel juridique, les éléments qu’il couvre (posés explicitement ou suivis lors d’un déplacement) et, ' +
    's’il est levé, quand, par qui et pourquoi.',
  access: { roles: ALL_ROLES },
  schema: { params: IdParamsSchema, response: { 200: GelSchema } },
  request: { params: { id: EXEMPLE_GEL_ID } },
  responses: { 200: { description: 'Le gel', example: EXEMPLE_GEL } },
})

export const addGelObjets = defineOperation({
  method: 'POST',
  url: '/conformite/gels/:id/objets',
  operationId: 'addGelObjets',
  tags: ['conformite'],
  summary: 'Étendre un gel à d’autres éléments',
  description: 
    'Étend un gel en vigueur à d’autres éléments (une pièce découverte en cours de procédure), avec tout leur ' +
    'contenu.',
  access: { roles: ADMINS },
  problems: ['HOLD_RELEASED'],
  schema: {
    params: IdParamsSchema,
    body: Type.Object({ objets: ObjetsSchema }, { additionalProperties: false }),
    response: { 200: GelSchema },
  },
  request: { params: { id: EXEMPLE_GEL_ID }, body: { objets: [{ type: 'fichier', id: EXEMPLE_ID.fichier }] } },
  responses: {
    200: {
      description: 'Le gel étendu',
      example: {
        ...EXEMPLE_GEL,
        objets: [...EXEMPLE_GEL.objets, { type: 'fichier', id: EXEMPLE_ID.fichier, origine: 'explicite', added_at: '2026-03-08T11:00:00.000Z' }],
      },
    },
  },
})

export const releaseGel = defineOperation({
  method: 'POST',
  url: '/conformite/gels/:id/levee',
  operationId: 'releaseGel',
  tags: ['conformite'],
  summary: 'Lever un gel juridique, avec un motif',
  description: 
    'Lève un gel juridique quand la procédure est close, avec un motif gardé au journal : ses éléments ' +
    'redeviennent soumis aux seules règles de conservation. Le gel levé reste lisible.',
  access: { roles: ADMINS },
  problems: ['HOLD_RELEASED'],
  schema: {
    params: IdParamsSchema,
    body: Type.Object({ motif: MotifSchema }, { additionalProperties: false }),
    response: { 200: GelSchema },
  },
  request: { params: { id: EXEMPLE_GEL_ID }, body: { motif: 'Jugement définitif rendu' } },
  responses: {
    200: {
      description: 'Le gel levé',
      example: { ...EXEMPLE_GEL, leve_at: '2026-09-01T10:00:00.000Z', leve_par: AUTEUR, motif_levee: 'Jugement définitif rendu' },
    },
  },
})

// Disposal at term

export const EliminationSchema = Type.Object(
  {
    id: IdSchema,
    fichier: Type.Object({ id: IdSchema, nom: Type.String() }),
    regle: Nullable(Type.Object({ id: IdSchema, nom: Type.String() })),
    action_terme: ActionTermeSchema,
    terme: TimestampSchema,
    statut: StringEnum(['en_attente', 'planifiee', 'detruite', 'prolongee', 'conservee', 'annulee'], {
      description:
        '`en_attente` : à trancher par un administrateur ; `planifiee` : détruite à `destruction_prevue_at` sauf opposition ; ' +
        '`annulee` : le fichier n’existe plus ou une nouvelle conservation s’applique',
    }),
    destruction_prevue_at: Nullable(TimestampSchema),
    decision: Nullable(StringEnum(['approuver', 'prolonger', 'conserver', 'opposer'])),
    decide_par: Nullable(IdSchema),
    decide_at: Nullable(TimestampSchema),
    motif: Nullable(Type.String()),
    certificat_id: Nullable(IdSchema),
    created_at: TimestampSchema,
  },
  { $id: 'Elimination', description: 'Un fichier arrivé au terme de sa conservation' },
)
export type EliminationDto = Static<typeof EliminationSchema>

const EXEMPLE_ELIMINATION_ID = '4e5f6a7b-8c9d-4e0f-9a1b-2c3d4e5f6a7b'
const EXEMPLE_CERTIFICAT_ID = '5f6a7b8c-9d0e-4f1a-8b2c-3d4e5f6a7b8c'
const EXEMPLE_ELIMINATION: EliminationDto = {
  id: EXEMPLE_ELIMINATION_ID,
  fichier: { id: EXEMPLE_ID.fichier, nom: 'Bulletin 1975-03.pdf' },
  regle: { id: EXEMPLE_REGLE_ID, nom: 'Bulletins de paie : 50 ans' },
  action_terme: 'revue',
  terme: '2026-03-01T00:00:00.000Z',
  statut: 'en_attente',
  destruction_prevue_at: null,
  decision: null,
  decide_par: null,
  decide_at: null,
  motif: null,
  certificat_id: null,
  created_at: '2026-03-02T02:41:00.000Z',
}
const HASH = (c: string) => c.repeat(64)
const EXEMPLE_CERTIFICAT: CertificatDto = {
  id: EXEMPLE_CERTIFICAT_ID,
  organisation_id: '6a7b8c9d-0e1f-4a2b-9c3d-4e5f6a7b8c9d',
  emis_le: '2026-03-09T10:00:00.000Z',
  elimination_id: EXEMPLE_ELIMINATION_ID,
  fichier: { id: EXEMPLE_ID.fichier, nom: 'Bulletin 1975-03.pdf', chemin: 'RH / Paie / 1975 / Bulletin 1975-03.pdf', taille_totale: 48211 },
  versions: [
    {
      version_id: '7b8c9d0e-1f2a-4b3c-8d4e-5f6a7b8c9d0e',
      version_number: 1,
      nom: 'Bulletin 1975-03.pdf',
      type_mime: 'application/pdf',
      taille: 48211,
      sha256: HASH('a'),
      cle_id: '8c9d0e1f-2a3b-4c4d-9e5f-6a7b8c9d0e1f',
      created_at: '1976-01-05T09:00:00.000Z',
    },
  ],
  regle: { id: EXEMPLE_REGLE_ID, nom: 'Bulletins de paie : 50 ans', mode: 'conformite', duree: 50, unite: 'annees', evenement: 'creation' },
  terme: '2026-03-01T00:00:00.000Z',
  decision: { automatique: false, par: AUTEUR, motif: 'Durée légale écoulée, aucun contentieux', le: '2026-03-09T10:00:00.000Z' },
  journal: {
    destruction: { sequence: 4812, action: 'DESTROYED', created_at: '2026-03-09T10:00:00.000Z', hash: HASH('c'), hash_precedent: HASH('b') },
    historique: [
      { sequence: 12, action: 'FILE_UPLOADED', created_at: '1976-01-05T09:00:00.000Z', hash: HASH('d'), hash_precedent: HASH('e') },
      { sequence: 4812, action: 'DESTROYED', created_at: '2026-03-09T10:00:00.000Z', hash: HASH('c'), hash_precedent: HASH('b') },
    ],
  },
  empreinte: HASH('f'),
}

export const listEliminations = defineOperation({
  method: 'GET',
  url: '/conformite/eliminations',
  operationId: 'listEliminations',
  tags: ['conformite'],
  summary: 'Lister les éliminations : la file de revue et les destructions prévues',
  description: 'Une tâche quotidienne y ajoute les fichiers dont la conservation a pris fin.',
  access: { roles: ALL_ROLES },
  request: { querystring: { statut: 'en_attente' } },
  responses: { 200: { description: 'Une page d’éliminations, des plus récentes aux plus anciennes', example: page(EXEMPLE_ELIMINATION) } },
  schema: {
    querystring: Type.Composite([
      PageQuerySchema,
      Type.Object({ statut: Type.Optional(StringEnum(['en_attente', 'planifiee', 'detruite', 'prolongee', 'conservee', 'annulee'])) }),
    ]),
    response: { 200: PageSchema(EliminationSchema, 'PageEliminations') },
  },
})

export const decideElimination = defineOperation({
  method: 'POST',
  url: '/conformite/eliminations/:id/decision',
  operationId: 'decideElimination',
  tags: ['conformite'],
  summary: 'Trancher une élimination : détruire, prolonger ou conserver indéfiniment',
  description:
    '`approuver` détruit le fichier (crypto-effacement de chaque version) et émet un certificat de destruction ; ' +
    '`prolonger` fixe un nouveau terme (`jusqua`) ; `conserver` garde le fichier sans échéance. Un gel juridique ' +
    'empêche la destruction (`LEGAL_HOLD`).',
  access: { roles: ADMINS },
  problems: ['BAD_REQUEST', 'DISPOSAL_DECIDED', 'LEGAL_HOLD', 'RETENTION_ACTIVE'],
  request: { params: { id: EXEMPLE_ELIMINATION_ID }, body: { decision: 'approuver', motif: 'Durée légale écoulée, aucun contentieux' } },
  responses: {
    200: {
      description: 'L’élimination tranchée ; détruite, elle nomme son certificat',
      example: { ...EXEMPLE_ELIMINATION, statut: 'detruite', decision: 'approuver', decide_par: AUTEUR, decide_at: '2026-03-09T10:00:00.000Z', motif: 'Durée légale écoulée, aucun contentieux', certificat_id: EXEMPLE_CERTIFICAT_ID },
    },
  },
  schema: {
    params: IdParamsSchema,
    body: Type.Object(
      {
        decision: StringEnum(['approuver', 'prolonger', 'conserver']),
        motif: MotifSchema,
        jusqua: Type.Optional(Type.String({ format: 'date-time', description: 'Nouveau terme, avec `prolonger`' })),
      },
      { additionalProperties: false },
    ),
    response: { 200: EliminationSchema },
  },
})

export const objectElimination = defineOperation({
  method: 'POST',
  url: '/conformite/eliminations/:id/opposition',
  operationId: 'objectElimination',
  tags: ['conformite'],
  summary: 'S’opposer à une destruction prévue : elle passe en revue',
  description:
    'Un fichier dont la règle prévoit la destruction à l’échéance est détruit à l’issue du préavis sauf opposition : ' +
    'l’opposition, motivée, le renvoie dans la file de revue d’un administrateur.',
  access: { roles: WRITERS },
  problems: ['DISPOSAL_DECIDED'],
  request: { params: { id: EXEMPLE_ELIMINATION_ID }, body: { motif: 'Pièce encore utile au dossier client' } },
  responses: {
    200: {
      description: 'L’élimination, de retour en revue',
      example: { ...EXEMPLE_ELIMINATION, action_terme: 'destruction', decision: 'opposer', decide_par: AUTEUR, decide_at: '2026-03-05T08:00:00.000Z', motif: 'Pièce encore utile au dossier client' },
    },
  },
  schema: {
    params: IdParamsSchema,
    body: Type.Object({ motif: MotifSchema }, { additionalProperties: false }),
    response: { 200: EliminationSchema },
  },
})

const DestroyedVersionSchema = Type.Object({
  version_id: IdSchema,
  version_number: Type.Integer(),
  nom: Type.String(),
  type_mime: Type.String(),
  taille: Type.Integer(),
  sha256: Type.String(),
  cle_id: IdSchema,
  created_at: TimestampSchema,
})

const EntryProofSchema = Type.Object({
  sequence: Type.Integer(),
  action: Type.String(),
  created_at: TimestampSchema,
  hash: Type.String({ description: 'Hash chaîné de l’entrée, en hexadécimal' }),
  hash_precedent: Nullable(Type.String()),
})

export const CertificatSchema = Type.Object(
  {
    id: IdSchema,
    organisation_id: IdSchema,
    emis_le: TimestampSchema,
    elimination_id: IdSchema,
    fichier: Type.Object({ id: IdSchema, nom: Type.String(), chemin: Type.String(), taille_totale: Type.Integer() }),
    versions: Type.Array(DestroyedVersionSchema),
    regle: Nullable(
      Type.Object({ id: IdSchema, nom: Type.String(), mode: ModeSchema, duree: Type.Integer(), unite: UniteSchema, evenement: EvenementSchema }),
    ),
    terme: TimestampSchema,
    decision: Type.Object({
      automatique: Type.Boolean({ description: 'Détruit à l’issue du préavis, sans opposition' }),
      par: Nullable(IdSchema),
      motif: Nullable(Type.String()),
      le: TimestampSchema,
    }),
    journal: Type.Object({
      destruction: EntryProofSchema,
      historique: Type.Array(EntryProofSchema, { description: 'Les entrées du journal sur ce fichier, jusqu’à sa destruction' }),
    }),
    empreinte: Type.String({ description: 'SHA-256 de la forme canonique du certificat (clés triées, sans ce champ)' }),
  },
  { $id: 'CertificatDestruction', description: 'Certificat de destruction' },
)
export type CertificatDto = Static<typeof CertificatSchema>

export const getCertificat = defineOperation({
  method: 'GET',
  url: '/conformite/certificats/:id',
  operationId: 'getCertificat',
  tags: ['conformite'],
  summary: 'Lire un certificat de destruction, en JSON ou en PDF',
  description:
    'Ce qui a été détruit (identifiants, chemin, noms, tailles, SHA-256 de chaque version), sous quelle règle, qui l’a ' +
    'approuvé et quand, et les hashs chaînés des entrées du journal qui le prouvent. `empreinte` est le SHA-256 de la ' +
    'forme JSON canonique (clés triées, sans espaces) du certificat sans ce champ. `format=pdf` : le même, imprimable.',
  access: { roles: ALL_ROLES },
  request: { params: { id: EXEMPLE_CERTIFICAT_ID } },
  responses: { 200: { description: 'Le certificat', example: EXEMPLE_CERTIFICAT } },
  schema: {
    params: IdParamsSchema,
    querystring: Type.Object({ format: StringEnum(['json', 'pdf'], { default: 'json' }) }),
    response: {
      200: {
        description: 'Le certificat',
        content: {
          'application/json': { schema: CertificatSchema },
          'application/pdf': { schema: Type.String({ format: 'binary' }) },
        },
      },
    },
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
  listEliminations,
  decideElimination,
  objectElimination,
  getCertificat,
]
