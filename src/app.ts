import { randomUUID } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { resolve } from 'node:path'
import cors from '@fastify/cors'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { pino } from 'pino'
import Fastify, {
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  LogController, type FastifyPluginAsync, type FastifyServerOptions } from 'fastify'
import { sharedSchemas } from '../openapi/common.ts'
import { contract as fullContract, tags } from '../openapi/index.ts'
import { type DocumentedOperation, documentOperation, type Operation } from '../openapi/operation.ts'
import { auditPlugin } from './audit.ts'
import { type AuthOptions, authGuard } from './auth.ts'
import { blobCollectorPlugin } from './blob-collector.ts'
import { blobsPlugin } from './blobs.ts'
import { type Config, publicUrl } from './config.ts'
import { dbPlugin } from './db.ts'
import { healthRoutes } from './health.ts'
import { jobsPlugin } from './jobs.ts'
import { keysOptions, keysPlugin } from './keys.ts'
import { mailPlugin } from './mail.ts'
import { metricsPlugin, metricsRoutes } from './metrics.ts'
import { pdfPlugin } from './pdf.ts'
import { clientErrorHandler, frameworkErrors, problems } from './problems.ts'
import { type RateLimitKernelOptions, rateLimits } from './rate-limit.ts'
import { safeguardsPlugin } from './safeguards.ts'
import { entitlementsPlugin } from './entitlements.ts'
import { securityHeaders } from './security-headers.ts'
import { securityDomain } from '../plugins/security/index.ts'
import { documentsDomain } from '../plugins/documents/index.ts'
import { backupDomain } from '../plugins/backup/index.ts'
import { billingDomain } from '../plugins/billing/index.ts'
import { complianceDomain } from '../plugins/compliance/index.ts'
import { statsDomain } from '../plugins/stats/index.ts'
import { contractCheck } from './routes.ts'
import { unitOfWorkPlugin } from './unit-of-work.ts'
import { schemaController } from './validation.ts'

// The project's package.json: one level up from src/, two from the compiled dist/src/.
const manifest = [new URL('../package.json', import.meta.url), new URL('../../package.json', import.meta.url)].find((url) => existsSync(url))
const pkg = JSON.parse(readFileSync(manifest ?? new URL('../package.json', import.meta.url), 'utf8')) as { version: string }

const REQUEST_ID = /^[\w.:-]{1,128}$/

/** The settings webhooks authenticate their callers with. */
function webhookSecrets(config: Config): AuthOptions['webhookSecrets'] {
  return Object.fromEntries(Object.entries(config).filter(([key]) => key.endsWith('_WEBHOOK_SECRET')))
}

/** The settings the contract's rate limits name. */
function rateLimitSettings(config: Config): RateLimitKernelOptions['settings'] {
  return Object.fromEntries(Object.entries(config).filter(([key]) => key.endsWith('RATE_LIMIT_MAX'))) as RateLimitKernelOptions['settings']
}

export interface BuildOptions {
  config: Config
  /** Defaults to the whole contract; tests may extend it with operations of their own. */
  contract?: readonly Operation[]
  /** Extra encapsulated plugins, registered after the domains (tests). */
  extraPlugins?: readonly FastifyPluginAsync[]
  /** Where logs go, for tests that read them; otherwise `logFile`. */
  logStream?: NodeJS.WritableStream
  /** A path or descriptor written through pino's buffered asynchronous destination; defaults to stdout. */
  logFile?: string | number
}

