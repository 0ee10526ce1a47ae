import { type Static, Type } from '@sinclair/typebox'
import { IdSchema, Nullable, PageQuerySchema, PageSchema, StringEnum, TimestampSchema } from './common.ts'
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

export const listCorbeille = defineOperation({
  method: 'GET',
  url: '/corbeille',
  operationId: 'listCorbeille',
  tags: ['corbeille'],
  summary: 'Lister la corbeille, des suppressions les plus récentes aux plus anciennes',
  access: { roles: ALL_ROLES },
  schema: { querystring: TrashQuerySchema, response: { 200: PageSchema(TrashItemSchema, 'PageCorbeille') } },
})

export const restoreFromTrash = defineOperation({
  method: 'POST',
  url: '/corbeille/:type/:id/restaurer',
  operationId: 'restoreFromTrash',
  tags: ['corbeille'],
  summary: 'Restaurer un élément et son contenu',
  description:
    'Restaure ce que sa suppression avait emporté. Refusé si son parent est lui-même dans la corbeille, ou si un ' +
    'élément de même nom a été créé entre-temps au même endroit.',
  access: { roles: WRITERS },
  problems: [409],
  schema: { params: TrashParams, response: { 204: Type.Null({ description: 'Restauré' }) } },
})

export const purgeFromTrash = defineOperation({
  method: 'DELETE',
  url: '/corbeille/:type/:id',
  operationId: 'purgeFromTrash',
  tags: ['corbeille'],
  summary: 'Détruire définitivement un élément de la corbeille',
  description:
    'Suppression sécurisée : les clés de chiffrement de chaque version sont détruites (crypto-effacement) puis les ' +
    'contenus chiffrés supprimés ; le journal garde les identifiants, tailles et empreintes détruits.',
  access: { roles: ADMINS },
  schema: { params: TrashParams, response: { 204: Type.Null({ description: 'Détruit' }) } },
})

export const trashOperations = [listCorbeille, restoreFromTrash, purgeFromTrash]
