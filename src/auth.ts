import { createHash, timingSafeEqual } from 'node:crypto'
import jwt from '@fastify/jwt'
import type { FastifyInstance, FastifyRequest, onRequestAsyncHookHandler } from 'fastify'
import fp from 'fastify-plugin'
import { LruMap } from 'toad-cache'
import type { Role } from '../openapi/common.ts'
import type { WebhookAccess, WebhookSecretSetting } from '../openapi/operation.ts'
import { actorOf } from './audit.ts'
import { Errors } from './errors.ts'
import { createSessionRegistry, type SessionRegistry } from './sessions.ts'

/** What an access token names. */
export interface AccessClaims {
  sub: string
  org: string
  role: Role
  sid: string
}

/** The signed-in caller of a request, as checked against the live session. */
export interface Principal {
  userId: string
  organisationId: string
  role: Role
  sessionId: string
  /** The organisation requires 2FA and the member has none: only enrolment operations are open. */
  mfaEnrolmentOnly: boolean
  /** The caller's account, read with the session and forgotten with it on any change. */
  account: {
    email: string
    nom: string
    createdAt: Date
    updatedAt: Date
    emailVerifiedAt: Date | null
    /** Active second factors (never their secrets). */
    factors: Array<{ methode: 'totp' | 'email'; activeAt: Date }>
    backupCodesLeft: number
    organisation: { nom: string; createdAt: Date; mfaRequired: boolean }
  }
}

declare module '@fastify/jwt' {
  interface FastifyJWT {
    payload: AccessClaims
    user: AccessClaims
  }
}

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | null
  }
  interface FastifyInstance {
    sessions: SessionRegistry
    /** The lifetime of the access tokens this instance signs, in seconds. */
    accessTtlSeconds: number
  }
}

/** Verified access tokens remembered per instance (an LRU: older ones are verified again). */
const VERIFIED_TOKENS_CACHED = 10_000
const BEARER = /^Bearer ([\w-]+\.[\w-]+\.[\w-]+)$/i

export interface AuthOptions {
  secret: string
  /** Access tokens are short-lived (ACCESS_TOKEN_TTL_SECONDS); the session behind them is checked on every request anyway. */
  accessTtlSeconds: number
  /** A connection URL for the LISTEN connection that keeps session caches coherent. */
  databaseUrl: string
  /** The shared secrets webhooks are called with, by setting. */
  webhookSecrets: Partial<Record<WebhookSecretSetting, string>>
}

const digest = (value: string) => createHash('sha256').update(value).digest()

/**
 * The gate of a webhook: the caller presents the setting's secret. Both sides are hashed
 * first, so the comparison takes the same time whatever the length or content presented.
 */
function webhookGate(app: FastifyInstance, access: WebhookAccess, secrets: AuthOptions['webhookSecrets']): onRequestAsyncHookHandler {
  const secret = secrets[access.secret] ?? ''
  const expected = digest(secret)
  return async (request) => {
    const header = access.header ? request.headers[access.header.toLowerCase()] : undefined
    const given = typeof header === 'string' ? header : access.query ? (request.query as Record<string, unknown>)[access.query] : undefined
    const ok = typeof given === 'string' && timingSafeEqual(digest(given), expected)
    // An unset secret refuses every call: a webhook is never open by omission.
    if (ok && secret !== '') return
    await app.audit.recordAlone({
      ...actorOf(request),
      action: access.refused,
      result: 'refus',
      target: { type: 'operation', id: request.routeOptions.config.operationId ?? null },
      details: { motif: 'secret_invalide' },
    })
    throw new Errors.WEBHOOK_UNAUTHORIZED()
  }
}

/**
 * The one gate in front of every operation: public operations pass, the others need a
 * valid access token for a live session and a role the contract lists.
 */
export const authGuard = fp(
  async (app: FastifyInstance, opts: AuthOptions) => {
    await app.register(jwt, {
      secret: opts.secret,
      sign: { expiresIn: opts.accessTtlSeconds, algorithm: 'HS256' },
      verify: { algorithms: ['HS256'] },
    })
    app.decorate('accessTtlSeconds', opts.accessTtlSeconds)
    app.decorateRequest('principal', null)
    const sessions = createSessionRegistry(app.db, opts.databaseUrl, app.log)
    app.decorate('sessions', sessions)
    app.addHook('onReady', () => sessions.start())
    app.addHook('onClose', () => sessions.close())

    // A token's signature is checked once, then the token is remembered until it expires:
    // its HMAC and decoding cost a fifth of a small request. (fast-jwt's own cache keys
    // entries by a SHA-2 of the token, which costs nearly as much.) Entries are keyed by the
    // whole Authorization header, so a header seen before is not parsed again either. The
    // session behind it is still checked on every request.
    const verified = new LruMap<AccessClaims & { exp: number }>(VERIFIED_TOKENS_CACHED, opts.accessTtlSeconds * 1000)
    const verify = (authorization: string): AccessClaims => {
      const known = verified.get(authorization)
      if (known && known.exp * 1000 > Date.now()) return known
      const token = BEARER.exec(authorization)?.[1]
      if (!token) throw new Errors.TOKEN_INVALID()
      let claims: AccessClaims & { exp: number }
      try {
        claims = app.jwt.verify<AccessClaims & { exp: number }>(token)
      } catch {
        throw new Errors.TOKEN_INVALID()
      }
      verified.set(authorization, claims)
      return claims
    }

    const guard = async (request: FastifyRequest): Promise<void> => {
      const access = request.routeOptions.config.access
      if (!access || !('roles' in access)) return
      const { authorization } = request.headers
      if (!authorization) throw new Errors.UNAUTHENTICATED()
      const principal = await sessions.resolve(verify(authorization))
      if (!principal) throw new Errors.SESSION_REVOKED()
      request.principal = principal
      if (principal.mfaEnrolmentOnly && !access.duringMfaEnrolment) {
        await deny(request, { raison: 'enrolement_mfa_requis' })
        throw new Errors.MFA_ENROLMENT_REQUIRED()
      }
      if (!access.roles.includes(principal.role)) {
        await deny(request, { role: principal.role, roles_requis: [...access.roles] })
        throw new Errors.FORBIDDEN()
      }
    }
    const deny = (request: FastifyRequest, details: Record<string, unknown>) =>
      app.audit.recordAlone({
        ...actorOf(request),
        action: 'ACCESS_DENIED',
        target: { type: 'operation', id: request.routeOptions.config.operationId ?? null },
        result: 'refus',
        details: { ...details, methode: request.method, url: request.url },
      })
    // The guard runs ahead of every route the contract does not declare public, and only there.
    app.addHook('onRoute', (route) => {
      const access = route.config?.access
      if (!access || 'public' in access) return
      const own = route.onRequest ? (Array.isArray(route.onRequest) ? route.onRequest : [route.onRequest]) : []
      route.onRequest = ['webhook' in access ? webhookGate(app, access.webhook, opts.webhookSecrets) : guard, ...own]
    })
  },
  { name: 'auth-guard', fastify: '5.x', dependencies: ['db', 'audit'] },
)

/** The caller of an operation that is not public; the guard guarantees it is set. */
export function principalOf(request: FastifyRequest): Principal {
  if (!request.principal) throw new Errors.UNAUTHENTICATED()
  return request.principal
}
