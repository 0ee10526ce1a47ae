import { Errors } from '../../src/errors.ts'

const FORBIDDEN = /[/\p{Cc}]/u
const MAX_LENGTH = 255

/** A 400 problem naming the offending field, as schema validation would. */
export function invalidField(field: string, message: string): Error {
  return Object.assign(new Errors.VALIDATION_ERROR(), { fields: [{ field, message }] })
}

/**
 * The stored form of a name: NFC, trimmed, 1–255 characters, no "/" nor control character,
 * not "." or "..". Sibling names compare case-insensitively (lower(nom) in the unique indexes).
 */
export function cleanName(raw: string, field = 'body.nom'): string {
  const nom = raw.normalize('NFC').trim()
  const length = [...nom].length
  if (length === 0) throw invalidField(field, 'le nom est vide')
  if (length > MAX_LENGTH) throw invalidField(field, `le nom dépasse ${MAX_LENGTH} caractères`)
  if (FORBIDDEN.test(nom)) throw invalidField(field, 'le nom contient « / » ou un caractère de contrôle')
  if (nom === '.' || nom === '..') throw invalidField(field, 'le nom ne peut pas être « . » ni « .. »')
  return nom
}

interface PgError {
  code?: string
  constraint?: string
}

/** A unique-index violation on a sibling name becomes NAME_CONFLICT; anything else is rethrown. */
export function nameConflict(error: unknown, nom: string): never {
  const pg = error as PgError
  if (pg.code === '23505' && pg.constraint?.endsWith('_nom_key')) throw new Errors.NAME_CONFLICT(nom)
  throw error
}
