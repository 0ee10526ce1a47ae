import ajvCompiler from '@fastify/ajv-compiler'
import type { FastifyInstance } from 'fastify'
import t from 'tap'
import { contract } from '../openapi/index.ts'
import type { Answer, DocumentedOperation, Operation } from '../openapi/operation.ts'
import { addFormats, buildValidator } from '../src/validation.ts'
import { build } from './helpers/build.ts'

type Validate = ((data: unknown) => boolean) & { errors?: { instancePath: string; message?: string }[] | null }
type Compiler = (route: { schema: unknown; method: string; url: string; httpPart: string }) => Validate

interface JsonMedia {
  schema: unknown
}

/** The JSON schema of a 2xx answer, or null when it has no JSON body (204, 302, 304, a download). */
function jsonSchemaOf(response: unknown): unknown {
  const declared = response as { type?: string; content?: Record<string, JsonMedia> }
  if (declared.type === 'null') return null
  if (!declared.content) return declared
  const json = Object.entries(declared.content).find(([type]) => type.includes('json'))
  return json ? json[1].schema : null
}

/**
 * Validates an example with the app's own AJV, on a copy, and checks the copy kept every
 * value as given: an example valid only after coercion or with fields AJV would strip is
 * not what the server answers or accepts.
 */
function check(compile: Compiler, op: Operation, httpPart: string, schema: unknown, example: unknown): string[] {
  const validate = compile({ schema, method: op.method, url: op.url, httpPart })
  const copy = structuredClone(example)
  if (!validate(copy)) {
    return (validate.errors ?? []).map((e) => `${httpPart} example: ${e.instancePath || '(racine)'} ${e.message ?? ''}`)
  }
  const kept = (given: unknown, validated: unknown, path: string): string[] => {
    if (given === null || typeof given !== 'object') {
      return Object.is(given, validated) ? [] : [`${httpPart} example: ${path || '(racine)'} was coerced to ${JSON.stringify(validated)}`]
    }
    if (validated === null || typeof validated !== 'object') return [`${httpPart} example: ${path} changed shape`]
    return Object.entries(given).flatMap(([key, value]) =>
      key in validated ? kept(value, (validated as Record<string, unknown>)[key], `${path}/${key}`) : [`${httpPart} example: ${path}/${key} is not in the schema`],
    )
  }
  return kept(example, copy, '')
}

let app: FastifyInstance
let served: { paths: Record<string, Record<string, DocumentedOperation & { description?: string }>> }

t.before(async () => {
  app = await build(t)
  served = (await app.inject({ method: 'GET', url: '/openapi.json' })).json()
})

t.test('every operation teaches itself: description, examples, status descriptions, problem codes', async (t) => {
  for (const op of contract) {
    const documented = served.paths[op.url.replace(/:(\w+)/g, '{$1}')]?.[op.method.toLowerCase()]
    if (!documented) {
      t.fail(`${op.operationId} is not in the served document`)
      continue
    }
    const missing: string[] = []
    if (!op.description || op.description.length < 40) {
      missing.push('`description`: say in French what it does and when to use it (40 characters at least)')
    }
    if (op.schema.body && op.request?.body === undefined) missing.push('`request.body`: an example of the body it takes')
    const answers = (op.responses ?? {}) as Record<string, Answer | undefined>
    for (const [status, response] of Object.entries(op.schema.response)) {
      if (!status.startsWith('2')) continue
      if (jsonSchemaOf(response) !== null && answers[status]?.example === undefined) {
        missing.push(`\`responses[${status}].example\`: an example of its ${status} answer`)
      }
      const description = documented.responses?.[status]?.description
      if (!description || description === 'Default Response') {
        missing.push(`\`responses[${status}].description\`: what its ${status} answer means (the document says "${description}")`)
      }
    }
    for (const [status, response] of Object.entries(documented.responses ?? {})) {
      if (response.content?.['application/problem+json'] && !response['x-problem-codes']?.length) {
        missing.push(`\`problems\`: the codes of its ${status} problem (e.g. problems: ['NAME_CONFLICT'] rather than [409])`)
      }
    }
    t.same(missing, [], missing.length ? `${op.operationId} (${op.method} ${op.url}) lacks: ${missing.join("; ")}` : `${op.operationId} is documented`)
  }
})

t.test('every example is valid against its schema, with the AJV the app validates requests with', async (t) => {
  // Requests: the compiler Fastify builds for the app's routes (same package, options, shared
  // schemas). Answers are serialized, never coerced: their examples must be valid as they are.
  const schemas = app.getSchemas() as Parameters<ReturnType<typeof ajvCompiler>>[0]
  const compile = buildValidator(schemas) as unknown as Compiler
  const strict = { customOptions: { allErrors: true, coerceTypes: false, useDefaults: false, removeAdditional: false }, onCreate: addFormats }
  const compileAnswer = ajvCompiler()(schemas, strict) as unknown as Compiler
  let checked = 0
  for (const op of contract) {
    const errors: string[] = []
    for (const part of ['body', 'querystring', 'params'] as const) {
      const example = op.request?.[part]
      if (example === undefined || !op.schema[part]) continue
      errors.push(...check(compile, op, part, op.schema[part], example))
      checked++
    }
    const answers = (op.responses ?? {}) as Record<string, Answer | undefined>
    for (const [status, answer] of Object.entries(answers)) {
      if (answer?.example === undefined) continue
      const schema = jsonSchemaOf(op.schema.response[Number(status)])
      if (schema === null || schema === undefined) errors.push(`response ${status} has an example but no JSON schema`)
      else errors.push(...check(compileAnswer, op, `response ${status}`, schema, answer.example))
      checked++
    }
    t.same(errors, [], `${op.operationId}: its examples are valid`)
  }
  t.ok(checked > contract.length, `${checked} examples checked`)
})

t.test('the served document publishes the examples where Swagger UI shows them', async (t) => {
  for (const op of contract) {
    const documented = served.paths[op.url.replace(/:(\w+)/g, '{$1}')]?.[op.method.toLowerCase()]
    if (op.request?.body !== undefined) {
      for (const [type, media] of Object.entries(documented?.requestBody?.content ?? {})) {
        t.same(media.example, op.request.body, `${op.operationId}: ${type} request example`)
      }
    }
    const answers = (op.responses ?? {}) as Record<string, Answer | undefined>
    for (const [status, answer] of Object.entries(answers)) {
      if (answer?.example === undefined) continue
      const content = documented?.responses?.[status]?.content ?? {}
      const json = Object.keys(content).find((type) => type.includes('json'))
      t.same(json && content[json]?.example, answer.example, `${op.operationId}: ${status} example`)
    }
  }
})
