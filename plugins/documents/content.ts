import { createHash, randomUUID } from 'node:crypto'
import { Readable, Transform, type TransformCallback } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import type { FastifyInstance } from 'fastify'
import fresh from 'fresh'
import { type BlobWriter, storageUnavailable } from '../../src/blob/store.ts'
import type { WrappedKey } from '../../src/crypto/keys.ts'
import { createDecryptStream, createEncryptStream, decryptRange, HEADER_SIZE, MAGIC, randomDataKey } from '../../src/crypto/segmented.ts'
import { Errors } from '../../src/errors.ts'
import { registerBlobColumn } from '../../src/blob-collector.ts'
import { registerWrappedColumn } from '../../src/keys.ts'

export const ALGORITHM = 'AES-256-GCM'
/** The blob format of src/crypto/segmented.ts: its magic, segment size and nonce layout. */
export const FORMAT = `${MAGIC.toString('ascii')}-gcm-64k`

/** A wrapped data key is bound to its row: moved to another row, it does not unwrap. */
export const keyAad = (keyId: string): string => `armoire:cle:${keyId}`

registerWrappedColumn({
  kind: 'cles_chiffrement',
  table: 'cles_chiffrement',
  id: 'id',
  organisation: 'organisation_id',
  wrapped: 'cle_enveloppee',
  version: 'version_cle_maitre',
  aad: keyAad,
  rewrappedAt: 'reenveloppee_at',
})

registerBlobColumn({ kind: 'versions', table: 'versions_fichiers', column: 'blob' })

/** A new version's content: encrypted into a blob that is durable and visible only after commit(). */
export interface Sealed {
  versionId: string
  keyId: string
  key: WrappedKey
  writer: BlobWriter
  sha256: string
  size: number
  encryptedSize: number
  noncePrefix: Buffer
}

/**
 * Hashes, counts and encrypts plaintext as it streams into a new blob; never buffered whole,
 * never written in clear. Beyond `limit` bytes (what the quota still allows) it fails with
 * QUOTA_EXCEEDED before writing more. Any failure leaves no blob behind.
 */
export async function seal(app: FastifyInstance, source: Readable, limit: { bytes: number; quota: number } | null): Promise<Sealed> {
  const versionId = randomUUID()
  const keyId = randomUUID()
  const dataKey = randomDataKey()
  const hash = createHash('sha256')
  const writer = app.blobs.createWriter()
  let size = 0
  let encryptedSize = 0
  let header = Buffer.alloc(0)
  const meter = new Transform({
    transform(chunk: Buffer, _encoding, callback: TransformCallback) {
      size += chunk.length
      if (limit && size > limit.bytes) return callback(new Errors.QUOTA_EXCEEDED(limit.quota))
      hash.update(chunk)
      callback(null, chunk)
    },
  })
  const tally = new Transform({
    transform(chunk: Buffer, _encoding, callback: TransformCallback) {
      if (header.length < HEADER_SIZE) header = Buffer.concat([header, chunk.subarray(0, HEADER_SIZE - header.length)])
      encryptedSize += chunk.length
      callback(null, chunk)
    },
  })
  try {
    await pipeline(source, meter, createEncryptStream({ key: dataKey, aad: versionId }), tally, writer.stream)
    const key = await app.keys.wrap(dataKey, keyAad(keyId))
    return {
      versionId,
      keyId,
      key,
      writer,
      sha256: hash.digest('hex'),
      size,
      encryptedSize,
      noncePrefix: header.subarray(MAGIC.length),
    }
  } catch (error) {
    await writer.abort()
    throw error
  } finally {
    dataKey.fill(0)
  }
}

export interface StoredVersion {
  id: string
  blob: string
  taille: number
}

export interface StoredKey {
  id: string
  cle_enveloppee: Buffer | null
  version_cle_maitre: number
}

/** Why a stored version could not be read back: always journaled as an integrity failure. */
export class UnreadableContent extends Error {
  override name = 'UnreadableContent'
}

/**
 * The decrypted plaintext of a version, or of bytes [start, end] of it, touching only the
 * segments needed. Reading starts before this resolves: a blob whose first segment fails
 * authentication rejects here, while nothing has been sent yet.
 */
