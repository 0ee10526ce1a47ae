import jwt from '@fastify/jwt'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { Role } from '../openapi/common.ts'
import { Errors } from './errors.ts'

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
    /** Called by the guard once a token verifies; answers null when the session is no longer valid. */
    resolvePrincipal: (claims: AccessClaims, request: FastifyRequest) => Promise<Principal | null>
    /** Called when the guard refuses a caller whose role does not allow the operation. */
    onAccessDenied: (request: FastifyRequest, principal: Principal, needed: readonly Role[]) => Promise<void>
  }
}

export interface AuthOptions {
  secret: string
  accessTtlSeconds: number
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
    app.decorateRequest('principal', null)
    // Until the security domain provides live sessions, a verified token is trusted as is.
    app.decorate('resolvePrincipal', async (claims: AccessClaims) => ({
      userId: claims.sub,
      organisationId: claims.org,
      role: claims.role,
      sessionId: claims.sid,
    }))
    app.decorate('onAccessDenied', async () => {})

    app.addHook('onRequest', async (request) => {
      const access = request.routeOptions.config.access
      if (!access || 'public' in access) return
      if (!request.headers.authorization) throw new Errors.UNAUTHENTICATED()
      let claims: AccessClaims
      try {
        claims = await request.jwtVerify<AccessClaims>()
      } catch {
        throw new Errors.TOKEN_INVALID()
      }
      const principal = await app.resolvePrincipal(claims, request)
      if (!principal) throw new Errors.SESSION_REVOKED()
      request.principal = principal
      if (!access.roles.includes(principal.role)) {
        await app.onAccessDenied(request, principal, access.roles)
        throw new Errors.FORBIDDEN()
      }
    })
  },
  { name: 'auth-guard', fastify: '5.x' },
)

/** The caller of an operation that is not public; the guard guarantees it is set. */
export function principalOf(request: FastifyRequest): Principal {
  if (!request.principal) throw new Errors.UNAUTHENTICATED()
  return request.principal
}
