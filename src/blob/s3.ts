import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  NoSuchKey,
  NotFound,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3'
import { Upload } from '@aws-sdk/lib-storage'
import { PassThrough, type Readable } from 'node:stream'
import {
  BlobNotFoundError,
  assertBlobName,
  assertRange,
  isBlobName,
  randomBlobName,
  remoteStoreError,
  type BlobStore,
  type BlobWriter,
} from './store.ts'

export interface S3BlobStoreOptions {
  endpoint?: string | undefined
  region: string
  bucket: string
  accessKeyId: string
  secretAccessKey: string
  forcePathStyle?: boolean | undefined
  /** Key prefix, e.g. "blobs/", when the bucket is shared. */
  prefix?: string | undefined
  /** Multipart part size (default 5 MiB); an upload keeps about three parts in memory. */
  partSize?: number | undefined
}

const CONNECT_TIMEOUT_MS = 5_000

export function createS3BlobStore(options: S3BlobStoreOptions): BlobStore {
  const { bucket, prefix = '' } = options
  const client = new S3Client({
    endpoint: options.endpoint,
    region: options.region,
    forcePathStyle: options.forcePathStyle,
    credentials: { accessKeyId: options.accessKeyId, secretAccessKey: options.secretAccessKey },
    // The SDK's default extra checksums are refused by several S3-compatible servers; the
    // blobs are authenticated by AES-GCM anyway.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    // A store that does not answer fails the request (STORAGE_UNAVAILABLE) instead of holding it.
    requestHandler: { connectionTimeout: CONNECT_TIMEOUT_MS },
  })
  const send: typeof client.send = (command: Parameters<typeof client.send>[0]) =>
    client.send(command).catch((error: unknown) => {
      throw remoteStoreError(error)
    })
  const keyOf = (name: string): string => {
    assertBlobName(name)
    return prefix + name
  }

  function createWriter(): BlobWriter {
    const name = randomBlobName()
    const key = keyOf(name)
    const stream = new PassThrough()
    const upload = new Upload({
      client,
      params: { Bucket: bucket, Key: key, Body: stream },
      partSize: options.partSize,
      queueSize: 2,
    })
    let state: 'open' | 'committing' | 'committed' | 'aborted' = 'open'
    const done = upload.done().catch((error: unknown) => {
      const failure = remoteStoreError(error)
      // The store gave up: nothing reads the body any more, so the writer must fail now rather
      // than fill the pipe and wait for ever.
      if (state === 'open') stream.destroy(failure as Error)
      throw failure
    })
    // Observed by commit or abort; until then it must not count as unhandled.
    done.catch(() => {})

    async function abort(): Promise<void> {
      if (state === 'committed') return
      state = 'aborted'
      // Failing the body (rather than upload.abort(), which returns before in-flight parts
      // settle) makes done() settle only after the SDK has aborted the multipart upload.
      stream.destroy()
      await done.catch(() => {})
      // A single-part upload may have completed before the body failed.
      await send(new DeleteObjectCommand({ Bucket: bucket, Key: key }))
    }

    async function commit(): Promise<void> {
      if (state !== 'open') throw new Error(`blob writer is ${state}`)
      if (!stream.writableEnded) throw new Error('end the blob stream before commit')
      state = 'committing'
      try {
        await done
        state = 'committed'
      } catch (error) {
        await abort().catch(() => {})
        throw error
      }
    }

    return { name, stream, commit, abort }
  }

  return {
    createWriter,

    async read(name, range) {
      assertRange(range)
      try {
        const out = await send(
          new GetObjectCommand({
            Bucket: bucket,
            Key: keyOf(name),
            Range: range ? `bytes=${range.start}-${range.end}` : undefined,
          }),
        )
        return out.Body as Readable
      } catch (error) {
        if (error instanceof NoSuchKey) throw new BlobNotFoundError(name)
        throw error
      }
    },

    async delete(name) {
      await send(new DeleteObjectCommand({ Bucket: bucket, Key: keyOf(name) }))
    },

    async exists(name) {
      try {
        await send(new HeadObjectCommand({ Bucket: bucket, Key: keyOf(name) }))
        return true
      } catch (error) {
        if (error instanceof NotFound || (error as { name?: string }).name === 'NotFound') return false
        throw error
      }
    },

    async *list() {
      // A killed multipart upload is no object yet: S3 lists it only among uploads in progress,
      // which a bucket lifecycle rule (AbortIncompleteMultipartUpload) clears.
      let token: string | undefined
      do {
        const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix || undefined, ContinuationToken: token }))
        for (const object of page.Contents ?? []) {
          const name = object.Key?.slice(prefix.length) ?? ''
          if (isBlobName(name)) yield { name, lastModified: object.LastModified ?? new Date(0) }
        }
        token = page.IsTruncated ? page.NextContinuationToken : undefined
      } while (token)
    },

    async checkWritable() {
      const key = `${prefix}probe-${randomBlobName()}`
      await send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: 'ok' }))
      await send(new DeleteObjectCommand({ Bucket: bucket, Key: key }))
    },

    async close() {
      client.destroy()
    },
  }
}
