import { randomBytes } from 'node:crypto'
import t from 'tap'
import { signUp } from '../helpers/auth.ts'
import { build, testConfig } from '../helpers/build.ts'
import { buildApp } from '../../src/app.ts'

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'

const login = (email: string, ip: string) => ({
  method: 'POST' as const,
  url: '/auth/login',
  remoteAddress: ip,
  payload: { email, mot_de_passe: 'Pas-le-bon-mot-de-passe' },
})

t.test('the /auth operations have a strict limit per address, answered as a problem with Retry-After', async (t) => {
  const app = await build(t, { AUTH_RATE_LIMIT_MAX: '3' })
  const codes = []
  for (let i = 0; i < 4; i++) codes.push((await app.inject(login(`x${i}@exemple.fr`, '203.0.113.1'))).statusCode)
  t.same(codes, [401, 401, 401, 429])
  const limited = await app.inject(login('y@exemple.fr', '203.0.113.1'))
  t.equal(limited.statusCode, 429)
  t.equal(limited.headers['content-type'], 'application/problem+json; charset=utf-8')
  t.equal(limited.json().code, 'RATE_LIMITED')
  t.ok(Number(limited.headers['retry-after']) > 0)
  t.equal((await app.inject(login('z@exemple.fr', '203.0.113.2'))).statusCode, 401, 'another address has its own counter')
  t.equal((await app.inject({ method: 'GET', url: '/health/live', remoteAddress: '203.0.113.1' })).statusCode, 200, 'other operations keep the global limit')
})

t.test('sign-in is also limited per e-mail, whatever address it comes from', async (t) => {
  const app = await build(t, { LOGIN_EMAIL_RATE_LIMIT_MAX: '3' })
  const owner = await signUp(app)
  const codes = []
  for (let i = 0; i < 4; i++) codes.push((await app.inject(login(owner.email.toUpperCase(), `198.51.100.${i + 1}`))).statusCode)
  t.same(codes, [401, 401, 401, 429])
})

t.test('the global limit counts per signed-in user', async (t) => {
  const app = await build(t, { RATE_LIMIT_MAX: '5' })
  const a = await signUp(app)
  const b = await signUp(app)
  const me = (h: { authorization: string }) => app.inject({ method: 'GET', url: '/me', headers: h, remoteAddress: '10.0.0.1' })
  for (let i = 0; i < 5; i++) t.equal((await me(a.headers)).statusCode, 200)
  t.equal((await me(a.headers)).statusCode, 429)
  t.equal((await me(b.headers)).statusCode, 200, 'the same address, another user: its own counter')
})

t.test('with Redis, instances share the counters', async (t) => {
  const env = { REDIS_URL, REDIS_PREFIX: `armoire-test-${randomBytes(4).toString('hex')}:`, AUTH_RATE_LIMIT_MAX: '4' }
  const first = await build(t, env)
  const second = await buildApp({ config: await testConfig(t, env) })
  t.teardown(() => second.close())
  await second.ready()
  const codes = []
  for (let i = 0; i < 5; i++) codes.push((await (i % 2 ? second : first).inject(login(`r${i}@exemple.fr`, '203.0.113.50'))).statusCode)
  t.same(codes, [401, 401, 401, 401, 429], 'the fifth attempt is refused, though each instance saw fewer than five')
})

t.test('password-reset requests are limited per e-mail, whatever address they come from', async (t) => {
  const app = await build(t, { PASSWORD_RESET_RATE_LIMIT_MAX: '2' })
  const forgot = (email: string, ip: string) => app.inject({ method: 'POST', url: '/auth/password/forgot', remoteAddress: ip, payload: { email } })
  const codes = []
  for (let i = 0; i < 3; i++) codes.push((await forgot('Cible@Exemple.fr', `198.51.100.${i + 1}`)).statusCode)
  t.same(codes, [202, 202, 429])
  t.equal((await forgot('autre@exemple.fr', '198.51.100.1')).statusCode, 202, 'another address has its own counter')
})

t.test('codes and links sent by e-mail are limited per user', async (t) => {
  const app = await build(t, { EMAIL_CODE_RATE_LIMIT_MAX: '2' })
  const owner = await signUp(app)
  const resend = () => app.inject({ method: 'POST', url: '/auth/email/resend', headers: owner.headers })
  const codes = [(await resend()).statusCode, (await resend()).statusCode, (await resend()).statusCode]
  t.same(codes, [202, 202, 429])
  const enable = await app.inject({ method: 'POST', url: '/auth/2fa/enable', headers: owner.headers, payload: { methode: 'email' } })
  t.equal(enable.statusCode, 429, 'enrolling the e-mail factor sends a code: the same counter')
  const totp = await app.inject({ method: 'POST', url: '/auth/2fa/enable', headers: owner.headers, payload: { methode: 'totp' } })
  t.equal(totp.statusCode, 200, 'the TOTP factor sends nothing')
})

t.test('second-factor attempts are limited per 2FA step and per user', async (t) => {
  const app = await build(t, { MFA_RATE_LIMIT_MAX: '2' })
  const owner = await signUp(app)
  const verify = () => app.inject({ method: 'POST', url: '/auth/2fa/verify', headers: owner.headers, payload: { code: '000000' } })
  await app.inject({ method: 'POST', url: '/auth/2fa/enable', headers: owner.headers, payload: { methode: 'totp' } })
  t.same([(await verify()).statusCode, (await verify()).statusCode, (await verify()).statusCode], [401, 401, 429])
  const challenge = () => app.inject({ method: 'POST', url: '/auth/2fa/challenge', payload: { mfa_token: 'inconnu', code: '000000' } })
  t.same([(await challenge()).statusCode, (await challenge()).statusCode, (await challenge()).statusCode], [401, 401, 429])
})
