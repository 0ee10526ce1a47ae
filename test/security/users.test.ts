import t from 'tap'
import { addMember, invitationToken, onUnlimitedPlan, signUp, strongPassword } from '../helpers/auth.ts'
import { build } from '../helpers/build.ts'
import { smtpSink } from '../helpers/smtp-sink.ts'

t.test('inviting a member: a French mail with a single-use link', async (t) => {
  const sink = await smtpSink(t)
  const app = await build(t, { SMTP_URL: sink.url, PUBLIC_URL: 'https://armoire.exemple.fr' })
  const admin = await signUp(app, { organisation: 'Étude <Dupont>' })

  const res = await app.inject({ method: 'POST', url: '/users', headers: admin.headers, payload: { email: 'Paul@Exemple.fr', nom: 'Paul Durand', role: 'contributeur' } })
  t.equal(res.statusCode, 201)
  t.match(res.json(), { utilisateur: { email: 'Paul@Exemple.fr', role: 'contributeur', actif: true, organisation_id: admin.organisationId } })

  const mail = await sink.waitFor((m) => m.to.some((a) => a.toLowerCase() === 'paul@exemple.fr'))
  t.match(mail.parsed.subject, /invit/i)
  t.match(mail.parsed.text, /https:\/\/armoire\.exemple\.fr\/invitation\?token=/)
  t.match(mail.parsed.html, /Étude &lt;Dupont&gt;/, 'names are escaped in HTML')
  const token = decodeURIComponent(/token=([\w%-]+)/.exec(mail.parsed.text ?? '')?.[1] ?? '')
  t.equal(token, await invitationToken(app, 'Paul@Exemple.fr'))

  const password = strongPassword()
  const weak = await app.inject({ method: 'POST', url: '/auth/invitation/accepter', payload: { token, mot_de_passe: 'password1234' } })
  t.equal(weak.statusCode, 400)
  t.equal(weak.json().code, 'WEAK_PASSWORD')
  const ok = await app.inject({ method: 'POST', url: '/auth/invitation/accepter', payload: { token, mot_de_passe: password } })
  t.equal(ok.statusCode, 200)
  t.equal(ok.json().utilisateur.role, 'contributeur')
  const again = await app.inject({ method: 'POST', url: '/auth/invitation/accepter', payload: { token, mot_de_passe: strongPassword() } })
  t.equal(again.statusCode, 400)
  t.equal(again.json().code, 'INVITATION_INVALID', 'the link works once')
  const login = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: 'paul@exemple.fr', mot_de_passe: password } })
  t.equal(login.statusCode, 200)

  const taken = await app.inject({ method: 'POST', url: '/users', headers: admin.headers, payload: { email: 'PAUL@exemple.fr', nom: 'Double', role: 'lecteur' } })
  t.equal(taken.statusCode, 409)
  t.equal(taken.json().code, 'EMAIL_TAKEN')
})

t.test('listing members: filters, search, pagination; admins only', async (t) => {
  const app = await build(t)
  const admin = await signUp(app)
  await onUnlimitedPlan(app, admin)
  const members = []
  for (const role of ['lecteur', 'lecteur', 'contributeur', 'lecteur', 'contributeur'] as const) members.push(await addMember(app, admin, role))
  const reader = members[0]
  if (!reader) throw new Error('no reader')

  const all: string[] = []
  let cursor: string | null = null
  do {
    const q: string = cursor ? `&cursor=${cursor}` : ''
    const res = await app.inject({ method: 'GET', url: `/users?limit=2${q}`, headers: admin.headers })
    t.equal(res.statusCode, 200)
    const body = res.json()
    t.ok(body.items.length <= 2)
    all.push(...body.items.map((u: { id: string }) => u.id))
    cursor = body.next_cursor
  } while (cursor)
  t.equal(all.length, 6, 'every member once, across pages')
  t.equal(new Set(all).size, 6)

  const readers = await app.inject({ method: 'GET', url: '/users?role=lecteur', headers: admin.headers })
  t.equal(readers.json().items.length, 3)
  const search = await app.inject({ method: 'GET', url: `/users?q=${encodeURIComponent(reader.email.slice(0, 12).toUpperCase())}`, headers: admin.headers })
  t.same(search.json().items.map((u: { id: string }) => u.id), [reader.userId])
  const bad = await app.inject({ method: 'GET', url: '/users?cursor=not-a-cursor', headers: admin.headers })
  t.equal(bad.statusCode, 400)
  t.equal(bad.json().code, 'INVALID_CURSOR')

  const denied = await app.inject({ method: 'GET', url: '/users', headers: reader.headers })
  t.equal(denied.statusCode, 403)
  const other = await signUp(app)
  const theirs = await app.inject({ method: 'GET', url: '/users', headers: other.headers })
  t.same(theirs.json().items.map((u: { id: string }) => u.id), [other.userId], 'another organisation sees only its own')
})

