import { DecryptCommand, EncryptCommand, KMSClient } from '@aws-sdk/client-kms'
import { Errors } from '../errors.ts'
import { KeyUnwrapError, type KeySource } from './keys.ts'

export interface KmsOptions {
  /** Master-key version → KMS key id, key ARN or alias; the highest version wraps new keys. */
  keyIds: ReadonlyMap<number, string>
  /** Empty: the SDK's default chain (AWS_REGION, the profile). */
  region?: string | undefined
  /** A KMS-compatible server (LocalStack, a test double); empty: AWS. */
  endpoint?: string | undefined
  /** Both empty: the SDK's default credential chain (environment, profile, instance role). */
  accessKeyId?: string | undefined
  secretAccessKey?: string | undefined
}

/**
 * KMS refusals that concern the wrapped secret or its master key (a tampered blob, another
 * row's context, a key disabled or deleted): the secret cannot be read, as with a local key
 * that was removed. Anything else (network, throttling, permissions, credentials) is KMS
 * being unavailable to us: the request fails with a 503 and nothing is concluded about the secret.
 */
const UNREADABLE = new Set([
  'InvalidCiphertextException',
  'IncorrectKeyException',
  'DisabledException',
  'NotFoundException',
  'KMSInvalidStateException',
  'InvalidKeyUsageException',
])

// Bounded so an unreachable KMS answers a 503 within seconds rather than holding uploads open.
const CONNECTION_TIMEOUT_MS = 2_000
const REQUEST_TIMEOUT_MS = 5_000

/** KMS_KEY_IDS ("1=arn:aws:kms:…,2=alias/armoire-2"): ARNs hold colons, so "=" separates. */
export function parseKmsKeyIds(text: string): Map<number, string> {
  const ids = new Map<number, string>()
  for (const entry of text.split(',')) {
    if (!entry.trim()) continue
    const match = /^\s*(\d+)\s*=\s*(\S+)\s*$/.exec(entry)
    if (!match) throw new Error('KMS_KEY_IDS must look like "1=arn:aws:kms:…,2=alias/armoire-2"')
    const version = Number(match[1])
    if (!Number.isSafeInteger(version) || version < 1) throw new Error(`KMS_KEY_IDS: invalid version ${match[1]}`)
    if (ids.has(version)) throw new Error(`KMS_KEY_IDS: version ${version} appears twice`)
    ids.set(version, match[2]!)
  }
  return ids
}

function kmsError(error: unknown): string {
  const { name, message } = error as Error
  return `${name}: ${message}`
}

/**
 * Data keys wrapped by AWS KMS (Encrypt/Decrypt): the master keys never leave KMS, this
 * process holds only their ids. The additional data is the request's encryption context, so
 * a wrapped key copied to another row does not decrypt, as with the local source.
 */
export function createKmsKeySource(options: KmsOptions): KeySource {
  const { keyIds } = options
  if (keyIds.size === 0) throw new Error('at least one KMS key id is required')
  const currentVersion = Math.max(...keyIds.keys())
  const client = new KMSClient({
    region: options.region || undefined,
    endpoint: options.endpoint || undefined,
    ...(options.accessKeyId ? { credentials: { accessKeyId: options.accessKeyId, secretAccessKey: options.secretAccessKey ?? '' } } : {}),
    requestHandler: { connectionTimeout: CONNECTION_TIMEOUT_MS, requestTimeout: REQUEST_TIMEOUT_MS },
  })
  const context = (aad: string) => ({ armoire: aad })

  return {
    currentVersion,
    versions: [...keyIds.keys()].sort((a, b) => a - b),
    async wrap(dataKey, aad) {
      const KeyId = keyIds.get(currentVersion)!
      let blob: Uint8Array | undefined
      try {
        ;({ CiphertextBlob: blob } = await client.send(new EncryptCommand({ KeyId, Plaintext: dataKey, EncryptionContext: context(aad) })))
      } catch (error) {
        // Without the current key nothing new can be stored, whatever KMS said: the service is unavailable.
        throw new Errors.KMS_UNAVAILABLE({ cause: new Error(`KMS Encrypt under ${KeyId} failed: ${kmsError(error)}`, { cause: error }) })
      }
      if (!blob) throw new Errors.KMS_UNAVAILABLE({ cause: new Error('KMS Encrypt answered no CiphertextBlob') })
      return { wrapped: Buffer.from(blob), masterKeyVersion: currentVersion }
    },
    async unwrap(wrapped, masterKeyVersion, aad) {
      const KeyId = keyIds.get(masterKeyVersion)
      if (!KeyId) throw new KeyUnwrapError(`unknown master key version ${masterKeyVersion}`)
      let plaintext: Uint8Array | undefined
      try {
        ;({ Plaintext: plaintext } = await client.send(new DecryptCommand({ KeyId, CiphertextBlob: wrapped, EncryptionContext: context(aad) })))
      } catch (error) {
        if (UNREADABLE.has((error as Error).name)) {
          throw new KeyUnwrapError(`data key does not unwrap under master key version ${masterKeyVersion} (${kmsError(error)})`, { cause: error })
        }
        throw new Errors.KMS_UNAVAILABLE({ cause: new Error(`KMS Decrypt under ${KeyId} failed: ${kmsError(error)}`, { cause: error }) })
      }
      if (!plaintext) throw new Errors.KMS_UNAVAILABLE({ cause: new Error('KMS Decrypt answered no Plaintext') })
      // A view on the SDK's own bytes, not a copy: the caller's fill(0) then clears them.
      return Buffer.from(plaintext.buffer, plaintext.byteOffset, plaintext.byteLength)
    },
  }
}
