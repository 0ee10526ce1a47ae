import { createHash } from 'node:crypto'
import type { FastifyBaseLogger, FastifyInstance, FastifyRequest } from 'fastify'
import { type Kysely, sql, type Transaction } from 'kysely'
import * as oidc from 'openid-client'
import type { Utilisateur } from '../../db/tables/security.ts'
import type { DB } from '../../db/types.ts'
import type { Role } from '../../openapi/common.ts'
import { getOrganisationSso, setOrganisationSso, SSO_PROVIDERS, type SsoProvider, ssoCallback, ssoStart } from '../../openapi/security-sso.ts'
import { actorAs, actorOf } from '../../src/audit.ts'
import { principalOf } from '../../src/auth.ts'
import { type Config, publicUrl } from '../../src/config.ts'
import { isUniqueViolation } from '../../src/db.ts'
import { Errors } from '../../src/errors.ts'
import { type Binding, handle, type TypedReply, type TypedRequest } from '../../src/routes.ts'
import { consumeToken, issueToken } from './one-time-tokens.ts'
import type { SignIn } from './sign-in.ts'
import { findUserByEmail } from './users-repository.ts'

export interface ProviderSettings {
  issuer: string
  clientId: string
  clientSecret: string
  /** Where the provider sends the browser back: this API's callback for the provider. */
  redirectUri: string
}

const STATE_TTL_SECONDS = 10 * 60
const COOKIE = 'armoire_sso'
const SCOPE = 'openid email profile'

/** Everyone can have a verified address there: such a domain says nothing about an organisation. */
const PUBLIC_MAIL_DOMAINS = new Set([
  'gmail.com', 'googlemail.com', 'outlook.com', 'outlook.fr', 'hotmail.com', 'hotmail.fr', 'live.com', 'live.fr', 'msn.com',
  'yahoo.com', 'yahoo.fr', 'icloud.com', 'me.com', 'aol.com', 'proton.me', 'protonmail.com', 'gmx.com', 'gmx.fr', 'mail.com',
  'yandex.com', 'free.fr', 'orange.fr', 'wanadoo.fr', 'laposte.net', 'sfr.fr', 'neuf.fr', 'bbox.fr',
])

/** The providers this instance offers: those whose issuer and client id are configured. */
export function ssoSettings(config: Config): Map<SsoProvider, ProviderSettings> {
  const raw: Record<SsoProvider, { issuer: string; clientId: string; clientSecret: string; redirectBase: string }> = {
    google: {
      issuer: config.SSO_GOOGLE_ISSUER,
      clientId: config.SSO_GOOGLE_CLIENT_ID,
      clientSecret: config.SSO_GOOGLE_CLIENT_SECRET,
      redirectBase: config.SSO_GOOGLE_REDIRECT_BASE,
    },
    microsoft: {
      issuer: config.SSO_MICROSOFT_ISSUER,
      clientId: config.SSO_MICROSOFT_CLIENT_ID,
      clientSecret: config.SSO_MICROSOFT_CLIENT_SECRET,
      redirectBase: config.SSO_MICROSOFT_REDIRECT_BASE,
    },
  }
  const settings = new Map<SsoProvider, ProviderSettings>()
  for (const name of SSO_PROVIDERS) {
    const { issuer, clientId, clientSecret, redirectBase } = raw[name]
    if (!issuer || !clientId) continue
    if (config.NODE_ENV === 'production' && new URL(issuer).protocol !== 'https:') {
      throw new Error(`SSO ${name}: the issuer must be an https URL in production`)
    }
    const base = (redirectBase || publicUrl(config)).replace(/\/+$/, '')
    settings.set(name, { issuer, clientId, clientSecret, redirectUri: `${base}/auth/sso/${name}/callback` })
  }
  return settings
}

