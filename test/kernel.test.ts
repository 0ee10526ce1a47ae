import { randomUUID } from 'node:crypto'
import t from 'tap'
import { signUp, addMember } from './helpers/auth.ts'
import { build, TEST_JWT_SECRET } from './helpers/build.ts'
import { withProbes } from './helpers/probe-domain.ts'

const PROBLEM = 'application/problem+json; charset=utf-8'

t.test('problems, request ids and the role guard', async (t) => {
  const app = await build(t, {}, withProbes)
  const admin = await signUp(app)
  const reader = await addMember(app, admin, 'lecteur')
  const token = (role: 'admin' | 'lecteur') => (role === 'admin' ? admin.token : reader.token)

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

  t.test('security headers: the strict API policy on answers, a page policy on /docs', async (t) => {
    const res = await app.inject({ method: 'GET', url: '/health/live' })
    t.equal(res.headers['x-content-type-options'], 'nosniff')
    t.equal(res.headers['content-security-policy'], "default-src 'none';frame-ancestors 'none'")
    t.equal(res.headers['x-frame-options'], 'DENY')
    t.equal(res.headers['cross-origin-resource-policy'], 'same-origin')
    t.notOk(res.headers['strict-transport-security'], 'no HSTS over plain http (development)')
    const missing = await app.inject({ method: 'GET', url: '/nulle-part' })
    t.equal(missing.headers['content-security-policy'], "default-src 'none';frame-ancestors 'none'", 'a 404 too')
    const page = await app.inject({ method: 'GET', url: '/docs/' })
    t.equal(page.statusCode, 200)
    t.match(page.headers['content-security-policy'], /script-src 'self'/)
    t.equal(page.headers['x-frame-options'], 'SAMEORIGIN')
    t.equal(page.headers['x-content-type-options'], 'nosniff')
    t.notMatch(page.headers['content-security-policy'], /upgrade-insecure-requests/, 'nothing to upgrade to over plain http')
    t.notOk(page.headers['strict-transport-security'])
  })

  t.test('HSTS and upgrade-insecure-requests only behind TLS: an https PUBLIC_URL, or production', async (t) => {
    const production = { NODE_ENV: 'production', PUBLIC_URL: 'http://10.0.0.5:3000', MASTER_KEY: Buffer.alloc(32, 7).toString('base64') }
    for (const env of [{ PUBLIC_URL: 'https://armoire.exemple.fr' }, production] as Record<string, string>[]) {
      const tls = await build(t, env)
      const res = await tls.inject({ method: 'GET', url: '/health/live' })
      t.match(res.headers['strict-transport-security'], /max-age=\d+/, `HSTS with ${env.NODE_ENV ?? env.PUBLIC_URL}`)
      const page = await tls.inject({ method: 'GET', url: '/docs/' })
      t.match(page.headers['content-security-policy'], /upgrade-insecure-requests/)
      t.match(page.headers['strict-transport-security'], /max-age=\d+/)
    }
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

    const refused = await app.inject({ method: 'GET', url: '/probe/admin', headers: reader.headers })
    t.equal(refused.statusCode, 403)
    t.equal(refused.json().code, 'FORBIDDEN')
    const denial = await app.db
      .selectFrom('journal_activite')
      .selectAll()
      .where('action', '=', 'ACCESS_DENIED')
      .where('utilisateur_id', '=', reader.userId)
      .executeTakeFirst()
    t.equal(denial?.resultat, 'refus', 'the denial is journaled')
    t.equal(denial?.cible_id, 'probeAdminOnly')

    const allowed = await app.inject({ method: 'GET', url: '/probe/admin', headers: admin.headers })
    t.equal(allowed.statusCode, 200)
    t.same(allowed.json(), { user: admin.userId, role: 'admin' })

    const ghost = app.jwt.sign({ sub: admin.userId, org: admin.organisationId, role: 'admin', sid: randomUUID() })
    const unknown = await app.inject({ method: 'GET', url: '/probe/admin', headers: { authorization: `Bearer ${ghost}` } })
    t.equal(unknown.statusCode, 401, 'a well-signed token naming no live session is refused')
    t.equal(unknown.json().code, 'SESSION_REVOKED')
  })

  t.test('a token accepted once is refused when it expires (verified tokens are remembered only until then)', async (t) => {
    const { createSigner } = await import('fast-jwt')
    const { sid } = app.jwt.decode<{ sid: string }>(admin.token) ?? { sid: '' }
    const shortLived = createSigner({ key: TEST_JWT_SECRET, expiresIn: 2_000 })({ sub: admin.userId, org: admin.organisationId, role: 'admin', sid })
    const headers = { authorization: `Bearer ${shortLived}` }
    t.equal((await app.inject({ method: 'GET', url: '/probe/admin', headers })).statusCode, 200)
    t.equal((await app.inject({ method: 'GET', url: '/probe/admin', headers })).statusCode, 200, 'again, from memory')
    await new Promise((resolve) => setTimeout(resolve, 2_100))
    const late = await app.inject({ method: 'GET', url: '/probe/admin', headers })
    t.equal(late.statusCode, 401)
    t.equal(late.json().code, 'TOKEN_INVALID')
  })

  t.test('an unauthenticated caller is refused before its body is even read', async (t) => {
    const res = await app.inject({ method: 'POST', url: `/probe/echo/${randomUUID()}`, payload: { junk: true } })
    t.equal(res.statusCode, 401)
  })
})

t.test('CORS answers only the configured origins', async (t) => {
  const app = await build(t, { CORS_ORIGINS: 'https://app.armoire.fr, https://admin.armoire.fr' })
  const allowed = await app.inject({ method: 'OPTIONS', url: '/me', headers: { origin: 'https://app.armoire.fr', 'access-control-request-method': 'GET' } })
  t.equal(allowed.headers['access-control-allow-origin'], 'https://app.armoire.fr')
  const other = await app.inject({ method: 'GET', url: '/health/live', headers: { origin: 'https://evil.example' } })
  t.equal(other.headers['access-control-allow-origin'], undefined)
})

t.test('oversized headers are refused before reaching the app', async (t) => {
  const app = await build(t, { MAX_HEADER_SIZE: '4096' })
  const { listen } = await import('./helpers/build.ts')
  const base = await listen(app)
  const res = await fetch(`${base}/health/live`, { headers: { 'x-bloat': 'a'.repeat(8000) } })
  t.equal(res.status, 431)
  t.equal((await fetch(`${base}/health/live`)).status, 200)
})
