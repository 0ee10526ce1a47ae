import { readFile } from 'node:fs/promises'
import t from 'tap'
import { contract, tags } from '../openapi/index.ts'
import { renderOpenapi } from '../scripts/openapi.ts'
import { build } from './helpers/build.ts'
import { probeAdminOnly, probeDomain } from './helpers/probe-domain.ts'

t.test('the app refuses to start when an operation has no handler', async (t) => {
  await t.rejects(build(t, {}, { contract: [...contract, probeAdminOnly] }), {
    name: 'ContractError',
    message: /operation probeAdminOnly \(GET \/probe\/admin\) has no handler/,
  })
})

t.test('the app refuses to start when a route is outside the contract', async (t) => {
  const stray = async (app: import('fastify').FastifyInstance) => {
    app.get('/stray', async () => ({}))
  }
  await t.rejects(build(t, {}, { extraPlugins: [stray] }), { name: 'ContractError', message: /route GET \/stray is not in the contract/ })
  // A handler registered for an operation the contract does not list is refused too.
  await t.rejects(build(t, {}, { extraPlugins: [probeDomain] }), { name: 'ContractError', message: /route for probeEcho is not in the contract/ })
})

t.test('every operation is fully declared', async (t) => {
  const known = new Set(tags.map((tag) => tag.name))
  const ids = new Set<string>()
  for (const op of contract) {
    t.notOk(ids.has(op.operationId), `${op.operationId} is unique`)
    ids.add(op.operationId)
    t.ok(op.summary.length > 0, `${op.operationId} has a summary`)
    t.ok(op.tags.length > 0 && op.tags.every((tag) => known.has(tag)), `${op.operationId} has known tags`)
    t.ok(op.schema.response[200] ?? op.schema.response[201] ?? op.schema.response[204] ?? op.schema.response[202] ?? op.schema.response[206] ?? op.schema.response[302],
      `${op.operationId} declares its success response`)
  }
})

t.test('the served document publishes access, and matches the committed openapi.json', async (t) => {
  const app = await build(t)
  const served = (await app.inject({ method: 'GET', url: '/openapi.json' })).json()
  for (const op of contract) {
    const path = op.url.replace(/:(\w+)/g, '{$1}')
    const doc = served.paths[path]?.[op.method.toLowerCase()]
    t.ok(doc, `${op.operationId} is documented`)
    t.equal(doc.operationId, op.operationId)
    if ('roles' in op.access) {
      t.same(doc.security, [{ bearerAuth: [] }], `${op.operationId} needs a token`)
      t.same(doc['x-roles'], op.access.roles)
    } else {
      t.same(doc.security, [], `${op.operationId} needs no token`)
      t.same(doc['x-roles'], [])
    }
  }
  const committed = await readFile(new URL('../openapi/openapi.json', import.meta.url), 'utf8')
  t.same(served, JSON.parse(committed), 'openapi/openapi.json is what the app serves (run `npm run openapi`)')
  t.equal(await renderOpenapi(), committed, 'npm run openapi reproduces the committed file byte for byte')
})
