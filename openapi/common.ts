import { type Static, type TSchema, Type } from '@sinclair/typebox'

/*
 * Building blocks for what requests carry. The kernel's validator (src/validation.ts) gives
 * their formats the meaning the database has, and refuses in every string of every request
 * what PostgreSQL cannot store: U+0000 and lone UTF-16 surrogates.
 */

/** Identifiers are UUIDs everywhere, in the canonical form PostgreSQL prints (lower-case, 8-4-4-4-12). */
export const IdSchema = Type.String({ format: 'uuid', description: 'Identifiant (UUID)' })
export const IdParamsSchema = Type.Object({ id: IdSchema })

export const TimestampSchema = Type.String({ format: 'date-time' })

/** The largest value of a PostgreSQL `integer` column. */
export const INT32_MAX = 2_147_483_647

/**
 * An integer a request carries: always bounded, at most a PostgreSQL `integer` unless the
 * operation says less, so no number reaches SQL that a column cannot hold.
 */
export function IntegerSchema(options: { minimum?: number; maximum?: number; default?: number; description?: string } = {}) {
  return Type.Integer({ minimum: 0, maximum: INT32_MAX, ...options })
}

/** Free text a request carries; its maximum length is always said. */
export function TextSchema(options: { maxLength: number; minLength?: number; description?: string }) {
  return Type.String(options)
}

const INVISIBLES =
  'ni caractère de contrôle, ni caractère invisible ou de mise en forme (contrôles bidirectionnels comme U+202E, ' +
  'espaces sans chasse, U+FEFF…, d’après UTS #39 et UTS #55)'

/**
 * A name shown to people (a member's, an organisation's): trimmed, not empty, without the
 * characters that hide or reorder text.
 */
export function LabelSchema(maxLength: number, description = 'Nom affiché') {
  return Type.String({ minLength: 1, maxLength, format: 'libelle', description: `${description} : 1 à ${maxLength} caractères, ${INVISIBLES}` })
}

/** The name of an armoire, casier, dossier or fichier (upload file names follow the same rule). */
export const NameSchema = Type.String({
  minLength: 1,
  maxLength: 255,
  format: 'nom',
  description:
    `Nom affiché : 1 à 255 caractères, sans « / », ${INVISIBLES}, ni « . » ou « .. » ; les espaces ` +
    'de début et de fin sont retirés. Unique parmi les éléments voisins, sans distinction de casse.',
})

/** A string enum, documented as `{type: string, enum: [...]}` rather than a union of constants. */
export function StringEnum<const T extends readonly string[]>(values: T, options: { description?: string; default?: T[number] } = {}) {
  return Type.Unsafe<T[number]>({ type: 'string', enum: [...values], ...options })
}

export const ROLES = ['admin', 'contributeur', 'lecteur'] as const
export const RoleSchema = StringEnum(ROLES, { description: 'Rôle dans l’organisation' })
export type Role = Static<typeof RoleSchema>

/** Opaque to clients (base64url); what it decodes to is checked by src/pagination.ts before any SQL. */
export const CursorSchema = Type.String({
  minLength: 1,
  maxLength: 512,
  pattern: '^[A-Za-z0-9_-]+$',
  description: 'Curseur opaque de la page suivante (le `next_cursor` de la page précédente)',
})

/** Cursor pagination: `cursor` is opaque, taken from the previous page's `next_cursor`. */
export const PageQuerySchema = Type.Object({
  limit: Type.Integer({ minimum: 1, maximum: 200, default: 50, description: 'Nombre d’éléments par page' }),
  cursor: Type.Optional(CursorSchema),
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