/** Discovers each provider once (again after a failure), with openid-client. */
function providerRegistry(settings: Map<SsoProvider, ProviderSettings>, log: FastifyBaseLogger) {
  const discovered = new Map<SsoProvider, Promise<oidc.Configuration>>()
  return async function configuration(name: SsoProvider): Promise<oidc.Configuration> {
    const s = settings.get(name)
    if (!s) throw new Errors.SSO_PROVIDER_UNKNOWN(name)
    let pending = discovered.get(name)
    if (!pending) {
      const insecure = new URL(s.issuer).protocol === 'http:' // refused in production by ssoSettings
      const auth = s.clientSecret ? oidc.ClientSecretPost(s.clientSecret) : oidc.None()
      pending = oidc.discovery(new URL(s.issuer), s.clientId, s.clientSecret || undefined, auth, {
        timeout: 10,
        ...(insecure ? { execute: [oidc.allowInsecureRequests] } : {}),
      })
      discovered.set(name, pending)
      pending.catch(() => discovered.delete(name))
    }
    try {
      return await pending
    } catch (err) {
      log.warn({ err, provider: name }, 'SSO discovery failed')
      throw new Errors.SSO_PROVIDER_ERROR()
    }
  }
}

function readCookie(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const [key, ...value] = part.trim().split('=')
    if (key === name) return decodeURIComponent(value.join('='))
  }
  return undefined
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex')

/** RFC 8176: an explicit `mfa`, or two different methods, show the provider asked for more than one factor. */
export function providerProvedMfa(amr: unknown): boolean {
  if (!Array.isArray(amr)) return false
  const methods = new Set(amr.filter((m): m is string => typeof m === 'string'))
  return methods.has('mfa') || methods.size >= 2
}

/** Why the code exchange or the ID token was refused, in the caller's words and the journal's. */
function exchangeFailure(err: unknown): { error: Error; raison: string; erreur: string } {
  const e = err as { code?: string; error?: string; message?: string; cause?: { message?: string; claim?: string } }
  const erreur = `${e.code ?? (err as Error).name}: ${e.message ?? ''}${e.cause?.message ? ` (${e.cause.message})` : ''}`.slice(0, 300)
  if (err instanceof oidc.ResponseBodyError) {
    return { error: new Errors.SSO_FAILED(`le fournisseur refuse le code d’autorisation (${err.error}) : il est invalide, expiré ou déjà utilisé`), raison: 'code_refuse', erreur }
  }
  if (err instanceof oidc.AuthorizationResponseError) {
    return { error: new Errors.SSO_FAILED(`le fournisseur a répondu ${err.error}`), raison: 'reponse_fournisseur', erreur }
  }
  if (err instanceof oidc.ClientError) {
    const nonce = /nonce/i.test(`${e.message} ${e.cause?.message ?? ''} ${e.cause?.claim ?? ''}`)
    return nonce
      ? { error: new Errors.SSO_FAILED('le nonce du jeton d’identité ne correspond pas à cette connexion'), raison: 'nonce', erreur }
      : { error: new Errors.SSO_FAILED('le jeton d’identité est invalide'), raison: 'jeton_identite', erreur }
  }
  return { error: new Errors.SSO_PROVIDER_ERROR(), raison: 'fournisseur_injoignable', erreur }
}

interface SsoContext {
  app: FastifyInstance
  signIn: SignIn
  settings: Map<SsoProvider, ProviderSettings>
  configuration: ReturnType<typeof providerRegistry>
}

/** A verified OpenID identity, as identites_sso keeps it. */
interface Identity {
  fournisseur: SsoProvider
  emetteur: string
  sujet: string
  email: string
}

function cookie(provider: ProviderSettings, value: string, maxAge: number): string {
  const secure = new URL(provider.redirectUri).protocol === 'https:' ? '; Secure' : ''
  // Lax: sent with the provider's top-level redirect back, not with cross-site subrequests.
  return `${COOKIE}=${encodeURIComponent(value)}; Path=/auth/sso; HttpOnly; SameSite=Lax; Max-Age=${maxAge}${secure}`
}

