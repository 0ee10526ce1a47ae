import t from 'tap'
import { addMember, signUp } from '../helpers/auth.ts'
import { build } from '../helpers/build.ts'
import { base32Decode, enrollTotp, login, mailedCode, totpNow } from '../helpers/mfa.ts'
import { smtpSink } from '../helpers/smtp-sink.ts'

// These tests sign in often from the loopback: the per-address /auth limit has its own test.
const env = { AUTH_RATE_LIMIT_MAX: '1000' }

t.test('TOTP: enrolment, the QR code, activation only after a verified code, backup codes', async (t) => {
  const app = await build(t, { ...env, MFA_TOTP_ISSUER: 'Armoire Test' })
  const admin = await signUp(app)

  const enabled = await app.inject({ method: 'POST', url: '/auth/2fa/enable', headers: admin.headers, payload: { methode: 'totp' } })
  t.equal(enabled.statusCode, 200)
  const { secret, otpauth_uri: uri, qr_code: qr } = enabled.json()
  t.match(secret, /^[A-Z2-7]{32}$/, '160 bits in base32')
  const parsed = new URL(uri)
  t.equal(parsed.protocol, 'otpauth:')
  t.equal(parsed.host, 'totp')
  t.equal(decodeURIComponent(parsed.pathname), `/Armoire Test:${admin.email}`)
  t.match(Object.fromEntries(parsed.searchParams), { secret, issuer: 'Armoire Test', algorithm: 'SHA1', digits: '6', period: '30' })
  t.match(qr, /^data:image\/png;base64,/)
  t.ok(Buffer.from(qr.split(',')[1], 'base64').subarray(1, 4).equals(Buffer.from('PNG')), 'a PNG image')

  const stored = await app.db.selectFrom('facteurs_mfa').selectAll().where('utilisateur_id', '=', admin.userId).executeTakeFirstOrThrow()
  t.equal(stored.active_at, null, 'pending until verified')
  t.notOk(stored.secret_chiffre?.includes(base32Decode(secret)), 'the secret is stored sealed, not in clear')
  t.equal(stored.version_cle_maitre, app.keys.currentVersion)

  const before = await login(app, admin)
  t.ok(before.access_token, 'a pending factor does not change sign-in')
  const meBefore = (await app.inject({ method: 'GET', url: '/me', headers: admin.headers })).json()
  t.same(meBefore.facteurs_mfa, [])

  const wrong = await app.inject({ method: 'POST', url: '/auth/2fa/verify', headers: admin.headers, payload: { code: '000000' } })
  t.equal(wrong.statusCode, 401)
  t.equal(wrong.json().code, 'MFA_CODE_INVALID')

  const verified = await app.inject({ method: 'POST', url: '/auth/2fa/verify', headers: admin.headers, payload: { code: totpNow(secret) } })
  t.equal(verified.statusCode, 200)
  const body = verified.json()
  t.equal(body.methode, 'totp')
  t.equal(body.codes_secours.length, 10)
  t.equal(new Set(body.codes_secours).size, 10)
  for (const code of body.codes_secours) t.match(code, /^[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}$/)
  const hashes = await app.db.selectFrom('codes_secours').select('hash').where('utilisateur_id', '=', admin.userId).execute()
  t.equal(hashes.length, 10)
  t.notOk(hashes.some((h) => h.hash.toString('utf8').includes(body.codes_secours[0])), 'backup codes are stored hashed')

  const me = (await app.inject({ method: 'GET', url: '/me', headers: admin.headers })).json()
  t.match(me.facteurs_mfa, [{ methode: 'totp' }])
  t.equal(me.codes_secours_restants, 10)
  t.notMatch(JSON.stringify(me), new RegExp(secret), 'never the secret')

  const again = await app.inject({ method: 'POST', url: '/auth/2fa/enable', headers: admin.headers, payload: { methode: 'totp' } })
  t.equal(again.statusCode, 409)
  t.equal(again.json().code, 'MFA_ALREADY_ENABLED')

  const journal = await app.db.selectFrom('journal_activite').select(['action', 'resultat']).where('utilisateur_id', '=', admin.userId).orderBy('sequence').execute()
  t.match(
    journal.map((e) => `${e.action}:${e.resultat}`),
    ['USER_REGISTERED:succes', 'MFA_ENROLMENT_STARTED:succes', 'LOGIN_SUCCEEDED:succes', 'MFA_CHALLENGE_FAILED:echec', 'MFA_ENABLED:succes'],
  )
})

