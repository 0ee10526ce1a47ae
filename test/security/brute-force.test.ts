import t from 'tap'
import { lockSeconds } from '../../plugins/security/accounts.ts'
import { signUp } from '../helpers/auth.ts'
import { build } from '../helpers/build.ts'
import { smtpSink } from '../helpers/smtp-sink.ts'

t.test('the lock grows with failures and is capped at 15 minutes', async (t) => {
  t.same([1, 2, 3, 4].map(lockSeconds), [0, 0, 0, 0])
  t.same([5, 6, 7, 8, 9].map(lockSeconds), [30, 60, 120, 240, 480])
  t.equal(lockSeconds(10), 900)
  t.equal(lockSeconds(1000), 900)
})

t.test('failed sign-ins lock the account, announce it, and the owner keeps a way in', async (t) => {
  const sink = await smtpSink(t)
  const app = await build(t, { SMTP_URL: sink.url })
  const owner = await signUp(app)
  const attacker = '198.51.100.66'
  const ownerHome = '192.0.2.10'
  // The owner has signed in from home before.
  const home = await app.inject({ method: 'POST', url: '/auth/login', remoteAddress: ownerHome, payload: { email: owner.email, mot_de_passe: owner.password } })
  t.equal(home.statusCode, 200)

  for (let i = 1; i <= 5; i++) {
    const res = await app.inject({ method: 'POST', url: '/auth/login', remoteAddress: attacker, payload: { email: owner.email, mot_de_passe: `Essai-numero-${i}-faux` } })
    t.equal(res.statusCode, 401, `failure ${i}`)
  }
  const locked = await app.inject({ method: 'POST', url: '/auth/login', remoteAddress: attacker, payload: { email: owner.email, mot_de_passe: owner.password } })
  t.equal(locked.statusCode, 429, 'even the right password is refused from elsewhere while locked')
  t.equal(locked.json().code, 'ACCOUNT_LOCKED')
  const retry = Number(locked.headers['retry-after'])
  t.ok(retry > 0 && retry <= 30, `Retry-After ${retry}`)

  // The owner also gets the verification link and the new-device alert: wait for the lock's mail.
  const mail = await sink.waitFor((m) => m.to.some((a) => a.toLowerCase() === owner.email.toLowerCase()) && /bloqu|verrouill/i.test(m.parsed.subject ?? ''))
  t.match(mail.parsed.text, /verrouillé/)

  const fromHome = await app.inject({ method: 'POST', url: '/auth/login', remoteAddress: ownerHome, payload: { email: owner.email, mot_de_passe: owner.password } })
  t.equal(fromHome.statusCode, 200, 'the owner signs in from a known address despite the lock')
  const row = await app.db.selectFrom('utilisateurs').select(['echecs_connexion', 'bloque_jusqua']).where('id', '=', owner.userId).executeTakeFirstOrThrow()
  t.same(row, { echecs_connexion: 0, bloque_jusqua: null }, 'success resets the counter')

  const journal = await app.db.selectFrom('journal_activite').select(['action', 'resultat', 'ip']).where('organisation_id', '=', owner.organisationId).orderBy('sequence').execute()
  const failures = journal.filter((e) => e.action === 'LOGIN_FAILED')
  t.equal(failures.length, 6, 'five wrong passwords and one refusal while locked')
  t.ok(failures.every((e) => e.ip === attacker))
  t.equal(journal.filter((e) => e.action === 'ACCOUNT_LOCKED').length, 1)
})

t.test('a lock ends by itself after its time', async (t) => {
  const app = await build(t)
  const owner = await signUp(app)
  await app.db.updateTable('utilisateurs').set({ echecs_connexion: 12, bloque_jusqua: new Date(Date.now() - 1000) }).where('id', '=', owner.userId).execute()
  const res = await app.inject({ method: 'POST', url: '/auth/login', remoteAddress: '198.51.100.7', payload: { email: owner.email, mot_de_passe: owner.password } })
  t.equal(res.statusCode, 200)
})
