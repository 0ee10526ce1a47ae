import t from 'tap'
import { hasher } from '../../plugins/security/hasher.ts'
import { hashPassword, verifyPassword } from '../../plugins/security/passwords.ts'
import { signUp, strongPassword } from '../helpers/auth.ts'
import { build } from '../helpers/build.ts'
import { login, mailedToken } from '../helpers/mfa.ts'
import { smtpSink } from '../helpers/smtp-sink.ts'

const env = { AUTH_RATE_LIMIT_MAX: '1000', PUBLIC_URL: 'https://armoire.exemple.fr' }

t.test('forgotten password: always 202, a single-use link valid one hour, all sessions revoked', async (t) => {
  const sink = await smtpSink(t)
  const app = await build(t, { ...env, SMTP_URL: sink.url })
  const owner = await signUp(app)
  const other = await login(app, owner, '203.0.113.20')

  const forgot = (email: string) => app.inject({ method: 'POST', url: '/auth/password/forgot', payload: { email } })
  const time = async (email: string) => {
    const start = performance.now()
    const res = await forgot(email)
    return { res, ms: performance.now() - start }
  }
  const known = await time(owner.email.toUpperCase())
  const unknown = await time('personne@exemple.fr')
  t.equal(known.res.statusCode, 202)
  t.equal(unknown.res.statusCode, 202)
  t.same(known.res.json(), unknown.res.json(), 'the same answer whether the account exists or not')
  t.ok(known.ms >= 240 && unknown.ms >= 240, `both take the floor time (${known.ms.toFixed(0)} ms, ${unknown.ms.toFixed(0)} ms)`)

  const mail = await sink.waitFor((m) => m.to.includes(owner.email) && /Réinitialisation/.test(m.parsed.subject ?? ''))
  t.match(mail.parsed.text, /https:\/\/armoire\.exemple\.fr\/mot-de-passe\/reinitialiser\?token=/)
  t.match(mail.parsed.text, /valable 60\u00a0minutes/)
  const token = await mailedToken(app, owner.email, 'password_reset')
  const row = await app.db.selectFrom('jetons_usage_unique').selectAll().where('usage', '=', 'reinitialisation_mot_de_passe').where('used_at', 'is', null).executeTakeFirstOrThrow()
  t.notOk(row.hash.toString('base64url') === token, 'stored hashed')
  const ttl = row.expires_at.getTime() - row.created_at.getTime()
  t.ok(Math.abs(ttl - 3_600_000) < 5_000, 'one hour')
  t.notOk(sink.received.some((m) => m.to.includes('personne@exemple.fr')), 'no mail for an unknown address')

  const weak = await app.inject({ method: 'POST', url: '/auth/password/reset', payload: { token, mot_de_passe: 'password1234' } })
  t.equal(weak.statusCode, 400)
  t.equal(weak.json().code, 'WEAK_PASSWORD', 'the same policy as registration')

  const password = strongPassword()
  const reset = await app.inject({ method: 'POST', url: '/auth/password/reset', payload: { token, mot_de_passe: password } })
  t.equal(reset.statusCode, 204)
  t.equal((await app.inject({ method: 'GET', url: '/me', headers: owner.headers })).statusCode, 401, 'every session is revoked')
  t.equal((await app.inject({ method: 'GET', url: '/me', headers: { authorization: `Bearer ${other.access_token}` } })).statusCode, 401)
  const again = await app.inject({ method: 'POST', url: '/auth/password/reset', payload: { token, mot_de_passe: strongPassword() } })
  t.equal(again.json().code, 'PASSWORD_RESET_TOKEN_INVALID', 'the link works once')
  const old = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: owner.email, mot_de_passe: owner.password } })
  t.equal(old.statusCode, 401)
  t.ok((await login(app, { email: owner.email, password })).access_token, 'the new password signs in')
  await sink.waitFor((m) => m.to.includes(owner.email) && /mot de passe .* a changé/.test(m.parsed.subject ?? ''))

  await forgot(owner.email)
  const first = await mailedToken(app, owner.email, 'password_reset')
  await forgot(owner.email)
  const second = await mailedToken(app, owner.email, 'password_reset')
  const stale = await app.inject({ method: 'POST', url: '/auth/password/reset', payload: { token: first, mot_de_passe: strongPassword() } })
  t.equal(stale.json().code, 'PASSWORD_RESET_TOKEN_INVALID', 'a newer request cancels the older link')
  await app.db.updateTable('jetons_usage_unique').set({ expires_at: new Date(Date.now() - 1000) }).where('usage', '=', 'reinitialisation_mot_de_passe').execute()
  const late = await app.inject({ method: 'POST', url: '/auth/password/reset', payload: { token: second, mot_de_passe: strongPassword() } })
  t.equal(late.json().code, 'PASSWORD_RESET_TOKEN_INVALID', 'an expired link is refused')

  const journal = await app.db.selectFrom('journal_activite').select(['action', 'severite', 'resultat']).where('action', 'in', ['PASSWORD_RESET_REQUESTED', 'PASSWORD_RESET']).orderBy('id').execute()
  t.match(journal, [
    { action: 'PASSWORD_RESET_REQUESTED', resultat: 'succes' },
    { action: 'PASSWORD_RESET_REQUESTED', resultat: 'refus' },
    { action: 'PASSWORD_RESET', severite: 'HIGH' },
    { action: 'PASSWORD_RESET_REQUESTED' },
    { action: 'PASSWORD_RESET_REQUESTED' },
  ])
})

