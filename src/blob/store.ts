import { randomBytes } from 'node:crypto'
import type { Readable, Writable } from 'node:stream'

export interface BlobWriter {
  readonly name: string
  /** End it (or let pipeline end it) before commit. */
  readonly stream: Writable
  /** Makes the blob durable and visible under `name`. */
  commit(): Promise<void>
  /** Removes every trace of the blob; harmless after a failed commit, a no-op after a good one. */
  abort(): Promise<void>
}

/** A stored blob as a listing sees it. */
export interface BlobEntry {
  name: string
  lastModified: Date
}

export interface ByteRange {
  start: number
  /** Inclusive. */
  end: number
}

/** Opaque encrypted blobs under random names; the database alone knows what they are. */
export interface BlobStore {
  createWriter(): BlobWriter
  /** Rejects with BlobNotFoundError when absent. A range running past the end is clipped. */
  read(name: string, range?: ByteRange): Promise<Readable>
  /** Idempotent. */
  delete(name: string): Promise<void>
  exists(name: string): Promise<boolean>
  /**
   * Every blob the store holds, a page at a time: committed ones and, where the driver can see
   * them, those a killed writer left half-written (`delete` removes those too). Not a snapshot:
   * blobs written or removed meanwhile may or may not appear.
   */
  list(): AsyncIterable<BlobEntry>
  /** For readiness checks: proves a blob can be written and removed. */
  checkWritable(): Promise<void>
  close(): Promise<void>
}

export class BlobNotFoundError extends Error {
  override name = 'BlobNotFoundError'
  constructor(readonly blobName: string) {
    super(`blob ${blobName} not found`)
  }
}

const NAME = /^[0-9a-f]{32}$/

/** Whether a file or key name is one of ours, not a probe or something else sharing the place. */
export function isBlobName(name: string): boolean {
  return NAME.test(name)
}

export function randomBlobName(): string {
  return randomBytes(16).toString('hex')
}

/** Names reach file paths and object keys, so anything but our own format is refused. */
export function assertBlobName(name: string): void {
  if (!NAME.test(name)) throw new TypeError('invalid blob name')
}

export function assertRange(range: ByteRange | undefined): void {
  if (range && !(Number.isSafeInteger(range.start) && Number.isSafeInteger(range.end) && range.start >= 0 && range.end >= range.start)) {
    throw new RangeError(`invalid byte range ${range.start}-${range.end}`)
  }
}