function providerOf(settings: Map<SsoProvider, ProviderSettings>, fournisseur: SsoProvider): ProviderSettings {
  const provider = settings.get(fournisseur)
  if (!provider) throw new Errors.SSO_PROVIDER_UNKNOWN(fournisseur)
  return provider
}

/** Journals a refused SSO sign-in, then throws `error`. */
async function refuse(
  app: FastifyInstance,
  request: FastifyRequest,
  fournisseur: SsoProvider,
  raison: string,
  error: Error,
  extra: { user?: Utilisateur; details?: Record<string, unknown> } = {},
): Promise<never> {
  await app.audit.recordAlone({
    ...actorOf(request),
    organisationId: extra.user?.organisation_id ?? null,
    userId: extra.user?.id ?? null,
    action: 'SSO_LOGIN_REFUSED',
    ...(extra.user ? { target: { type: 'utilisateur' as const, id: extra.user.id, nom: extra.user.email } } : {}),
    result: 'refus',
    details: { fournisseur, raison, ...extra.details },
  })
  throw error
}

// Repository: the rows of SSO identities and domains, in the caller's executor.

function findLinkedUser(db: Kysely<DB>, issuer: string, subject: string): Promise<Utilisateur | undefined> {
  return db
    .selectFrom('identites_sso as i')
    .innerJoin('utilisateurs as u', 'u.id', 'i.utilisateur_id')
    .selectAll('u')
    .where('i.emetteur', '=', issuer)
    .where('i.sujet', '=', subject)
    .executeTakeFirst()
}

function findDomainMapping(db: Kysely<DB>, domaine: string) {
  return db
    .selectFrom('sso_domaines as d')
    .innerJoin('organisations as o', 'o.id', 'd.organisation_id')
    .select(['d.organisation_id', 'd.role_defaut', 'o.nom as organisation_nom'])
    .where('d.domaine', '=', domaine)
    .executeTakeFirst()
}

async function insertIdentity(trx: Transaction<DB>, identity: Identity, user: Utilisateur): Promise<void> {
  await trx.insertInto('identites_sso').values({ ...identity, organisation_id: user.organisation_id, utilisateur_id: user.id }).execute()
}

function insertSsoUser(trx: Transaction<DB>, values: { organisationId: string; email: string; nom: string; role: Role }): Promise<Utilisateur> {
  return trx
    .insertInto('utilisateurs')
    .values({ organisation_id: values.organisationId, email: values.email, nom: values.nom, role: values.role, mot_de_passe_hash: null, email_verifie_at: sql<Date>`now()` })
    .returningAll()
    .executeTakeFirstOrThrow()
    .catch((error) => {
      if (isUniqueViolation(error)) throw new Errors.EMAIL_TAKEN()
      throw error
    })
}

/** The lowercase mail domains of the organisation's active administrators with a verified address. */
async function vouchedDomains(db: Kysely<DB>, organisationId: string): Promise<Set<string>> {
  const rows = await db
    .selectFrom('utilisateurs')
    .select(sql<string>`lower(split_part(email, '@', 2))`.as('domaine'))
    .where('organisation_id', '=', organisationId)
    .where('role', '=', 'admin')
    .where('actif', '=', true)
    .where('email_verifie_at', 'is not', null)
    .execute()
  return new Set(rows.map((r) => r.domaine))
}

/** Replaces the organisation's mapped domains; answers those it had. */
async function replaceDomains(trx: Transaction<DB>, organisationId: string, wanted: Map<string, Role>) {
  const before = await trx.deleteFrom('sso_domaines').where('organisation_id', '=', organisationId).returning(['domaine', 'role_defaut']).execute()
  if (wanted.size > 0) {
    await trx
      .insertInto('sso_domaines')
      .values([...wanted].map(([domaine, role_defaut]) => ({ domaine, organisation_id: organisationId, role_defaut })))
      .execute()
      .catch((error) => {
        if (isUniqueViolation(error)) throw new Errors.SSO_DOMAIN_TAKEN([...wanted.keys()].join(', '))
        throw error
      })
  }
  return before
}

