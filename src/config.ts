import { type Static, Type } from '@sinclair/typebox'
import { Value } from '@sinclair/typebox/value'
import { resolve } from 'node:path'

/** Every setting Armoire reads, with its default for the embedded development mode. */
export const ConfigSchema = Type.Object({
  NODE_ENV: Type.Union([Type.Literal('development'), Type.Literal('production'), Type.Literal('test')], {
    default: 'development',
  }),
  HOST: Type.String({ default: '127.0.0.1' }),
  PORT: Type.Integer({ minimum: 0, maximum: 65535, default: 3000 }),
  PUBLIC_URL: Type.String({ default: '' }),
  LOG_LEVEL: Type.Union(
    ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)),
    { default: 'info' },
  ),
  TRUST_PROXY: Type.Boolean({ default: false }),
  DATABASE_URL: Type.String({ default: '' }),
  DATABASE_POOL_MAX: Type.Integer({ minimum: 1, default: 10 }),
  /** A request waiting longer than this for a connection answers 503 DATABASE_UNAVAILABLE. */
  DATABASE_CONNECT_TIMEOUT_MS: Type.Integer({ minimum: 100, default: 5_000 }),
  /** PostgreSQL's statement_timeout for the API's connections; 0: none. */
  DATABASE_STATEMENT_TIMEOUT_MS: Type.Integer({ minimum: 0, default: 0 }),
  /** Unset: 5433, or any free port when 5433 is taken. */
  EMBEDDED_PG_PORT: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535 })),
  MIGRATE_ON_START: Type.Boolean({ default: true }),
  STORAGE_DIR: Type.String({ default: 'storage' }),
  JWT_SECRET: Type.String({ default: '' }),
  // Lifetime of an access token; clients renew it with their refresh token (POST /auth/refresh).
  ACCESS_TOKEN_TTL_SECONDS: Type.Integer({ minimum: 1, maximum: 86_400, default: 900 }),
  CORS_ORIGINS: Type.String({ default: '' }),
  BODY_LIMIT: Type.Integer({ minimum: 1024, default: 1_048_576 }),
  MAX_HEADER_SIZE: Type.Integer({ minimum: 1024, default: 16_384 }),
  /** A client must send its whole header block within this time (slow-header clients get a 408); bodies may stream longer. */
  HEADERS_TIMEOUT_MS: Type.Integer({ minimum: 100, maximum: 600_000, default: 30_000 }),
  REDIS_URL: Type.String({ default: '' }),
  REDIS_PREFIX: Type.String({ default: 'armoire:' }),
  RATE_LIMIT_MAX: Type.Integer({ minimum: 1, default: 600 }),
  AUTH_RATE_LIMIT_MAX: Type.Integer({ minimum: 1, default: 30 }),
  LOGIN_EMAIL_RATE_LIMIT_MAX: Type.Integer({ minimum: 1, default: 10 }),
  PASSWORD_RESET_RATE_LIMIT_MAX: Type.Integer({ minimum: 1, default: 5 }),
  MFA_RATE_LIMIT_MAX: Type.Integer({ minimum: 1, default: 10 }),
  EMAIL_CODE_RATE_LIMIT_MAX: Type.Integer({ minimum: 1, default: 5 }),
  WEBHOOK_RATE_LIMIT_MAX: Type.Integer({ minimum: 1, default: 300 }),
  // Two-factor: the name authenticator apps show next to the account.
  MFA_TOTP_ISSUER: Type.String({ minLength: 1, default: 'Armoire' }),
  // SSO (OpenID Connect). A provider is offered when its issuer and client id are set; its
  // callback is <REDIRECT_BASE or PUBLIC_URL>/auth/sso/<provider>/callback. Microsoft's issuer
  // names the tenant: https://login.microsoftonline.com/<tenant id>/v2.0.
  SSO_GOOGLE_ISSUER: Type.String({ default: 'https://accounts.google.com' }),
  SSO_GOOGLE_CLIENT_ID: Type.String({ default: '' }),
  SSO_GOOGLE_CLIENT_SECRET: Type.String({ default: '' }),
  SSO_GOOGLE_REDIRECT_BASE: Type.String({ default: '' }),
  SSO_MICROSOFT_ISSUER: Type.String({ default: '' }),
  SSO_MICROSOFT_CLIENT_ID: Type.String({ default: '' }),
  SSO_MICROSOFT_CLIENT_SECRET: Type.String({ default: '' }),
  SSO_MICROSOFT_REDIRECT_BASE: Type.String({ default: '' }),
  SHUTDOWN_TIMEOUT_MS: Type.Integer({ minimum: 0, default: 10_000 }),
  // GET /metrics answers only a caller presenting this bearer token; unset, it answers 404.
  METRICS_TOKEN: Type.String({ default: '' }),
  // Background jobs (pg-boss, schema `pgboss`); scripts that only build the app turn them off.
  JOBS_ENABLED: Type.Boolean({ default: true }),
  JOBS_POLLING_INTERVAL_SECONDS: Type.Number({ minimum: 0.5, default: 2 }),
  // E-mail: without SMTP_URL (smtp://user:pass@host:port, smtps:// for implicit TLS) mails stay in
  // the `courriels` outbox as `non_envoye` and are logged. Failed sends retry with backoff.
  SMTP_URL: Type.String({ default: '' }),
  MAIL_FROM: Type.String({ default: 'Armoire <no-reply@armoire.local>' }),
  MAIL_RETRY_LIMIT: Type.Integer({ minimum: 0, default: 5 }),
  MAIL_RETRY_DELAY_SECONDS: Type.Integer({ minimum: 1, default: 30 }),
  // Documents. Master keys: MASTER_KEYS ("1:<base64>,2:<base64>", the highest version wraps new
  // keys) wins over MASTER_KEY (version 1); without either, a development key in STORAGE_DIR.
  MASTER_KEY: Type.String({ default: '' }),
  MASTER_KEYS: Type.String({ default: '' }),
  // Or the master keys live in AWS KMS (MASTER_KEY_PROVIDER=kms): KMS_KEY_IDS maps versions to key
  // ids or ARNs ("1=arn:aws:kms:…,2=arn:aws:kms:…", the highest wraps new keys); without
  // KMS_ACCESS_KEY_ID, credentials and region come from the SDK's default chain.
  MASTER_KEY_PROVIDER: Type.Union([Type.Literal('local'), Type.Literal('kms')], { default: 'local' }),
  KMS_KEY_IDS: Type.String({ default: '' }),
  KMS_REGION: Type.String({ default: '' }),
  KMS_ENDPOINT: Type.String({ default: '' }),
  KMS_ACCESS_KEY_ID: Type.String({ default: '' }),
  KMS_SECRET_ACCESS_KEY: Type.String({ default: '' }),
  BLOB_DRIVER: Type.Union([Type.Literal('local'), Type.Literal('s3')], { default: 'local' }),
  S3_ENDPOINT: Type.String({ default: '' }),
  S3_REGION: Type.String({ default: 'us-east-1' }),
  S3_BUCKET: Type.String({ default: '' }),
  S3_ACCESS_KEY_ID: Type.String({ default: '' }),
  S3_SECRET_ACCESS_KEY: Type.String({ default: '' }),
  S3_FORCE_PATH_STYLE: Type.Boolean({ default: false }),
  S3_PREFIX: Type.String({ default: '' }),
  // A blob no row names (its writer was killed before committing) is removed by an hourly job
  // once older than this: younger ones may be uploads still in flight.
  BLOB_ORPHAN_GRACE_HOURS: Type.Integer({ minimum: 0, default: 24 }),
  UPLOAD_MAX_BYTES: Type.Integer({ minimum: 1, default: 5 * 1024 ** 3 }),
  // Per organisation until billing sets a plan's quota; 0 means unlimited.
  STORAGE_QUOTA_BYTES: Type.Integer({ minimum: 0, default: 10 * 1024 ** 3 }),
  TRASH_RETENTION_DAYS: Type.Integer({ minimum: 1, default: 30 }),
  // Compliance: journal entries older than this are removed by a daily job, the removal itself
  // journaled with the hash the chain resumes from; 0 keeps the journal for ever.
  JOURNAL_RETENTION_DAYS: Type.Integer({ minimum: 0, default: 3653 }),
  // A GDPR export of more than this many journal entries and files of the member is built by a
  // job (202, then downloaded) instead of in the request; its archive is kept this many hours.
  GDPR_EXPORT_JOB_THRESHOLD: Type.Integer({ minimum: 0, default: 5000 }),
  GDPR_EXPORT_KEEP_HOURS: Type.Integer({ minimum: 1, default: 168 }),
  // Notice given before a file whose term ends with `destruction` is destroyed, unless someone objects.
  DISPOSAL_NOTICE_DAYS: Type.Integer({ minimum: 0, default: 30 }),
  // Backups. A backup or restore whose job has given no sign of life for this long was
  // interrupted (process killed, database restart): it is failed and its partial archive removed.
  BACKUP_STALE_SECONDS: Type.Integer({ minimum: 2, default: 120 }),
  // An imported archive (POST /sauvegardes/import) larger than this is refused (413). Its
  // central directory may list at most BACKUP_IMPORT_MAX_ENTRIES entries declaring at most
  // BACKUP_IMPORT_MAX_EXPANDED_BYTES in all, none of more than 64 KiB expanding more than
  // BACKUP_IMPORT_MAX_RATIO times (ZIP bombs).
  BACKUP_IMPORT_MAX_BYTES: Type.Integer({ minimum: 1, default: 50 * 1024 ** 3 }),
  BACKUP_IMPORT_MAX_ENTRIES: Type.Integer({ minimum: 1, default: 2_000_000 }),
  BACKUP_IMPORT_MAX_EXPANDED_BYTES: Type.Integer({ minimum: 1, default: 200 * 1024 ** 3 }),
  BACKUP_IMPORT_MAX_RATIO: Type.Integer({ minimum: 1, default: 1100 }),
  // A separate store for backup archives (the 3-2-1 rule): unset, they go to the blob store;
  // `local`, under BACKUP_BLOB_DIR (not STORAGE_DIR); `s3`, in the bucket BACKUP_BLOB_S3_* name.
  BACKUP_BLOB_DRIVER: Type.Union([Type.Literal(''), Type.Literal('local'), Type.Literal('s3')], { default: '' }),
  BACKUP_BLOB_DIR: Type.String({ default: '' }),
  BACKUP_BLOB_S3_ENDPOINT: Type.String({ default: '' }),
  BACKUP_BLOB_S3_REGION: Type.String({ default: 'us-east-1' }),
  BACKUP_BLOB_S3_BUCKET: Type.String({ default: '' }),
  BACKUP_BLOB_S3_ACCESS_KEY_ID: Type.String({ default: '' }),
  BACKUP_BLOB_S3_SECRET_ACCESS_KEY: Type.String({ default: '' }),
  BACKUP_BLOB_S3_FORCE_PATH_STYLE: Type.Boolean({ default: false }),
  BACKUP_BLOB_S3_PREFIX: Type.String({ default: '' }),
  // How long a dashboard may be reused while nothing was journalled in its organisation; 0: never.
  STATS_CACHE_SECONDS: Type.Number({ minimum: 0, default: 5 }),
  // A session's downloads of a version, from one address, are journaled once per window (the
  // Range requests of a player or a resumed download included); 0 journals every request.
  DOWNLOAD_JOURNAL_WINDOW_SECONDS: Type.Integer({ minimum: 0, default: 600 }),
  // Billing. FeexPay (v2 API): without an API key and shop id, payments answer 502.
  FEEXPAY_BASE_URL: Type.String({ default: 'https://api-v2.feexpay.me' }),
  FEEXPAY_API_KEY: Type.String({ default: '' }),
  FEEXPAY_SHOP_ID: Type.String({ default: '' }),
  FEEXPAY_WEBHOOK_SECRET: Type.String({ default: '' }),
  // A mobile-money request can block until the customer confirms on the phone.
  FEEXPAY_TIMEOUT_MS: Type.Integer({ minimum: 100, default: 120_000 }),
  // Pending payments are re-checked at FeexPay after this delay, doubling up to an hour, for 24 h.
  FEEXPAY_POLL_SECONDS: Type.Integer({ minimum: 1, default: 30 }),
  BILLING_VAT_RATE: Type.Number({ minimum: 0, maximum: 100, default: 18 }),
  BILLING_GRACE_DAYS: Type.Integer({ minimum: 0, default: 7 }),
  BILLING_REMINDER_DAYS: Type.String({ pattern: '^(\\d{1,3}(,\\d{1,3})*)?$', default: '7,1' }),
  BILLING_TIMEZONE: Type.String({ minLength: 1, default: 'Africa/Porto-Novo' }),
  BILLING_SELLER_NAME: Type.String({ default: 'Armoire SAS' }),
  BILLING_SELLER_ADDRESS: Type.String({ default: 'Cotonou, Bénin' }),
  BILLING_SELLER_IFU: Type.String({ default: '' }),
  BILLING_SELLER_RCCM: Type.String({ default: '' }),
  BILLING_SELLER_EMAIL: Type.String({ default: '' }),
  // PDF rendering (invoices, reports): the system Chromium, one browser, a bounded pool of tabs.
  CHROMIUM_PATH: Type.String({ minLength: 1, default: '/usr/bin/chromium' }),
  PDF_PAGES: Type.Integer({ minimum: 1, maximum: 32, default: 2 }),
  PDF_TIMEOUT_MS: Type.Integer({ minimum: 1_000, default: 30_000 }),
})

