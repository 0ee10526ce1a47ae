import { AjvCompiler, type BuildCompilerFromPool, type RouteDefinition } from '@fastify/ajv-compiler'
import type { Ajv, ErrorObject, Options } from 'ajv'
import { labelProblem, nameProblem, textProblem } from './text.ts'

/**
 * Request validation. JSON bodies are typed strictly (`"true"` is not `true`, an unknown field
 * is an error, not silently dropped); query strings, path parameters and headers, which are
 * text on the wire, are coerced to their schema's types. Every string of every part is then
 * checked for what PostgreSQL refuses (U+0000, lone surrogates), so no operation needs to
 * remember it. Formats are those the database and the code downstream accept.
 */
const BODY: Options = { coerceTypes: false, useDefaults: true, removeAdditional: false, allErrors: true, verbose: true }
const TEXT_PARTS: Options = { ...BODY, coerceTypes: 'array' }

/** Exactly PostgreSQL's output form, a subset of its input: what the API hands out round-trips, and JS comparisons agree with SQL ones. */
export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

export function addFormats(ajv: Ajv): void {
  const dateTime = ajv.formats['date-time'] as { validate?: (value: string) => boolean } | undefined
  const rfc3339 = dateTime?.validate
  ajv.addFormat('uuid', UUID)
  // RFC 3339 as ajv-formats reads it, minus what a JS Date cannot hold (a leap second): the
  // value reaches PostgreSQL as a Date.
  ajv.addFormat('date-time', {
    type: 'string',
    validate: (value: string) => (typeof rfc3339 === 'function' ? rfc3339(value) : true) && Number.isFinite(Date.parse(value)),
  })
  ajv.addFormat('nom', { type: 'string', validate: (value: string) => nameProblem(value) === null })
  ajv.addFormat('libelle', { type: 'string', validate: (value: string) => labelProblem(value, Infinity) === null })
}

type Validate = ((data: unknown) => boolean) & { errors?: ErrorObject[] | null }

function escapePointer(key: string): string {
  return key.replaceAll('~', '~0').replaceAll('/', '~1')
}

/**
 * What ajv lets through and no column holds: `Infinity` (a query's `limit=1e400`, coerced, or
 * a JSON body's `1e400`, parsed) passes `type: integer` and even `maximum`; past 2^53 − 1 an
 * integer is no longer exact and prints as `1e+300`, which a bigint parameter refuses.
 */
function numberProblem(value: number): string | null {
  if (!Number.isFinite(value)) return 'doit être un nombre fini'
  if (Math.abs(value) > Number.MAX_SAFE_INTEGER) return `doit être compris entre ${-Number.MAX_SAFE_INTEGER} et ${Number.MAX_SAFE_INTEGER}`
  return null
}

/** The first value of a request that no column can hold (a string or key that cannot be stored, a number that cannot be used), as an ajv-like error. */
function unusableValue(value: unknown, path = ''): ErrorObject | null {
  if (typeof value === 'number') {
    const message = numberProblem(value)
    return message ? { instancePath: path, schemaPath: '#/nombre', keyword: 'nombre', params: {}, message } : null
  }
  if (typeof value === 'string') {
    const message = textProblem(value)
    return message ? { instancePath: path, schemaPath: '#/texte', keyword: 'texte', params: {}, message } : null
  }
  if (value === null || typeof value !== 'object') return null
  for (const [key, item] of Object.entries(value)) {
    const at = `${path}/${escapePointer(key)}`
    const keyProblem = textProblem(key)
    if (keyProblem) return { instancePath: at, schemaPath: '#/texte', keyword: 'texte', params: {}, message: `a un nom qui ${keyProblem}` }
    const found = unusableValue(item, at)
    if (found) return found
  }
  return null
}

function guarded(validate: Validate): Validate {
  const run: Validate = (data) => {
    if (!validate(data)) {
      run.errors = validate.errors ?? null
      return false
    }
    const unusable = unusableValue(data)
    run.errors = unusable ? [unusable] : null
    return unusable === null
  }
  return run
}

/** Builds request validators as the app does; test/examples.test.ts validates the contract's examples with it. */
// Pools of ajv instances, keyed by shared schemas and options: every encapsulation context
// (and every app of a test process) with the same shared schemas compiles with the same two.
const pool = AjvCompiler()

