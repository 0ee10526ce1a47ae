import { type SelectQueryBuilder, sql } from 'kysely'
import { INT32_MAX } from '../openapi/common.ts'
import { Errors } from './errors.ts'
import { textProblem } from './text.ts'
import { UUID } from './validation.ts'

/** Cursors are opaque to clients: base64url JSON of the last item's sort key. */
export function encodeCursor(key: readonly (string | number)[]): string {
  return Buffer.from(JSON.stringify(key)).toString('base64url')
}

/**
 * What a cursor's values may be once decoded. A cursor is client input like any other: each
 * value is checked against what its SQL comparison can take, so a forged one is a 400.
 */
export type CursorValue = 'string' | 'number' | 'int32' | 'uuid'

const CHECKS: Record<CursorValue, (value: unknown) => boolean> = {
  string: (v) => typeof v === 'string' && textProblem(v) === null,
  // A bigint column: no fraction, no exponent beyond what a double holds exactly.
  number: (v) => Number.isSafeInteger(v),
  int32: (v) => Number.isInteger(v) && (v as number) >= -INT32_MAX - 1 && (v as number) <= INT32_MAX,
  uuid: (v) => typeof v === 'string' && UUID.test(v),
}

export function decodeCursor<T extends readonly (string | number)[]>(cursor: string, shape: { [K in keyof T]: CursorValue }): T {
  let key: unknown
  try {
    key = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'))
  } catch {
    throw new Errors.INVALID_CURSOR()
  }
  if (!Array.isArray(key) || key.length !== shape.length || key.some((v, i) => !CHECKS[shape[i] as CursorValue](v))) {
    throw new Errors.INVALID_CURSOR()
  }
  return key as unknown as T
}

const TIMESTAMP = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(?:\.\d{1,6})?(?:Z|([+-])(\d{2})(?::?(\d{2}))?)$/

/** A timestamp as PostgreSQL prints it (or ISO 8601), every field in the range PostgreSQL's input takes. */
export function isTimestamp(value: string): boolean {
  const m = TIMESTAMP.exec(value)
  if (!m) return false
  const [year, month, day, hour, minute, second, , offsetHours, offsetMinutes] = m.slice(1).map((p) => Number(p ?? 0)) as number[]
  const days = new Date(Date.UTC(year as number, month as number, 0)).getUTCDate()
  return (
    (year as number) >= 1 &&
    (month as number) >= 1 && (month as number) <= 12 &&
    (day as number) >= 1 && (day as number) <= days &&
    (hour as number) <= 23 && (minute as number) <= 59 && (second as number) <= 59 &&
    (offsetHours as number) <= 15 && (offsetMinutes as number) <= 59
  )
}

const INT8_MAX = 9_223_372_036_854_775_807n

/** A PostgreSQL bigint printed as text. */
export function isBigintText(value: string): boolean {
  return /^-?\d{1,19}$/.test(value) && BigInt(value) <= INT8_MAX && BigInt(value) >= -INT8_MAX - 1n
}

/** Fetch `limit + 1` rows; this splits them into the page and the cursor of the next one. */
export function page<Row, Item>(rows: Row[], limit: number, item: (row: Row) => Item, key: (row: Row) => readonly (string | number)[]) {
  const items = rows.slice(0, limit)
  const last = items.at(-1)
  return { items: items.map(item), next_cursor: rows.length > limit && last ? encodeCursor(key(last)) : null }
}

const AT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/

/**
 * Keyset pagination newest first over (created_at, id), the order of every list of records
 * (backups, restorations, schedules, retention rules, locks, holds, disposals): `alias` names
 * the table in `query`; the timestamp travels in the cursor with its microseconds, so no row
 * is skipped or repeated when two share a millisecond.
 */
export async function newestFirst<Row extends { id: string; created_at: Date }, Item>(
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- any table, aliased or not
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
    if (!AT.test(at) || !isTimestamp(at) || !UUID.test(last)) throw new Errors.INVALID_CURSOR()
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
