/**
 * A fuzzer generated from the served OpenAPI document: for every operation it finds there, a
 * valid request (the operation's examples, else values built from its schemas, with real ids
 * of the calling organisation) is mutated one part at a time with fast-check, and every
 * answer is checked: never a 5xx, a French problem+json on every 4xx, and nothing of another
 * organisation. Nothing here names an operation: one added to the contract is fuzzed as is.
 */
import { randomUUID } from 'node:crypto'
import type { FastifyInstance, InjectOptions } from 'fastify'
import fc from 'fast-check'

type Schema = {
  $ref?: string
  type?: string | string[]
  format?: string
  enum?: unknown[]
  const?: unknown
  default?: unknown
  example?: unknown
  examples?: unknown[]
  minimum?: number
  maximum?: number
  minLength?: number
  maxLength?: number
  pattern?: string
  minItems?: number
  items?: Schema
  properties?: Record<string, Schema>
  required?: string[]
  anyOf?: Schema[]
  oneOf?: Schema[]
  allOf?: Schema[]
}
interface Parameter {
  in: 'path' | 'query' | 'header'
  name: string
  required?: boolean
  schema: Schema
  example?: unknown
}
interface Operation {
  operationId: string
  parameters?: Parameter[]
  requestBody?: { content: Record<string, { schema: Schema; example?: unknown }> }
  security?: unknown[]
}
export interface Spec {
  paths: Record<string, Record<string, Operation>>
  components?: { schemas?: Record<string, Schema> }
}

/** What the fuzzer knows of the two organisations. */
export interface World {
  /** The caller's (A's) authorization header, renewed when a mutation revoked its session. */
  headers(): Record<string, string>
  /** Records of A's objects by the first segment of the path that lists or made them. */
  records: Map<string, Array<Record<string, unknown>>>
  /** A's own ids, as a last resort for an id nothing else resolves. */
  fallbackIds: string[]
  /** Every id of A's the fuzzer has seen: B's answers must show none. */
  ownIds(): Set<string>
  /** B's ids and the marker every one of B's names carries. */
  foreignIds: Set<string>
  foreignMarker: string
  /** B's token: A's objects asked for with it must never answer. */
  foreignHeaders: Record<string, string>
  /** Called before each operation: renews what earlier mutations may have broken. */
  heal(): Promise<void>
  /** Told every 2xx JSON answer A receives, to learn its objects. */
  learn(path: string, body: unknown): void
}

export interface Target {
  method: string
  path: string
  op: Operation
}

/** Every operation of the document, reads first and destructive ones last. */
export function targets(spec: Spec): Target[] {
  const rank: Record<string, number> = { get: 0, post: 1, put: 1, patch: 1, delete: 2 }
  const all: Target[] = []
  for (const [path, item] of Object.entries(spec.paths)) {
    for (const [method, op] of Object.entries(item)) {
      if (method in rank) all.push({ method: method.toUpperCase(), path, op })
    }
  }
  const destructive = (t: Target) => (/logout|revoke|purge|disable|reset/i.test(t.op.operationId) ? 1 : 0)
  return all.sort((a, b) => destructive(a) - destructive(b) || (rank[a.method.toLowerCase()] ?? 1) - (rank[b.method.toLowerCase()] ?? 1))
}

