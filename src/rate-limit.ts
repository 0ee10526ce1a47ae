import { createHash } from 'node:crypto'
import rateLimit from '@fastify/rate-limit'
import type { FastifyInstance, FastifyRequest, preHandlerAsyncHookHandler, RouteOptions } from 'fastify'
import fp from 'fastify-plugin'
import { Redis } from 'ioredis'
import type { RateLimit, RateLimitKey, RateLimitSetting } from '../openapi/operation.ts'
import { Errors } from './errors.ts'

export interface RateLimitKernelOptions {
  /** The numbers the contract's limits name, by setting; `RATE_LIMIT_MAX` is the global one. */
  settings: Record<RateLimitSetting, number>
  /** With Redis, every instance shares the counters. */
  redisUrl: string
  redisPrefix: string
}

/** The caller of a request: the signed-in user, else its address. The guard runs first. */
const callerOf = (request: FastifyRequest) => (request.principal ? `u:${request.principal.userId}` : `ip:${request.ip}`)

function keyOf(per: RateLimitKey): (request: FastifyRequest) => string | null {
  if (per === 'caller') return callerOf
  if (per === 'address') return (request) => `ip:${request.ip}`
  if (per === 'user') return (request) => request.principal?.userId ?? null
  const { body: field, secret } = per
  return (request) => {
    const value = String((request.body as Record<string, unknown> | undefined)?.[field] ?? '')
    return secret ? createHash('sha256').update(value).digest('base64url') : value.toLowerCase()
  }
}

/**
 * Rate limits, declared by each operation of the contract: a `caller` or `address` limit
 * replaces the global one on its route; the others are counters of their own, checked once the
 * body is parsed, and shared by the operations that name the same counter.
 */
export const rateLimits = fp(
  async (app: FastifyInstance, opts: RateLimitKernelOptions) => {
    const redis = opts.redisUrl
      ? new Redis(opts.redisUrl, { connectTimeout: 2_000, maxRetriesPerRequest: 1, lazyConnect: false })
      : undefined
    if (redis) app.addHook('onClose', async () => void (await redis.quit().catch(() => redis.disconnect())))

    const counters = new Map<string, { limit: RateLimit; check: preHandlerAsyncHookHandler }>()
    // The plugin runs one limiter per request, so the counters beyond the route's are checked by hand.
    const counter = (name: string, limit: RateLimit): preHandlerAsyncHookHandler => {
      const known = counters.get(name)
      if (known) {
        const same = (l: RateLimit) => JSON.stringify([l.max, l.window, l.per])
        if (same(known.limit) !== same(limit)) throw new Error(`rate limit counter ${name} is declared with different limits`)
        return known.check
      }
      const key = keyOf(limit.per ?? 'caller')
      const limiter = app.createRateLimit({
        max: opts.settings[limit.max],
        timeWindow: limit.window,
        keyGenerator: (request) => `${name}:${key(request) ?? ''}`,
      })
      const check: preHandlerAsyncHookHandler = async (request) => {
        if (key(request) === null) return
        const result = await limiter(request)
        if (!result.isAllowed && result.isExceeded) {
          throw Object.assign(new Errors.RATE_LIMITED(`${result.ttlInSeconds} secondes`), { retryAfter: result.ttlInSeconds })
        }
      }
      counters.set(name, { limit, check })
      return check
    }
    const counted = (name: string, limit: RateLimit): preHandlerAsyncHookHandler => {
      const check = counter(name, limit)
      const { when } = limit
      if (!when) return check
      return async function (this: FastifyInstance, request, reply) {
        if ((request.body as Record<string, unknown> | undefined)?.[when.body] === when.equals) await check.call(this, request, reply)
      }
    }

    // Ahead of the plugin's own onRoute hook, which reads `config.rateLimit`.
    app.addHook('onRoute', (route: RouteOptions) => {
      const declared = route.config?.rateLimits
      const operationId = route.config?.operationId
      if (declared === undefined || !operationId) return
      if (declared === false) {
        route.config = { ...route.config, rateLimit: false }
        return
      }
      const checks: preHandlerAsyncHookHandler[] = []
      for (const limit of declared) {
        const per = limit.per ?? 'caller'
        if (per === 'caller' || per === 'address') {
          const rateLimit = { max: opts.settings[limit.max], timeWindow: limit.window }
          route.config = { ...route.config, rateLimit: per === 'address' ? { ...rateLimit, keyGenerator: (r: FastifyRequest) => `ip:${r.ip}` } : rateLimit }
        } else {
          checks.push(counted(limit.counter ?? `${operationId}:${typeof per === 'string' ? per : per.body}`, limit))
        }
      }
      if (checks.length === 0) return
      const own = route.preHandler ? (Array.isArray(route.preHandler) ? route.preHandler : [route.preHandler]) : []
      route.preHandler = [...own, ...checks]
    })

    await app.register(rateLimit, {
      global: true,
      max: opts.settings.RATE_LIMIT_MAX,
      timeWindow: '1 minute',
      // Runs after the guard (route-level hooks follow the app's), so the caller is known.
      keyGenerator: callerOf,
      // Counters are told when they matter, with the 429 and its Retry-After, not on every answer.
      addHeadersOnExceeding: { 'x-ratelimit-limit': false, 'x-ratelimit-remaining': false, 'x-ratelimit-reset': false },
      errorResponseBuilder: (_request, context) =>
        Object.assign(new Errors.RATE_LIMITED(context.after), { retryAfter: Math.ceil(context.ttl / 1000) }),
      ...(redis ? { redis, nameSpace: `${opts.redisPrefix}rl:`, skipOnError: true } : {}),
    })
  },
  { name: 'rate-limits', fastify: '5.x', dependencies: ['auth-guard'] },
)
