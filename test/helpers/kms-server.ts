import { createCipheriv, createDecipheriv, randomBytes, randomUUID } from 'node:crypto'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { TestContext } from './build.ts'

/**
 * A local AWS KMS speaking the JSON 1.1 protocol the SDK sends: `POST /` with
 * `X-Amz-Target: TrentService.<Operation>` and `Content-Type: application/x-amz-json-1.1`,
 * blobs in base64, errors as 400 `{__type, message}`. Each key has its own AES-256-GCM
 * material; its ciphertext blob names the key (so Decrypt needs no KeyId, as with AWS) and
 * authenticates the encryption context. Requests must be SigV4-signed with the access key id
 * (the signature itself is not checked).
 */
export interface FakeKmsKey {
  keyId: string
  arn: string
  alias: string | null
  enabled: boolean
}

export interface KmsCall {
  target: string
  /** The KeyId the request named, as sent (absent on a Decrypt that leaves it to the blob). */
  keyId: string | undefined
  context: Record<string, string> | undefined
  status: number
  error?: string
}

export interface FakeKms {
  url: string
  region: string
  accessKeyId: string
  secretAccessKey: string
  /** Creates a key, under an alias when given ("alias/armoire-1"). */
  createKey(alias?: string): FakeKmsKey
  /** Disables or re-enables a key: a disabled key refuses Encrypt and Decrypt. */
  setEnabled(keyIdOrAlias: string, enabled: boolean): void
  /** Every request received, in order. */
  calls: KmsCall[]
  /** Every ciphertext blob Encrypt produced, with the plaintext it was given. */
  produced: { blob: Buffer; plaintext: Buffer; keyId: string }[]
  /** While down, every connection is cut before an answer. */
  down(down: boolean): void
}

const MAGIC = Buffer.from('FKMS')
const ACCOUNT = '111122223333'

class KmsError extends Error {
  constructor(
    readonly type: string,
    message: string,
  ) {
    super(message)
  }
}

/** The encryption context as GCM additional data: its pairs in a fixed order. */
function contextAad(context: Record<string, string> | undefined): Buffer {
  const pairs = Object.entries(context ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
  return Buffer.from(JSON.stringify(pairs), 'utf8')
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of req) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks)
}

function answer(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-requestid': randomUUID() }).end(JSON.stringify(body))
}