export async function openPlaintext(
  app: FastifyInstance,
  version: StoredVersion,
  key: StoredKey,
  range: { start: number; end: number } | null,
  onLateFailure: (error: Error) => void,
): Promise<Readable> {
  let stream: Readable
  let dataKey: Buffer | undefined
  try {
    if (!key.cle_enveloppee) throw new UnreadableContent('data key destroyed')
    dataKey = await app.keys.unwrap(key.cle_enveloppee, key.version_cle_maitre, keyAad(key.id))
    if (range) {
      stream = await decryptRange((r) => app.blobs.read(version.blob, r), { key: dataKey, aad: version.id, plainSize: version.taille, ...range })
    } else {
      const source = await app.blobs.read(version.blob)
      const decrypt = createDecryptStream({ key: dataKey, aad: version.id })
      pipeline(source, decrypt).catch(() => {})
      stream = decrypt
    }
  } catch (error) {
    dataKey?.fill(0)
    // KMS out of reach says nothing of the content: a 503, not an integrity failure.
    if (error instanceof Errors.KMS_UNAVAILABLE) throw error
    throw unreadable(error)
  }
  const unwrapped = dataKey
  // Waiting for the first authenticated bytes (or the end) before answering: a blob whose
  // first segment is bad fails here, while nothing has been sent.
  try {
    await new Promise<void>((resolve, reject) => {
      const ready = () => {
        stream.off('error', failed)
        resolve()
      }
      const failed = (error: Error) => {
        stream.off('readable', ready)
        reject(error)
      }
      stream.once('readable', ready)
      stream.once('error', failed)
    })
  } catch (error) {
    unwrapped.fill(0)
    stream.destroy()
    throw unreadable(error)
  }
  stream.once('error', (error) => {
    // The store went away mid-body: the client sees a cut connection, short of Content-Length.
    if (storageUnavailable(error)) app.log.warn({ err: error, version: version.id }, 'blob store lost while sending a version')
    else onLateFailure(error)
  })
  stream.once('close', () => unwrapped.fill(0))
  return stream
}

/** A store that cannot be reached is an outage to retry, not content that fails its integrity check. */
function unreadable(error: unknown): Error {
  return storageUnavailable(error) ?? new UnreadableContent((error as Error).message, { cause: error })
}

export type RangeRequest = { start: number; end: number } | 'unsatisfiable' | null

/**
 * One byte range of RFC 9110, or null to serve the whole content: no Range, several ranges,
 * or a malformed one (which the RFC lets a server ignore). Kept rather than `range-parser`,
 * which answers "unsatisfiable" to a suffix longer than the content (`bytes=-1000` of 100
 * bytes: the whole content, RFC 9110 §14.1.3) and to a reversed range (`bytes=5-2`: invalid,
 * so ignored, §14.2).
 */
export function parseRange(header: string | undefined, size: number): RangeRequest {
  const match = header ? /^bytes=(\d*)-(\d*)$/.exec(header.trim()) : null
  if (!match) return null
  const [, first = '', last = ''] = match
  if (first === '' && last === '') return null
  if (first === '') {
    const suffix = Number(last)
    if (suffix === 0 || size === 0) return 'unsatisfiable'
    return { start: Math.max(0, size - suffix), end: size - 1 }
  }
  const start = Number(first)
  if (!Number.isSafeInteger(start)) return 'unsatisfiable'
  if (last !== '' && Number(last) < start) return null
  if (start >= size) return 'unsatisfiable'
  return { start, end: last === '' ? size - 1 : Math.min(Number(last), size - 1) }
}

/** If-None-Match against the ETag (weak comparison, lists, `*`), by `fresh`, as Express does it. */
export function etagMatches(header: string | undefined, etag: string): boolean {
  return header !== undefined && fresh({ 'if-none-match': header }, { etag })
}

const MIME = /^[a-z0-9][\w!#$&^.+-]{0,126}\/[a-z0-9][\w!#$&^.+-]{0,126}$/

/** The declared media type, without parameters, or application/octet-stream. */
export function cleanMimeType(declared: string | undefined): string {
  const type = declared?.split(';')[0]?.trim().toLowerCase() ?? ''
  return MIME.test(type) ? type : 'application/octet-stream'
}
