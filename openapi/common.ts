import { type Static, type TSchema, Type } from '@sinclair/typebox'

/** Identifiers are UUIDs everywhere. */
export const IdSchema = Type.String({ format: 'uuid', description: 'Identifiant (UUID)' })
export const IdParamsSchema = Type.Object({ id: IdSchema })

export const TimestampSchema = Type.String({ format: 'date-time' })

/** The schema, or null: documented as `anyOf [schema, null]`. */
export const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()])

export const Sha256Schema = Type.String({ pattern: '^[0-9a-fA-F]{64}$', description: 'Empreinte SHA-256 du contenu en clair, en hexadécimal' })

/** A string enum, documented as `{type: string, enum: [...]}` rather than a union of constants. */
export function StringEnum<const T extends readonly string[]>(values: T, options: { description?: string; default?: T[number] } = {}) {
  return Type.Unsafe<T[number]>({ type: 'string', enum: [...values], ...options })
}

export const ROLES = ['admin', 'contributeur', 'lecteur'] as const
export const RoleSchema = StringEnum(ROLES, { description: 'Rôle dans l’organisation' })
export type Role = Static<typeof RoleSchema>

export const SortOrderSchema = StringEnum(['asc', 'desc'], { default: 'asc', description: 'Sens du tri' })
export type SortOrder = Static<typeof SortOrderSchema>

/** Cursor pagination: `cursor` is opaque, taken from the previous page's `next_cursor`. */
export const PageQuerySchema = Type.Object({
  limit: Type.Integer({ minimum: 1, maximum: 200, default: 50, description: 'Nombre d’éléments par page' }),
  cursor: Type.Optional(Type.String({ maxLength: 512, description: 'Curseur opaque de la page suivante' })),
})
export type PageQuery = Static<typeof PageQuerySchema>

export function PageSchema<T extends TSchema>(item: T, name: string) {
  return Type.Object(
    {
      items: Type.Array(item),
      next_cursor: Type.Union([Type.String(), Type.Null()], { description: 'null sur la dernière page' }),
    },
    { $id: name },
  )
}

/** An offending field of a request, in a 400 problem. */
export const FieldErrorSchema = Type.Object({
  field: Type.String({ description: 'Chemin du champ, ex. body.email' }),
  message: Type.String(),
})

/** RFC 9457 problem details, the body of every error answer. */
export const ProblemSchema = Type.Object(
  {
    type: Type.String({ description: 'URI du type de problème' }),
    title: Type.String(),
    status: Type.Integer(),
    detail: Type.String(),
    code: Type.String({ description: 'Code machine stable, ex. FILE_LOCKED' }),
    request_id: Type.String(),
    errors: Type.Optional(Type.Array(FieldErrorSchema)),
  },
  { $id: 'Problem', description: 'Problème RFC 9457 (application/problem+json)' },
)
export type Problem = Static<typeof ProblemSchema>

/** Shared schemas, registered once with `app.addSchema` and referenced by `$ref`. */
export const sharedSchemas = [ProblemSchema]

/** A reference to a shared schema, typed as the schema itself. */
export function Ref<T extends TSchema>(schema: T) {
  if (!schema.$id) throw new Error('Ref needs a schema with an $id')
  return Type.Unsafe<Static<T>>({ $ref: `${schema.$id}#` })
}
