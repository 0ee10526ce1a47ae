import { isUniqueViolation } from '../../src/db.ts'
import { Errors } from '../../src/errors.ts'
import { nameProblem } from '../../src/text.ts'

/** A 400 problem naming the offending field, as schema validation would. */
export function invalidField(field: string, message: string): Error {
  return Object.assign(new Errors.VALIDATION_ERROR(), { fields: [{ field, message }] })
}

/**
 * The stored form of a name: NFC, trimmed, and the rules of src/text.ts (1–255 characters, no
 * "/", control or invisible character, not "." or ".."). Sibling names compare
 * case-insensitively (lower(nom) in the unique indexes).
 */
export function cleanName(raw: string, field = 'body.nom'): string {
  const problem = nameProblem(raw)
  if (problem) throw invalidField(field, `le nom ${problem}`)
  return raw.normalize('NFC').trim()
}

/** A unique-index violation on a sibling name becomes NAME_CONFLICT; anything else is rethrown. */
export function nameConflict(error: unknown, nom: string): never {
  const constraint = (error as { constraint?: unknown } | null)?.constraint
  if (isUniqueViolation(error) && typeof constraint === 'string' && constraint.endsWith('_nom_key')) throw new Errors.NAME_CONFLICT(nom)
  throw error
}
