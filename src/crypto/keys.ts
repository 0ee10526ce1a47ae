import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto'
import { readOrCreateSecretFile } from '../secret-file.ts'

const KEY_SIZE = 32
const NONCE_SIZE = 12
const TAG_SIZE = 16

export interface WrappedKey {
  wrapped: Buffer
  masterKeyVersion: number
}

/** Where data keys get wrapped: the local master keys here, a KMS elsewhere. */
export interface KeySource {
  /** The version new wraps use. */
  readonly currentVersion: number
  /** The versions this source can unwrap, when it knows them (a KMS may not). */
  readonly versions?: readonly number[]
  wrap(dataKey: Buffer, aad: string): Promise<WrappedKey>
  unwrap(wrapped: Buffer, masterKeyVersion: number, aad: string): Promise<Buffer>
}

export class KeyUnwrapError extends Error {
  override name = 'KeyUnwrapError'
}

/** Master keys held in memory; wrapped form = nonce (12) ‖ ciphertext (32) ‖ tag (16). */
export function createLocalKeySource(keys: ReadonlyMap<number, Buffer>): KeySource {
  if (keys.size === 0) throw new Error('at least one master key is required')
  for (const [version, key] of keys) {
    if (!Number.isSafeInteger(version) || version < 1) throw new Error(`invalid master key version ${version}`)
    if (key.length !== KEY_SIZE) throw new Error(`master key version ${version} must be 32 bytes`)
  }
  const currentVersion = Math.max(...keys.keys())

  return {
    currentVersion,
    versions: [...keys.keys()].sort((a, b) => a - b),
    async wrap(dataKey, aad) {
      const nonce = randomBytes(NONCE_SIZE)
      const cipher = createCipheriv('aes-256-gcm', keys.get(currentVersion)!, nonce)
      cipher.setAAD(Buffer.from(aad, 'utf8'))
      const body = Buffer.concat([cipher.update(dataKey), cipher.final()])
      return { wrapped: Buffer.concat([nonce, body, cipher.getAuthTag()]), masterKeyVersion: currentVersion }
    },
    async unwrap(wrapped, masterKeyVersion, aad) {
      const key = keys.get(masterKeyVersion)
      if (!key) throw new KeyUnwrapError(`unknown master key version ${masterKeyVersion}`)
      if (wrapped.length < NONCE_SIZE + TAG_SIZE) throw new KeyUnwrapError('wrapped key too short')
      const decipher = createDecipheriv('aes-256-gcm', key, wrapped.subarray(0, NONCE_SIZE))
      decipher.setAAD(Buffer.from(aad, 'utf8'))
      decipher.setAuthTag(wrapped.subarray(-TAG_SIZE))
      try {
        return Buffer.concat([decipher.update(wrapped.subarray(NONCE_SIZE, -TAG_SIZE)), decipher.final()])
      } catch {
        throw new KeyUnwrapError(`data key does not unwrap under master key version ${masterKeyVersion}`)
      }
    },
  }
}

/** Master-key rotation: re-wraps a data key under the source's current version. */
export async function rewrap(source: KeySource, current: WrappedKey, aad: string): Promise<WrappedKey> {
  if (current.masterKeyVersion === source.currentVersion) return current
  const dataKey = await source.unwrap(current.wrapped, current.masterKeyVersion, aad)
  try {
    return await source.wrap(dataKey, aad)
  } finally {
    dataKey.fill(0)
  }
}

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/

// Error messages name the variable, never echo its value: they end up in logs.
function decodeKey(text: string, what: string): Buffer {
  const trimmed = text.trim()
  const key = Buffer.from(trimmed, 'base64')
  if (!BASE64.test(trimmed) || trimmed.length % 4 !== 0 || key.length !== KEY_SIZE) {
    throw new Error(`${what} must be the base64 encoding of exactly 32 bytes`)
  }
  return key
}

/**
 * MASTER_KEYS ("1:<base64>,2:<base64>") wins over MASTER_KEY (version 1).
 * Returns null when neither is set, so the caller can fall back to the dev key.
 */
export function parseMasterKeys(env: { MASTER_KEY?: string | undefined; MASTER_KEYS?: string | undefined }): Map<number, Buffer> | null {
  if (env.MASTER_KEYS?.trim()) {
    const keys = new Map<number, Buffer>()
    for (const entry of env.MASTER_KEYS.split(',')) {
      const match = /^\s*(\d+):(.*)$/.exec(entry)
      if (!match) throw new Error('MASTER_KEYS must look like "1:<base64>,2:<base64>"')
      const version = Number(match[1])
      if (!Number.isSafeInteger(version) || version < 1) throw new Error(`MASTER_KEYS: invalid version ${match[1]}`)
      if (keys.has(version)) throw new Error(`MASTER_KEYS: version ${version} appears twice`)
      keys.set(version, decodeKey(match[2]!, `MASTER_KEYS version ${version}`))
    }
    return keys
  }
  if (env.MASTER_KEY?.trim()) return new Map([[1, decodeKey(env.MASTER_KEY, 'MASTER_KEY')]])
  return null
}

/**
 * Development fallback when no master key is configured: a key generated once under storage/
 * and reused. The key is written to a private temp file, then published with link(), which
 * fails if the target exists; so concurrent starters never read a half-written key and all
 * end up with the same one.
 */
export async function loadOrCreateDevMasterKey(path: string): Promise<{ key: Buffer; created: boolean }> {
  const { value, created } = await readOrCreateSecretFile(path, () => randomBytes(KEY_SIZE).toString('base64'))
  return { key: decodeKey(value, `master key file ${path}`), created }
}

/** HKDF-SHA256 sub-key for one purpose (e.g. "totp"), so the master key itself encrypts nothing but data keys. */
export function deriveKey(masterKey: Buffer, purpose: string, length = KEY_SIZE): Buffer {
  if (!purpose) throw new Error('deriveKey needs a purpose')
  return Buffer.from(hkdfSync('sha256', masterKey, Buffer.alloc(0), `armoire:${purpose}`, length))
}
