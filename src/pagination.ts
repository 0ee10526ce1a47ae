import { Errors } from './errors.ts'

/** Cursors are opaque to clients: base64url JSON of the last item's sort key. */
export function encodeCursor(key: readonly (string | number)[]): string {
  return Buffer.from(JSON.stringify(key)).toString('base64url')
}

export function decodeCursor<T extends readonly (string | number)[]>(cursor: string, shape: { [K in keyof T]: 'string' | 'number' }): T {
  let key: unknown
  try {
    key = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'))
  } catch {
    throw new Errors.INVALID_CURSOR()
  }
  if (!Array.isArray(key) || key.length !== shape.length || key.some((v, i) => typeof v !== shape[i])) {
    throw new Errors.INVALID_CURSOR()
  }
  return key as unknown as T
}

/** Fetch `limit + 1` rows; this splits them into the page and the cursor of the next one. */
export function page<Row, Item>(rows: Row[], limit: number, item: (row: Row) => Item, key: (row: Row) => readonly (string | number)[]) {
  const items = rows.slice(0, limit)
  const last = items.at(-1)
  return { items: items.map(item), next_cursor: rows.length > limit && last ? encodeCursor(key(last)) : null }
}