export const DESCRIPTION = `API du coffre-fort documentaire Armoire : armoires, casiers, dossiers et fichiers
chiffrés au repos, versions, sauvegardes, abonnements FeexPay, conformité et journal d'activité.

## Obtenir un jeton
1. \`POST /auth/register\` crée une organisation et son administrateur, ou \`POST /auth/login\` ouvre une
   session : la réponse porte \`access_token\` (15 minutes) et \`refresh_token\`.
2. Bouton **Authorize** ci-dessous : collez l'\`access_token\` (sans « Bearer »). Chaque requête part alors avec
   \`Authorization: Bearer …\`.
3. À l'expiration (401 \`TOKEN_INVALID\`), \`POST /auth/refresh\` avec le \`refresh_token\` donne une nouvelle paire ;
   l'ancien jeton de rafraîchissement ne vaut plus.

## Rôles
\`admin\` gère les membres, la sécurité, le journal et tout le contenu ; \`contributeur\` crée, dépose, renomme,
déplace et supprime ; \`lecteur\` consulte et télécharge. Chaque opération indique dans \`x-roles\` les rôles qui
peuvent l'appeler ; les autres reçoivent 403 \`FORBIDDEN\`. Les données d'une autre organisation répondent 404.

## Pagination
Les listes répondent \`{ items, next_cursor }\`. Pour la page suivante, repassez \`next_cursor\` dans \`cursor\`
(avec les mêmes filtres et tri) ; \`next_cursor\` vaut \`null\` sur la dernière page. \`limit\` fixe la taille des pages.

## Erreurs
Toutes les erreurs suivent la RFC 9457 (\`application/problem+json\`) : \`title\` et \`detail\` en français, un
\`code\` machine stable sur lequel brancher (ex. \`NAME_CONFLICT\`, \`QUOTA_EXCEEDED\`), \`request_id\` à citer au
support, et pour une requête invalide, \`errors\` qui nomme chaque champ fautif. Chaque réponse d'erreur d'une
opération liste ses codes possibles (\`x-problem-codes\`).`

// Helmet's headers, computed once. Helmet's page-oriented extras for legacy browsers
// (DNS prefetch, download options, Flash policies, XSS auditor, origin clustering) are left out.
const LEGACY_OFF = {
  xDnsPrefetchControl: false,
  xDownloadOptions: false,
  xPermittedCrossDomainPolicies: false,
  xXssProtection: false,
  originAgentCluster: false,
} as const

/**
 * What the API answers (JSON, problem+json, downloads) is never a page: nothing may load from
 * it, frame it or run in it, the policy the OWASP REST Security Cheat Sheet gives for APIs.
 * Headers that only govern documents (opener isolation, the referrer of links followed) are
 * left to the pages. Short, too: these bytes go out with every answer.
 */
export const apiHeaders = (tls: boolean) =>
  securityHeaders({
    ...LEGACY_OFF,
    contentSecurityPolicy: { useDefaults: false, directives: { 'default-src': ["'none'"], 'frame-ancestors': ["'none'"] } },
    crossOriginOpenerPolicy: false,
    referrerPolicy: false,
    xFrameOptions: { action: 'deny' },
    strictTransportSecurity: tls,
  })

/** Swagger UI's pages under /docs run their own scripts and styles. */
export const pageHeaders = (tls: boolean) =>
  securityHeaders({
    ...LEGACY_OFF,
    contentSecurityPolicy: {
      directives: {
        'img-src': ["'self'", 'data:'],
        'script-src': ["'self'"],
        'style-src': ["'self'", "'unsafe-inline'"],
        // Over plain http (development), upgrading would send the page's requests nowhere.
        'upgrade-insecure-requests': tls ? [] : null,
      },
    },
    strictTransportSecurity: tls,
  })

/**
 * HSTS and upgrade-insecure-requests only behind TLS: in production (TLS ends at the proxy)
 * or when the public address is https. Sent over plain http, they would pin a developer's
 * browser to https on localhost.
 */
export function behindTls(config: Config): boolean {
  return config.NODE_ENV === 'production' || publicUrl(config).startsWith('https:')
}

/** Armoire's mark for Swagger UI: a cabinet of three drawers, and the name. */
const LOGO = Buffer.from(
  '<svg xmlns="http://www.w3.org/2000/svg" width="150" height="40" viewBox="0 0 150 40">' +
    '<rect x="2" y="2" width="30" height="36" rx="3" fill="#1f3a5f"/>' +
    '<rect x="6" y="6" width="22" height="8" rx="1" fill="#f2f5f9"/><rect x="6" y="16" width="22" height="8" rx="1" fill="#f2f5f9"/>' +
    '<rect x="6" y="26" width="22" height="8" rx="1" fill="#f2f5f9"/>' +
    '<rect x="14" y="9" width="6" height="2" fill="#1f3a5f"/><rect x="14" y="19" width="6" height="2" fill="#1f3a5f"/>' +
    '<rect x="14" y="29" width="6" height="2" fill="#1f3a5f"/>' +
    '<text x="40" y="28" font-family="Helvetica, Arial, sans-serif" font-size="22" font-weight="700" fill="#ffffff">Armoire</text>' +
    '</svg>',
)

