import { createHash } from 'node:crypto'

/**
 * The canonical form certificates and evidence bundles are hashed in: JSON with object keys
 * sorted by code point, no whitespace, strings and numbers as JSON.stringify writes them (for
 * the strings, integers, booleans and nulls these documents hold, the form of RFC 8785).
 */
export function canonical(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null'
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`
}

export const sha256Hex = (data: string | Buffer): string => createHash('sha256').update(data).digest('hex')
