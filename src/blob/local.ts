import { createWriteStream, mkdirSync } from 'node:fs'
import { mkdir, open, opendir, readdir, rename, rm, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { finished } from 'node:stream/promises'
import {
  BlobNotFoundError,
  assertBlobName,
  assertRange,
  isBlobName,
  randomBlobName,
  type BlobEntry,
  type BlobStore,
  type BlobWriter,
} from './store.ts'

async function syncDir(path: string): Promise<void> {
  const dir = await open(path, 'r')
  try {
    await dir.sync()
  } finally {
    await dir.close()
  }
}

function isNotFound(error: unknown): boolean {
  return (error as NodeJS.ErrnoException).code === 'ENOENT'
}

const SHARD = /^[0-9a-f]{2}$/

async function sortedDirs(path: string, pattern: RegExp): Promise<string[]> {
  try {
    return (await readdir(path, { withFileTypes: true })).filter((e) => e.isDirectory() && pattern.test(e.name)).map((e) => e.name).sort()
  } catch (error) {
    if (isNotFound(error)) return []
    throw error
  }
}

/** The blobs of one directory, read as a stream (a directory may hold many); gone ones skipped. */
async function* blobsIn(dir: string): AsyncGenerator<BlobEntry> {
  let handle
  try {
    handle = await opendir(dir)
  } catch (error) {
    if (isNotFound(error)) return
    throw error
  }
  for await (const entry of handle) {
    if (!entry.isFile() || !isBlobName(entry.name)) continue
    try {
      yield { name: entry.name, lastModified: (await stat(join(dir, entry.name))).mtime }
    } catch (error) {
      if (!isNotFound(error)) throw error
    }
  }
}

/**
 * Blobs live at root/<aa>/<bb>/<name>; writes go to root/tmp first, so a crash leaves only
 * temp files (see sweepTemp), never a half-written blob under a real name.
 */
export function createLocalBlobStore(root: string): BlobStore {
  const tmpDir = join(root, 'tmp')
  mkdirSync(tmpDir, { recursive: true, mode: 0o700 })

  const dirOf = (name: string): string => join(root, name.slice(0, 2), name.slice(2, 4))
  const pathOf = (name: string): string => {
    assertBlobName(name)
    return join(dirOf(name), name)
  }

  function createWriter(): BlobWriter {
    const name = randomBlobName()
    const tmp = join(tmpDir, name)
    const target = pathOf(name)
    const stream = createWriteStream(tmp, { flags: 'wx', mode: 0o600, flush: true })
    let state: 'open' | 'committing' | 'committed' | 'aborted' = 'open'

    async function abort(): Promise<void> {
      if (state === 'committed') return
      state = 'aborted'
      stream.destroy()
      await finished(stream).catch(() => {})
      await rm(tmp, { force: true })
      // A commit that failed after its rename leaves the blob at its final path.
      await rm(target, { force: true })
    }

    async function commit(): Promise<void> {
      if (state !== 'open') throw new Error(`blob writer is ${state}`)
      if (!stream.writableEnded) throw new Error('end the blob stream before commit')
      state = 'committing'
      try {
        await finished(stream); // resolves after the fsync-then-close that `flush` requests
        const created = await mkdir(dirOf(name), { recursive: true, mode: 0o700 })
        await rename(tmp, target)
        await syncDir(dirOf(name))
        if (created) {
          await syncDir(join(root, name.slice(0, 2)))
          await syncDir(root)
        }
        state = 'committed'
      } catch (error) {
        await abort()
        throw error
      }
    }

    return { name, stream, commit, abort }
  }

  return {
    createWriter,

    async read(name, range) {
      assertRange(range)
      let file
      try {
        file = await open(pathOf(name), 'r')
      } catch (error) {
        if (isNotFound(error)) throw new BlobNotFoundError(name)
        throw error
      }
      return file.createReadStream(range ? { start: range.start, end: range.end } : {})
    },

    async delete(name) {
      await rm(pathOf(name), { force: true })
      // A blob whose writer died mid-way (its process was killed) is still under tmp/.
      await rm(join(tmpDir, name), { force: true })
    },

    async exists(name) {
      try {
        return (await stat(pathOf(name))).isFile()
      } catch (error) {
        if (isNotFound(error)) return false
        throw error
      }
    },

    async *list() {
      // A killed upload's blob never left tmp/: listed under its name, which `delete` also removes there.
      yield* blobsIn(tmpDir)
      for (const a of await sortedDirs(root, SHARD)) {
        for (const b of await sortedDirs(join(root, a), SHARD)) yield* blobsIn(join(root, a, b))
      }
    },

    async checkWritable() {
      const probe = join(tmpDir, `probe-${randomBlobName()}`)
      const file = await open(probe, 'wx', 0o600)
      try {
        await file.writeFile('ok')
        await file.sync()
      } finally {
        await file.close()
        await rm(probe, { force: true })
      }
    },

    async close() {},
  }
}

/** Removes temp files older than `olderThanMs` (left by a crash); returns how many. */
export async function sweepTemp(root: string, olderThanMs: number): Promise<number> {
  const tmpDir = join(root, 'tmp')
  let entries: string[]
  try {
    entries = await readdir(tmpDir)
  } catch (error) {
    if (isNotFound(error)) return 0
    throw error
  }
  const cutoff = Date.now() - olderThanMs
  let removed = 0
  for (const entry of entries) {
    const path = join(tmpDir, entry)
    try {
      const info = await stat(path)
      if (info.isFile() && info.mtimeMs < cutoff) {
        await rm(path, { force: true })
        removed++
      }
    } catch (error) {
      if (!isNotFound(error)) throw error
    }
  }
  return removed
}