async function currentSettings(ctx: SsoContext, organisationId: string) {
  const domaines = await ctx.app.db
    .selectFrom('sso_domaines')
    .select(['domaine', 'role_defaut'])
    .where('organisation_id', '=', organisationId)
    .orderBy('domaine')
    .execute()
  return { domaines, fournisseurs: SSO_PROVIDERS.filter((p) => ctx.settings.has(p)) }
}

// Services.

/** Links a verified identity to the existing account of its address, whose address it proves. */
async function linkIdentity(app: FastifyInstance, request: FastifyRequest, user: Utilisateur, identity: Identity): Promise<void> {
  await app.unitOfWork(async (trx) => {
    await insertIdentity(trx, identity, user)
    await trx
      .updateTable('utilisateurs')
      .set((eb) => ({ email_verifie_at: eb.fn.coalesce('email_verifie_at', sql<Date>`now()`) }))
      .where('id', '=', user.id)
      .execute()
    await app.sessions.announce(trx, 'user', user.id)
    await app.audit.record(trx, {
      ...actorAs(request, user),
      action: 'SSO_ACCOUNT_LINKED',
      target: { type: 'utilisateur', id: user.id, nom: user.email },
      details: { fournisseur: identity.fournisseur, emetteur: identity.emetteur },
    })
  })
}

/** An account created at first sign-in, for a domain mapped to an organisation; it takes a seat of the plan, as an invitation does. */
async function createMember(
  app: FastifyInstance,
  request: FastifyRequest,
  mapping: NonNullable<Awaited<ReturnType<typeof findDomainMapping>>>,
  identity: Identity,
  account: { nom: string; domaine: string },
): Promise<Utilisateur> {
  return app.db.transaction().execute(async (trx) => {
    await app.entitlements.assertMayAdd(trx, mapping.organisation_id, 'membre')
    const created = await insertSsoUser(trx, { organisationId: mapping.organisation_id, email: identity.email, nom: account.nom, role: mapping.role_defaut })
    await insertIdentity(trx, identity, created)
    await app.audit.record(trx, {
      ...actorOf(request),
      organisationId: created.organisation_id,
      userId: created.id,
      action: 'SSO_USER_CREATED',
      target: { type: 'organisation', id: created.organisation_id, nom: mapping.organisation_nom },
      details: { fournisseur: identity.fournisseur, domaine: account.domaine, role: created.role },
    })
    return created
  })
}

/** The Armoire account of a verified OpenID identity: linked before, found by e-mail, or created for a mapped domain. */
async function accountFor(app: FastifyInstance, request: FastifyRequest, fournisseur: SsoProvider, issuer: string, claims: oidc.IDToken): Promise<Utilisateur> {
  const linked = await findLinkedUser(app.db, issuer, claims.sub)
  if (linked) return linked

  const email = typeof claims.email === 'string' ? claims.email.trim() : ''
  // Microsoft states it with the optional claim `xms_edov` rather than `email_verified`.
  const verified = claims.email_verified === true || (fournisseur === 'microsoft' && claims.xms_edov === true)
  if (!email || !verified) {
    return refuse(app, request, fournisseur, 'email_non_verifie', new Errors.SSO_EMAIL_UNVERIFIED(), { details: { email: email.toLowerCase() || null } })
  }
  const identity = { fournisseur, emetteur: issuer, sujet: claims.sub, email }
  const existing = await findUserByEmail(app.db, email)
  if (existing) {
    if (existing.actif) await linkIdentity(app, request, existing, identity)
    return existing // an inactive one is refused by the caller, journaled with the account
  }

  const domaine = email.slice(email.lastIndexOf('@') + 1).toLowerCase()
  const mapping = await findDomainMapping(app.db, domaine)
  if (!mapping) return refuse(app, request, fournisseur, 'compte_inconnu', new Errors.SSO_ACCOUNT_UNKNOWN(), { details: { domaine } })
  const nom = typeof claims.name === 'string' && claims.name.trim() ? claims.name.trim().slice(0, 200) : email.slice(0, email.lastIndexOf('@'))
  return createMember(app, request, mapping, identity, { nom, domaine })
}