function resolve(spec: Spec, schema: Schema | undefined): Schema {
  let s = schema ?? {}
  for (let i = 0; s.$ref && i < 10; i++) s = spec.components?.schemas?.[s.$ref.replace(/^#\/components\/schemas\//, '').replace(/#$/, '')] ?? {}
  return s
}

let counter = 0

/** A value the schema accepts, built from its example, default, enum, format and bounds. */
export function sample(spec: Spec, raw: Schema | undefined, seed: number): unknown {
  const schema = resolve(spec, raw)
  if (schema.example !== undefined) return schema.example
  if (schema.examples?.length) return schema.examples[0]
  if (schema.const !== undefined) return schema.const
  if (schema.default !== undefined) return schema.default
  if (schema.enum?.length) return schema.enum[0]
  const branches = schema.anyOf ?? schema.oneOf
  if (branches) return sample(spec, branches.find((b) => resolve(spec, b).type !== 'null') ?? branches[0], seed)
  if (schema.allOf) return Object.assign({}, ...schema.allOf.map((s) => sample(spec, s, seed)))
  const type = Array.isArray(schema.type) ? schema.type.find((t) => t !== 'null') : schema.type
  switch (type) {
    case 'integer':
    case 'number':
      return Math.max(schema.minimum ?? 1, Math.min(schema.maximum ?? 1, 1))
    case 'boolean':
      return false
    case 'array':
      return Array.from({ length: schema.minItems ?? 0 }, () => sample(spec, schema.items, seed))
    case 'object':
    case undefined:
      if (!schema.properties) return type === 'object' ? {} : 'x'
      return Object.fromEntries(Object.entries(schema.properties).map(([k, v]) => [k, sample(spec, v, seed)]))
    default:
      return sampleString(schema, seed)
  }
}

function sampleString(schema: Schema, seed: number): string {
  counter++
  switch (schema.format) {
    case 'uuid':
      return randomUUID()
    case 'date-time':
      return new Date(Date.now() - 86_400_000).toISOString()
    case 'date':
      return new Date().toISOString().slice(0, 10)
    case 'email':
      return `fuzz-${counter}-${seed}@exemple.fr`
    case 'uri':
      return 'https://exemple.fr/'
    case 'binary':
      return 'contenu'
  }
  if (schema.pattern) {
    const [value] = fc.sample(fc.stringMatching(new RegExp(schema.pattern, 'u'), { size: 'xsmall' }), { seed, numRuns: 1 })
    if (value !== undefined) return value.slice(0, schema.maxLength ?? value.length)
  }
  const base = `Fuzz ${counter}`
  const min = schema.minLength ?? 0
  return (base.length < min ? base.padEnd(min, 'x') : base).slice(0, schema.maxLength ?? 255)
}

/** A request as parts the mutations work on. */
export interface Request {
  method: string
  pathTemplate: string
  path: Record<string, string>
  query: Record<string, string>
  headers: Record<string, string>
  body?: { kind: 'json'; value: unknown } | { kind: 'multipart'; fields: Record<string, string>; file?: { field: string; filename: string } } | { kind: 'raw'; payload: string | Buffer; contentType?: string }
  /** A raw suffix or replacement of the URL, for what encoding cannot express. */
  rawPath?: string
  asForeign?: boolean
}

/** Where A's records for a path are kept: its last fixed segment before a parameter (/armoires/{id}/casiers → armoires; a listing /auth/sessions → sessions). */
export function recordKey(path: string): string {
  const segments = path.split('/').filter(Boolean)
  const param = segments.findIndex((s) => s.startsWith('{') || s.startsWith(':'))
  const fixed = param === -1 ? segments : segments.slice(0, param)
  return fixed.at(-1) ?? ''
}

function idFor(world: World, path: string, name: string, schema: Schema): string | undefined {
  const records = world.records.get(recordKey(path)) ?? []
  const fit = records.find((r) => typeof r[name] === 'string' && (schema.enum === undefined || schema.enum.includes(r[name])))
  if (fit) return fit[name] as string
  if (schema.format === 'uuid') return world.fallbackIds[0]
  return undefined
}

/** The valid request of an operation, as far as the document and A's objects allow. */
export function validRequest(spec: Spec, world: World, target: Target, seed: number): Request {
  const req: Request = { method: target.method, pathTemplate: target.path, path: {}, query: {}, headers: {} }
  const params = target.op.parameters ?? []
  // Path parameters taken together from one record, so /corbeille/{type}/{id} names a real item.
  const pathNames = params.filter((p) => p.in === 'path').map((p) => p.name)
  const together = (world.records.get(recordKey(target.path)) ?? []).find((r) =>
    pathNames.every((n) => typeof r[n] === 'string' || params.find((p) => p.name === n)?.schema.type === 'integer'),
  )
  for (const p of params) {
    const schema = resolve(spec, p.schema)
    let value: unknown
    if (p.in === 'path') value = together?.[p.name] ?? idFor(world, target.path, p.name, schema)
    if (value === undefined && p.in === 'path' && schema.format === 'uuid') value = world.fallbackIds[0]
    if (value === undefined) value = p.example ?? sample(spec, schema, seed)
    if (p.in === 'path') req.path[p.name] = String(value)
    else if (p.in === 'query' && p.required) req.query[p.name] = String(value)
    else if (p.in === 'header' && p.required) req.headers[p.name] = String(value)
  }
  const content = target.op.requestBody?.content ?? {}
  const json = content['application/json']
  const form = content['multipart/form-data']
  if (json) {
    const value = json.example ?? sample(spec, json.schema, seed)
    req.body = { kind: 'json', value: withRealIds(world, value) }
  } else if (form) {
    const schema = resolve(spec, form.schema)
    const fields: Record<string, string> = {}
    let file: { field: string; filename: string } | undefined
    for (const [name, prop] of Object.entries(schema.properties ?? {})) {
      const p = resolve(spec, prop)
      if (p.format === 'binary') file = { field: name, filename: `fuzz-${seed}-${++counter}.txt` }
      else if ((schema.required ?? []).includes(name)) fields[name] = String(sample(spec, p, seed))
    }
    req.body = { kind: 'multipart', fields, ...(file ? { file } : {}) }
  }
  return req
}

/** Ids in an example are fictitious: a field named like a known record takes a real one. */
function withRealIds(world: World, value: unknown): unknown {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return value
  return Object.fromEntries(
    Object.entries(value).map(([k, v]) => {
      const kind = k.replace(/_id$/, '')
      const record = [...world.records.entries()].find(([segment]) => segment.startsWith(kind))?.[1][0]
      return [k, typeof v === 'string' && k.endsWith('_id') && record?.id ? record.id : withRealIds(world, v)]
    }),
  )
}

function encode(value: string): string {
  // Lone surrogates cannot be URI-encoded: their UTF-8 replacement is what a client would send.
  return [...Buffer.from(value, 'utf8')].map((b) => (/[A-Za-z0-9_.~-]/.test(String.fromCharCode(b)) ? String.fromCharCode(b) : `%${b.toString(16).padStart(2, '0').toUpperCase()}`)).join('')
}

function multipartBody(fields: Record<string, string>, file?: { field: string; filename: string }, opts: { boundary?: string; truncate?: number } = {}) {
  const boundary = opts.boundary ?? `----fuzz${counter++}`
  const chunks: Buffer[] = []
  for (const [name, value] of Object.entries(fields)) {
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`))
  }
  if (file) {
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${file.field}"; filename="${file.filename}"\r\nContent-Type: text/plain\r\n\r\ncontenu de fuzz\r\n`))
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`))
  const payload = Buffer.concat(chunks)
  return { payload: opts.truncate ? payload.subarray(0, Math.max(0, payload.length - opts.truncate)) : payload, contentType: `multipart/form-data; boundary=${boundary}` }
}

export function toInject(req: Request, world: World): InjectOptions {
  let url = req.pathTemplate.replace(/\{(\w+)\}/g, (_, name: string) => encode(req.path[name] ?? ''))
  if (req.rawPath !== undefined) url = req.rawPath.startsWith('/') ? req.rawPath : `${url}${req.rawPath}`
  const query = Object.entries(req.query).map(([k, v]) => `${encode(k)}=${encode(v)}`).join('&')
  const headers: Record<string, string> = { ...(req.asForeign ? world.foreignHeaders : world.headers()), ...req.headers }
  const options: InjectOptions = { method: req.method as InjectOptions['method'], url: query ? `${url}?${query}` : url, headers }
  if (req.body?.kind === 'json') {
    options.payload = JSON.stringify(req.body.value)
    headers['content-type'] ??= 'application/json'
  } else if (req.body?.kind === 'multipart') {
    const body = multipartBody(req.body.fields, req.body.file)
    options.payload = body.payload
    headers['content-type'] ??= body.contentType
  } else if (req.body?.kind === 'raw') {
    options.payload = req.body.payload
    if (req.body.contentType !== undefined) headers['content-type'] = req.body.contentType
  }
  for (const [k, v] of Object.entries(headers)) if (v === '\u0000drop') delete headers[k]
  return options
}

// ---- Hostile values ----

const B64 = (value: string) => Buffer.from(value).toString('base64url')

const STRINGS = [
  '', ' ', 'a'.repeat(10_000), '\u0000', 'a\u0000b', '\uD800', '\uDFFF', 'x\uDBFF', 'facture\u202Efdp.exe', '\u200B', '\uFEFF', '\u2066x', '\u0001\u001F\u007F',
  '../../etc/passwd', '.', '..', '/', 'a/b', '%', '%zz', "' or 1=1 --", '"; drop table fichiers; --', '<script>alert(1)</script>', '${7*7}', '{{7*7}}',
  'urn:uuid:0b7e6f3a-1c2d-4e5f-8a9b-0c1d2e3f4a5b', '0B7E6F3A-1C2D-4E5F-8A9B-0C1D2E3F4A5B', '{0b7e6f3a-1c2d-4e5f-8a9b-0c1d2e3f4a5b}', '0b7e6f3a1c2d4e5f8a9b0c1d2e3f4a5b', '-'.repeat(36),
  '00000000-0000-0000-0000-000000000000', 'true', 'false', 'null', '1', '-1', '0', '1.5', '1e308', '-1e400', '2147483648', '9223372036854775808', 'NaN', 'Infinity', '0x10',
  '2026-12-31T23:59:60Z', '0000-01-01T00:00:00Z', '9999-12-31T23:59:59Z', '2026-02-30T00:00:00Z', '2026-13-01', '275761-01-01T00:00:00Z',
  'Ünïcödé 日本語 😀 👨‍👩‍👧', 'مرحبا', '\u0301', 'é'.normalize('NFD'), 'AAAA'.repeat(300), 'Africa/Nowhere', 'Etc/GMT+99',
]
const NUMBERS = [-1, 0, 1, 1.5, -0.5, 2 ** 31, 2 ** 31 - 1, -(2 ** 31) - 1, 2 ** 53, 2 ** 63, 1e308, -1e308, Number.MIN_VALUE]
const CURSORS = [
  B64('[1.5]'), B64('[1e308]'), B64('[9223372036854775808]'), B64('[-1]'), B64('["\\u0000"]'), B64('["\\ud800"]'), B64('[null]'), B64('{}'), B64('[[]]'), B64('"x"'),
  B64(JSON.stringify(['nom', 'asc', 'x', '-'.repeat(36)])), B64(JSON.stringify(['created_at', 'asc', '9999-99-99 99:99:99+99', randomUUID()])),
  B64(JSON.stringify(['taille', 'asc', '99999999999999999999', randomUUID()])), B64(JSON.stringify(['2026-02-30T00:00:00.000000Z', randomUUID()])),
  B64(JSON.stringify(['x', 'urn:uuid:0b7e6f3a-1c2d-4e5f-8a9b-0c1d2e3f4a5b'])), 'not base64!', '!!!!', 'AAAA', B64('['.repeat(5000)),
]

const jsonValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom<unknown>(...STRINGS, ...NUMBERS, null, true, false, [], {}, [null], { a: 1 }, ['x']),
  fc.string({ unit: 'binary', maxLength: 30 }),
  fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)), maxLength: 8 }),
  fc.integer(),
  fc.double(),
  fc.bigInt().map(String),
  fc.jsonValue({ maxDepth: 3 }),
)
const textValue: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(...STRINGS),
  fc.constantFrom(...NUMBERS.map(String)),
  fc.string({ unit: 'binary', maxLength: 30 }),
  fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)), maxLength: 8 }),
  fc.bigInt().map(String),
)
const HEADER_VALUES: Record<string, string[]> = {
  range: ['bytes=0-', 'bytes=-0', 'bytes=5-1', 'bytes=0-1,2-3', 'bytes=99999999999999999999-', 'items=0-1', 'bytes=--1', 'bytes=0-0', 'bytes=-99999999999', 'bytes=', 'bytes=a-b'],
  'if-none-match': ['*', 'W/"x"', '"x"', `"${'a'.repeat(5000)}"`, 'x, y', '""'],
  'if-range': ['"x"', 'Wed, 21 Oct 2015 07:28:00 GMT', 'W/"x"', 'garbage', ''],
  'if-match': ['*', '"x"', 'garbage'],
  'if-modified-since': ['garbage', 'Wed, 21 Oct 2015 07:28:00 GMT', '0'],
  'if-unmodified-since': ['garbage', 'Wed, 21 Oct 2015 07:28:00 GMT'],
  accept: ['application/xml', 'text/csv', '*/*;q=0', 'garbage'],
  'accept-encoding': ['gzip', 'br', 'identity;q=0', 'garbage'],
  'x-request-id': ['évil id', 'a'.repeat(300), '../x'],
  authorization: ['Bearer ', 'Bearer x.y.z', 'Basic YTpi', 'bearer  ', `Bearer ${'a'.repeat(8000)}`],
  'content-encoding': ['gzip', 'br', 'garbage'],
  'x-checksum-sha256': ['zz', 'a'.repeat(64), 'A'.repeat(63)],
  'x-forwarded-for': ['garbage', '::1, 1.2.3.4'],
}

export type Mutation = (req: Request, spec: Spec, world: World, target: Target) => Request | null

function leaves(value: unknown, path: string[] = []): string[][] {
  if (value === null || typeof value !== 'object') return [path]
  const entries = Array.isArray(value) ? value.map((v, i) => [String(i), v] as const) : Object.entries(value)
  return [path, ...entries.flatMap(([k, v]) => leaves(v, [...path, k]))]
}

function setAt(value: unknown, path: string[], next: unknown): unknown {
  if (path.length === 0) return next
  const [head, ...rest] = path as [string, ...string[]]
  const copy = Array.isArray(value) ? [...value] : { ...(value as Record<string, unknown>) }
  ;(copy as Record<string, unknown>)[head] = setAt((value as Record<string, unknown>)[head], rest, next)
  return copy
}

/** The mutations of one request, as fast-check arbitraries; each returns null when it does not apply. */
export function mutations(spec: Spec, target: Target, world: World): fc.Arbitrary<{ label: string; apply: Mutation }> {
  const params = target.op.parameters ?? []
  const m = (label: string, apply: Mutation) => ({ label, apply })
  const arbs: fc.Arbitrary<{ label: string; apply: Mutation }>[] = []
  if (params.length > 0) {
    arbs.push(
      fc.tuple(fc.constantFrom(...params), textValue).map(([p, v]) =>
        m(`${p.in} ${p.name} = ${JSON.stringify(v).slice(0, 80)}`, (req) => {
          const next = structuredClone(req)
          next[p.in === 'query' ? 'query' : p.in === 'header' ? 'headers' : 'path'][p.name] = v
          return next
        }),
      ),
    )
    const ids = params.filter((p) => p.in !== 'header')
    if (ids.length > 0 && world.foreignIds.size > 0) {
      arbs.push(
        fc.tuple(fc.constantFrom(...ids), fc.constantFrom(...world.foreignIds)).map(([p, id]) =>
          m(`${p.in} ${p.name} = B's ${id}`, (req) => {
            const next = structuredClone(req)
            next[p.in === 'query' ? 'query' : 'path'][p.name] = id
            return next
          }),
        ),
      )
    }
  }
  if (params.some((p) => p.name === 'cursor')) {
    arbs.push(fc.constantFrom(...CURSORS).map((c) => m(`cursor ${c.slice(0, 40)}`, (req) => ({ ...structuredClone(req), query: { ...req.query, cursor: c } }))))
  }
  arbs.push(
    fc.tuple(fc.constantFrom(...Object.keys(HEADER_VALUES)), fc.nat()).map(([name, i]) => {
      const values = HEADER_VALUES[name] ?? ['x']
      const value = values[i % values.length] ?? ''
      return m(`header ${name}: ${value.slice(0, 60)}`, (req) => ({ ...structuredClone(req), headers: { ...req.headers, [name]: value } }))
    }),
  )
  arbs.push(
    fc.constantFrom('/', '%zz', '%00', '/..', '//', `/${'a'.repeat(200)}`, '/%ED%A0%80', '?a=%zz', '?limit=1&limit=2', '?__proto__=1', '?cursor[]=1').map((suffix) =>
      m(`path suffix ${suffix.slice(0, 40)}`, (req) => ({ ...structuredClone(req), rawPath: suffix })),
    ),
  )
  arbs.push(fc.constant(m('as organisation B', (req) => ({ ...structuredClone(req), asForeign: true }))))
  arbs.push(fc.constant(m('without authorization', (req) => ({ ...structuredClone(req), headers: { ...req.headers, authorization: '\u0000drop' } }))))
  // Bodies, whatever the operation declares: one sent where none is expected must be harmless too.
  arbs.push(
    fc
      .constantFrom<[string, string | Buffer, string | undefined]>(
        ['invalid JSON', '{"nom":', 'application/json'],
        ['empty JSON', '', 'application/json'],
        ['JSON array', '[]', 'application/json'],
        ['JSON null', 'null', 'application/json'],
        ['JSON string', '"x"', 'application/json'],
        ['deep JSON', `${'['.repeat(20_000)}${']'.repeat(20_000)}`, 'application/json'],
        ['deep object', `${'{"a":'.repeat(5_000)}1${'}'.repeat(5_000)}`, 'application/json'],
        ['prototype pollution', '{"__proto__":{"admin":true},"constructor":{"prototype":{}}}', 'application/json'],
        ['duplicate keys', '{"nom":"a","nom":"b"}', 'application/json'],
        ['UTF-16 JSON', Buffer.from('\uFEFF{"nom":"x"}', 'utf16le'), 'application/json; charset=utf-16'],
        ['latin1 bytes', Buffer.from([0x7b, 0x22, 0x6e, 0x22, 0x3a, 0x22, 0xe9, 0xff, 0x22, 0x7d]), 'application/json'],
        ['JSON without content type', '{"nom":"x"}', '\u0000drop'],
        ['text/plain', 'nom=x', 'text/plain'],
        ['form urlencoded', 'nom=x&nom=y', 'application/x-www-form-urlencoded'],
        ['xml', '<nom>x</nom>', 'application/xml'],
        ['over the body limit', Buffer.alloc(1_100_000, 0x61), 'application/json'],
        ['multipart without boundary', 'x', 'multipart/form-data'],
        ['multipart with an empty boundary', '--\r\n', 'multipart/form-data; boundary='],
        ['multipart with a 300-character boundary', 'x', `multipart/form-data; boundary=${'b'.repeat(300)}`],
        ['multipart without its closing boundary', '------b\r\nContent-Disposition: form-data; name="fichier"; filename="a.txt"\r\n\r\nabc', 'multipart/form-data; boundary=----b'],
        ['multipart with garbage headers', '------b\r\nGarbage\r\n\r\nabc\r\n------b--\r\n', 'multipart/form-data; boundary=----b'],
        ['content type garbage', '{}', ';;;=='],
      )
      .map(([label, payload, contentType]) =>
        m(`body: ${label}`, (req) => ({ ...structuredClone(req), body: { kind: 'raw', payload, ...(contentType === '\u0000drop' ? {} : { contentType }) } })),
      ),
  )
  const json = target.op.requestBody?.content['application/json']
  if (json) {
    arbs.push(
      fc.tuple(fc.nat(), jsonValue).map(([i, v]) =>
        m(`body field #${i} = ${JSON.stringify(v)?.slice(0, 80)}`, (req) => {
          if (req.body?.kind !== 'json') return null
          const paths = leaves(req.body.value)
          const path = paths[i % paths.length] ?? []
          return { ...structuredClone(req), body: { kind: 'json', value: setAt(req.body.value, path, v) } }
        }),
      ),
      fc.tuple(fc.constantFrom('password', '__proto__', 'constructor', 'organisation_id', 'id', 'role', 'montant', 'zz'), jsonValue).map(([key, v]) =>
        m(`body unknown field ${key}`, (req) => {
          if (req.body?.kind !== 'json' || typeof req.body.value !== 'object' || req.body.value === null) return null
          return { ...structuredClone(req), body: { kind: 'json', value: { ...(req.body.value as object), [key]: v } } }
        }),
      ),
    )
    if (world.foreignIds.size > 0) {
      arbs.push(
        fc.tuple(fc.nat(), fc.constantFrom(...world.foreignIds)).map(([i, id]) =>
          m(`body field #${i} = B's ${id}`, (req) => {
            if (req.body?.kind !== 'json') return null
            const paths = leaves(req.body.value).filter((p) => p.length > 0)
            if (paths.length === 0) return null
            return { ...structuredClone(req), body: { kind: 'json', value: setAt(req.body.value, paths[i % paths.length] ?? [], id) } }
          }),
        ),
      )
    }
  }
  if (target.op.requestBody?.content['multipart/form-data']) {
    arbs.push(
      fc.tuple(fc.constantFrom('filename', 'field', 'extra'), textValue).map(([where, v]) =>
        m(`multipart ${where} = ${JSON.stringify(v).slice(0, 60)}`, (req) => {
          if (req.body?.kind !== 'multipart') return null
          const next = structuredClone(req) as Request & { body: { kind: 'multipart'; fields: Record<string, string>; file?: { field: string; filename: string } } }
          const safe = v.replace(/[\r\n"]/g, '_')
          if (where === 'filename' && next.body.file) next.body.file.filename = safe
          else if (where === 'field') next.body.fields[Object.keys(next.body.fields)[0] ?? 'nom'] = v
          else next.body.fields[safe || 'x'] = 'valeur'
          return next
        }),
      ),
      fc.constantFrom(5, 20, 60).map((cut) =>
        m(`multipart cut ${cut} bytes short`, (req) => {
          if (req.body?.kind !== 'multipart') return null
          const body = multipartBody(req.body.fields, req.body.file, { truncate: cut })
          return { ...structuredClone(req), body: { kind: 'raw', payload: body.payload, contentType: body.contentType } }
        }),
      ),
    )
  }
  return fc.oneof(...arbs)
}

// ---- What every answer must be ----

const ENGLISH_TITLES = /^(Bad Request|Unauthorized|Forbidden|Not Found|Method Not Allowed|Conflict|Payload Too Large|Unsupported Media Type|Too Many Requests|Internal Server Error|Unprocessable Entity|Request Header Fields Too Large|URI Too Long|Range Not Satisfiable|Error)$/

export interface Outcome {
  status: number
  problem: string | null
}

/**
 * Why an answer breaks the rules, or null. A 502 or 503 is a third party's or the instance's
 * unavailability, told as a catalogued problem (the test has no FeexPay, say); every other 5xx
 * is a failure. `others` are the ids the caller must never see (B's for A, A's for B).
 */
export function judge(
  res: { statusCode: number; headers: Record<string, unknown>; body: string },
  request: InjectOptions,
  others: { ids: Set<string>; marker?: string },
): string | null {
  const unavailable = (res.statusCode === 502 || res.statusCode === 503) && String(res.headers['content-type']).startsWith('application/problem+json')
  if (res.statusCode >= 500 && !unavailable) return `answered ${res.statusCode}: ${res.body.slice(0, 300)}`
  if (others.marker && res.body.includes(others.marker)) return `another organisation's name appears: ${res.body.slice(0, 300)}`
  if (res.statusCode >= 400) {
    const type = String(res.headers['content-type'] ?? '')
    if (!type.startsWith('application/problem+json')) return `${res.statusCode} is not problem+json (${type}): ${res.body.slice(0, 200)}`
    let problem: { code?: unknown; title?: unknown; detail?: unknown; status?: unknown }
    try {
      problem = JSON.parse(res.body)
    } catch {
      return `${res.statusCode} problem is not JSON`
    }
    if (typeof problem.code !== 'string' || !/^[A-Z][A-Z0-9_]+$/.test(problem.code)) return `no stable code: ${res.body.slice(0, 200)}`
    if (problem.status !== res.statusCode) return `problem status ${String(problem.status)} differs from ${res.statusCode}`
    if (typeof problem.title !== 'string' || ENGLISH_TITLES.test(problem.title)) return `title not French: ${String(problem.title)}`
    if (typeof problem.detail !== 'string' || problem.detail.length === 0) return 'no detail'
    return null
  }
  if (res.statusCode < 300 && res.body.length > 0 && String(res.headers['content-type'] ?? '').includes('json')) {
    const sent = `${request.url} ${String(request.payload ?? '')}`
    let found: string | null = null
    const walk = (v: unknown, key: string) => {
      if (found) return
      if (typeof v === 'string' && (key === 'id' || key.endsWith('_id')) && others.ids.has(v) && !sent.includes(v)) found = `${key}=${v}`
      // `details` (the journal's) echo what the caller sent, its filters included: not data of anyone's.
      else if (v && typeof v === 'object' && key !== 'details') for (const [k, x] of Object.entries(v)) walk(x, Array.isArray(v) ? key : k)
    }
    try {
      walk(JSON.parse(res.body), '')
    } catch {
      /* not JSON after all: a download */
    }
    if (found) return `another organisation's id appears in a ${res.statusCode}: ${found}`
  }
  return null
}

export interface Report {
  operations: number
  requests: number
  skipped: number
  failures: string[]
  ms: number
}

/** Fuzzes every operation of the document with `runs` mutations each. */
export async function fuzz(app: FastifyInstance, spec: Spec, world: World, opts: { seed: number; runs: number }): Promise<Report> {
  const started = performance.now()
  const report: Report = { operations: 0, requests: 0, skipped: 0, failures: [], ms: 0 }
  const send = async (req: Request, label: string, target: Target) => {
    let options: InjectOptions
    try {
      options = toInject(req, world)
    } catch {
      report.skipped++
      return null
    }
    let res
    try {
      res = await app.inject(options)
    } catch (error) {
      // A request no HTTP client could send (an invalid header character, say) is not the server's failure.
      if ((error as { code?: string }).code?.startsWith('ERR_INVALID') || (error as { code?: string }).code === 'ERR_HTTP_INVALID_HEADER_VALUE') {
        report.skipped++
        return null
      }
      throw error
    }
    report.requests++
    if (res.statusCode < 300 && !req.asForeign && String(res.headers['content-type'] ?? '').includes('json')) {
      try {
        world.learn(target.path, JSON.parse(res.body))
      } catch {
        /* not JSON */
      }
    }
    // B's token on A's objects: a public operation (a sign-in) answers for whoever it names.
    const guarded = (target.op.security ?? []).length > 0
    const others = req.asForeign ? { ids: guarded ? world.ownIds() : new Set<string>() } : { ids: world.foreignIds, marker: world.foreignMarker }
    const verdict = judge(res, options, others)
    return verdict ? `${target.method} ${target.path} (${target.op.operationId}) — ${label}: ${verdict}` : null
  }
  for (const target of targets(spec)) {
    report.operations++
    await world.heal()
    const seed = opts.seed + report.operations
    const valid = validRequest(spec, world, target, seed)
    const plain = await send(valid, 'the valid request', target)
    if (plain) report.failures.push(plain)
    const result = await fc.check(
      fc.asyncProperty(mutations(spec, target, world), async ({ label, apply }) => {
        const mutated = apply(validRequest(spec, world, target, seed), spec, world, target)
        if (!mutated) return true
        const failure = await send(mutated, label, target)
        if (failure) throw new Error(failure)
        return true
      }),
      { seed, numRuns: opts.runs, endOnFailure: true },
    )
    if (result.failed) report.failures.push((result.errorInstance as Error | undefined)?.message ?? `${target.method} ${target.path}: fast-check stopped (${String(result.counterexample)})`)
  }
  report.ms = Math.round(performance.now() - started)
  return report
}
