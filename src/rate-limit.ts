import rateLimit from '@fastify/rate-limit'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { Redis } from 'ioredis'
import { Errors } from './errors.ts'

export interface RateLimitKernelOptions {
  /** Requests per minute per signed-in user (or per address when anonymous). */
  max: number
  /** With Redis, every instance shares the counters. */
  redisUrl: string
  redisPrefix: string
}

export const rateLimits = fp(
  async (app: FastifyInstance, opts: RateLimitKernelOptions) => {
    const redis = opts.redisUrl
      ? new Redis(opts.redisUrl, { connectTimeout: 2_000, maxRetriesPerRequest: 1, lazyConnect: false })
      : undefined
    if (redis) app.addHook('onClose', async () => void (await redis.quit().catch(() => redis.disconnect())))
    await app.register(rateLimit, {
      global: true,
      max: opts.max,
      timeWindow: '1 minute',
      // Runs after the guard (route-level hooks follow the app's), so the caller is known.
      keyGenerator: (request) => (request.principal ? `u:${request.principal.userId}` : `ip:${request.ip}`),
      // Counters are told when they matter, with the 429 and its Retry-After, not on every answer.
      addHeadersOnExceeding: { 'x-ratelimit-limit': false, 'x-ratelimit-remaining': false, 'x-ratelimit-reset': false },
      errorResponseBuilder: (_request, context) =>
        Object.assign(new Errors.RATE_LIMITED(context.after), { retryAfter: Math.ceil(context.ttl / 1000) }),
      ...(redis ? { redis, nameSpace: `${opts.redisPrefix}rl:`, skipOnError: true } : {}),
    })
  },
  { name: 'rate-limits', fastify: '5.x', dependencies: ['auth-guard'] },
)