/** Sends the browser to the provider, the flow bound to this browser by a cookie. */
async function startSignIn(ctx: SsoContext, request: TypedRequest<typeof ssoStart.schema>, reply: TypedReply<typeof ssoStart.schema>) {
  const { fournisseur } = request.params
  const provider = providerOf(ctx.settings, fournisseur)
  const config = await ctx.configuration(fournisseur)
  const codeVerifier = oidc.randomPKCECodeVerifier()
  const nonce = oidc.randomNonce()
  // Binds the flow to this browser: a callback with someone else's state is refused.
  const binding = oidc.randomState()
  const state = await ctx.app.db.transaction().execute((trx) =>
    issueToken(trx, 'etat_sso', {
      userId: null,
      organisationId: null,
      ttlSeconds: STATE_TTL_SECONDS,
      data: { fournisseur, nonce, code_verifier: codeVerifier, liaison: sha256(binding) },
    }),
  )
  const url = oidc.buildAuthorizationUrl(config, {
    redirect_uri: provider.redirectUri,
    scope: SCOPE,
    code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier),
    code_challenge_method: 'S256',
    state: state.token,
    nonce,
  })
  return reply.header('set-cookie', cookie(provider, binding, STATE_TTL_SECONDS)).header('cache-control', 'no-store').redirect(url.href, 302)
}

/** The provider's answer: its state checked against this browser's, its code exchanged for verified claims. */
async function verifiedClaims(ctx: SsoContext, request: TypedRequest<typeof ssoCallback.schema>, provider: ProviderSettings) {
  const { app } = ctx
  const { fournisseur } = request.params
  const { state, code, error } = request.query
  if (error) return refuse(app, request, fournisseur, 'reponse_fournisseur', new Errors.SSO_FAILED(`le fournisseur a répondu ${error}`), { details: { erreur: error } })
  if (!state || !code) return refuse(app, request, fournisseur, 'state', new Errors.SSO_STATE_INVALID())
  const flow = await app.db.transaction().execute((trx) => consumeToken(trx, 'etat_sso', state))
  const data = flow?.donnees as { fournisseur?: string; nonce?: string; code_verifier?: string; liaison?: string } | undefined
  const binding = readCookie(request.headers.cookie, COOKIE)
  if (!data || data.fournisseur !== fournisseur || !binding || sha256(binding) !== data.liaison || !data.nonce || !data.code_verifier) {
    return refuse(app, request, fournisseur, 'state', new Errors.SSO_STATE_INVALID(), { details: { etat_connu: Boolean(data), cookie: Boolean(binding) } })
  }
  const config = await ctx.configuration(fournisseur)
  // The URL the provider redirected to, rebuilt from configuration rather than from request headers.
  const currentUrl = new URL(provider.redirectUri)
  const query = request.url.indexOf('?')
  currentUrl.search = query >= 0 ? request.url.slice(query) : ''
  let claims: oidc.IDToken | undefined
  try {
    const tokens = await oidc.authorizationCodeGrant(config, currentUrl, {
      pkceCodeVerifier: data.code_verifier,
      expectedState: state,
      expectedNonce: data.nonce,
      idTokenExpected: true,
    })
    claims = tokens.claims()
  } catch (err) {
    const failure = exchangeFailure(err)
    return refuse(app, request, fournisseur, failure.raison, failure.error, { details: { erreur: failure.erreur } })
  }
  if (!claims) return refuse(app, request, fournisseur, 'jeton_identite', new Errors.SSO_FAILED('aucun jeton d’identité'))
  return { claims, issuer: config.serverMetadata().issuer }
}

