import type { IncomingMessage, ServerResponse } from 'node:http'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type {
  ContextConfigDefault,
  FastifyInstance,
  FastifyReply,
  FastifyRequest,
  onSendAsyncHookHandler,
  RawServerDefault,
  RouteGenericInterface,
} from 'fastify'
import fp from 'fastify-plugin'
import type { Access, Operation, OperationSchema, RateLimit } from '../openapi/operation.ts'

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Set on every route registered from the contract. */
    operationId?: string
    access?: Access
    rateLimits?: readonly RateLimit[] | false
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

export interface Binding {
  readonly operation: Operation
  readonly handler: Handler<OperationSchema>
}

/** Pairs a contract operation with its handler; the handler is typed by the operation's schemas. */
export function handle<S extends OperationSchema>(operation: Operation<S>, handler: Handler<S>): Binding {
  return { operation: operation as unknown as Operation, handler: handler as unknown as Handler<OperationSchema> }
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

/**
 * The only way a route enters the app: from a contract operation and its handler. What the
 * operation declares (access, rate limits) travels in the route's config to the kernel's hooks.
 */
export function registerOperations(app: FastifyInstance, bindings: readonly Binding[]): void {
  for (const { operation, handler } of bindings) {
    const successes = Object.entries(operation.schema.response).filter(([status]) => status.startsWith('2'))
    app.route({
      method: operation.method,
      url: operation.url,
      schema: operation.schema,
      config: {
        operationId: operation.operationId,
        access: operation.access,
        ...(operation.rateLimits !== undefined ? { rateLimits: operation.rateLimits } : {}),
      },
      ...(successes.some(([, schema]) => carriesSecrets(schema)) ? { onSend: noStore } : {}),
      handler,
    })
  }
}

/**
 * For a domain plugin: fails at registration, naming what is missing, when a kernel plugin it
 * uses is not registered ahead of it.
 */
export function requireKernel(app: FastifyInstance, domain: string, plugins: readonly string[]): void {
  const missing = plugins.filter((name) => !app.hasPlugin(name))
  if (missing.length > 0) throw new Error(`the ${domain} domain needs the kernel plugin${missing.length > 1 ? 's' : ''} ${missing.join(', ')}, not registered before it`)
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
