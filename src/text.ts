/**
 * What text Armoire takes in, shared by the validator (every string of every request) and the
 * code that reads text outside JSON (upload file names, cursors).
 */

// PostgreSQL's text and jsonb refuse U+0000; jsonb refuses a lone UTF-16 surrogate, and UTF-8
// cannot encode one (pg would silently store U+FFFD in a text column).
// eslint-disable-next-line no-control-regex -- U+0000 is precisely what is looked for
const UNSAFE = /\u0000|\p{Cs}/u

/** Why a string cannot be stored, or null when it can. */
export function textProblem(value: string): string | null {
  const found = UNSAFE.exec(value)
  if (!found) return null
  return found[0] === '\u0000'
    ? 'contient un caractère nul (U+0000), refusé'
    : `contient un demi-codet UTF-16 isolé (U+${found[0].charCodeAt(0).toString(16).toUpperCase()}), refusé`
}

/**
 * Characters a displayed name may not hold, because they make it look like another one
 * (file-name spoofing, `facture\u202Efdp.exe` shown as `factureexe.pdf`): controls (Cc), line
 * and paragraph separators, the bidirectional formatting characters UTS #55 (Unicode Source
 * Code Handling) warns reorder what is shown (Bidi_Control: U+061C, U+200E–U+200F,
 * U+202A–U+202E, U+2066–U+2069), and the invisible characters UTS #39's General Security
 * Profile (§3.1) restricts in identifiers (Cf and
 * Default_Ignorable_Code_Point: zero-width space, word joiner, soft hyphen, BOM, tags, Hangul
 * fillers…). Kept, as UTS #39 and UAX #31 allow them in context: ZWNJ and ZWJ between two
 * letters, marks or pictographs (Persian, Indic scripts, emoji sequences), and variation
 * selectors after such a character (emoji presentation).
 */
const INVISIBLE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Default_Ignorable_Code_Point}]/gu
const JOINABLE = /[\p{L}\p{M}\p{N}\p{Extended_Pictographic}\u{FE0F}]/u
const JOINERS = new Set(['\u200C', '\u200D'])
const isVariationSelector = (c: string) => /^[\u{FE00}-\u{FE0F}\u{E0100}-\u{E01EF}]$/u.test(c)

function describe(char: string): string {
  const code = char.codePointAt(0) ?? 0
  return `U+${code.toString(16).toUpperCase().padStart(4, '0')}`
}

/** The first character of `value` that hides or reorders text, or null. */
export function invisibleCharacter(value: string): string | null {
  for (const match of value.matchAll(INVISIBLE)) {
    const char = match[0]
    const at = match.index
    const before = [...value.slice(0, at)].at(-1) ?? ''
    const after = [...value.slice(at + char.length)][0] ?? ''
    if (JOINERS.has(char) && JOINABLE.test(before) && JOINABLE.test(after)) continue
    if (isVariationSelector(char) && JOINABLE.test(before)) continue
    return char
  }
  return null
}

/** Why a displayed label (a person's or an organisation's name) is refused, or null. */
export function labelProblem(raw: string, maxLength: number): string | null {
  const value = raw.normalize('NFC').trim()
  const length = [...value].length
  if (length === 0) return 'est vide'
  if (length > maxLength) return `dépasse ${maxLength} caractères`
  const invisible = invisibleCharacter(value)
  if (invisible) return `contient un caractère de contrôle ou invisible (${describe(invisible)}), qui peut faire passer un nom pour un autre`
  return textProblem(value)
}

export const NAME_MAX_LENGTH = 255

/**
 * Why a document name (armoire, casier, dossier, fichier, upload file name) is refused, or
 * null: a label that is also a path segment, so no "/" and not "." or "..".
 */
export function nameProblem(raw: string): string | null {
  const problem = labelProblem(raw, NAME_MAX_LENGTH)
  if (problem) return problem
  const value = raw.normalize('NFC').trim()
  if (value.includes('/')) return 'contient « / », réservé comme séparateur de chemin'
  if (value === '.' || value === '..') return 'ne peut pas être « . » ni « .. », réservés comme chemins relatifs'
  return null
}
