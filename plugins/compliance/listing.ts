import { type SelectQueryBuilder, sql } from 'kysely'
import { Errors } from '../../src/errors.ts'
import { decodeCursor, page } from '../../src/pagination.ts'

const AT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

/**
 * Newest first over (created_at, id) of one compliance table; the timestamp travels in the
 * cursor with its microseconds.
 */
export async function newestFirst<Row extends { id: string; created_at: Date }, Item>(
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- any aliased compliance table
  query: SelectQueryBuilder<any, any, Row>,
  alias: string,
  q: { limit: number; cursor?: string | undefined },
  item: (row: Row) => Item,
) {
  const created = sql.ref(`${alias}.created_at`)
  const id = sql.ref(`${alias}.id`)
  let filtered = query
  if (q.cursor) {
    const [at, last] = decodeCursor<[string, string]>(q.cursor, ['string', 'string'])
    if (!AT.test(at) || !UUID.test(last)) throw new Errors.INVALID_CURSOR()
    filtered = query.where(sql<boolean>`(${created}, ${id}) < (${at}::timestamptz, ${last}::uuid)`)
  }
  const rows = (await filtered
    .select(sql<string>`to_char(${created} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`.as('sort_value'))
    .orderBy(created, 'desc')
    .orderBy(id, 'desc')
    .limit(q.limit + 1)
    .execute()) as (Row & { sort_value: string })[]
  return page(rows, q.limit, item, (row) => [row.sort_value, row.id])
}

export const iso = (d: Date | null): string | null => (d ? d.toISOString() : null)