t.test('changing roles and deactivating take effect on the very next request', async (t) => {
  const app = await build(t)
  const admin = await signUp(app)
  const member = await addMember(app, admin, 'lecteur')

  const me = async () => (await app.inject({ method: 'GET', url: '/me', headers: member.headers })).json()
  t.match(await me(), { role: 'lecteur', utilisateur: { role: 'lecteur' } })
  t.equal((await app.inject({ method: 'GET', url: '/users', headers: member.headers })).statusCode, 403)
  const promote = await app.inject({ method: 'PUT', url: `/users/${member.userId}`, headers: admin.headers, payload: { role: 'admin' } })
  t.equal(promote.statusCode, 200)
  t.equal(promote.json().role, 'admin')
  t.equal((await app.inject({ method: 'GET', url: '/users', headers: member.headers })).statusCode, 200, 'the same token now carries the new role')
  t.match(await me(), { role: 'admin', utilisateur: { role: 'admin' } }, 'GET /me, rendered before, shows it at once')
  const demote = await app.inject({ method: 'PUT', url: `/users/${member.userId}`, headers: admin.headers, payload: { role: 'lecteur', nom: 'Nouveau Nom' } })
  t.match(demote.json(), { role: 'lecteur', nom: 'Nouveau Nom' })
  t.equal((await app.inject({ method: 'GET', url: '/users', headers: member.headers })).statusCode, 403)
  t.match(await me(), { role: 'lecteur', utilisateur: { role: 'lecteur', nom: 'Nouveau Nom' } })

  const off = await app.inject({ method: 'PUT', url: `/users/${member.userId}`, headers: admin.headers, payload: { actif: false } })
  t.equal(off.statusCode, 200)
  t.equal(off.json().actif, false)
  t.equal((await app.inject({ method: 'GET', url: '/me', headers: member.headers })).statusCode, 401, 'deactivated: refused at once')
  const sessions = await app.db.selectFrom('sessions').select('revoked_reason').where('utilisateur_id', '=', member.userId).execute()
  t.ok(sessions.every((s) => s.revoked_reason === 'desactivation'), 'all the member’s sessions are revoked')
  const login = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: member.email, mot_de_passe: member.password } })
  t.equal(login.statusCode, 401)

  const actions = await app.db.selectFrom('journal_activite').select(['action', 'severite']).where('cible_id', '=', member.userId).where('action', 'like', 'USER_%').orderBy('sequence').execute()
  t.same(actions.map((a) => a.action), ['USER_INVITED', 'USER_ROLE_CHANGED', 'USER_ROLE_CHANGED', 'USER_DEACTIVATED'])
})

t.test('an organisation always keeps an active admin', async (t) => {
  const app = await build(t)
  const admin = await signUp(app)
  const selfDemote = await app.inject({ method: 'PUT', url: `/users/${admin.userId}`, headers: admin.headers, payload: { role: 'contributeur' } })
  t.equal(selfDemote.statusCode, 409)
  t.equal(selfDemote.json().code, 'LAST_ADMIN')
  const selfOff = await app.inject({ method: 'PUT', url: `/users/${admin.userId}`, headers: admin.headers, payload: { actif: false } })
  t.equal(selfOff.json().code, 'LAST_ADMIN')

  const second = await addMember(app, admin, 'admin')
  // Two admins demoting each other at once: one must lose.
  const [a, b] = await Promise.all([
    app.inject({ method: 'PUT', url: `/users/${second.userId}`, headers: admin.headers, payload: { role: 'lecteur' } }),
    app.inject({ method: 'PUT', url: `/users/${admin.userId}`, headers: second.headers, payload: { role: 'lecteur' } }),
  ])
  t.same([a.statusCode, b.statusCode].sort(), [200, 409])
  const admins = await app.db.selectFrom('utilisateurs').select('id').where('organisation_id', '=', admin.organisationId).where('role', '=', 'admin').execute()
  t.equal(admins.length, 1)

  const stranger = await signUp(app)
  const foreign = await app.inject({ method: 'PUT', url: `/users/${admin.userId}`, headers: stranger.headers, payload: { nom: 'Pirate' } })
  t.equal(foreign.statusCode, 404)
})