export type Config = Static<typeof ConfigSchema>

export class ConfigError extends Error {
  override name = 'ConfigError'
}

/**
 * Reads the configuration from an environment-like record: defaults applied, strings
 * converted to numbers and booleans, then checked. Unknown variables are ignored.
 */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const known: Record<string, unknown> = {}
  for (const key of Object.keys(ConfigSchema.properties)) {
    const value = env[key]
    if (value !== undefined && value !== '') known[key] = value
  }
  const value = Value.Convert(ConfigSchema, Value.Default(ConfigSchema, known))
  const errors = [...Value.Errors(ConfigSchema, value)]
  if (errors.length > 0) {
    const list = errors.map((e) => `${e.path.slice(1)}: ${e.message}`).join('; ')
    throw new ConfigError(`invalid configuration: ${list}`)
  }
  const config = value as Config
  if (config.NODE_ENV === 'production') {
    const missing = (['DATABASE_URL', 'JWT_SECRET', 'PUBLIC_URL'] as const).filter((k) => config[k] === '')
    if (missing.length > 0) throw new ConfigError(`production requires ${missing.join(', ')}`)
    if (config.JWT_SECRET.length < 32) throw new ConfigError('JWT_SECRET must be at least 32 characters')
  }
  // Rate limits spare the scrapes: the token itself must resist guessing.
  if (config.METRICS_TOKEN !== '' && config.METRICS_TOKEN.length < 32) throw new ConfigError('METRICS_TOKEN must be at least 32 characters')
  const archiveStore = archiveStoreProblem(config)
  if (archiveStore) throw new ConfigError(archiveStore)
  const masterKeys = masterKeyProblem(config)
  if (masterKeys) throw new ConfigError(masterKeys)
  return config
}

