import { type Static, Type } from '@sinclair/typebox'
import { IdSchema, PageQuerySchema, PageSchema, StringEnum, TimestampSchema } from './common.ts'
import { Nullable } from './documents.ts'
import { ADMINS, ALL_ROLES, defineOperation, WRITERS } from './operation.ts'

export const TRASH_TYPES = ['armoire', 'casier', 'dossier', 'fichier'] as const
export const TrashTypeSchema = StringEnum(TRASH_TYPES, { description: 'Type d’élément' })
export type TrashType = Static<typeof TrashTypeSchema>

export const TrashItemSchema = Type.Object(
  {
    type: TrashTypeSchema,
    id: IdSchema,
    nom: Type.String(),
    parent: Nullable(
      Type.Object({ type: StringEnum(['armoire', 'casier', 'dossier']), id: IdSchema }, { description: 'Emplacement d’origine' }),
    ),
    taille: Nullable(Type.Integer({ description: 'Pour un fichier : taille de sa version courante' })),
    deleted_at: TimestampSchema,
    deleted_by: Nullable(IdSchema),
    purge_le: Type.String({ format: 'date-time', description: 'Date de la purge automatique' }),
  },
  { $id: 'ElementCorbeille', description: 'Un élément supprimé ; son contenu éventuel le suit' },
)
export type TrashItemDto = Static<typeof TrashItemSchema>

const TrashParams = Type.Object({ type: TrashTypeSchema, id: IdSchema })

export const TrashQuerySchema = Type.Composite([PageQuerySchema, Type.Object({ type: Type.Optional(TrashTypeSchema) })])

const EXEMPLE_ELEMENT = {
  type: 'dossier',
  id: '3c4d5e6f-7a8b-4c9d-8e1f-2a3b4c5d6e7f',
  nom: '2025',
  parent: { type: 'casier', id: '2b3c4d5e-6f7a-4b8c-9d0e-1f2a3b4c5d6e' },
  taille: null,
  deleted_at: '2026-03-06T08:45:00.000Z',
  deleted_by: '3f6c2a9e-8b1d-4c7a-a2e5-9d0f1b3c5e7a',
  purge_le: '2026-04-05T08:45:00.000Z',
} as const

export const listCorbeille = defineOperation({
  method: 'GET',
  url: '/corbeille',
  operationId: 'listCorbeille',
  tags: ['corbeille'],
  summary: 'Lister la corbeille, des suppressions les plus récentes aux plus anciennes',
  description: 
    'Liste les éléments supprimés de l’organisation (armoires, casiers, dossiers, fichiers), des plus récents aux ' +
    'plus anciens, avec leur emplacement d’origine et la date de leur purge automatique ; `type` n’en garde qu’une ' +
    'sorte. Le contenu d’un élément supprimé le suit et n’est pas listé à part.',
  access: { roles: ALL_ROLES },
  schema: { querystring: TrashQuerySchema, response: { 200: PageSchema(TrashItemSchema, 'PageCorbeille') } },
  request: { querystring: { type: 'dossier', limit: 50 } },
  responses: { 200: { description: 'Une page d’éléments supprimés', example: { items: [EXEMPLE_ELEMENT], next_cursor: null } } },
})

export const restoreFromTrash = defineOperation({
  method: 'POST',
  url: '/corbeille/:type/:id/restaurer',
  operationId: 'restoreFromTrash',
  tags: ['corbeille'],
  summary: 'Restaurer un élément et son contenu',
  description: 
    'Remet un élément supprimé à son emplacement d’origine, avec ce que sa suppression avait emporté. Refusé si ' +
    'son parent est lui-même dans la corbeille (restaurez-le d’abord), ou si un élément de même nom a été créé ' +
    'entre-temps au même endroit (renommez-le d’abord).',
  access: { roles: WRITERS },
  problems: ['PARENT_IN_TRASH', 'NAME_CONFLICT'],
  schema: { params: TrashParams, response: { 204: Type.Null({ description: 'Restauré' }) } },
  request: { params: { type: 'dossier', id: '3c4d5e6f-7a8b-4c9d-8e1f-2a3b4c5d6e7f' } },
})

export const purgeFromTrash = defineOperation({
  method: 'DELETE',
  url: '/corbeille/:type/:id',
  operationId: 'purgeFromTrash',
  tags: ['corbeille'],
  summary: 'Détruire définitivement un élément de la corbeille',
  description: 
    'Détruit définitivement un élément de la corbeille et son contenu, sans attendre la purge automatique : les ' +
    'clés de chiffrement de chaque version sont détruites (crypto-effacement) puis les contenus chiffrés supprimés ' +
    '; le journal garde les identifiants, tailles et empreintes détruits. Irréversible ; réservé aux ' +
    'administrateurs.',
  access: { roles: ADMINS },
  problems: ['LOCKED', 'LEGAL_HOLD', 'RETENTION_ACTIVE'],
  schema: { params: TrashParams, response: { 204: Type.Null({ description: 'Détruit' }) } },
  request: { params: { type: 'fichier', id: '9d4f6b2a-1c3e-4a5b-8d7c-2e1f0a9b8c7d' } },
})

export const trashOperations = [listCorbeille, restoreFromTrash, purgeFromTrash]