t.test('sign-in with TOTP: the second step, single-use mfa_token, and a replayed code refused', async (t) => {
  const app = await build(t, env)
  const admin = await signUp(app)
  const { secret, backupCodes } = await enrollTotp(app, admin)
  const challenge = (payload: Record<string, string>) => app.inject({ method: 'POST', url: '/auth/2fa/challenge', payload })

  const step = await login(app, admin)
  t.same(Object.keys(step).sort(), ['expires_in', 'methodes', 'mfa_requis', 'mfa_token'], 'no tokens before the second factor')
  t.match(step, { mfa_requis: true, methodes: ['totp', 'code_secours'], expires_in: 300 })

  // The code that activated the factor was accepted once: it is never accepted again.
  const replayed = await challenge({ mfa_token: step.mfa_token as string, code: totpNow(secret) })
  t.equal(replayed.statusCode, 401, 'a replayed TOTP code is refused')
  t.equal(replayed.json().code, 'MFA_CODE_INVALID')

  const next = totpNow(secret, 1)
  const ok = await challenge({ mfa_token: step.mfa_token as string, code: next })
  t.equal(ok.statusCode, 200, 'the next step’s code is accepted (window ±1)')
  t.match(ok.json(), { token_type: 'Bearer', mfa_enrolement_requis: false, utilisateur: { id: admin.userId } })
  t.equal((await app.inject({ method: 'GET', url: '/me', headers: { authorization: `Bearer ${ok.json().access_token}` } })).statusCode, 200)

  const reused = await challenge({ mfa_token: step.mfa_token as string, code: totpNow(secret, 1) })
  t.equal(reused.statusCode, 401)
  t.equal(reused.json().code, 'MFA_TOKEN_INVALID', 'the mfa_token works once')

  const second = await login(app, admin)
  const replayedAgain = await challenge({ mfa_token: second.mfa_token as string, code: next })
  t.equal(replayedAgain.json().code, 'MFA_CODE_INVALID', 'the code used to sign in is refused the second time too')

  const both = await challenge({ mfa_token: second.mfa_token as string, code: '123456', code_secours: backupCodes[0] as string })
  t.equal(both.statusCode, 400, 'a code or a backup code, not both')

  const backup = await challenge({ mfa_token: second.mfa_token as string, code_secours: (backupCodes[0] as string).toLowerCase().replaceAll('-', ' ') })
  t.equal(backup.statusCode, 200, 'a backup code, typed loosely, signs in')
  const third = await login(app, admin)
  const backupAgain = await challenge({ mfa_token: third.mfa_token as string, code_secours: backupCodes[0] as string })
  t.equal(backupAgain.json().code, 'MFA_CODE_INVALID', 'a backup code works once')
  t.equal((await app.inject({ method: 'GET', url: '/me', headers: admin.headers })).json().codes_secours_restants, 9)

  const expired = await login(app, admin)
  await app.db.updateTable('jetons_usage_unique').set({ expires_at: new Date(Date.now() - 1000) }).where('usage', '=', 'mfa').execute()
  const late = await challenge({ mfa_token: expired.mfa_token as string, code: totpNow(secret, 1) })
  t.equal(late.json().code, 'MFA_TOKEN_INVALID', 'the mfa_token is short-lived')

  const entries = await app.db.selectFrom('journal_activite').select(['action', 'details']).where('utilisateur_id', '=', admin.userId).where('action', '=', 'LOGIN_SUCCEEDED').orderBy('sequence').execute()
  t.match(entries.map((e) => e.details), [{ mfa: 'totp' }, { mfa: 'code_secours' }])
})

