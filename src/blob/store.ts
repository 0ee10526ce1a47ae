import { randomBytes } from 'node:crypto'
import type { Readable, Writable } from 'node:stream'
import { Errors } from '../errors.ts'

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

const FULL = new Set(['ENOSPC', 'EDQUOT'])
const NETWORK = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'ECONNABORTED'])

/** Whether a local write failed for want of space (a full disk, a user or project quota). */
export function isStorageFull(error: unknown): boolean {
  return FULL.has((error as NodeJS.ErrnoException | null)?.code ?? '')
}

/**
 * A remote store's failure in the catalogue's words: unreachable, timed out or failing on its
 * side (5xx) is STORAGE_UNAVAILABLE, kept apart from a missing or corrupt blob, which is not
 * the client's to retry. Null for anything else.
 */
export function storageUnavailable(error: unknown): Error | null {
  if (error instanceof Errors.STORAGE_UNAVAILABLE) return error
  const e = error as { code?: string; name?: string; $fault?: string; $metadata?: { httpStatusCode?: number } } | null
  if (!e || typeof e !== 'object') return null
  const status = e.$metadata?.httpStatusCode
  const unavailable = NETWORK.has(e.code ?? '') || e.name === 'TimeoutError' || e.$fault === 'server' || (status !== undefined && status >= 500)
  return unavailable ? new Errors.STORAGE_UNAVAILABLE({ cause: error }) : null
}

/** `error` as STORAGE_UNAVAILABLE when it is an outage of the store, else as it is. */
export function remoteStoreError(error: unknown): unknown {
  return storageUnavailable(error) ?? error
}
