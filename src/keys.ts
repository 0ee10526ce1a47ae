import { join, resolve } from 'node:path'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { createLocalKeySource, type KeySource, loadOrCreateDevMasterKey, parseMasterKeys } from './crypto/keys.ts'

declare module 'fastify' {
  interface FastifyInstance {
    /** Wraps and unwraps data keys under the master key(s); a KMS can stand in for it. */
    keys: KeySource
  }
}

export interface KeysOptions {
  masterKey: string
  masterKeys: string
  storageDir: string
  production: boolean
}

/** The configured master keys, else (outside production) the development key under storage/. */
export async function loadKeySource(opts: KeysOptions, log: { warn(details: object, message: string): void }): Promise<KeySource> {
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
