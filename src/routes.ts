import type { IncomingMessage, ServerResponse } from 'node:http'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { RateLimitOptions } from '@fastify/rate-limit'
import type {
  ContextConfigDefault,
  FastifyInstance,
  FastifyReply,
  FastifyRequest,
  onSendAsyncHookHandler,
  preHandlerAsyncHookHandler,
  RawServerDefault,
  RouteGenericInterface,
} from 'fastify'
import fp from 'fastify-plugin'
import type { Access, Operation, OperationSchema } from '../openapi/operation.ts'

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Set on every route registered from the contract. */
    operationId?: string
    access?: Access
  }
}

export type TypedRequest<S extends OperationSchema> = FastifyRequest<
  RouteGenericInterface,
  RawServerDefault,
  IncomingMessage,
  S,
  TypeBoxTypeProvider
>
export type TypedReply<S extends OperationSchema> = FastifyReply<
  RouteGenericInterface,
  RawServerDefault,
  IncomingMessage,
  ServerResponse,
  ContextConfigDefault,
  S,
  TypeBoxTypeProvider
>
export type Handler<S extends OperationSchema> = (
  this: FastifyInstance,
  request: TypedRequest<S>,
  reply: TypedReply<S>,
) => unknown

/** What a domain may add to a route besides its handler: limits and checks of its own. */
export interface RouteExtras {
  /** Route-specific limits, or false for routes that must never be limited (health probes). */
  rateLimit?: RateLimitOptions | false
  preHandler?: preHandlerAsyncHookHandler[]
}

export interface Binding {
  readonly operation: Operation
  readonly handler: Handler<OperationSchema>
  readonly extras?: RouteExtras
}

/** Pairs a contract operation with its handler; the handler is typed by the operation's schemas. */
export function handle<S extends OperationSchema>(operation: Operation<S>, handler: Handler<S>, extras?: RouteExtras): Binding {
  return { operation: operation as unknown as Operation, handler: handler as unknown as Handler<OperationSchema>, extras }
}

/** Answer fields that are credentials or secrets: an answer carrying one is never cached (RFC 6749 §5.1). */
const SECRET_FIELDS = new Set(['access_token', 'refresh_token', 'mfa_token', 'secret', 'codes_secours'])

/** Whether a schema, anywhere inside (unions and nested objects included), declares a secret field. */
export function carriesSecrets(schema: unknown): boolean {
  if (schema === null || typeof schema !== 'object') return false
  const properties = (schema as { properties?: unknown }).properties
  if (properties && typeof properties === 'object' && Object.keys(properties).some((k) => SECRET_FIELDS.has(k))) return true
  return Object.values(schema).some(carriesSecrets)
}

const noStore: onSendAsyncHookHandler = async (_request, reply, payload) => {
  reply.header('cache-control', 'no-store').header('pragma', 'no-cache')
  return payload
}

/** The only way a route enters the app: from a contract operation and its handler. */
export function registerOperations(app: FastifyInstance, bindings: readonly Binding[]): void {
  for (const { operation, handler, extras } of bindings) {
    const successes = Object.entries(operation.schema.response).filter(([status]) => status.startsWith('2'))
    app.route({
      method: operation.method,
      url: operation.url,
      schema: operation.schema,
      config: {
        operationId: operation.operationId,
        access: operation.access,
        ...(extras?.rateLimit !== undefined ? { rateLimit: extras.rateLimit } : {}),
      },
      ...(extras?.preHandler ? { preHandler: extras.preHandler } : {}),
      ...(successes.some(([, schema]) => carriesSecrets(schema)) ? { onSend: noStore } : {}),
      handler,
    })
  }
}

export class ContractError extends Error {
  override name = 'ContractError'
}

/**
 * Refuses to start an app whose routes differ from its contract: every operation must be
 * served, at its method and URL, and every route must be an operation (or hidden
 * infrastructure such as the documentation pages).
 */
export const contractCheck = fp(
  async (app: FastifyInstance, opts: { contract: readonly Operation[] }) => {
    const served = new Map<string, string>()
    const strays: string[] = []
    app.addHook('onRoute', (route) => {
      const methods = Array.isArray(route.method) ? route.method : [route.method]
      const operationId = route.config?.operationId
      for (const method of methods) {
        if (method === 'HEAD' && operationId) continue // Fastify's automatic HEAD for a GET
        const key = `${method} ${route.url}`
        if (operationId) served.set(operationId, key)
        else if (!route.schema?.hide) strays.push(key)
      }
    })
    app.addHook('onReady', async () => {
      const problems: string[] = strays.map((key) => `route ${key} is not in the contract`)
      const ids = new Set<string>()
      for (const op of opts.contract) {
        if (ids.has(op.operationId)) problems.push(`operationId ${op.operationId} is declared twice`)
        ids.add(op.operationId)
        const key = served.get(op.operationId)
        if (!key) problems.push(`operation ${op.operationId} (${op.method} ${op.url}) has no handler`)
        else if (key !== `${op.method} ${op.url}`) problems.push(`operation ${op.operationId} is served at ${key}`)
      }
      for (const id of served.keys()) {
        if (!ids.has(id)) problems.push(`route for ${id} is not in the contract`)
      }
      if (problems.length > 0) throw new ContractError(`the app does not match its contract:\n- ${problems.join('\n- ')}`)
    })
  },
  { name: 'contract-check', fastify: '5.x' },
)
