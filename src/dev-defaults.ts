import { randomBytes } from 'node:crypto'
import { join, resolve } from 'node:path'
import type { Config } from './config.ts'
import { anyFreePort, type EmbeddedPostgresHandle, portIsFree, startEmbeddedPostgres } from './embedded-postgres.ts'
import { readOrCreateSecretFile } from './secret-file.ts'

const DEFAULT_EMBEDDED_PORT = 5433

export interface DevRuntime {
  config: Config
  embedded: EmbeddedPostgresHandle | null
  warnings: string[]
}

/**
 * Fills what the embedded development mode may generate: a PostgreSQL of its own under
 * `storage/` when DATABASE_URL is unset, and a JWT secret kept in `storage/`. Production
 * configuration never reaches here with gaps (loadConfig refuses them).
 */
export async function withDevDefaults(config: Config, log: (line: string) => void): Promise<DevRuntime> {
  const storage = resolve(config.STORAGE_DIR)
  const warnings: string[] = []
  let embedded: EmbeddedPostgresHandle | null = null
  let { DATABASE_URL, JWT_SECRET } = config
  if (!DATABASE_URL) {
    let port = config.EMBEDDED_PG_PORT ?? DEFAULT_EMBEDDED_PORT
    if (config.EMBEDDED_PG_PORT === undefined && !(await portIsFree(port))) {
      port = await anyFreePort()
      warnings.push(`port ${DEFAULT_EMBEDDED_PORT} is taken: embedded PostgreSQL on port ${port} instead (EMBEDDED_PG_PORT chooses it)`)
    }
    embedded = await startEmbeddedPostgres({ dir: join(storage, 'postgres'), port, log })
    DATABASE_URL = embedded.url
    warnings.push(`embedded PostgreSQL on 127.0.0.1:${port}, data in ${join(storage, 'postgres')}`)
  }
  if (!JWT_SECRET) {
    JWT_SECRET = (await readOrCreateSecretFile(join(storage, 'jwt.secret'), () => randomBytes(48).toString('base64url'))).value
    warnings.push(`development JWT secret from ${join(storage, 'jwt.secret')}`)
  }
  return { config: { ...config, DATABASE_URL, JWT_SECRET }, embedded, warnings }
}
