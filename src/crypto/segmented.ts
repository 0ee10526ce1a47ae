import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto'
import { Transform, pipeline, type Readable, type TransformCallback } from 'node:stream'

/*
 * Blob format (one per stored file version, under its own data key):
 *   header  = "ARM1" ‖ nonce prefix (7 random bytes)
 *   segment = AES-256-GCM(plaintext ≤ 64 KiB) ‖ tag (16 bytes), repeated
 *   nonce_i = prefix ‖ uint32be(i) ‖ (i is the final segment ? 0x01 : 0x00)
 *   aad     = the version id, UTF-8
 * Every segment but the last holds exactly SEGMENT_SIZE bytes of plaintext; the last one
 * (possibly empty) carries the flag, so truncation, extension and reordering all break a tag.
 */

export const SEGMENT_SIZE = 65536
export const TAG_SIZE = 16
export const MAGIC = Buffer.from('ARM1', 'ascii')
export const NONCE_PREFIX_SIZE = 7
export const HEADER_SIZE = MAGIC.length + NONCE_PREFIX_SIZE
export const SEALED_SEGMENT_SIZE = SEGMENT_SIZE + TAG_SIZE
const KEY_SIZE = 32
const MAX_SEGMENTS = 2 ** 32

export class IntegrityError extends Error {
  override name = 'IntegrityError'
}

export interface SegmentedCipherOptions {
  key: Buffer
  /** The version id the blob belongs to. */
  aad: string | Uint8Array
}

export function randomDataKey(): Buffer {
  return randomBytes(KEY_SIZE)
}

export function segmentCount(plainSize: number): number {
  return Math.max(1, Math.ceil(plainSize / SEGMENT_SIZE))
}

export function encryptedSize(plainSize: number): number {
  return HEADER_SIZE + plainSize + segmentCount(plainSize) * TAG_SIZE
}

export function segmentNonce(prefix: Uint8Array, counter: number, last: boolean): Buffer {
  if (prefix.length !== NONCE_PREFIX_SIZE) throw new TypeError('nonce prefix must be 7 bytes')
  if (!Number.isInteger(counter) || counter < 0 || counter >= MAX_SEGMENTS) {
    throw new RangeError('segment counter out of range')
  }
  const nonce = Buffer.alloc(12)
  nonce.set(prefix, 0)
  nonce.writeUInt32BE(counter, NONCE_PREFIX_SIZE)
  nonce[11] = last ? 1 : 0
  return nonce
}

/** One AES-256-GCM seal: returns ciphertext ‖ tag. */
export function sealSegment(key: Buffer, nonce: Buffer, aad: Uint8Array, plaintext: Uint8Array): Buffer {
  const cipher = createCipheriv('aes-256-gcm', key, nonce)
  cipher.setAAD(aad)
  const body = cipher.update(plaintext)
  cipher.final()
  return Buffer.concat([body, cipher.getAuthTag()])
}

/** Inverse of sealSegment; any mismatch throws IntegrityError, never partial plaintext. */
export function openSegment(key: Buffer, nonce: Buffer, aad: Uint8Array, sealed: Uint8Array): Buffer {
  if (sealed.length < TAG_SIZE) throw new IntegrityError('segment shorter than its tag')
  const split = sealed.length - TAG_SIZE
  const decipher = createDecipheriv('aes-256-gcm', key, nonce)
  decipher.setAAD(aad)
  decipher.setAuthTag(sealed.subarray(split))
  const body = decipher.update(sealed.subarray(0, split))
  try {
    decipher.final()
  } catch {
    throw new IntegrityError('segment authentication failed')
  }
  return body
}

export function encodeHeader(prefix: Uint8Array): Buffer {
  return Buffer.concat([MAGIC, prefix])
}

/** Returns the nonce prefix of a blob header. */
export function parseHeader(header: Uint8Array): Buffer {
  if (header.length !== HEADER_SIZE || !MAGIC.equals(header.subarray(0, MAGIC.length))) {
    throw new IntegrityError('not an Armoire encrypted blob')
  }
  return Buffer.from(header.subarray(MAGIC.length))
}