/** The provider's redirect back: signs in (or asks the second step of) the account of the verified identity. */
async function finishSignIn(ctx: SsoContext, request: TypedRequest<typeof ssoCallback.schema>, reply: TypedReply<typeof ssoCallback.schema>) {
  const { app } = ctx
  const { fournisseur } = request.params
  const provider = providerOf(ctx.settings, fournisseur)
  reply.header('set-cookie', cookie(provider, '', 0)).header('cache-control', 'no-store')
  const { claims, issuer } = await verifiedClaims(ctx, request, provider)
  const user = await accountFor(app, request, fournisseur, issuer, claims)
  if (!user.actif) return refuse(app, request, fournisseur, 'compte_desactive', new Errors.SSO_ACCOUNT_DISABLED(), { user })
  await app.db.updateTable('identites_sso').set({ last_login_at: sql`now()` }).where('emetteur', '=', issuer).where('sujet', '=', claims.sub).execute()
  return ctx.signIn.begin(request, user, { via: 'sso', fournisseur, providerMfa: providerProvedMfa(claims.amr) })
}

/**
 * Replaces the organisation's domains whose unknown addresses sign in as new members. Refused:
 * a public mail domain, one no verified administrator of the organisation has an address in
 * (without DNS proof, that is the least), one another organisation maps.
 */
async function setDomains(ctx: SsoContext, request: FastifyRequest, domaines: readonly { domaine: string; role_defaut: Role }[]) {
  const { app } = ctx
  const principal = principalOf(request)
  const wanted = new Map<string, Role>()
  for (const { domaine, role_defaut } of domaines) wanted.set(domaine.toLowerCase(), role_defaut)
  const domains = [...wanted.keys()]
  for (const domaine of domains) {
    if (PUBLIC_MAIL_DOMAINS.has(domaine)) throw new Errors.SSO_DOMAIN_NOT_ALLOWED(domaine, 'c’est une messagerie publique')
  }
  if (domains.length > 0) {
    const known = await vouchedDomains(app.db, principal.organisationId)
    const unproved = domains.find((d) => !known.has(d))
    if (unproved) throw new Errors.SSO_DOMAIN_NOT_ALLOWED(unproved, 'aucun administrateur de l’organisation n’a d’adresse vérifiée dans ce domaine')
    const taken = await app.db.selectFrom('sso_domaines').select('domaine').where('domaine', 'in', domains).where('organisation_id', '!=', principal.organisationId).executeTakeFirst()
    if (taken) throw new Errors.SSO_DOMAIN_TAKEN(taken.domaine)
  }
  await app.db.transaction().execute(async (trx) => {
    const before = await replaceDomains(trx, principal.organisationId, wanted)
    await app.audit.record(trx, {
      ...actorOf(request),
      action: 'SSO_SETTINGS_CHANGED',
      target: { type: 'organisation', id: principal.organisationId, nom: principal.account.organisation.nom },
      details: { avant: before, apres: domains.map((domaine) => ({ domaine, role_defaut: wanted.get(domaine) })) },
    })
  })
  return currentSettings(ctx, principal.organisationId)
}

export function ssoBindings(app: FastifyInstance, opts: { signIn: SignIn; settings: Map<SsoProvider, ProviderSettings> }): Binding[] {
  const ctx: SsoContext = { app, ...opts, configuration: providerRegistry(opts.settings, app.log.child({ component: 'sso' })) }
  return [
    handle(ssoStart, async (request, reply) => startSignIn(ctx, request, reply)),
    handle(ssoCallback, async (request, reply) => finishSignIn(ctx, request, reply)),
    handle(getOrganisationSso, async (request) => currentSettings(ctx, principalOf(request).organisationId)),
    handle(setOrganisationSso, async (request) => setDomains(ctx, request, request.body.domaines)),
  ]
}