/** One provider of master keys: KMS key ids, or local keys, never both (which one would wrap?). */
function masterKeyProblem(config: Config): string | null {
  if (config.MASTER_KEY_PROVIDER !== 'kms') return null
  if (!config.KMS_KEY_IDS.trim()) return 'MASTER_KEY_PROVIDER=kms requires KMS_KEY_IDS'
  if (config.MASTER_KEY || config.MASTER_KEYS) return 'MASTER_KEY_PROVIDER=kms takes its keys from KMS_KEY_IDS: unset MASTER_KEY and MASTER_KEYS'
  if (!config.KMS_ACCESS_KEY_ID !== !config.KMS_SECRET_ACCESS_KEY) return 'KMS_ACCESS_KEY_ID and KMS_SECRET_ACCESS_KEY go together (or neither, for the SDK’s default credentials)'
  return null
}

/** A separate archive store must be named, and be another place than the blob store. */
function archiveStoreProblem(config: Config): string | null {
  if (config.BACKUP_BLOB_DRIVER === 'local') {
    if (!config.BACKUP_BLOB_DIR) return 'BACKUP_BLOB_DRIVER=local requires BACKUP_BLOB_DIR'
    if (config.BLOB_DRIVER === 'local' && resolve(config.BACKUP_BLOB_DIR) === resolve(config.STORAGE_DIR)) return 'BACKUP_BLOB_DIR must name another directory than STORAGE_DIR'
  }
  if (config.BACKUP_BLOB_DRIVER === 's3') {
    const missing = (['BACKUP_BLOB_S3_BUCKET', 'BACKUP_BLOB_S3_ACCESS_KEY_ID', 'BACKUP_BLOB_S3_SECRET_ACCESS_KEY'] as const).filter((k) => !config[k])
    if (missing.length > 0) return `BACKUP_BLOB_DRIVER=s3 requires ${missing.join(', ')}`
    const same = config.BLOB_DRIVER === 's3' && config.BACKUP_BLOB_S3_BUCKET === config.S3_BUCKET && config.BACKUP_BLOB_S3_ENDPOINT === config.S3_ENDPOINT && config.BACKUP_BLOB_S3_PREFIX === config.S3_PREFIX
    if (same) return 'BACKUP_BLOB_S3_BUCKET (or its endpoint or prefix) must differ from the blob store’s'
  }
  return null
}

export function publicUrl(config: Config): string {
  return config.PUBLIC_URL || `http://${config.HOST === '0.0.0.0' ? 'localhost' : config.HOST}:${config.PORT}`
}