t.test('wrong codes are throttled and counted apart from passwords; a step dies after five', async (t) => {
  const app = await build(t, env)
  const admin = await signUp(app)
  const { secret } = await enrollTotp(app, admin)
  const challenge = (token: unknown, code: string) => app.inject({ method: 'POST', url: '/auth/2fa/challenge', payload: { mfa_token: token, code } })

  const first = await login(app, admin)
  for (let i = 0; i < 4; i++) t.equal((await challenge(first.mfa_token, '000000')).json().code, 'MFA_CODE_INVALID')
  const second = await login(app, admin)
  t.ok(second.mfa_token, 'wrong codes do not block the password step')
  t.equal((await challenge(second.mfa_token, '111111')).json().code, 'MFA_CODE_INVALID', 'the fifth wrong code locks')
  const locked = await challenge(second.mfa_token, totpNow(secret, 1))
  t.equal(locked.statusCode, 429, 'even the right code is refused while locked')
  t.equal(locked.json().code, 'MFA_LOCKED')
  t.ok(Number(locked.headers['retry-after']) > 0 && Number(locked.headers['retry-after']) <= 30)

  const row = await app.db.selectFrom('utilisateurs').select(['echecs_mfa', 'echecs_connexion', 'bloque_jusqua']).where('id', '=', admin.userId).executeTakeFirstOrThrow()
  t.equal(row.echecs_mfa, 5)
  t.equal(row.echecs_connexion, 0, 'password failures untouched')
  t.equal(row.bloque_jusqua, null, 'the password lock untouched')

  const unlock = () => app.db.updateTable('utilisateurs').set({ mfa_bloque_jusqua: new Date(Date.now() - 1000) }).where('id', '=', admin.userId).execute()
  await unlock()
  t.equal((await challenge(first.mfa_token, '222222')).json().code, 'MFA_CODE_INVALID', 'the first step’s fifth wrong code…')
  await unlock()
  const dead = await challenge(first.mfa_token, totpNow(secret, 1))
  t.equal(dead.json().code, 'MFA_TOKEN_INVALID', '…was its last: even the right code is refused')
  await unlock()
  const third = await login(app, admin)
  const ok = await challenge(third.mfa_token, totpNow(secret, 1))
  t.equal(ok.statusCode, 200)
  const reset = await app.db.selectFrom('utilisateurs').select('echecs_mfa').where('id', '=', admin.userId).executeTakeFirstOrThrow()
  t.equal(reset.echecs_mfa, 0, 'success resets the counter')

  const journal = await app.db.selectFrom('journal_activite').select(['action', 'severite']).where('utilisateur_id', '=', admin.userId).where('action', 'in', ['MFA_CHALLENGE_FAILED', 'MFA_LOCKED']).execute()
  t.equal(journal.filter((e) => e.action === 'MFA_LOCKED').length, 2, 'the fifth and the sixth wrong codes locked')
  t.ok(journal.filter((e) => e.action === 'MFA_LOCKED').every((e) => e.severite === 'HIGH'))
  t.ok(journal.filter((e) => e.action === 'MFA_CHALLENGE_FAILED').length >= 6)
})

t.test('the e-mail factor: a 6-digit code valid 10 minutes, sent at enrolment and at sign-in', async (t) => {
  const sink = await smtpSink(t)
  const app = await build(t, { ...env, SMTP_URL: sink.url })
  const admin = await signUp(app)
  const to = (m: { to: string[] }) => m.to.some((a) => a.toLowerCase() === admin.email.toLowerCase())

  const enabled = await app.inject({ method: 'POST', url: '/auth/2fa/enable', headers: admin.headers, payload: { methode: 'email' } })
  t.equal(enabled.statusCode, 200)
  const expires = new Date(enabled.json().expire_at).getTime() - Date.now()
  t.ok(expires > 9 * 60_000 && expires <= 10 * 60_000, 'valid 10 minutes')
  const mail = await sink.waitFor((m) => to(m) && /code de vérification/.test(m.parsed.subject ?? ''))
  const code = /(\d{6})/.exec(mail.parsed.subject ?? '')?.[1] ?? ''
  t.match(mail.parsed.text, /pour activer la double authentification/)
  t.match(mail.parsed.html, new RegExp(code))
  t.equal(code, await mailedCode(app, admin.email))
  const stored = await app.db.selectFrom('facteurs_mfa').select('code_hash').where('utilisateur_id', '=', admin.userId).executeTakeFirstOrThrow()
  t.notOk(stored.code_hash?.toString('utf8').includes(code), 'the code is stored hashed')

  const verified = await app.inject({ method: 'POST', url: '/auth/2fa/verify', headers: admin.headers, payload: { code } })
  t.equal(verified.statusCode, 200)
  t.equal(verified.json().methode, 'email')

  const step = await login(app, admin)
  t.match(step, { mfa_requis: true, methodes: ['email', 'code_secours'] })
  const signInMail = await sink.waitFor((m) => to(m) && /pour terminer votre connexion/.test(m.parsed.text ?? ''))
  const signInCode = /(\d{6})/.exec(signInMail.parsed.subject ?? '')?.[1] ?? ''
  const ok = await app.inject({ method: 'POST', url: '/auth/2fa/challenge', payload: { mfa_token: step.mfa_token, code: signInCode } })
  t.equal(ok.statusCode, 200)

  const late = await login(app, admin)
  const lateCode = await mailedCode(app, admin.email)
  await app.db.updateTable('facteurs_mfa').set({ code_expire_at: new Date(Date.now() - 1000) }).where('utilisateur_id', '=', admin.userId).execute()
  const refused = await app.inject({ method: 'POST', url: '/auth/2fa/challenge', payload: { mfa_token: late.mfa_token, code: lateCode } })
  t.equal(refused.json().code, 'MFA_CODE_INVALID', 'an expired code is refused')
})

