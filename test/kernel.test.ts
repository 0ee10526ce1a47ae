import { randomUUID } from 'node:crypto'
import t from 'tap'
import { build, TEST_JWT_SECRET } from './helpers/build.ts'
import { withProbes } from './helpers/probe-domain.ts'

const PROBLEM = 'application/problem+json; charset=utf-8'

t.test('problems, request ids and the role guard', async (t) => {
  const app = await build(t, {}, withProbes)
  const token = (role: string) =>
    app.jwt.sign({ sub: randomUUID(), org: randomUUID(), role: role as 'admin', sid: randomUUID() })

  t.test('validation errors list every offending field', async (t) => {
    const res = await app.inject({
      method: 'POST',
      url: `/probe/echo/${randomUUID()}`,
      headers: { authorization: `Bearer ${token('lecteur')}` },
      payload: { email: 'not-an-email', age: -1 },
    })
    t.equal(res.statusCode, 400)
    t.equal(res.headers['content-type'], PROBLEM)
    const body = res.json()
    t.equal(body.code, 'VALIDATION_ERROR')
    t.equal(body.status, 400)
    t.equal(body.request_id, res.headers['x-request-id'])
    t.match(body.type, /^urn:armoire:problem:validation-error$/)
    const fields = body.errors.map((e: { field: string }) => e.field).sort()
    t.same(fields, ['body.age', 'body.email', 'body.nom'])
  })

  t.test('a malformed path parameter names the parameter', async (t) => {
    const res = await app.inject({
      method: 'POST',
      url: '/probe/echo/42',
      headers: { authorization: `Bearer ${token('lecteur')}` },
      payload: { email: 'a@b.fr', age: 1, nom: 'x' },
    })
    t.equal(res.statusCode, 400)
    t.same(res.json().errors.map((e: { field: string }) => e.field), ['params.id'])
  })

  t.test('malformed JSON is a 400 problem, not a 500', async (t) => {
    const res = await app.inject({
      method: 'POST',
      url: `/probe/echo/${randomUUID()}`,
      headers: { authorization: `Bearer ${token('lecteur')}`, 'content-type': 'application/json' },
      payload: '{"email": ',
    })
    t.equal(res.statusCode, 400)
    t.equal(res.json().code, 'BAD_REQUEST')
  })

  t.test('a body over the limit is a 413 problem', async (t) => {
    const res = await app.inject({
      method: 'POST',
      url: `/probe/echo/${randomUUID()}`,
      headers: { authorization: `Bearer ${token('lecteur')}`, 'content-type': 'application/json' },
      payload: JSON.stringify({ nom: 'x'.repeat(2 * 1024 * 1024) }),
    })
    t.equal(res.statusCode, 413)
    t.equal(res.json().code, 'PAYLOAD_TOO_LARGE')
  })

  t.test('an unknown route is a 404 problem', async (t) => {
    const res = await app.inject({ method: 'GET', url: '/nulle-part?x=1' })
    t.equal(res.statusCode, 404)
    t.equal(res.headers['content-type'], PROBLEM)
    t.equal(res.json().code, 'ROUTE_NOT_FOUND')
    t.equal(res.json().detail, 'Aucune opération GET /nulle-part')
  })

  t.test('a 500 hides its cause', async (t) => {
    const res = await app.inject({ method: 'GET', url: '/probe/crash' })
    t.equal(res.statusCode, 500)
    const body = res.json()
    t.equal(body.code, 'INTERNAL_ERROR')
    t.notMatch(res.body, /secret|password|stack/i)
    t.equal(body.request_id, res.headers['x-request-id'])
  })

  t.test('a request id is accepted when well-formed, generated otherwise, and echoed', async (t) => {
    const given = await app.inject({ method: 'GET', url: '/health/live', headers: { 'x-request-id': 'client-abc.123' } })
    t.equal(given.headers['x-request-id'], 'client-abc.123')
    const bad = await app.inject({ method: 'GET', url: '/health/live', headers: { 'x-request-id': 'évil id\twith spaces' } })
    t.match(bad.headers['x-request-id'], /^[0-9a-f-]{36}$/)
    const none = await app.inject({ method: 'GET', url: '/health/live' })
    t.match(none.headers['x-request-id'], /^[0-9a-f-]{36}$/)
    t.not(none.headers['x-request-id'], bad.headers['x-request-id'])
  })

  t.test('security headers are set', async (t) => {
    const res = await app.inject({ method: 'GET', url: '/health/live' })
    t.equal(res.headers['x-content-type-options'], 'nosniff')
    t.ok(res.headers['content-security-policy'])
  })

  t.test('the guard: no token, bad token, wrong role, right role', async (t) => {
    const none = await app.inject({ method: 'GET', url: '/probe/admin' })
    t.equal(none.statusCode, 401)
    t.equal(none.json().code, 'UNAUTHENTICATED')

    const forged = await app.inject({
      method: 'GET',
      url: '/probe/admin',
      headers: { authorization: `Bearer ${token('admin').slice(0, -3)}abc` },
    })
    t.equal(forged.statusCode, 401)
    t.equal(forged.json().code, 'TOKEN_INVALID')

    const { createSigner } = await import('fast-jwt')
    const expired = createSigner({ key: TEST_JWT_SECRET, expiresIn: 1 })({
      sub: randomUUID(),
      org: randomUUID(),
      role: 'admin',
      sid: randomUUID(),
      iat: Math.floor(Date.now() / 1000) - 3600,
    })
    const late = await app.inject({ method: 'GET', url: '/probe/admin', headers: { authorization: `Bearer ${expired}` } })
    t.equal(late.statusCode, 401)
    t.equal(late.json().code, 'TOKEN_INVALID')

    const reader = await app.inject({ method: 'GET', url: '/probe/admin', headers: { authorization: `Bearer ${token('lecteur')}` } })
    t.equal(reader.statusCode, 403)
    t.equal(reader.json().code, 'FORBIDDEN')

    const admin = await app.inject({ method: 'GET', url: '/probe/admin', headers: { authorization: `Bearer ${token('admin')}` } })
    t.equal(admin.statusCode, 200)
    t.equal(admin.json().role, 'admin')
  })

  t.test('an unauthenticated caller is refused before its body is even read', async (t) => {
    const res = await app.inject({ method: 'POST', url: `/probe/echo/${randomUUID()}`, payload: { junk: true } })
    t.equal(res.statusCode, 401)
  })
})
