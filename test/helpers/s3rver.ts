import S3rver from '@20minutes/s3rver'
import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import type { TestContext } from './build.ts'

/** A local S3-compatible server (s3rver) with one bucket, on a free port of the loopback. */
export interface LocalS3 {
  server: S3rver
  endpoint: string
  bucket: string
  /** The directory s3rver keeps the bucket in. */
  dir: string
  /** The BLOB_DRIVER=s3 variables that point the app at this bucket, under `prefix`. */
  env(prefix?: string): Record<string, string>
  /** The keys of the objects in the bucket, read from s3rver's directory (its ListObjects refuses the SDK's signature on bucket URLs). */
  keys(): Promise<string[]>
}

/** Starts s3rver in this process; closed and its directory removed at teardown. */
export async function startS3rver(t: TestContext, bucket = 'armoire'): Promise<LocalS3> {
  const dir = await mkdtemp(join(tmpdir(), 'armoire-s3rver-'))
  const server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory: dir, configureBuckets: [{ name: bucket }] })
  const { port } = await server.run()
  t.teardown(async () => {
    await server.close()
    await rm(dir, { recursive: true, force: true })
  })
  const endpoint = `http://127.0.0.1:${port}`
  return {
    server,
    endpoint,
    bucket,
    dir,
    env: (prefix = 'blobs/') => ({
      BLOB_DRIVER: 's3',
      S3_ENDPOINT: endpoint,
      S3_BUCKET: bucket,
      S3_ACCESS_KEY_ID: 'S3RVER',
      S3_SECRET_ACCESS_KEY: 'S3RVER',
      S3_FORCE_PATH_STYLE: 'true',
      S3_PREFIX: prefix,
    }),
    async keys() {
      const root = join(dir, bucket)
      const entries = await readdir(root, { withFileTypes: true, recursive: true })
      return entries
        .filter((e) => e.isFile() && e.name.endsWith('._S3rver_object'))
        .map((e) => relative(root, join(e.parentPath, e.name)).replace(/\._S3rver_object$/, ''))
    },
  }
}