t.test('backup codes regenerate (old ones die); disabling needs the password and a code', async (t) => {
  const sink = await smtpSink(t)
  const app = await build(t, { ...env, SMTP_URL: sink.url })
  const admin = await signUp(app)
  const { secret, backupCodes } = await enrollTotp(app, admin)

  const noProof = await app.inject({ method: 'POST', url: '/auth/2fa/backup-codes', headers: admin.headers, payload: {} })
  t.equal(noProof.statusCode, 400)
  const regenerated = await app.inject({ method: 'POST', url: '/auth/2fa/backup-codes', headers: admin.headers, payload: { code: totpNow(secret, 1) } })
  t.equal(regenerated.statusCode, 200)
  const fresh = regenerated.json().codes_secours as string[]
  t.equal(fresh.length, 10)
  const step = await login(app, admin)
  const old = await app.inject({ method: 'POST', url: '/auth/2fa/challenge', payload: { mfa_token: step.mfa_token, code_secours: backupCodes[1] } })
  t.equal(old.json().code, 'MFA_CODE_INVALID', 'the old codes are dead')

  const badPassword = await app.inject({ method: 'POST', url: '/auth/2fa/disable', headers: admin.headers, payload: { mot_de_passe: 'Pas-le-bon-mot-de-passe', code_secours: fresh[0] } })
  t.equal(badPassword.statusCode, 401)
  t.equal(badPassword.json().code, 'INVALID_CREDENTIALS')
  const badCode = await app.inject({ method: 'POST', url: '/auth/2fa/disable', headers: admin.headers, payload: { mot_de_passe: admin.password, code: '000000' } })
  t.equal(badCode.json().code, 'MFA_CODE_INVALID')
  t.equal((await app.inject({ method: 'GET', url: '/me', headers: admin.headers })).json().facteurs_mfa.length, 1, 'still active')

  const disabled = await app.inject({ method: 'POST', url: '/auth/2fa/disable', headers: admin.headers, payload: { mot_de_passe: admin.password, code_secours: fresh[0] } })
  t.equal(disabled.statusCode, 200)
  t.same(disabled.json().facteurs, [])
  const me = (await app.inject({ method: 'GET', url: '/me', headers: admin.headers })).json()
  t.same(me.facteurs_mfa, [])
  t.equal(me.codes_secours_restants, 0)
  t.ok((await login(app, admin)).access_token, 'the password alone signs in again')
  const mail = await sink.waitFor((m) => /désactivée/.test(m.parsed.subject ?? ''))
  t.match(mail.parsed.text, /n’est plus protégé que par son mot de passe/)
  const entry = await app.db.selectFrom('journal_activite').select(['severite', 'details']).where('action', '=', 'MFA_DISABLED').executeTakeFirstOrThrow()
  t.equal(entry.severite, 'HIGH')
  t.match(entry.details, { methodes: ['totp'], preuve: 'code_secours' })
})

