import argon2 from 'argon2'
import { sql } from 'kysely'
import t from 'tap'
import { build } from '../helpers/build.ts'
import { signUp, strongPassword } from '../helpers/auth.ts'

t.test('registration', async (t) => {
  const app = await build(t)

  t.test('creates an organisation with its first admin, signed in', async (t) => {
    const res = await app.inject({
      method: 'POST',
      url: '/auth/register',
      payload: { email: 'Claire.Martin@Exemple.fr', mot_de_passe: strongPassword(), nom: 'Claire Martin', organisation: 'Cabinet Martin' },
    })
    t.equal(res.statusCode, 201)
    const body = res.json()
    t.match(body, {
      token_type: 'Bearer',
      expires_in: 900,
      utilisateur: { email: 'Claire.Martin@Exemple.fr', nom: 'Claire Martin', role: 'admin', actif: true },
      organisation: { nom: 'Cabinet Martin' },
    })
    t.equal(body.utilisateur.organisation_id, body.organisation.id)
    t.notOk('mot_de_passe_hash' in body.utilisateur, 'no hash leaks')
    const me = await app.inject({ method: 'GET', url: '/me', headers: { authorization: `Bearer ${body.access_token}` } })
    t.equal(me.statusCode, 200)
    t.match(me.json(), { role: 'admin', organisation: { nom: 'Cabinet Martin' }, utilisateur: { id: body.utilisateur.id } })
    const stored = await app.db.selectFrom('utilisateurs').select('mot_de_passe_hash').where('id', '=', body.utilisateur.id).executeTakeFirstOrThrow()
    t.match(stored.mot_de_passe_hash, /^\$argon2id\$v=19\$m=19456,p=1,t=2\$/, 'argon2id with OWASP parameters')
    const journal = await app.db.selectFrom('journal_activite').selectAll().where('organisation_id', '=', body.organisation.id).execute()
    t.same(journal.map((e) => e.action), ['USER_REGISTERED'])
  })

  t.test('the same address, in any case, cannot register twice', async (t) => {
    const first = await signUp(app)
    const res = await app.inject({
      method: 'POST',
      url: '/auth/register',
      payload: { email: first.email.toUpperCase(), mot_de_passe: strongPassword(), nom: 'X', organisation: 'Y' },
    })
    t.equal(res.statusCode, 409)
    t.equal(res.json().code, 'EMAIL_TAKEN')
  })

  t.test('the password policy lists every failure', async (t) => {
    const attempt = (email: string, mot_de_passe: string) =>
      app.inject({ method: 'POST', url: '/auth/register', payload: { email, mot_de_passe, nom: 'N', organisation: 'O' } })
    // The length is the schema's (minLength 12, published in the contract); the rest is the server's.
    const short = await attempt('court@exemple.fr', 'Xq7#vb')
    t.equal(short.statusCode, 400)
    t.equal(short.json().code, 'VALIDATION_ERROR')
    t.same(short.json().errors.map((e: { field: string }) => e.field), ['body.mot_de_passe'])
    t.match(short.json().errors[0].message, /12/)

    const common = await attempt('commun@exemple.fr', 'password1234')
    t.equal(common.statusCode, 400)
    t.equal(common.json().code, 'WEAK_PASSWORD')
    t.same(common.json().errors.map((e: { field: string }) => e.field), ['body.mot_de_passe'])
    t.match(common.json().detail, /trop courant/)
    const decorated = await attempt('commun@exemple.fr', '!!sunshine2024!!')
    t.match(decorated.json().detail, /trop courant/, 'a common password with digits around it is still common')

    const mine = await attempt('jean.dupont@exemple.fr', 'jean.dupont@exemple.fr!')
    t.match(mine.json().detail, /adresse e-mail/)
    const both = await attempt('password@exemple.fr', 'password1234')
    t.equal(both.json().errors.length, 2, 'common and containing the address')

    const none = await app.db.selectFrom('utilisateurs').select('id').where('email', 'in', ['court@exemple.fr', 'commun@exemple.fr']).execute()
    t.same(none, [], 'nothing was created')
  })
})