t.test('changing my password checks the current one and revokes every other session', async (t) => {
  const sink = await smtpSink(t)
  const app = await build(t, { ...env, SMTP_URL: sink.url })
  const owner = await signUp(app)
  const laptop = await login(app, owner, '198.51.100.4')
  const laptopHeaders = { authorization: `Bearer ${laptop.access_token}` }
  const change = (mot_de_passe_actuel: string, mot_de_passe: string) =>
    app.inject({ method: 'PUT', url: '/me/password', headers: owner.headers, payload: { mot_de_passe_actuel, mot_de_passe } })

  const wrong = await change('Pas-le-bon-mot-de-passe', strongPassword())
  t.equal(wrong.statusCode, 401)
  t.equal(wrong.json().code, 'INVALID_CREDENTIALS')
  const failures = await app.db.selectFrom('utilisateurs').select('echecs_connexion').where('id', '=', owner.userId).executeTakeFirstOrThrow()
  t.equal(failures.echecs_connexion, 1, 'a wrong current password counts as a failed sign-in')
  const weak = await change(owner.password, owner.email)
  t.equal(weak.json().code, 'WEAK_PASSWORD')

  const password = strongPassword()
  t.equal((await change(owner.password, password)).statusCode, 204)
  t.equal((await app.inject({ method: 'GET', url: '/me', headers: owner.headers })).statusCode, 200, 'this session stays open')
  t.equal((await app.inject({ method: 'GET', url: '/me', headers: laptopHeaders })).statusCode, 401, 'the others are revoked')
  t.ok((await login(app, { email: owner.email, password })).access_token)
  const mail = await sink.waitFor((m) => m.to.includes(owner.email) && /a changé/.test(m.parsed.subject ?? ''))
  t.match(mail.parsed.text, /Vos autres sessions ont été fermées/)
  const entry = await app.db.selectFrom('journal_activite').select('details').where('action', '=', 'PASSWORD_CHANGED').executeTakeFirstOrThrow()
  t.same(entry.details, { sessions_revoquees: 1 })
})

