import { randomBytes, randomUUID } from 'node:crypto'
import t from 'tap'
import { signUp } from '../helpers/auth.ts'
import { build, type TestContext } from '../helpers/build.ts'
import { enrollTotp, mailedToken, totpNow } from '../helpers/mfa.ts'
import { Browser, freePort, oidcStandIn } from '../helpers/oidc-provider.ts'

type Provider = 'google' | 'microsoft'

/** What the callback answers: the sign-in (tokens or the 2FA step), or a problem. */
interface SignInAnswer {
  access_token?: string
  refresh_token?: string
  mfa_token?: string
  mfa_enrolement_requis?: boolean
  utilisateur: { id: string; email: string }
  code?: string
  detail?: string
  [field: string]: unknown
}

/** One Armoire listening on the loopback, with a Google and a Microsoft stand-in, over real HTTP. */
async function world(t: TestContext) {
  const port = await freePort()
  const base = `http://127.0.0.1:${port}`
  const google = await oidcStandIn(t, { redirectUris: [`${base}/auth/sso/google/callback`] })
  const tenant = randomUUID()
  // Microsoft's issuer names the tenant in its path: configuration, not code.
  const microsoft = await oidcStandIn(t, { redirectUris: [`${base}/auth/sso/microsoft/callback`], pathPrefix: `/${tenant}/v2.0` })
  const app = await build(t, {
    PUBLIC_URL: base,
    AUTH_RATE_LIMIT_MAX: '1000',
    SSO_GOOGLE_ISSUER: google.issuer,
    SSO_GOOGLE_CLIENT_ID: google.clientId,
    SSO_GOOGLE_CLIENT_SECRET: google.clientSecret,
    SSO_MICROSOFT_ISSUER: microsoft.issuer,
    SSO_MICROSOFT_CLIENT_ID: microsoft.clientId,
    SSO_MICROSOFT_CLIENT_SECRET: microsoft.clientSecret,
  })
  await app.listen({ host: '127.0.0.1', port })
  const stands = { google, microsoft }

  interface FlowOptions {
    amr?: string
    browser?: Browser
    /** Changes the authorization URL before the browser goes there (a tampered nonce). */
    authorize?: (url: URL) => void
    /** Changes the callback URL before the browser comes back (a forged state). */
    callback?: (url: URL) => void
    beforeCallback?: () => Promise<void>
    /** Another browser brings the callback back (no binding cookie). */
    callbackBrowser?: Browser
  }

  /** The whole redirect dance, as a browser and a person at the provider's sign-in page do it. */
  async function signInWith(provider: Provider, account: string, opts: FlowOptions = {}) {
    const browser = opts.browser ?? new Browser()
    const start = await browser.fetch(`${base}/auth/sso/${provider}/start`)
    if (start.status !== 302) throw new Error(`start answered ${start.status}: ${await start.text()}`)
    const authorize = new URL(start.headers.get('location') ?? '')
    opts.authorize?.(authorize)
    const atLogin = await browser.follow(authorize.href, (u) => u.includes('/interaction/'))
    const back = await browser.follow(atLogin.url, (u) => u.startsWith(base), {
      method: 'POST',
      body: new URLSearchParams({ account, amr: opts.amr ?? 'pwd' }).toString(),
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    })
    const callback = new URL(back.url)
    if (!callback.pathname.endsWith('/callback')) throw new Error(`the provider did not come back: ${back.url} ${back.res.status}`)
    opts.callback?.(callback)
    await opts.beforeCallback?.()
    const res = await (opts.callbackBrowser ?? browser).fetch(callback.href)
    return { start, authorize, callback, status: res.status, headers: res.headers, body: (await res.json()) as SignInAnswer }
  }

  /** An organisation whose admin has a verified address at its own domain, mapped for SSO. */
  async function organisation(role: 'lecteur' | 'contributeur' = 'lecteur') {
    const domain = `cabinet-${randomBytes(4).toString('hex')}.fr`
    const admin = await signUp(app, { email: `admin@${domain}` })
    const verified = await app.inject({ method: 'POST', url: '/auth/email/verify', payload: { token: await mailedToken(app, admin.email, 'email_verification') } })
    if (verified.statusCode !== 200) throw new Error(verified.body)
    const mapped = await app.inject({ method: 'PUT', url: '/organisation/sso', headers: admin.headers, payload: { domaines: [{ domaine: domain, role_defaut: role }] } })
    if (mapped.statusCode !== 200) throw new Error(mapped.body)
    return { admin, domain }
  }

  return { app, base, stands, signInWith, organisation }
}

