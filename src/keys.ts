import { join, resolve } from 'node:path'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type { Config } from './config.ts'
import { createLocalKeySource, type KeySource, loadOrCreateDevMasterKey, parseMasterKeys } from './crypto/keys.ts'
import { createKmsKeySource, parseKmsKeyIds } from './crypto/kms.ts'

declare module 'fastify' {
  interface FastifyInstance {
    /** Wraps and unwraps data keys under the master key(s); a KMS can stand in for it. */
    keys: KeySource
  }
}

export interface KeysOptions {
  provider: Config['MASTER_KEY_PROVIDER']
  masterKey: string
  masterKeys: string
  storageDir: string
  production: boolean
  kms: { keyIds: string; region: string; endpoint: string; accessKeyId: string; secretAccessKey: string }
}

/** The key source's settings, as the app and `npm run keys:rotate` both read them. */
export function keysOptions(config: Config): KeysOptions {
  return {
    provider: config.MASTER_KEY_PROVIDER,
    masterKey: config.MASTER_KEY,
    masterKeys: config.MASTER_KEYS,
    storageDir: config.STORAGE_DIR,
    production: config.NODE_ENV === 'production',
    kms: {
      keyIds: config.KMS_KEY_IDS,
      region: config.KMS_REGION,
      endpoint: config.KMS_ENDPOINT,
      accessKeyId: config.KMS_ACCESS_KEY_ID,
      secretAccessKey: config.KMS_SECRET_ACCESS_KEY,
    },
  }
}

/** KMS key ids; else the configured master keys; else (outside production) the development key under storage/. */
export async function loadKeySource(opts: KeysOptions, log: { warn(details: object, message: string): void }): Promise<KeySource> {
  if (opts.provider === 'kms') {
    return createKmsKeySource({ ...opts.kms, keyIds: parseKmsKeyIds(opts.kms.keyIds) })
  }
  const keys = parseMasterKeys({ MASTER_KEY: opts.masterKey, MASTER_KEYS: opts.masterKeys })
  if (keys) return createLocalKeySource(keys)
  if (opts.production) throw new Error('production requires MASTER_KEY or MASTER_KEYS')
  const path = join(resolve(opts.storageDir), 'master.key')
  const { key, created } = await loadOrCreateDevMasterKey(path)
  log.warn(
    { path, created },
    '⚠ DEVELOPMENT MASTER KEY IN USE — NOT FOR PRODUCTION: files are encrypted under a key stored next to them; set MASTER_KEY',
  )
  return createLocalKeySource(new Map([[1, key]]))
}

export const keysPlugin = fp(
  async (app: FastifyInstance, opts: KeysOptions) => {
    app.decorate('keys', await loadKeySource(opts, app.log))
  },
  { name: 'keys', fastify: '5.x' },
)

/**
 * A column of secrets wrapped by the master key (`app.keys.wrap`): data keys, TOTP secrets,
 * and whatever a domain wraps later. Master-key rotation re-wraps every registered column,
 * so a domain that wraps a secret registers its column where it defines the wrapping.
 */
export interface WrappedColumn {
  /** Names the secrets in the rotation's report and journal: `cles_chiffrement`, `totp`. */
  kind: string
  table: string
  /** The row's key, as text in the additional data. */
  id: string
  organisation: string
  wrapped: string
  /** The master key version the secret is wrapped under; null with the secret (e.g. an e-mail factor). */
  version: string
  /** The additional data the secret was wrapped with, from its row's id. */
  aad: (id: string) => string
  /** A timestamp column set when the secret is re-wrapped. */
  rewrappedAt?: string
}

const wrappedColumns = new Map<string, WrappedColumn>()

/** Adds a column to what rotation walks; the same kind twice must describe the same column. */
export function registerWrappedColumn(column: WrappedColumn): void {
  const known = wrappedColumns.get(column.kind)
  if (known && (known.table !== column.table || known.wrapped !== column.wrapped)) {
    throw new Error(`wrapped secret kind ${column.kind} is already registered for ${known.table}.${known.wrapped}`)
  }
  wrappedColumns.set(column.kind, column)
}

/** Every column registered so far: each domain registers its own when its module loads. */
export function registeredWrappedColumns(): WrappedColumn[] {
  return [...wrappedColumns.values()]
}