t.test('e-mail verification: a link at registration, verify, resend; GET /me tells', async (t) => {
  const sink = await smtpSink(t)
  const app = await build(t, { ...env, SMTP_URL: sink.url })
  const owner = await signUp(app)
  const me = async () => (await app.inject({ method: 'GET', url: '/me', headers: owner.headers })).json()
  t.equal((await me()).email_verifie, false)

  const mail = await sink.waitFor((m) => m.to.includes(owner.email) && /Vérifiez/.test(m.parsed.subject ?? ''))
  t.match(mail.parsed.text, /https:\/\/armoire\.exemple\.fr\/email\/verifier\?token=/)
  const first = await mailedToken(app, owner.email, 'email_verification')

  const resent = await app.inject({ method: 'POST', url: '/auth/email/resend', headers: owner.headers })
  t.equal(resent.statusCode, 202)
  const second = await mailedToken(app, owner.email, 'email_verification')
  t.not(second, first)
  const stale = await app.inject({ method: 'POST', url: '/auth/email/verify', payload: { token: first } })
  t.equal(stale.statusCode, 400)
  t.equal(stale.json().code, 'EMAIL_TOKEN_INVALID', 'a resend cancels the older link')

  const verified = await app.inject({ method: 'POST', url: '/auth/email/verify', payload: { token: second } })
  t.equal(verified.statusCode, 200)
  t.same(verified.json(), { email: owner.email, email_verifie: true })
  t.equal((await me()).email_verifie, true, 'GET /me, served from the session cache, sees it at once')
  t.equal((await app.inject({ method: 'POST', url: '/auth/email/verify', payload: { token: second } })).json().code, 'EMAIL_TOKEN_INVALID', 'single use')
  const done = await app.inject({ method: 'POST', url: '/auth/email/resend', headers: owner.headers })
  t.equal(done.statusCode, 409)
  t.equal(done.json().code, 'EMAIL_ALREADY_VERIFIED')
  const journal = await app.db.selectFrom('journal_activite').select('action').where('organisation_id', '=', owner.organisationId).orderBy('sequence').execute()
  t.same(journal.map((e) => e.action), ['USER_REGISTERED', 'EMAIL_VERIFICATION_SENT', 'EMAIL_VERIFIED'])
})

t.test('a sign-in from an unknown device or address sends an alert', async (t) => {
  const sink = await smtpSink(t)
  const app = await build(t, { ...env, SMTP_URL: sink.url })
  const owner = await signUp(app)
  const alerts = () => sink.received.filter((m) => m.to.includes(owner.email) && /Nouvelle connexion/.test(m.parsed.subject ?? ''))

  await login(app, owner)
  await new Promise((r) => setTimeout(r, 300))
  t.equal(alerts().length, 0, 'the device and address of registration are known')
  await app.inject({ method: 'POST', url: '/auth/login', remoteAddress: '192.0.2.77', headers: { 'user-agent': 'Firefox/140.0' }, payload: { email: owner.email, mot_de_passe: owner.password } })
  const alert = await sink.waitFor((m) => m.to.includes(owner.email) && /Nouvelle connexion/.test(m.parsed.subject ?? ''))
  t.match(alert.parsed.text, /192\.0\.2\.77/)
  t.match(alert.parsed.text, /Firefox\/140\.0/)
  await app.inject({ method: 'POST', url: '/auth/login', remoteAddress: '192.0.2.77', headers: { 'user-agent': 'Firefox/140.0' }, payload: { email: owner.email, mot_de_passe: owner.password } })
  await new Promise((r) => setTimeout(r, 300))
  t.equal(alerts().length, 1, 'the same device again: no second alert')
  const entry = await app.db.selectFrom('journal_activite').select(['details', 'severite']).where('action', '=', 'NEW_DEVICE_ALERT').executeTakeFirstOrThrow()
  t.match(entry, { details: { ip: '192.0.2.77' }, severite: 'MEDIUM' })
})

t.test('hashes run in a process of their own, started again when it dies', async (t) => {
  const app = await build(t, env)
  const owner = await signUp(app)
  const first = hasher.pid
  t.ok(first !== undefined && first !== process.pid, 'another process hashed the registration')

  const stored = await hashPassword(owner.password)
  t.same(await verifyPassword(stored, owner.password), { ok: true, rehash: false })
  t.same(await verifyPassword('$argon2id$not-a-hash', owner.password), { ok: false, rehash: false }, 'a hash argon2 cannot read matches nothing')

  const inFlight = verifyPassword(stored, owner.password)
  process.kill(first as number, 'SIGKILL')
  await t.rejects(inFlight, /hashing process ended/, 'a verification in flight fails as an error, never as a wrong password')

  const res = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: owner.email, mot_de_passe: owner.password } })
  t.equal(res.statusCode, 200, 'the next sign-in starts another hashing process')
  t.ok(hasher.pid !== undefined && hasher.pid !== first)
})
