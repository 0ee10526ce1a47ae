import { type Expression, type RawBuilder, type SelectQueryBuilder, type SqlBool, sql } from 'kysely'
import { Errors } from '../../src/errors.ts'
import { decodeCursor, isBigintText, isTimestamp, page } from '../../src/pagination.ts'

export type SortKey = 'nom' | 'created_at' | 'updated_at' | 'taille'
export type SortOrder = 'asc' | 'desc'

export interface ListQuery {
  limit: number
  cursor?: string | undefined
  tri: SortKey
  ordre: SortOrder
}

const CASTS: Record<SortKey, string> = { nom: 'text', created_at: 'timestamptz', updated_at: 'timestamptz', taille: 'bigint' }
const FORMATS: Record<SortKey, (value: string) => boolean> = { nom: () => true, created_at: isTimestamp, updated_at: isTimestamp, taille: isBigintText }

/**
 * Keyset pagination over (sort key, id). The sort value travels in the cursor as text, as
 * PostgreSQL prints it, so timestamps keep their microseconds and names their exact form.
 */
export function keyset(alias: string, query: ListQuery) {
  const column = sql.ref(`${alias}.${query.tri}`)
  const key: RawBuilder<unknown> = query.tri === 'nom' ? sql`lower(${column})` : sql`${column}`
  const id = sql.ref(`${alias}.id`)
  let after: Expression<SqlBool> | null = null
  if (query.cursor) {
    const [tri, ordre, value, last] = decodeCursor<[string, string, string, string]>(query.cursor, ['string', 'string', 'string', 'uuid'])
    // The cursor reaches SQL casts: anything PostgreSQL could refuse is refused here, as a 400.
    if (tri !== query.tri || ordre !== query.ordre || !FORMATS[query.tri](value)) {
      throw new Errors.INVALID_CURSOR()
    }
    const op = sql.raw(query.ordre === 'asc' ? '>' : '<')
    after = sql<SqlBool>`(${key}, ${id}) ${op} (cast(${value} as ${sql.raw(CASTS[query.tri])}), cast(${last} as uuid))`
  }
  const sortValue = sql<string>`(${key})::text`.as('sort_value')
  return {
    /**
     * One page of `rows` (filtered, not yet ordered) mapped by `item`, with the cursor to the
     * next: the sort value is selected, the cursor applied, rows ordered by (key, id).
     */
    async page<D, T extends keyof D, O extends { id: string }, Item>(
      rows: SelectQueryBuilder<D, T, O>,
      item: (row: O & { sort_value: string }) => Item,
    ) {
      // Over a generic database Kysely cannot resolve what this selects: O plus sort_value.
      let selected = rows.select(sortValue) as unknown as SelectQueryBuilder<D, T, O & { sort_value: string }>
      if (after) selected = selected.where(after)
      const found = await selected.orderBy(key, query.ordre).orderBy(id, query.ordre).limit(query.limit + 1).execute()
      return page(found, query.limit, item, (row) => [query.tri, query.ordre, row.sort_value, row.id])
    },
  }
}
