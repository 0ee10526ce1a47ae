import { generateKeyPairSync, randomBytes } from 'node:crypto'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { createServer as createNetServer } from 'node:net'
import Provider, { type Configuration } from 'oidc-provider'
import type { TestContext } from './build.ts'

export interface StandInAccount {
  email: string
  email_verified: boolean
  name?: string
}

export interface OidcStandIn {
  /** The issuer, e.g. http://127.0.0.1:PORT for Google, http://127.0.0.1:PORT/<tenant>/v2.0 for Microsoft. */
  issuer: string
  clientId: string
  clientSecret: string
  /** Accounts by subject; add before signing in. */
  accounts: Map<string, StandInAccount>
  /** Lifetime of the next authorization codes, in seconds. */
  codeTtlSeconds: number
}

/**
 * A real OpenID provider (`oidc-provider`) on the loopback, port 0, standing in for Google or
 * Microsoft. Its sign-in page is a form: POST account=<subject>&amr=<methods> to the page's
 * own address, as a person's browser would, and the provider redirects back to the client.
 */
export async function oidcStandIn(
  t: TestContext,
  opts: { redirectUris: string[]; pathPrefix?: string },
): Promise<OidcStandIn> {
  const prefix = opts.pathPrefix ?? ''
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()))
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  )
  const { port } = server.address() as { port: number }
  const issuer = `http://127.0.0.1:${port}${prefix}`
  const accounts = new Map<string, StandInAccount>()
  const clientId = `armoire-${randomBytes(4).toString('hex')}`
  const clientSecret = randomBytes(24).toString('base64url')
  const standIn: OidcStandIn = { issuer, clientId, clientSecret, accounts, codeTtlSeconds: 60 }

  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
  const configuration: Configuration = {
    clients: [
      {
        client_id: clientId,
        client_secret: clientSecret,
        redirect_uris: opts.redirectUris,
        response_types: ['code'],
        grant_types: ['authorization_code'],
        token_endpoint_auth_method: 'client_secret_post',
      },
    ],
    jwks: { keys: [{ ...privateKey.export({ format: 'jwk' }), kid: 'test-key', alg: 'RS256', use: 'sig' }] as never },
    cookies: { keys: [randomBytes(32).toString('hex')] },
    // amr rides with the openid scope, so that ID tokens carry the methods the test chose.
    claims: { openid: ['sub', 'amr'], email: ['email', 'email_verified'], profile: ['name'] },
    // Like Google and Microsoft, the ID token carries the e-mail claims itself.
    conformIdTokenClaims: false,
    features: { devInteractions: { enabled: false } },
    interactions: { url: (_ctx, interaction) => `${prefix}/interaction/${interaction.uid}` },
    pkce: { required: () => true },
    ttl: { AuthorizationCode: () => standIn.codeTtlSeconds, Interaction: 600, Session: 600, Grant: 600, AccessToken: 600, IdToken: 600 },
    async findAccount(_ctx, sub) {
      const account = accounts.get(sub)
      if (!account) return undefined
      return { accountId: sub, claims: async () => ({ sub, ...account }) }
    },
  }
  const provider = new Provider(issuer, configuration)
  provider.proxy = false
  const callback = provider.callback()

  async function interaction(req: IncomingMessage, res: ServerResponse, uid: string): Promise<void> {
    if (req.method === 'GET') {
      const details = await provider.interactionDetails(req, res)
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' })
      res.end(`<form method="post" action="${prefix}/interaction/${uid}"><input name="account"><input name="amr" value="pwd"></form><!-- ${details.prompt.name} -->`)
      return
    }
    let raw = ''
    for await (const chunk of req) raw += chunk
    const form = new URLSearchParams(raw)
    const accountId = form.get('account') ?? ''
    const amr = (form.get('amr') ?? 'pwd').split(',').filter(Boolean)
    const details = await provider.interactionDetails(req, res)
    const clientId = String(details.params.client_id)
    const grant = new provider.Grant({ accountId, clientId })
    grant.addOIDCScope(String(details.params.scope))
    const grantId = await grant.save()
    await provider.interactionFinished(req, res, { login: { accountId, amr }, consent: { grantId } }, { mergeWithLastSubmission: false })
  }

  server.on('request', (req: IncomingMessage & { originalUrl?: string }, res: ServerResponse) => {
    const url = req.url ?? '/'
    if (prefix && !url.startsWith(prefix)) {
      res.writeHead(404).end()
      return
    }
    const inner = url.slice(prefix.length) || '/'
    const match = /^\/interaction\/([\w-]+)$/.exec(inner.split('?')[0] ?? '')
    if (match) {
      interaction(req, res, match[1] as string).catch((error: Error) => {
        res.writeHead(500, { 'content-type': 'text/plain' }).end(error.message)
      })
      return
    }
    // Mounted under the prefix the way Express would: the provider reads its mount path from originalUrl.
    req.originalUrl = url
    req.url = inner
    callback(req, res)
  })
  return standIn
}

/** A free port of the loopback, for a server whose address must be configured before it listens. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createNetServer()
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number }
      probe.close(() => resolve(port))
    })
    probe.on('error', reject)
  })
}

/** A browser's cookie jar, one per origin, enough to follow a sign-in across two servers. */
export class Browser {
  private readonly jars = new Map<string, Map<string, string>>()
  constructor(readonly userAgent = 'Mozilla/5.0 (Armoire tests)') {}

  cookies(url: string): Map<string, string> {
    const origin = new URL(url).origin
    let jar = this.jars.get(origin)
    if (!jar) {
      jar = new Map()
      this.jars.set(origin, jar)
    }
    return jar
  }

  /** One request, no redirect followed; cookies sent and stored. */
  async fetch(url: string, init: { method?: string; body?: string; headers?: Record<string, string> } = {}): Promise<Response> {
    const jar = this.cookies(url)
    const cookie = [...jar].map(([k, v]) => `${k}=${v}`).join('; ')
    const res = await fetch(url, {
      method: init.method ?? 'GET',
      redirect: 'manual',
      headers: { 'user-agent': this.userAgent, ...(cookie ? { cookie } : {}), ...init.headers },
      ...(init.body !== undefined ? { body: init.body } : {}),
    })
    for (const line of res.headers.getSetCookie()) {
      const [pair, ...attributes] = line.split(';')
      const eq = (pair ?? '').indexOf('=')
      const name = (pair ?? '').slice(0, eq).trim()
      const value = (pair ?? '').slice(eq + 1).trim()
      const expired = attributes.some((a) => /^\s*max-age=0\s*$/i.test(a) || /^\s*expires=Thu, 01 Jan 1970/i.test(a))
      if (expired || value === '') jar.delete(name)
      else jar.set(name, value)
    }
    return res
  }

  /** Follows redirects while they stay on `until`'s side of the fence; answers the first response outside it. */
  async follow(url: string, stopAt: (url: string) => boolean, init: { method?: string; body?: string; headers?: Record<string, string> } = {}): Promise<{ url: string; res: Response }> {
    let current = url
    let res = await this.fetch(current, init)
    for (let hops = 0; hops < 20; hops++) {
      const location = res.headers.get('location')
      if (res.status < 300 || res.status >= 400 || !location) return { url: current, res }
      current = new URL(location, current).href
      if (stopAt(current)) return { url: current, res }
      res = await this.fetch(current)
    }
    throw new Error('too many redirects')
  }
}
