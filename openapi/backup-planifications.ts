import { type Static, Type } from '@sinclair/typebox'
import { IdParamsSchema, IdSchema, PageQuerySchema, PageSchema, StringEnum, TimestampSchema } from './common.ts'
import { Nullable } from './documents.ts'
import { ADMINS, defineOperation } from './operation.ts'
import { BACKUP_TYPES } from './backup.ts'

const Keep = (description: string) => Type.Integer({ minimum: 0, maximum: 1000, description })

export const ConservationSchema = Type.Object(
  {
    derniers: Keep('Les N sauvegardes les plus récentes'),
    quotidiennes: Keep('La plus récente de chacun des N derniers jours qui en ont une'),
    hebdomadaires: Keep('La plus récente de chacune des N dernières semaines (ISO) qui en ont une'),
    mensuelles: Keep('La plus récente de chacun des N derniers mois qui en ont une'),
  },
  {
    additionalProperties: false,
    description:
      'Ce que l’élagage garde après chaque exécution, comme `forget --keep-last/daily/weekly/monthly` de restic et ' +
      'Borg : une sauvegarde gardée par une règle l’est ; les autres sont détruites, jamais la dernière vérifiée.',
  },
)

const Cron = Type.String({
  minLength: 9,
  maxLength: 100,
  pattern: '^[0-9*/,\\- ]+$',
  description: 'Expression cron à cinq champs (minute heure jour mois jour-de-semaine), ex. `0 2 * * *`',
})
const Fuseau = Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z_]+(/[A-Za-z0-9_+\\-]+)*$', description: 'Fuseau horaire IANA' })

export const PlanificationSchema = Type.Object(
  {
    id: IdSchema,
    type: StringEnum(BACKUP_TYPES),
    cible_id: Nullable(IdSchema),
    frequence: Type.String(),
    fuseau: Type.String(),
    versions: StringEnum(['derniere', 'toutes']),
    conservation: ConservationSchema,
    active: Type.Boolean(),
    derniere_execution: Nullable(TimestampSchema),
    prochaine_execution: Nullable(TimestampSchema),
    created_by: Nullable(IdSchema),
    created_at: TimestampSchema,
    updated_at: TimestampSchema,
  },
  { $id: 'PlanificationSauvegarde' },
)
export type PlanificationDto = Static<typeof PlanificationSchema>

const CreateBody = Type.Object(
  {
    type: StringEnum(BACKUP_TYPES),
    cible_id: Type.Optional(IdSchema),
    frequence: Cron,
    fuseau: Type.Optional(Fuseau),
    versions: Type.Optional(StringEnum(['derniere', 'toutes'])),
    conservation: ConservationSchema,
    active: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
)

const UpdateBody = Type.Object(
  {
    frequence: Type.Optional(Cron),
    fuseau: Type.Optional(Fuseau),
    versions: Type.Optional(StringEnum(['derniere', 'toutes'])),
    conservation: Type.Optional(ConservationSchema),
    active: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false, minProperties: 1 },
)

const EXEMPLE: PlanificationDto = {
  id: '4c5d6e7f-8a9b-4c0d-9e1f-2a3b4c5d6e7f',
  type: 'systeme',
  cible_id: null,
  frequence: '0 2 * * *',
  fuseau: 'Europe/Paris',
  versions: 'derniere',
  conservation: { derniers: 3, quotidiennes: 7, hebdomadaires: 4, mensuelles: 12 },
  active: true,
  derniere_execution: '2026-03-06T01:00:00.000Z',
  prochaine_execution: '2026-03-07T01:00:00.000Z',
  created_by: '3f6c2a9e-8b1d-4c7a-a2e5-9d0f1b3c5e7a',
  created_at: '2026-03-01T10:00:00.000Z',
  updated_at: '2026-03-01T10:00:00.000Z',
}

export const createPlanification = defineOperation({
  method: 'POST',
  url: '/sauvegardes/planifications',
  operationId: 'createPlanification',
  tags: ['sauvegardes'],
  summary: 'Planifier des sauvegardes',
  description:
    'Planifie la sauvegarde régulière d’une cible (ou de toute l’organisation) selon une expression cron dans un ' +
    'fuseau ; chaque exécution crée une sauvegarde `planifie`, puis élague selon `conservation`. Un échec est ' +
    'signalé par e-mail aux administrateurs.',
  access: { roles: ADMINS },
  problems: ['NOT_FOUND', 'INVALID_TARGET'],
  schema: { body: CreateBody, response: { 201: PlanificationSchema } },
  request: { body: { type: 'systeme', frequence: '0 2 * * *', fuseau: 'Europe/Paris', conservation: { derniers: 3, quotidiennes: 7, hebdomadaires: 4, mensuelles: 12 } } },
  responses: { 201: { description: 'Planification créée', example: { ...EXEMPLE, derniere_execution: null } } },
})

export const listPlanifications = defineOperation({
  method: 'GET',
  url: '/sauvegardes/planifications',
  operationId: 'listPlanifications',
  tags: ['sauvegardes'],
  summary: 'Lister les planifications de sauvegarde',
  description: 'Liste les planifications de sauvegarde de l’organisation, les plus récentes d’abord.',
  access: { roles: ADMINS },
  schema: { querystring: PageQuerySchema, response: { 200: PageSchema(PlanificationSchema, 'PagePlanifications') } },
  request: { querystring: { limit: 20 } },
  responses: { 200: { description: 'Une page de planifications', example: { items: [EXEMPLE], next_cursor: null } } },
})

export const getPlanification = defineOperation({
  method: 'GET',
  url: '/sauvegardes/planifications/:id',
  operationId: 'getPlanification',
  tags: ['sauvegardes'],
  summary: 'Lire une planification de sauvegarde',
  description: 'Rend une planification, sa dernière et sa prochaine exécution.',
  access: { roles: ADMINS },
  schema: { params: IdParamsSchema, response: { 200: PlanificationSchema } },
  request: { params: { id: EXEMPLE.id } },
  responses: { 200: { description: 'La planification', example: EXEMPLE } },
})

export const updatePlanification = defineOperation({
  method: 'PATCH',
  url: '/sauvegardes/planifications/:id',
  operationId: 'updatePlanification',
  tags: ['sauvegardes'],
  summary: 'Modifier une planification de sauvegarde',
  description: 'Change la fréquence, le fuseau, les versions, la conservation ou suspend (`active: false`) une planification.',
  access: { roles: ADMINS },
  schema: { params: IdParamsSchema, body: UpdateBody, response: { 200: PlanificationSchema } },
  request: { params: { id: EXEMPLE.id }, body: { active: false } },
  responses: { 200: { description: 'La planification modifiée', example: { ...EXEMPLE, active: false, prochaine_execution: null } } },
})

export const deletePlanification = defineOperation({
  method: 'DELETE',
  url: '/sauvegardes/planifications/:id',
  operationId: 'deletePlanification',
  tags: ['sauvegardes'],
  summary: 'Supprimer une planification de sauvegarde',
  description: 'Arrête les exécutions ; les sauvegardes déjà faites restent.',
  access: { roles: ADMINS },
  schema: { params: IdParamsSchema, response: { 204: Type.Null({ description: 'Supprimée' }) } },
  request: { params: { id: EXEMPLE.id } },
})

export const planificationOperations = [createPlanification, listPlanifications, getPlanification, updatePlanification, deletePlanification]