t.test('sign-in', async (t) => {
  const app = await build(t)
  const admin = await signUp(app)

  t.test('right credentials give tokens; the address is case-insensitive', async (t) => {
    const res = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: admin.email.toUpperCase(), mot_de_passe: admin.password } })
    t.equal(res.statusCode, 200)
    t.match(res.json(), { token_type: 'Bearer', expires_in: 900, utilisateur: { id: admin.userId } })
    t.match(res.json().refresh_token, /^[\w-]{43}$/, '256 random bits')
    const claims = app.jwt.decode<{ sub: string; org: string; role: string; sid: string; exp: number; iat: number }>(res.json().access_token)
    t.match(claims, { sub: admin.userId, org: admin.organisationId, role: 'admin' })
    t.equal((claims?.exp ?? 0) - (claims?.iat ?? 0), 900, '15 minutes')
    const stored = await app.db.selectFrom('jetons_rafraichissement').select('hash').execute()
    t.notOk(stored.some((r) => r.hash.toString('base64url') === res.json().refresh_token), 'refresh tokens are stored hashed')
  })

  t.test('a wrong password and an unknown address are indistinguishable', async (t) => {
    const time = async (email: string) => {
      const start = performance.now()
      const res = await app.inject({ method: 'POST', url: '/auth/login', payload: { email, mot_de_passe: 'Mauvais-mot-de-passe-42' } })
      return { res, ms: performance.now() - start }
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0
    const wrong = []
    const unknown = []
    for (let i = 0; i < 3; i++) {
      wrong.push(await time(admin.email))
      unknown.push(await time(`personne-${i}@exemple.fr`))
    }
    for (const r of [...wrong, ...unknown]) t.equal(r.res.statusCode, 401)
    const strip = (b: Record<string, unknown>) => ({ ...b, request_id: undefined })
    t.same(strip(wrong[0]?.res.json() ?? {}), strip(unknown[0]?.res.json() ?? {}), 'same problem body')
    const w = median(wrong.map((r) => r.ms))
    const u = median(unknown.map((r) => r.ms))
    t.ok(w >= 240 && u >= 240, `both answer after the refusal floor (${w.toFixed(0)} ms, ${u.toFixed(0)} ms)`)
    t.ok(Math.abs(w - u) < 40, `and within a few ms of each other (${w.toFixed(0)} ms vs ${u.toFixed(0)} ms)`)
  })

  t.test('a hash made with weaker parameters is upgraded at the next sign-in', async (t) => {
    const member = await signUp(app)
    const weak = await argon2.hash(member.password, { type: argon2.argon2id, memoryCost: 4096, timeCost: 1, parallelism: 1 })
    await app.db.updateTable('utilisateurs').set({ mot_de_passe_hash: weak }).where('id', '=', member.userId).execute()
    const res = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: member.email, mot_de_passe: member.password } })
    t.equal(res.statusCode, 200)
    const after = await app.db.selectFrom('utilisateurs').select('mot_de_passe_hash').where('id', '=', member.userId).executeTakeFirstOrThrow()
    t.match(after.mot_de_passe_hash, /m=19456,p=1,t=2/)
    t.ok(await argon2.verify(after.mot_de_passe_hash as string, member.password))
  })
})

t.test('the sign-in\'s statements are planned once per connection, and survive a migration while running', async (t) => {
  // One connection, so every statement below meets the same prepared statements.
  const app = await build(t, { DATABASE_POOL_MAX: '1' })
  const admin = await signUp(app)
  const preparedStatements = async () => {
    const { rows } = await sql<{ statement: string }>`select statement from pg_prepared_statements order by prepare_time`.execute(app.db)
    return rows.map((r) => r.statement)
  }
  const signIn = () => app.inject({ method: 'POST', url: '/auth/login', payload: { email: admin.email, mot_de_passe: admin.password } })

  t.equal((await signIn()).statusCode, 200)
  const statements = await preparedStatements()
  t.ok(statements.length >= 2 && statements.every((s) => s.startsWith('/* prepared */')), 'only marked statements are prepared')
  t.ok(statements.some((s) => /from utilisateurs u where lower\(u\.email\)/.test(s)), 'the lookup of the account')
  t.ok(statements.some((s) => /insert into sessions/.test(s)), 'the opening of the session')

  // Another instance migrates: a column appears under the prepared lookup.
  await sql`alter table utilisateurs add column signature_test text`.execute(app.db)
  const again = await signIn()
  t.equal(again.statusCode, 200, 'the lookup names its columns, so its result keeps its shape')
  t.match(again.json(), { utilisateur: { id: admin.userId, email: admin.email } })
  t.same(await preparedStatements(), statements, 'the same statements, not prepared again')
})