function checkKey(key: Buffer): void {
  if (key.length !== KEY_SIZE) throw new TypeError('data key must be 32 bytes')
}

function aadBytes(aad: string | Uint8Array): Buffer {
  return typeof aad === 'string' ? Buffer.from(aad, 'utf8') : Buffer.from(aad)
}

const RELEASED = Buffer.alloc(0)

/*
 * Fills fixed-size blocks from arbitrary chunks. A full block is handed over only once a
 * further byte arrives, because only then is it known not to be the final one. The last
 * block lets its buffer go: a finished stream that something still references (yazl keeps
 * every entry's source until the archive ends) must not keep a segment's worth of memory.
 */
class BlockBuffer {
  private block: Buffer
  private fill = 0

  constructor(size: number) {
    this.block = Buffer.allocUnsafe(size)
  }

  write(chunk: Buffer, onNonFinal: (block: Buffer) => void): void {
    if (this.block === RELEASED) throw new Error('written after its last block')
    let offset = 0
    while (offset < chunk.length) {
      if (this.fill === this.block.length) {
        onNonFinal(this.block)
        this.fill = 0
      }
      const n = chunk.copy(this.block, this.fill, offset)
      this.fill += n
      offset += n
    }
  }

  /** The last block, partly filled; its buffer is the caller's from now on. */
  rest(): Buffer {
    const last = this.block.subarray(0, this.fill)
    this.block = RELEASED
    this.fill = 0
    return last
  }
}

/** Plaintext in, blob bytes (header + segments) out. */
export function createEncryptStream({ key, aad }: SegmentedCipherOptions): Transform {
  checkKey(key)
  const ad = aadBytes(aad)
  const prefix = randomBytes(NONCE_PREFIX_SIZE)
  const pending = new BlockBuffer(SEGMENT_SIZE)
  let counter = 0
  let headerSent = false

  const emit = (stream: Transform, plaintext: Buffer, last: boolean): void => {
    if (!headerSent) {
      stream.push(encodeHeader(prefix))
      headerSent = true
    }
    stream.push(sealSegment(key, segmentNonce(prefix, counter, last), ad, plaintext))
    counter++
  }

  return new Transform({
    transform(chunk: Buffer, _encoding, callback: TransformCallback) {
      try {
        pending.write(chunk, (block) => emit(this, block, false))
        callback()
      } catch (error) {
        callback(error as Error)
      }
    },
    flush(callback: TransformCallback) {
      try {
        emit(this, pending.rest(), true)
        callback()
      } catch (error) {
        callback(error as Error)
      }
    },
  })
}

/** Blob bytes in, verified plaintext out; fails with IntegrityError on any tampering. */
export function createDecryptStream({ key, aad }: SegmentedCipherOptions): Transform {
  checkKey(key)
  const ad = aadBytes(aad)
  let header = Buffer.alloc(0)
  const pending = new BlockBuffer(SEALED_SEGMENT_SIZE)
  let prefix: Buffer | null = null
  let counter = 0

  const open = (sealed: Buffer, last: boolean): Buffer => {
    if (prefix === null) throw new IntegrityError('blob header missing')
    if (counter >= MAX_SEGMENTS) throw new IntegrityError('too many segments')
    return openSegment(key, segmentNonce(prefix, counter++, last), ad, sealed)
  }

  return new Transform({
    transform(chunk: Buffer, _encoding, callback: TransformCallback) {
      try {
        let body = chunk
        if (prefix === null) {
          const missing = HEADER_SIZE - header.length
          header = Buffer.concat([header, chunk.subarray(0, missing)])
          body = chunk.subarray(missing)
          if (header.length === HEADER_SIZE) prefix = parseHeader(header)
        }
        pending.write(body, (sealed) => this.push(open(sealed, false)))
        callback()
      } catch (error) {
        callback(error as Error)
      }
    },
    flush(callback: TransformCallback) {
      try {
        if (prefix === null) throw new IntegrityError('blob shorter than its header')
        this.push(open(pending.rest(), true))
        callback()
      } catch (error) {
        callback(error as Error)
      }
    },
  })
}

