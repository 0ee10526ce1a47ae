import { PassThrough, pipeline, Readable } from 'node:stream'
import yauzl from 'yauzl'
import type { BlobStore } from '../../src/blob/store.ts'
import {
  createRangeDecryptStream,
  HEADER_SIZE,
  openSegment,
  parseHeader,
  SEALED_SEGMENT_SIZE,
  SEGMENT_SIZE,
  segmentCount,
  segmentNonce,
  TAG_SIZE,
} from '../../src/crypto/segmented.ts'

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of stream) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks)
}

export interface EncryptedArchive {
  store: BlobStore
  blob: string
  /** The unwrapped data key; the reader does not own it. */
  key: Buffer
  /** The segments' associated data: the backup id. */
  aad: string
  /** Plaintext size of the archive. */
  size: number
}

const CACHED_SEGMENTS = 8

/**
 * The plaintext of an encrypted archive as yauzl's random-access source: each read decrypts
 * only the segments it covers, so a ZIP is opened, listed and read entry by entry without a
 * decrypted copy anywhere. Small reads (yauzl walks the central directory 46 bytes at a time)
 * are served from a few cached segments; long ones stream.
 */
export class DecryptingReader extends yauzl.RandomAccessReader {
  private header: Buffer | null = null
  private readonly cache = new Map<number, Buffer>()
  private readonly lastSegment: number
  private readonly ad: Buffer

  constructor(private readonly archive: EncryptedArchive) {
    super()
    this.lastSegment = segmentCount(archive.size) - 1
    this.ad = Buffer.from(archive.aad, 'utf8')
  }

  private async prefix(): Promise<Buffer> {
    this.header ??= await readAll(await this.archive.store.read(this.archive.blob, { start: 0, end: HEADER_SIZE - 1 }))
    return parseHeader(this.header)
  }

  private async segment(index: number): Promise<Buffer> {
    const cached = this.cache.get(index)
    if (cached) {
      this.cache.delete(index)
      this.cache.set(index, cached)
      return cached
    }
    const prefix = await this.prefix()
    const start = HEADER_SIZE + index * SEALED_SEGMENT_SIZE
    const plain = Math.min(SEGMENT_SIZE, this.archive.size - index * SEGMENT_SIZE)
    const sealed = await readAll(await this.archive.store.read(this.archive.blob, { start, end: start + plain + TAG_SIZE - 1 }))
    const opened = openSegment(this.archive.key, segmentNonce(prefix, index, index === this.lastSegment), this.ad, sealed)
    this.cache.set(index, opened)
    if (this.cache.size > CACHED_SEGMENTS) this.cache.delete(this.cache.keys().next().value!)
    return opened
  }

  private async small(start: number, end: number): Promise<Buffer> {
    const parts: Buffer[] = []
    for (let i = Math.floor(start / SEGMENT_SIZE); i * SEGMENT_SIZE < end; i++) {
      const segment = await this.segment(i)
      const base = i * SEGMENT_SIZE
      parts.push(segment.subarray(Math.max(0, start - base), Math.min(segment.length, end - base)))
    }
    return Buffer.concat(parts)
  }

  /** Plaintext bytes [start, end), as yauzl asks. */
  override _readStreamForRange(start: number, end: number): Readable {
    if (end - start <= 2 * SEGMENT_SIZE) {
      return Readable.from((async function* (reader) {
        yield await reader.small(start, end)
      })(this))
    }
    const out = new PassThrough()
    void (async () => {
      await this.prefix()
      const header = this.header!
      const decrypt = createRangeDecryptStream({
        key: this.archive.key,
        aad: this.ad,
        header,
        plainSize: this.archive.size,
        start,
        end: end - 1,
      })
      const firstSegment = Math.floor(start / SEGMENT_SIZE)
      const lastSegment = Math.floor((end - 1) / SEGMENT_SIZE)
      const lastPlainEnd = Math.min(this.archive.size, (lastSegment + 1) * SEGMENT_SIZE)
      const source = await this.archive.store.read(this.archive.blob, {
        start: HEADER_SIZE + firstSegment * SEALED_SEGMENT_SIZE,
        end: HEADER_SIZE + lastPlainEnd + (lastSegment + 1) * TAG_SIZE - 1,
      })
      pipeline(source, decrypt, out, () => {})
    })().catch((error: unknown) => out.destroy(error as Error))
    return out
  }
}

/** Opens an encrypted archive as a ZIP, without decrypting what is not read. */
export async function openArchive(archive: EncryptedArchive): Promise<yauzl.ZipFile> {
  return yauzl.fromRandomAccessReaderPromise(new DecryptingReader(archive), archive.size, {
    autoClose: false,
    strictFileNames: true,
    validateEntrySizes: true,
  })
}

/** Every entry of a ZIP opened with lazyEntries, in central-directory order. */
export async function* entries(zip: yauzl.ZipFile): AsyncGenerator<yauzl.Entry> {
  for (;;) {
    const entry = await new Promise<yauzl.Entry | null>((resolve, reject) => {
      const onEntry = (e: yauzl.Entry) => {
        zip.off('end', onEnd)
        zip.off('error', onError)
        resolve(e)
      }
      const onEnd = () => {
        zip.off('entry', onEntry)
        zip.off('error', onError)
        resolve(null)
      }
      const onError = (error: Error) => {
        zip.off('entry', onEntry)
        zip.off('end', onEnd)
        reject(error)
      }
      zip.once('entry', onEntry)
      zip.once('end', onEnd)
      zip.once('error', onError)
      zip.readEntry()
    })
    if (!entry) return
    yield entry
  }
}