t.test('the start redirects to the provider with PKCE, state and nonce, bound to the browser', async (t) => {
  const { base, stands } = await world(t)
  const browser = new Browser()
  const start = await browser.fetch(`${base}/auth/sso/google/start`)
  t.equal(start.status, 302)
  const url = new URL(start.headers.get('location') ?? '')
  t.equal(`${url.origin}${url.pathname}`, `${stands.google.issuer}/auth`)
  const params = Object.fromEntries(url.searchParams)
  t.match(params, {
    client_id: stands.google.clientId,
    response_type: 'code',
    redirect_uri: `${base}/auth/sso/google/callback`,
    code_challenge_method: 'S256',
    scope: 'openid email profile',
  })
  t.match(params.code_challenge, /^[\w-]{43}$/)
  t.match(params.state, /^[\w-]{43}$/)
  t.match(params.nonce, /^[\w-]{43}$/)
  const cookie = start.headers.getSetCookie().find((c) => c.startsWith('armoire_sso='))
  t.match(cookie, /HttpOnly/)
  t.match(cookie, /SameSite=Lax/)
  t.match(cookie, /Path=\/auth\/sso/)
  const stored = await fetch(`${base}/auth/sso/google/start`, { redirect: 'manual' })
  t.not(new URL(stored.headers.get('location') ?? '').searchParams.get('state'), params.state, 'a fresh state each time')

  const unconfigured = await fetch(`${base}/auth/sso/yahoo/start`, { redirect: 'manual' })
  t.equal(unconfigured.status, 400, 'only google and microsoft exist')
})

t.test('Google: an existing account is linked by its verified e-mail and signed in like /auth/login', async (t) => {
  const { app, signInWith, stands } = await world(t)
  const owner = await signUp(app)
  stands.google.accounts.set('g-1001', { email: owner.email.toUpperCase(), email_verified: true, name: 'Owner' })

  const first = await signInWith('google', 'g-1001')
  t.equal(first.status, 200, JSON.stringify(first.body))
  t.match(first.body, { token_type: 'Bearer', expires_in: 900, mfa_enrolement_requis: false, utilisateur: { id: owner.userId, email: owner.email } })
  t.match(first.body.refresh_token, /^[\w-]{43}$/)
  t.equal(first.headers.get('cache-control'), 'no-store', 'tokens are never cached (RFC 6749 §5.1)')
  const me = await app.inject({ method: 'GET', url: '/me', headers: { authorization: `Bearer ${first.body.access_token}` } })
  t.equal(me.statusCode, 200)
  t.equal(me.json().email_verifie, true, 'the provider vouched for the address')
  const refreshed = await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: first.body.refresh_token } })
  t.equal(refreshed.statusCode, 200, 'the same refresh tokens')

  const identity = await app.db.selectFrom('identites_sso').selectAll().executeTakeFirstOrThrow()
  t.match(identity, { fournisseur: 'google', emetteur: stands.google.issuer, sujet: 'g-1001', utilisateur_id: owner.userId })

  // The provider's address changes: the identity (issuer, subject) still names the account.
  stands.google.accounts.set('g-1001', { email: 'autre@ailleurs.fr', email_verified: false })
  const second = await signInWith('google', 'g-1001')
  t.equal(second.status, 200)
  t.equal(second.body.utilisateur.id, owner.userId)

  const journal = await app.db.selectFrom('journal_activite').select(['action', 'details']).where('utilisateur_id', '=', owner.userId).orderBy('sequence').execute()
  t.match(
    journal.map((e) => e.action),
    ['USER_REGISTERED', 'SSO_ACCOUNT_LINKED', 'SSO_LOGIN', 'NEW_DEVICE_ALERT', 'SSO_LOGIN'],
  )
  t.match(journal[2]?.details, { fournisseur: 'google' })
})

