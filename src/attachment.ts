/**
 * The `Content-Disposition` of every download: a document, a backup archive, an invoice, a
 * certificate, an export. One function, so that no handler quotes a file name by hand.
 */
import { create } from 'content-disposition'

/**
 * RFC 6266 by `content-disposition`: the exact name in `filename*` (RFC 8187 UTF-8) whenever
 * it is not plain ASCII, and a fallback for old clients that reads like the name — accents
 * dropped (`Réunion` → `Reunion`), what ASCII cannot say and `"`, `\`, `%` as `_` — rather
 * than the library's `?`, which browsers then offer as a file name.
 */
export function attachment(name: string): string {
  const fallback = name
    .normalize('NFKD')
    .replace(/\p{M}/gu, '')
    .replace(/[^\x20-\x7e]|["\\%]/g, '_')
  return create(name, { fallback })
}