export const buildValidator: BuildCompilerFromPool = (externalSchemas) => {
  const factory = pool
  const strict = factory(externalSchemas, { customOptions: BODY, plugins: [], onCreate: addFormats })
  const coercing = factory(externalSchemas, { customOptions: TEXT_PARTS, plugins: [], onCreate: addFormats })
  return (route: RouteDefinition) => guarded((route.httpPart === 'body' ? strict : coercing)(route) as Validate) as ReturnType<ReturnType<BuildCompilerFromPool>>
}

/** Fastify's `schemaController`: one ajv for bodies, one for the parts that arrive as text. */
export const schemaController = { compilersFactory: { buildValidator } }

// ---- French messages that say which field is wrong and why, never a raw pattern ----

const TYPES: Record<string, string> = {
  string: 'un texte',
  integer: 'un nombre entier',
  number: 'un nombre',
  boolean: 'un booléen (true ou false)',
  object: 'un objet JSON',
  array: 'une liste',
  null: 'null',
}

const FORMATS: Record<string, string> = {
  uuid: 'un identifiant UUID en minuscules au format 8-4-4-4-12 (ex. 3f2b8c1e-5d4a-4b6f-9e21-7a0c4d9b1e35)',
  'date-time': 'une date et heure RFC 3339 avec fuseau (ex. 2026-12-02T14:30:00Z)',
  email: 'une adresse e-mail valide',
  uri: 'une URL absolue',
  date: 'une date AAAA-MM-JJ',
}

const plural = (n: number, word: string) => `${n} ${word}${n > 1 ? 's' : ''}`
const quoted = (values: readonly unknown[]) => values.map((v) => `« ${String(v)} »`).join(', ')

interface Described {
  /** Where the field is, below its part: ['utilisateur', 'email'], [] for the part itself. */
  path: string[]
  message: string
}

function typeNames(type: unknown): string {
  const types = Array.isArray(type) ? type : String(type).split(',')
  return types.map((t) => TYPES[t] ?? t).join(' ou ')
}

function describeOne(error: ErrorObject): Described {
  const path = error.instancePath
    .split('/')
    .slice(1)
    .map((p) => p.replaceAll('~1', '/').replaceAll('~0', '~'))
  const params = error.params as Record<string, unknown>
  const parent = (error.parentSchema ?? {}) as { properties?: Record<string, unknown>; description?: string }
  const limit = Number(params.limit)
  switch (error.keyword) {
    case 'required':
      return { path: [...path, String(params.missingProperty)], message: 'est obligatoire' }
    case 'additionalProperties': {
      const known = Object.keys(parent.properties ?? {})
      return {
        path: [...path, String(params.additionalProperty)],
        message: `est inconnu${known.length > 0 ? ` (champs acceptés : ${known.join(', ')})` : ''}`,
      }
    }
    case 'type':
      return { path, message: `doit être ${typeNames(params.type)}` }
    case 'minLength':
      return { path, message: limit === 1 ? 'ne doit pas être vide' : `doit contenir au moins ${plural(limit, 'caractère')}` }
    case 'maxLength':
      return { path, message: `ne doit pas dépasser ${plural(limit, 'caractère')}` }
    case 'minimum':
      return { path, message: `doit être supérieur ou égal à ${limit}` }
    case 'maximum':
      return { path, message: `doit être inférieur ou égal à ${limit}` }
    case 'exclusiveMinimum':
      return { path, message: `doit être strictement supérieur à ${limit}` }
    case 'exclusiveMaximum':
      return { path, message: `doit être strictement inférieur à ${limit}` }
    case 'multipleOf':
      return { path, message: `doit être un multiple de ${String(params.multipleOf)}` }
    case 'minItems':
      return { path, message: `doit contenir au moins ${plural(limit, 'élément')}` }
    case 'maxItems':
      return { path, message: `ne doit pas contenir plus de ${plural(limit, 'élément')}` }
    case 'uniqueItems':
      return { path, message: 'ne doit pas contenir deux fois le même élément' }
    case 'minProperties': {
      const known = Object.keys(parent.properties ?? {})
      return { path, message: `doit contenir au moins ${plural(limit, 'champ')}${known.length > 0 ? ` parmi : ${known.join(', ')}` : ''}` }
    }
    case 'maxProperties':
      return { path, message: `ne doit pas contenir plus de ${plural(limit, 'champ')}` }
    case 'enum':
      return { path, message: `doit valoir ${quoted(params.allowedValues as unknown[])}` }
    case 'const':
      return { path, message: `doit valoir « ${String(params.allowedValue)} »` }
    case 'format': {
      const format = String(params.format)
      const data = typeof error.data === 'string' ? error.data : ''
      if (format === 'nom') return { path, message: nameProblem(data) ?? 'n’est pas un nom valide' }
      if (format === 'libelle') return { path, message: labelProblem(data, Infinity) ?? 'n’est pas un nom valide' }
      return { path, message: `doit être ${FORMATS[format] ?? `au format ${format}`}` }
    }
    case 'pattern':
      // The description says in words what the pattern checks; the pattern itself is not for people.
      return { path, message: parent.description ? `n’a pas la forme attendue : ${parent.description}` : 'n’a pas la forme attendue' }
    case 'texte':
      return { path, message: error.message ?? 'contient un caractère refusé' }
    case 'nombre':
      return { path, message: error.message ?? 'n’est pas un nombre utilisable' }
    default:
      return { path, message: 'est invalide' }
  }
}