export async function startFakeKms(t: TestContext): Promise<FakeKms> {
  const region = 'eu-west-3'
  const accessKeyId = `AKIA${randomBytes(8).toString('hex').toUpperCase()}`
  const keys = new Map<string, FakeKmsKey & { material: Buffer }>()
  const calls: KmsCall[] = []
  const produced: FakeKms['produced'] = []
  let isDown = false

  function find(id: string): FakeKmsKey & { material: Buffer } {
    for (const key of keys.values()) if (id === key.keyId || id === key.arn || (key.alias && id === key.alias)) return key
    throw new KmsError('NotFoundException', `Key '${id}' does not exist`)
  }

  function usable(key: FakeKmsKey): void {
    if (!key.enabled) throw new KmsError('DisabledException', `${key.arn} is disabled.`)
  }

  function blobOf(value: unknown, name: string): Buffer {
    if (typeof value !== 'string') throw new KmsError('ValidationException', `${name} is required`)
    return Buffer.from(value, 'base64')
  }

  const operations: Record<string, (input: Record<string, unknown>) => Record<string, unknown>> = {
    Encrypt(input) {
      const key = find(String(input.KeyId ?? ''))
      usable(key)
      const plaintext = blobOf(input.Plaintext, 'Plaintext')
      const context = input.EncryptionContext as Record<string, string> | undefined
      const nonce = randomBytes(12)
      const cipher = createCipheriv('aes-256-gcm', key.material, nonce)
      cipher.setAAD(contextAad(context))
      const body = Buffer.concat([cipher.update(plaintext), cipher.final()])
      const id = Buffer.from(key.keyId, 'ascii')
      const blob = Buffer.concat([MAGIC, Buffer.from([id.length]), id, nonce, body, cipher.getAuthTag()])
      produced.push({ blob, plaintext, keyId: key.keyId })
      return { CiphertextBlob: blob.toString('base64'), KeyId: key.arn, EncryptionAlgorithm: 'SYMMETRIC_DEFAULT' }
    },
    Decrypt(input) {
      const blob = blobOf(input.CiphertextBlob, 'CiphertextBlob')
      if (blob.length < MAGIC.length + 1 + 12 + 16 || !blob.subarray(0, MAGIC.length).equals(MAGIC)) throw new KmsError('InvalidCiphertextException', '')
      const idLength = blob[MAGIC.length]!
      const idEnd = MAGIC.length + 1 + idLength
      const blobKeyId = blob.subarray(MAGIC.length + 1, idEnd).toString('ascii')
      let key
      try {
        key = find(blobKeyId)
      } catch {
        throw new KmsError('InvalidCiphertextException', '')
      }
      if (input.KeyId !== undefined && find(String(input.KeyId)).keyId !== key.keyId) {
        throw new KmsError('IncorrectKeyException', 'The key ID in the request does not identify a CMK that can perform this operation.')
      }
      usable(key)
      const decipher = createDecipheriv('aes-256-gcm', key.material, blob.subarray(idEnd, idEnd + 12))
      decipher.setAAD(contextAad(input.EncryptionContext as Record<string, string> | undefined))
      decipher.setAuthTag(blob.subarray(-16))
      let plaintext
      try {
        plaintext = Buffer.concat([decipher.update(blob.subarray(idEnd + 12, -16)), decipher.final()])
      } catch {
        // AWS says nothing more: a wrong context and a tampered blob look the same.
        throw new KmsError('InvalidCiphertextException', '')
      }
      return { KeyId: key.arn, Plaintext: plaintext.toString('base64'), EncryptionAlgorithm: 'SYMMETRIC_DEFAULT' }
    },
    DescribeKey(input) {
      const key = find(String(input.KeyId ?? ''))
      return { KeyMetadata: { KeyId: key.keyId, Arn: key.arn, Enabled: key.enabled, KeyState: key.enabled ? 'Enabled' : 'Disabled', KeyUsage: 'ENCRYPT_DECRYPT' } }
    },
  }

  const server = createServer(async (req, res) => {
    if (isDown) {
      req.socket.destroy()
      return
    }
    const target = String(req.headers['x-amz-target'] ?? '')
    const body = await readBody(req)
    const call: KmsCall = { target, keyId: undefined, context: undefined, status: 200 }
    calls.push(call)
    try {
      if (req.method !== 'POST' || req.url !== '/') throw new KmsError('UnknownOperationException', `${req.method} ${req.url}`)
      if (req.headers['content-type'] !== 'application/x-amz-json-1.1') throw new KmsError('SerializationException', 'Content-Type must be application/x-amz-json-1.1')
      const authorization = String(req.headers.authorization ?? '')
      if (!authorization.startsWith(`AWS4-HMAC-SHA256 Credential=${accessKeyId}/`) || !/\/kms\/aws4_request, SignedHeaders=.*, Signature=[0-9a-f]{64}$/.test(authorization) || !req.headers['x-amz-date']) {
        throw new KmsError('UnrecognizedClientException', 'The security token included in the request is invalid.')
      }
      const operation = /^TrentService\.(\w+)$/.exec(target)?.[1]
      const handler = operation ? operations[operation] : undefined
      if (!handler) throw new KmsError('UnknownOperationException', target)
      const input = JSON.parse(body.toString('utf8') || '{}') as Record<string, unknown>
      call.keyId = typeof input.KeyId === 'string' ? input.KeyId : undefined
      call.context = input.EncryptionContext as Record<string, string> | undefined
      answer(res, 200, handler(input))
    } catch (caught) {
      const error = caught instanceof KmsError ? caught : new KmsError('SerializationException', String(caught))
      call.status = 400
      call.error = error.type
      answer(res, 400, { __type: error.type, message: error.message })
    }
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  if (!address || typeof address === 'string') throw new Error('no TCP address')
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  )

  return {
    url: `http://127.0.0.1:${address.port}`,
    region,
    accessKeyId,
    secretAccessKey: randomBytes(20).toString('base64'),
    createKey(alias) {
      const keyId = randomUUID()
      const key = { keyId, arn: `arn:aws:kms:${region}:${ACCOUNT}:key/${keyId}`, alias: alias ?? null, enabled: true, material: randomBytes(32) }
      keys.set(keyId, key)
      return { keyId, arn: key.arn, alias: key.alias, enabled: true }
    },
    setEnabled(id, enabled) {
      find(id).enabled = enabled
    },
    calls,
    produced,
    down(down) {
      isDown = down
      if (down) server.closeAllConnections()
    },
  }
}

/** The app's settings for this server, with the versions' key ids ("1=arn:…,2=alias/…"). */
export function kmsEnv(kms: FakeKms, keyIds: string): Record<string, string> {
  return {
    MASTER_KEY_PROVIDER: 'kms',
    KMS_ENDPOINT: kms.url,
    KMS_REGION: kms.region,
    KMS_ACCESS_KEY_ID: kms.accessKeyId,
    KMS_SECRET_ACCESS_KEY: kms.secretAccessKey,
    KMS_KEY_IDS: keyIds,
  }
}