t.test('refresh tokens rotate, and a reused one revokes the session', async (t) => {
  const app = await build(t)
  const admin = await signUp(app)

  const first = await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: admin.refreshToken } })
  t.equal(first.statusCode, 200)
  const rotated = first.json()
  t.not(rotated.refresh_token, admin.refreshToken)
  t.equal((await app.inject({ method: 'GET', url: '/me', headers: { authorization: `Bearer ${rotated.access_token}` } })).statusCode, 200)

  const second = await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: rotated.refresh_token } })
  t.equal(second.statusCode, 200)

  // The first token, already rotated, comes back: someone else has it.
  const reuse = await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: admin.refreshToken } })
  t.equal(reuse.statusCode, 401)
  t.equal(reuse.json().code, 'REFRESH_TOKEN_REUSED')

  const latest = second.json()
  const refused = await app.inject({ method: 'GET', url: '/me', headers: { authorization: `Bearer ${latest.access_token}` } })
  t.equal(refused.statusCode, 401, 'the unexpired access token of the family is refused at once')
  t.equal(refused.json().code, 'SESSION_REVOKED')
  const again = await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: latest.refresh_token } })
  t.equal(again.statusCode, 401, 'the newest refresh token of the family is dead too')

  const entry = await app.db.selectFrom('journal_activite').selectAll().where('action', '=', 'REFRESH_TOKEN_REUSED').executeTakeFirstOrThrow()
  t.equal(entry.severite, 'HIGH')
  t.equal(entry.utilisateur_id, admin.userId)

  const junk = await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: 'nimporte-quoi' } })
  t.equal(junk.statusCode, 401)
  t.equal(junk.json().code, 'REFRESH_TOKEN_INVALID')
})

t.test('sessions: list, revoke one, log out', async (t) => {
  const app = await build(t)
  const admin = await signUp(app)
  const other = (
    await app.inject({
      method: 'POST',
      url: '/auth/login',
      payload: { email: admin.email, mot_de_passe: admin.password },
      headers: { 'user-agent': 'Armoire-Desktop/1.0' },
      remoteAddress: '203.0.113.9',
    })
  ).json()
  const otherHeaders = { authorization: `Bearer ${other.access_token}` }

  const list = await app.inject({ method: 'GET', url: '/auth/sessions', headers: admin.headers })
  t.equal(list.statusCode, 200)
  const items = list.json().items
  t.equal(items.length, 2)
  t.equal(items.filter((s: { courante: boolean }) => s.courante).length, 1)
  const desktop = items.find((s: { user_agent: string }) => s.user_agent === 'Armoire-Desktop/1.0')
  t.match(desktop, { ip: '203.0.113.9', courante: false })

  t.equal((await app.inject({ method: 'GET', url: '/me', headers: otherHeaders })).statusCode, 200)
  const revoke = await app.inject({ method: 'DELETE', url: `/auth/sessions/${desktop.id}`, headers: admin.headers })
  t.equal(revoke.statusCode, 204)
  t.equal((await app.inject({ method: 'GET', url: '/me', headers: otherHeaders })).statusCode, 401, 'refused on its very next request')
  t.equal((await app.inject({ method: 'DELETE', url: `/auth/sessions/${desktop.id}`, headers: admin.headers })).statusCode, 404)

  const stranger = await signUp(app)
  const foreign = await app.inject({ method: 'GET', url: '/auth/sessions', headers: stranger.headers })
  const strangerSession = foreign.json().items[0].id
  t.equal((await app.inject({ method: 'DELETE', url: `/auth/sessions/${strangerSession}`, headers: admin.headers })).statusCode, 404, 'another user’s session is not found')
  t.equal((await app.inject({ method: 'GET', url: '/me', headers: stranger.headers })).statusCode, 200)

  t.equal((await app.inject({ method: 'POST', url: '/auth/logout', headers: admin.headers })).statusCode, 204)
  const after = await app.inject({ method: 'GET', url: '/me', headers: admin.headers })
  t.equal(after.statusCode, 401)
  t.equal(after.json().code, 'SESSION_REVOKED')
  const actions = (await app.db.selectFrom('journal_activite').select('action').where('organisation_id', '=', admin.organisationId).orderBy('sequence').execute()).map((r) => r.action)
  // The desktop sign-in came from an address and a device never seen for this account.
  t.same(actions, ['USER_REGISTERED', 'LOGIN_SUCCEEDED', 'NEW_DEVICE_ALERT', 'SESSION_REVOKED', 'LOGOUT'])
})
