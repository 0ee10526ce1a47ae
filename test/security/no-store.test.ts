import t from 'tap'
import { signUp } from '../helpers/auth.ts'
import { build } from '../helpers/build.ts'
import { totpNow } from '../helpers/mfa.ts'

// RFC 6749 §5.1: an answer carrying tokens (or a 2FA secret, or backup codes) says `no-store`.
t.test('answers carrying tokens or secrets are never stored by a cache', async (t) => {
  const app = await build(t)
  const noStore = (res: { headers: Record<string, unknown> }, what: string) => {
    t.equal(res.headers['cache-control'], 'no-store', what)
    t.equal(res.headers.pragma, 'no-cache', `${what} (HTTP/1.0 caches)`)
  }
  const register = await app.inject({
    method: 'POST',
    url: '/auth/register',
    payload: { email: 'no-store@exemple.fr', mot_de_passe: 'Armoire-0f3a9c-Cle', nom: 'N', organisation: 'O' },
  })
  t.equal(register.statusCode, 201)
  noStore(register, 'register')
  const member = { email: 'no-store@exemple.fr', password: 'Armoire-0f3a9c-Cle' }
  const login = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: member.email, mot_de_passe: member.password } })
  noStore(login, 'login')
  const refresh = await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: login.json().refresh_token } })
  t.equal(refresh.statusCode, 200)
  noStore(refresh, 'refresh')
  const headers = { authorization: `Bearer ${refresh.json().access_token}` }

  const enable = await app.inject({ method: 'POST', url: '/auth/2fa/enable', headers, payload: { methode: 'totp' } })
  noStore(enable, '2FA enrolment (the TOTP secret)')
  const verify = await app.inject({ method: 'POST', url: '/auth/2fa/verify', headers, payload: { code: totpNow(enable.json().secret) } })
  t.equal(verify.statusCode, 200)
  noStore(verify, '2FA verification (the backup codes)')

  const step = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: member.email, mot_de_passe: member.password } })
  t.ok(step.json().mfa_token)
  noStore(step, 'login answering the 2FA step (its mfa_token)')
  const challenge = await app.inject({
    method: 'POST',
    url: '/auth/2fa/challenge',
    payload: { mfa_token: step.json().mfa_token, code: totpNow(enable.json().secret, 1) },
  })
  t.equal(challenge.statusCode, 200, challenge.body)
  noStore(challenge, '2FA challenge')

  const other = await signUp(app)
  const me = await app.inject({ method: 'GET', url: '/me', headers: other.headers })
  t.equal(me.statusCode, 200)
  t.not(me.headers['cache-control'], 'no-store', 'answers without secrets keep their own caching')
})