/**
 * One message per field: the branches of an `anyOf` (a nullable field, say) become one
 * message listing what the field may be.
 */
/** The errors of the one branch of a union whose discriminating `const` the data matched, if exactly one did. */
function chosenBranch(union: ErrorObject, branches: readonly ErrorObject[]): ErrorObject[] | null {
  const byBranch = new Map<string, ErrorObject[]>()
  for (const b of branches) {
    const index = b.schemaPath.slice(union.schemaPath.length + 1).split('/')[0] ?? ''
    byBranch.set(index, [...(byBranch.get(index) ?? []), b])
  }
  const discriminated = (e: ErrorObject) => e.keyword === 'const' && e.instancePath.startsWith(`${union.instancePath}/`) && e.instancePath.split('/').length === union.instancePath.split('/').length + 1
  if (![...byBranch.values()].some((errors) => errors.some(discriminated))) return null
  const left = [...byBranch.values()].filter((errors) => !errors.some(discriminated))
  return left.length === 1 ? (left[0] ?? null) : null
}

export function describeErrors(errors: readonly ErrorObject[]): Described[] {
  const described: Described[] = []
  const taken = new Set<ErrorObject>()
  for (const error of errors) {
    if (error.keyword !== 'anyOf' && error.keyword !== 'oneOf') continue
    const branches = errors.filter((e) => e !== error && e.schemaPath.startsWith(`${error.schemaPath}/`))
    for (const branch of branches) taken.add(branch)
    taken.add(error)
    // A discriminated union (a property whose `const` names the branch, as `moyen`): the
    // branch the request chose says what it lacks; the others only that it chose another.
    const chosen = chosenBranch(error, branches)
    if (chosen) {
      for (const e of chosen) described.push(describeOne(e))
      continue
    }
    const sameField = branches.filter((b) => b.instancePath === error.instancePath)
    const deeper = branches.filter((b) => b.instancePath !== error.instancePath)
    const path = describeOne({ ...error, keyword: 'type' }).path
    if (deeper.length > 0 && sameField.length < branches.length) {
      // A union of objects: the fields of the closest branch say more than "none matched".
      for (const d of deeper) described.push(describeOne(d))
      continue
    }
    const messages = [...new Set(sameField.map((b) => describeOne(b).message))]
    described.push({ path, message: messages.length > 0 ? messages.join(', ou ') : 'ne correspond à aucune des formes acceptées' })
  }
  for (const error of errors) if (!taken.has(error)) described.push(describeOne(error))
  const seen = new Set<string>()
  return described.filter((d) => {
    const key = `${d.path.join('.')}\u0000${d.message}`
    if (seen.has(key)) return false
    seen.add(key)
    return true
  })
}

const PARTS: Record<string, { field: string; whole: string }> = {
  body: { field: 'le champ', whole: 'le corps de la requête' },
  querystring: { field: 'le paramètre de requête', whole: 'la chaîne de requête' },
  params: { field: 'le paramètre de chemin', whole: 'le chemin' },
  headers: { field: 'l’en-tête', whole: 'les en-têtes' },
}

/** A validation failure as the `errors` of a problem and a French sentence for its detail. */
export function validationProblem(errors: readonly ErrorObject[], part: string): { detail: string; errors: { field: string; message: string }[] } {
  const words = PARTS[part] ?? { field: 'le champ', whole: 'la requête' }
  const fields = describeErrors(errors).map(({ path, message }) => ({
    field: [part, ...path].join('.'),
    sentence: path.length > 0 ? `${words.field} « ${path.join('.')} » ${message}` : `${words.whole} ${message}`,
    message,
  }))
  const sentences = fields.map((f) => f.sentence).join(' ; ')
  return {
    detail: `Requête invalide : ${sentences}.`,
    errors: fields.map(({ field, message }) => ({ field, message })),
  }
}