export interface SegmentSpan {
  firstSegment: number
  lastSegment: number
  /** Offsets in the blob (inclusive) of the segments to read; the header is read apart. */
  blobStart: number
  blobEnd: number
  /** Plaintext bytes to drop from the first decrypted segment. */
  skip: number
  length: number
}

export function segmentSpan(plainSize: number, start: number, end: number): SegmentSpan {
  if (![plainSize, start, end].every(Number.isSafeInteger) || start < 0 || end < start || end >= plainSize) {
    throw new RangeError(`invalid range ${start}-${end} for ${plainSize} bytes`)
  }
  const firstSegment = Math.floor(start / SEGMENT_SIZE)
  const lastSegment = Math.floor(end / SEGMENT_SIZE)
  const lastPlainEnd = Math.min(plainSize, (lastSegment + 1) * SEGMENT_SIZE)
  return {
    firstSegment,
    lastSegment,
    blobStart: HEADER_SIZE + firstSegment * SEALED_SEGMENT_SIZE,
    blobEnd: HEADER_SIZE + lastPlainEnd + (lastSegment + 1) * TAG_SIZE - 1,
    skip: start - firstSegment * SEGMENT_SIZE,
    length: end - start + 1,
  }
}

export interface RangeDecryptOptions extends SegmentedCipherOptions {
  /** The blob's first HEADER_SIZE bytes. */
  header: Uint8Array
  /** Plaintext size of the whole file, as recorded at upload. */
  plainSize: number
  start: number
  /** Inclusive. */
  end: number
}

/**
 * Blob bytes [span.blobStart, span.blobEnd] in, plaintext bytes [start, end] out. Each segment
 * read is authenticated under its own counter, and under the final flag when it is the last one.
 */
export function createRangeDecryptStream(opts: RangeDecryptOptions): Transform {
  checkKey(opts.key)
  const { key, plainSize, start, end } = opts
  const ad = aadBytes(opts.aad)
  const prefix = parseHeader(opts.header)
  const span = segmentSpan(plainSize, start, end)
  const lastOfFile = segmentCount(plainSize) - 1
  const sealedSize = (i: number): number =>
    Math.min(SEGMENT_SIZE, plainSize - i * SEGMENT_SIZE) + TAG_SIZE

  let block = Buffer.allocUnsafe(SEALED_SEGMENT_SIZE)
  let fill = 0
  let index = span.firstSegment
  let remaining = span.length
  let skip = span.skip

  return new Transform({
    transform(chunk: Buffer, _encoding, callback: TransformCallback) {
      try {
        let offset = 0
        while (offset < chunk.length) {
          if (index > span.lastSegment) throw new IntegrityError('more data than the range spans')
          const need = sealedSize(index)
          const n = chunk.copy(block, fill, offset, offset + need - fill)
          fill += n
          offset += n
          if (fill < need) break
          const nonce = segmentNonce(prefix, index, index === lastOfFile)
          const plain = openSegment(key, nonce, ad, block.subarray(0, need))
          const part = plain.subarray(skip, skip + remaining)
          remaining -= part.length
          skip = 0
          fill = 0
          index++
          this.push(part)
        }
        callback()
      } catch (error) {
        callback(error as Error)
      }
    },
    flush(callback: TransformCallback) {
      block = RELEASED
      callback(remaining === 0 ? null : new IntegrityError('blob range ended early'))
    },
  })
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of stream) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks)
}

/** Reads a blob range via a blob-store `read(range)`, touching only the segments needed. */
export async function decryptRange(
  read: (range: { start: number; end: number }) => Promise<Readable>,
  opts: SegmentedCipherOptions & { plainSize: number; start: number; end: number },
): Promise<Transform> {
  const span = segmentSpan(opts.plainSize, opts.start, opts.end)
  const header = await readAll(await read({ start: 0, end: HEADER_SIZE - 1 }))
  const decrypt = createRangeDecryptStream({ ...opts, header })
  const source = await read({ start: span.blobStart, end: span.blobEnd })
  // Errors surface on the returned stream; the callback only keeps pipeline from throwing.
  return pipeline(source, decrypt, () => {})
}
