import { type Static, Type } from '@sinclair/typebox'
import { Value } from '@sinclair/typebox/value'

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
  EMBEDDED_PG_PORT: Type.Integer({ minimum: 1, maximum: 65535, default: 5433 }),
  MIGRATE_ON_START: Type.Boolean({ default: true }),
  STORAGE_DIR: Type.String({ default: 'storage' }),
  JWT_SECRET: Type.String({ default: '' }),
  CORS_ORIGINS: Type.String({ default: '' }),
  BODY_LIMIT: Type.Integer({ minimum: 1024, default: 1_048_576 }),
  MAX_HEADER_SIZE: Type.Integer({ minimum: 1024, default: 16_384 }),
  SHUTDOWN_TIMEOUT_MS: Type.Integer({ minimum: 0, default: 10_000 }),
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
  return config
}

export function publicUrl(config: Config): string {
  return config.PUBLIC_URL || `http://${config.HOST === '0.0.0.0' ? 'localhost' : config.HOST}:${config.PORT}`
}