/** One access-log line per request, written when it completes (Fastify's default writes two). */
class AccessLog extends LogController {
  override incomingRequest(): void {}
  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    const line = { method: request.method, url: request.url, status: reply.statusCode, ms: Math.round(reply.elapsedTime) }
    if (error) reply.log.error({ ...line, err: error }, 'request errored')
    else reply.log.info(line, 'request completed')
  }
}

/** Builds the whole application; production and tests use this same function. */
export async function buildApp(opts: BuildOptions): Promise<FastifyInstance> {
  const { config } = opts
  const contract = opts.contract ?? fullContract
  if (!config.JWT_SECRET) throw new Error('JWT_SECRET is required (server.ts provides a development one)')
  if (!config.DATABASE_URL) throw new Error('DATABASE_URL is required (server.ts starts an embedded PostgreSQL)')

  // One synchronous write(2) per log line costs more than some requests: lines are written
  // asynchronously, those arriving while a write is in flight coalesced into the next one
  // (no minimum length: a quiet server's lines appear at once). Flushed when the app closes.
  const destination = opts.logStream ? undefined : pino.destination({ dest: opts.logFile ?? 1, sync: false })
  const logger: FastifyServerOptions['logger'] = {
    level: config.LOG_LEVEL,
    redact: ['req.headers.authorization', 'req.headers.cookie', 'res.headers["set-cookie"]'],
    stream: opts.logStream ?? destination,
  }
  const app = Fastify({
    logger,
    trustProxy: config.TRUST_PROXY,
    bodyLimit: config.BODY_LIMIT,
    // Fastify turns Node's request timeout off (uploads of gigabytes stream for as long as they take), which
    // also turns off its header timeout: set it again, checked often enough for the timeout to be exact.
    http: {
      maxHeaderSize: config.MAX_HEADER_SIZE,
      headersTimeout: config.HEADERS_TIMEOUT_MS,
      connectionsCheckingInterval: Math.min(30_000, Math.max(50, Math.floor(config.HEADERS_TIMEOUT_MS / 4))),
    },
    logController: new AccessLog({ requestIdLogLabel: 'request_id' }),
    genReqId: (req) => {
      const given = req.headers['x-request-id']
      return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID()
    },
    return503OnClosing: true,
    schemaController,
    clientErrorHandler,
    // Refusals before routing skip the onRequest hooks: the headers every answer carries are set here.
    frameworkErrors: (error, request, reply) => {
      reply.headers(API_HEADERS).header('x-request-id', request.id)
      frameworkErrors(error, request, reply)
    },
  }).withTypeProvider<TypeBoxTypeProvider>()

  if (destination) app.addHook('onClose', async () => destination.flushSync())

  // Connections busy when shutdown begins go idle later; close them as they do, not at keep-alive timeout.
  let draining: NodeJS.Timeout | undefined
  app.addHook('preClose', async () => {
    draining = setInterval(() => app.server.closeIdleConnections(), 50)
  })
  app.addHook('onClose', async () => clearInterval(draining))

  await app.register(contractCheck, { contract })
  await app.register(problems)
  await app.register(metricsPlugin)
  const origins = config.CORS_ORIGINS.split(',').map((o) => o.trim()).filter(Boolean)
  // Without allowed origins, no CORS header is ever due: the plugin would only cost a hook.
  if (origins.length > 0) await app.register(cors, { origin: origins, exposedHeaders: ['x-request-id'] })
  const tls = behindTls(config)
  const API_HEADERS = apiHeaders(tls)
  const PAGE_HEADERS = pageHeaders(tls)
  // Callback style: this runs on every request, and a promise per hook is measurable.
  app.addHook('onRequest', (request, reply, done) => {
    reply.headers(API_HEADERS).header('x-request-id', request.id)
    done()
  })

  await mkdir(resolve(config.STORAGE_DIR), { recursive: true })
  await app.register(dbPlugin, {
    url: config.DATABASE_URL,
    poolMax: config.DATABASE_POOL_MAX,
    connectTimeoutMs: config.DATABASE_CONNECT_TIMEOUT_MS,
    statementTimeoutMs: config.DATABASE_STATEMENT_TIMEOUT_MS,
    migrate: config.MIGRATE_ON_START,
  })
  await app.register(unitOfWorkPlugin)
  await app.register(jobsPlugin, {
    enabled: config.JOBS_ENABLED,
    url: config.DATABASE_URL,
    pollingIntervalSeconds: config.JOBS_POLLING_INTERVAL_SECONDS,
    stopTimeoutMs: Math.max(1_000, Math.floor(config.SHUTDOWN_TIMEOUT_MS / 2)),
  })
  await app.register(mailPlugin, {
    smtpUrl: config.SMTP_URL,
    from: config.MAIL_FROM,
    retryLimit: config.MAIL_RETRY_LIMIT,
    retryDelaySeconds: config.MAIL_RETRY_DELAY_SECONDS,
  })
  await app.register(auditPlugin)
  await app.register(safeguardsPlugin)
  await app.register(entitlementsPlugin)
  await app.register(keysPlugin, keysOptions(config))
  await app.register(blobsPlugin, { config })
  await app.register(blobCollectorPlugin, { graceHours: config.BLOB_ORPHAN_GRACE_HOURS })
  await app.register(pdfPlugin, { chromiumPath: config.CHROMIUM_PATH, pages: config.PDF_PAGES, timeoutMs: config.PDF_TIMEOUT_MS })
  await app.register(authGuard, {
    secret: config.JWT_SECRET,
    accessTtlSeconds: config.ACCESS_TOKEN_TTL_SECONDS,
    databaseUrl: config.DATABASE_URL,
    webhookSecrets: webhookSecrets(config),
  })

  const byOperationId = new Map(contract.map((op) => [op.operationId, op]))
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'Armoire', version: pkg.version, description: DESCRIPTION, license: { name: 'Propriétaire', identifier: 'LicenseRef-Proprietary' } },
      servers: [{ url: '/', description: 'Ce serveur' }],
      tags,
      components: { securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } } },
    },
    refResolver: { buildLocalReference: (json, _base, _fragment, i) => String(json.$id ?? `def-${i}`) },
    transformObject: (document) => {
      if (!('openapiObject' in document)) return document.swaggerObject
      const { openapiObject } = document
      // Roles, examples, status descriptions and problem codes are part of the contract too.
      for (const item of Object.values(openapiObject.paths ?? {})) {
        for (const operation of Object.values(item as Record<string, DocumentedOperation>)) {
          const op = operation.operationId ? byOperationId.get(operation.operationId) : undefined
          if (op) documentOperation(operation, op)
        }
      }
      return openapiObject
    },
  })
  for (const schema of sharedSchemas) app.addSchema(schema)
  // The one place that serves pages: Swagger UI, with a policy that lets it run.
  await app.register(async (docs) => {
    docs.addHook('onRequest', (_request, reply, done) => {
      reply.headers(PAGE_HEADERS)
      done()
    })
    await docs.register(swaggerUi, {
      routePrefix: '/docs',
      staticCSP: true,
      // Swagger UI's own policy asks for upgrade-insecure-requests: only behind TLS.
      transformStaticCSP: (header) => (tls ? header : header.replace(/\s*upgrade-insecure-requests;?/, '')),
      logo: { type: 'image/svg+xml', content: LOGO, href: '/docs', target: '_self' },
      theme: { title: 'Armoire — API', favicon: [{ filename: 'favicon.svg', rel: 'icon', sizes: 'any', type: 'image/svg+xml', content: LOGO }] },
      uiConfig: { persistAuthorization: true, docExpansion: 'list', displayRequestDuration: true, tryItOutEnabled: true },
    })
  })
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger())

  await app.register(rateLimits, { settings: rateLimitSettings(config), redisUrl: config.REDIS_URL, redisPrefix: config.REDIS_PREFIX })

  await app.register(healthRoutes, { storageDir: resolve(config.STORAGE_DIR) })
  await app.register(metricsRoutes, { token: config.METRICS_TOKEN })
  await app.register(securityDomain, { config })
  await app.register(documentsDomain, { config })
  await app.register(backupDomain, { config })
  await app.register(billingDomain, { config })
  await app.register(complianceDomain, { config })
  await app.register(statsDomain, { config })
  for (const plugin of opts.extraPlugins ?? []) await app.register(plugin)
  return app
}