t.test('an organisation can require 2FA: members without it can only enroll, at once', async (t) => {
  const sink = await smtpSink(t)
  const app = await build(t, { ...env, SMTP_URL: sink.url })
  const admin = await signUp(app)
  await enrollTotp(app, admin)
  const member = await addMember(app, admin, 'contributeur')

  const forbidden = await app.inject({ method: 'PUT', url: '/organisation/2fa', headers: member.headers, payload: { obligatoire: true } })
  t.equal(forbidden.statusCode, 403, 'admins only')
  const required = await app.inject({ method: 'PUT', url: '/organisation/2fa', headers: admin.headers, payload: { obligatoire: true } })
  t.equal(required.statusCode, 200)
  t.same(required.json(), { obligatoire: true, membres_sans_2fa: 1 })

  // The member's open session is confined on its very next request.
  const confined = await app.inject({ method: 'GET', url: '/auth/sessions', headers: member.headers })
  t.equal(confined.statusCode, 403)
  t.equal(confined.json().code, 'MFA_ENROLMENT_REQUIRED')
  const me = await app.inject({ method: 'GET', url: '/me', headers: member.headers })
  t.equal(me.statusCode, 200, 'GET /me stays open')
  t.match(me.json(), { mfa_enrolement_requis: true, organisation: { mfa_obligatoire: true } })
  t.equal((await app.inject({ method: 'GET', url: '/auth/sessions', headers: admin.headers })).statusCode, 200, 'the admin, who has 2FA, is not confined')

  const signedIn = await login(app, member)
  t.match(signedIn, { mfa_enrolement_requis: true, token_type: 'Bearer' }, 'sign-in says so')
  const headers = { authorization: `Bearer ${signedIn.access_token}` }
  t.equal((await app.inject({ method: 'GET', url: '/auth/sessions', headers })).json().code, 'MFA_ENROLMENT_REQUIRED')
  const denied = await app.db.selectFrom('journal_activite').select('details').where('action', '=', 'ACCESS_DENIED').where('utilisateur_id', '=', member.userId).execute()
  t.equal(denied.filter((d) => d.details.raison === 'enrolement_mfa_requis').length, 2, 'refusals are journaled')

  const enabled = await app.inject({ method: 'POST', url: '/auth/2fa/enable', headers, payload: { methode: 'totp' } })
  t.equal(enabled.statusCode, 200, 'enrolment is open')
  const verified = await app.inject({ method: 'POST', url: '/auth/2fa/verify', headers, payload: { code: totpNow(enabled.json().secret) } })
  t.equal(verified.statusCode, 200)
  t.equal((await app.inject({ method: 'GET', url: '/auth/sessions', headers })).statusCode, 200, 'the same token is free once the factor is verified')

  const refused = await app.inject({
    method: 'POST',
    url: '/auth/2fa/disable',
    headers,
    payload: { mot_de_passe: member.password, code_secours: verified.json().codes_secours[0] },
  })
  t.equal(refused.statusCode, 409)
  t.equal(refused.json().code, 'MFA_REQUIRED_BY_ORGANISATION')

  // The admin resets the member's 2FA: journaled HIGH, the member is told, their sessions end.
  const self = await app.inject({ method: 'DELETE', url: `/users/${admin.userId}/2fa`, headers: admin.headers })
  t.equal(self.json().code, 'MFA_RESET_SELF')
  const reset = await app.inject({ method: 'DELETE', url: `/users/${member.userId}/2fa`, headers: admin.headers })
  t.equal(reset.statusCode, 204)
  t.equal((await app.inject({ method: 'GET', url: '/me', headers })).statusCode, 401, 'the member’s sessions are revoked')
  const entry = await app.db.selectFrom('journal_activite').selectAll().where('action', '=', 'MFA_RESET').executeTakeFirstOrThrow()
  t.match(entry, { severite: 'HIGH', utilisateur_id: admin.userId, cible_id: member.userId, details: { methodes: ['totp'] } })
  const mail = await sink.waitFor((m) => m.to.includes(member.email) && /réinitialisée/.test(m.parsed.subject ?? ''))
  t.match(mail.parsed.text, /Admin Test, administrateur de votre organisation/)
  const again = await login(app, member)
  t.match(again, { mfa_enrolement_requis: true }, 'the member must enroll again')
  t.equal((await app.inject({ method: 'DELETE', url: `/users/${member.userId}/2fa`, headers: admin.headers })).json().code, 'MFA_NOT_ENABLED')

  const lifted = await app.inject({ method: 'PUT', url: '/organisation/2fa', headers: admin.headers, payload: { obligatoire: false } })
  t.equal(lifted.statusCode, 200)
  t.equal((await app.inject({ method: 'GET', url: '/auth/sessions', headers: { authorization: `Bearer ${again.access_token}` } })).statusCode, 200, 'lifting it frees the sessions')
  const policy = await app.db.selectFrom('journal_activite').select(['severite', 'details']).where('action', '=', 'MFA_POLICY_CHANGED').orderBy('sequence').execute()
  t.match(policy, [{ severite: 'HIGH', details: { avant: false, apres: true } }, { details: { avant: true, apres: false } }])
})