t.test('Microsoft: an unknown address of a mapped domain becomes a member; an unmapped one is refused', async (t) => {
  const { app, signInWith, stands, organisation } = await world(t)
  const { admin, domain } = await organisation('contributeur')
  stands.microsoft.accounts.set('m-1', { email: `Nouvelle.Recrue@${domain.toUpperCase()}`, email_verified: true, name: 'Nouvelle Recrue' })

  const created = await signInWith('microsoft', 'm-1')
  t.equal(created.status, 200, JSON.stringify(created.body))
  t.match(created.body.utilisateur, { organisation_id: admin.organisationId, role: 'contributeur', nom: 'Nouvelle Recrue', actif: true })
  const row = await app.db.selectFrom('utilisateurs').selectAll().where('id', '=', created.body.utilisateur.id).executeTakeFirstOrThrow()
  t.equal(row.mot_de_passe_hash, null, 'no password: SSO only')
  t.ok(row.email_verifie_at)
  const entry = await app.db.selectFrom('journal_activite').selectAll().where('action', '=', 'SSO_USER_CREATED').executeTakeFirstOrThrow()
  t.match(entry, { organisation_id: admin.organisationId, utilisateur_id: row.id, details: { fournisseur: 'microsoft', domaine: domain, role: 'contributeur' } })

  stands.microsoft.accounts.set('m-2', { email: 'inconnu@domaine-libre.fr', email_verified: true })
  const unknown = await signInWith('microsoft', 'm-2')
  t.equal(unknown.status, 403)
  t.equal(unknown.body.code, 'SSO_ACCOUNT_UNKNOWN')
  t.match(unknown.body.detail, /domaine n’est rattaché à aucune organisation/)
  const refused = await app.db.selectFrom('journal_activite').selectAll().where('action', '=', 'SSO_LOGIN_REFUSED').executeTakeFirstOrThrow()
  t.match(refused, { resultat: 'refus', details: { fournisseur: 'microsoft', raison: 'compte_inconnu', domaine: 'domaine-libre.fr' } })
})

t.test('refusals: an unverified e-mail, a forged state, another browser, a wrong nonce, an expired code', async (t) => {
  const { app, signInWith, stands } = await world(t)
  const owner = await signUp(app)
  stands.google.accounts.set('g-ok', { email: owner.email, email_verified: true })
  stands.google.accounts.set('g-unverified', { email: owner.email, email_verified: false })

  const unverified = await signInWith('google', 'g-unverified')
  t.equal(unverified.status, 403)
  t.equal(unverified.body.code, 'SSO_EMAIL_UNVERIFIED', 'an address the provider does not vouch for links nothing')

  const forged = await signInWith('google', 'g-ok', { callback: (url) => url.searchParams.set('state', randomBytes(32).toString('base64url')) })
  t.equal(forged.status, 400)
  t.equal(forged.body.code, 'SSO_STATE_INVALID')

  const stolen = await signInWith('google', 'g-ok', { callbackBrowser: new Browser() })
  t.equal(stolen.status, 400, 'a callback brought back by another browser is refused (login CSRF)')
  t.equal(stolen.body.code, 'SSO_STATE_INVALID')

  const nonce = await signInWith('google', 'g-ok', { authorize: (url) => url.searchParams.set('nonce', randomBytes(32).toString('base64url')) })
  t.equal(nonce.status, 401)
  t.equal(nonce.body.code, 'SSO_FAILED')
  t.match(nonce.body.detail, /nonce/)

  stands.google.codeTtlSeconds = 1
  const expired = await signInWith('google', 'g-ok', { beforeCallback: () => new Promise((r) => setTimeout(r, 2_100)) })
  stands.google.codeTtlSeconds = 60
  t.equal(expired.status, 401)
  t.equal(expired.body.code, 'SSO_FAILED')
  t.match(expired.body.detail, /invalid_grant/)

  const replay = await signInWith('google', 'g-ok')
  t.equal(replay.status, 200, 'a clean flow still works')
  const again = await new Browser().fetch(replay.callback.href)
  t.equal(again.status, 400, 'a callback URL works once')

  const reasons = await app.db.selectFrom('journal_activite').select('details').where('action', '=', 'SSO_LOGIN_REFUSED').orderBy('id').execute()
  t.match(
    reasons.map((r) => r.details.raison),
    ['email_non_verifie', 'state', 'state', 'nonce', 'code_refuse', 'state'],
  )
  t.equal(await app.db.selectFrom('identites_sso').select('id').execute().then((r) => r.length), 1, 'only the clean flow linked')
})

