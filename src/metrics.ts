import { createHash, timingSafeEqual } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import {
  collectDefaultMetrics,
  Counter,
  type CounterConfiguration,
  Gauge,
  type GaugeConfiguration,
  Histogram,
  type HistogramConfiguration,
  Registry,
} from 'prom-client'
import { metrics as metricsOperation } from '../openapi/metrics.ts'
import { Errors } from './errors.ts'
import { handle, registerOperations } from './routes.ts'

// Seconds. Requests: from a cached read (ms) to a large upload; blob operations add the minute a
// big download may stream; backups and restores run from seconds to half a day.
const HTTP_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]
export const BLOB_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]
export const LONG_BUCKETS = [1, 5, 15, 60, 300, 900, 1800, 3600, 7200, 14_400, 43_200]

let processRegistry: Registry | null = null

/**
 * CPU, memory, event loop and GC belong to the process, not to an app: collected once per
 * process (prom-client's collectors start a GC observer and an event-loop monitor that are
 * never stopped, and tests build many apps in one process), then shared by every app's registry.
 */
function processMetrics(): Registry {
  if (!processRegistry) {
    processRegistry = new Registry()
    collectDefaultMetrics({ register: processRegistry })
  }
  return processRegistry
}

export function createMetrics() {
  const registry = Registry.merge([processMetrics()])
  const histogram = <T extends string>(config: HistogramConfiguration<T>) => new Histogram<T>({ ...config, registers: [registry] })
  const counter = <T extends string>(config: CounterConfiguration<T>) => new Counter<T>({ ...config, registers: [registry] })
  const gauge = <T extends string>(config: GaugeConfiguration<T>) => new Gauge<T>({ ...config, registers: [registry] })
  return {
    registry,
    histogram,
    counter,
    gauge,
    http: histogram({
      name: 'armoire_http_request_duration_seconds',
      help: 'Durée des requêtes, par opération du contrat (unknown hors contrat), méthode et classe de statut',
      labelNames: ['operation', 'method', 'status_class'],
      buckets: HTTP_BUCKETS,
    }),
    errors: counter({
      name: 'armoire_http_errors_total',
      help: 'Réponses problem+json, par code du catalogue et statut',
      labelNames: ['code', 'status'],
    }),
    blobs: histogram({
      name: 'armoire_blob_operation_duration_seconds',
      help: 'Durée des opérations du stockage de blobs (lecture et écriture jusqu’à la fin du flux)',
      labelNames: ['store', 'driver', 'operation', 'outcome'],
      buckets: BLOB_BUCKETS,
    }),
  }
}

export type Metrics = ReturnType<typeof createMetrics>

declare module 'fastify' {
  interface FastifyInstance {
    metrics: Metrics
  }
}

const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'])

/**
 * The app's Prometheus registry (`app.metrics`), and what every request adds to it. Labels are
 * the contract's operationId and the catalogue's codes, never a URL: their number stays bounded.
 */
export const metricsPlugin = fp(
  async (app: FastifyInstance) => {
    const metrics = createMetrics()
    app.decorate('metrics', metrics)
    // Callback style, as the other per-request hooks: a promise per request is measurable.
    app.addHook('onResponse', (request, reply, done) => {
      const operation = request.routeOptions.config.operationId
      if (reply.problemCode) metrics.errors.inc({ code: reply.problemCode, status: String(reply.statusCode) })
      // Scrapes every 15 s would only add noise to the API's latency.
      if (operation !== metricsOperation.operationId) {
        metrics.http.observe(
          {
            operation: operation ?? 'unknown',
            method: METHODS.has(request.method) ? request.method : 'other',
            status_class: `${Math.floor(reply.statusCode / 100)}xx`,
          },
          reply.elapsedTime / 1000,
        )
      }
      done()
    })
  },
  { name: 'metrics', fastify: '5.x', dependencies: ['problems'] },
)

const BEARER = /^Bearer (.+)$/i
const digest = (value: string) => createHash('sha256').update(value).digest()

/**
 * GET /metrics. Without a token configured it answers as if it did not exist; with one, only a
 * caller presenting it (compared in constant time, both sides hashed first) is answered.
 */
export async function metricsRoutes(app: FastifyInstance, opts: { token: string }) {
  const expected = digest(opts.token)
  registerOperations(app, [
    handle(metricsOperation, async (request, reply) => {
      if (opts.token === '') throw new Errors.ROUTE_NOT_FOUND(request.method, metricsOperation.url)
      const given = BEARER.exec(request.headers.authorization ?? '')?.[1]
      if (given === undefined || !timingSafeEqual(digest(given), expected)) {
        reply.header('www-authenticate', 'Bearer realm="metrics"')
        throw new Errors.METRICS_UNAUTHORIZED()
      }
      const text = await app.metrics.registry.metrics()
      return reply.type(app.metrics.registry.contentType).send(text)
    }),
  ])
}