t.test('SSO respects the organisation’s 2FA requirement, unless the provider’s amr shows MFA', async (t) => {
  const { app, signInWith, stands, organisation } = await world(t)
  const { admin, domain } = await organisation()
  const { secret } = await enrollTotp(app, admin)
  t.equal((await app.inject({ method: 'PUT', url: '/organisation/2fa', headers: admin.headers, payload: { obligatoire: true } })).statusCode, 200)

  stands.google.accounts.set('g-member', { email: `membre@${domain}`, email_verified: true })
  const passwordOnly = await signInWith('google', 'g-member', { amr: 'pwd' })
  t.equal(passwordOnly.status, 200)
  t.equal(passwordOnly.body.mfa_enrolement_requis, true, 'no factor, no MFA at the provider: enrolment only')
  const confined = await app.inject({ method: 'GET', url: '/auth/sessions', headers: { authorization: `Bearer ${passwordOnly.body.access_token}` } })
  t.equal(confined.json().code, 'MFA_ENROLMENT_REQUIRED')

  const withMfa = await signInWith('google', 'g-member', { amr: 'pwd,mfa' })
  t.equal(withMfa.body.mfa_enrolement_requis, false, 'the provider proved a second factor')
  t.equal((await app.inject({ method: 'GET', url: '/auth/sessions', headers: { authorization: `Bearer ${withMfa.body.access_token}` } })).statusCode, 200)

  // The admin has TOTP: SSO without MFA at the provider answers the 2FA step.
  stands.microsoft.accounts.set('m-admin', { email: admin.email, email_verified: true })
  const step = await signInWith('microsoft', 'm-admin', { amr: 'pwd' })
  t.equal(step.status, 200)
  t.match(step.body, { mfa_requis: true, methodes: ['totp', 'code_secours'] })
  t.notOk(step.body.access_token)
  const done = await app.inject({ method: 'POST', url: '/auth/2fa/challenge', payload: { mfa_token: step.body.mfa_token, code: totpNow(secret, 1) } })
  t.equal(done.statusCode, 200, done.body)
  const entry = await app.db.selectFrom('journal_activite').select('details').where('action', '=', 'SSO_LOGIN').where('utilisateur_id', '=', admin.userId).executeTakeFirstOrThrow()
  t.match(entry.details, { fournisseur: 'microsoft', mfa: 'totp' })
  const mfaAtProvider = await signInWith('microsoft', 'm-admin', { amr: 'pwd,mfa' })
  t.ok(mfaAtProvider.body.access_token, 'with MFA at the provider, no second step')
})

t.test('mapping domains: admins only, verified domains of the organisation, never public or taken', async (t) => {
  const { app, organisation } = await world(t)
  const { admin, domain } = await organisation()
  const put = (headers: { authorization: string }, domaines: Array<{ domaine: string; role_defaut: string }>) =>
    app.inject({ method: 'PUT', url: '/organisation/sso', headers, payload: { domaines } })

  const current = await app.inject({ method: 'GET', url: '/organisation/sso', headers: admin.headers })
  t.same(current.json(), { domaines: [{ domaine: domain, role_defaut: 'lecteur' }], fournisseurs: ['google', 'microsoft'] })
  const gmail = await put(admin.headers, [{ domaine: 'gmail.com', role_defaut: 'lecteur' }])
  t.equal(gmail.statusCode, 422)
  t.equal(gmail.json().code, 'SSO_DOMAIN_NOT_ALLOWED')
  const foreign = await put(admin.headers, [{ domaine: 'banque-centrale.fr', role_defaut: 'admin' }])
  t.equal(foreign.json().code, 'SSO_DOMAIN_NOT_ALLOWED', 'a domain no verified admin of the organisation belongs to')
  const invalid = await put(admin.headers, [{ domaine: 'pas un domaine', role_defaut: 'lecteur' }])
  t.equal(invalid.statusCode, 400)

  const rival = await signUp(app, { email: `rival@${domain}` })
  await app.inject({ method: 'POST', url: '/auth/email/verify', payload: { token: await mailedToken(app, rival.email, 'email_verification') } })
  const taken = await put(rival.headers, [{ domaine: domain, role_defaut: 'lecteur' }])
  t.equal(taken.statusCode, 409)
  t.equal(taken.json().code, 'SSO_DOMAIN_TAKEN')

  const cleared = await put(admin.headers, [])
  t.same(cleared.json().domaines, [])
  const entries = await app.db.selectFrom('journal_activite').select(['severite', 'details']).where('action', '=', 'SSO_SETTINGS_CHANGED').where('organisation_id', '=', admin.organisationId).orderBy('sequence').execute()
  t.equal(entries.length, 2)
  t.match(entries[1], { severite: 'HIGH', details: { avant: [{ domaine: domain }], apres: [] } })
})

t.test('a provider not configured answers 404; one that does not answer, 502', async (t) => {
  // Port 1 of the loopback: nothing listens there.
  const app = await build(t, { SSO_GOOGLE_ISSUER: 'http://127.0.0.1:1', SSO_GOOGLE_CLIENT_ID: 'armoire' })
  const down = await app.inject({ method: 'GET', url: '/auth/sso/google/start' })
  t.equal(down.statusCode, 502)
  t.equal(down.json().code, 'SSO_PROVIDER_ERROR')
  const missing = await app.inject({ method: 'GET', url: '/auth/sso/microsoft/start' })
  t.equal(missing.statusCode, 404)
  t.equal(missing.json().code, 'SSO_PROVIDER_UNKNOWN')
  const callback = await app.inject({ method: 'GET', url: '/auth/sso/microsoft/callback?code=x&state=y' })
  t.equal(callback.json().code, 'SSO_PROVIDER_UNKNOWN')
})
