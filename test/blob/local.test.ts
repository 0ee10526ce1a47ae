import { randomBytes } from 'node:crypto'
import { mkdtemp, readdir, rm, stat, utimes, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { pipeline } from 'node:stream/promises'
import t from 'tap'
import { createLocalBlobStore, sweepTemp } from '../../src/blob/local.ts'
import { blobStoreSuite, chunked } from './suite.ts'

const root = await mkdtemp(join(tmpdir(), 'armoire-blobs-'))
t.teardown(() => rm(root, { recursive: true, force: true }))
const store = createLocalBlobStore(root)

async function files(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true })
  return entries.filter((e) => e.isFile()).map((e) => relative(root, join(e.parentPath, e.name)))
}

blobStoreSuite('local', () => ({ store, listAll: () => files(root), largeSize: 3_000_000 }))

t.test('local: layout on disk', async (t) => {
  const writer = store.createWriter()
  await pipeline(chunked(randomBytes(1000)), writer.stream)
  t.same(await files(join(root, 'tmp')), [`tmp/${writer.name}`], 'written under tmp/ first')
  await writer.commit()
  const expected = join(writer.name.slice(0, 2), writer.name.slice(2, 4), writer.name)
  t.same(await files(root), [expected], 'renamed to <aa>/<bb>/<name>, tmp/ empty')
  t.equal((await stat(join(root, expected))).mode & 0o777, 0o600, 'owner-only file')
  await store.delete(writer.name)
})

t.test('local: sweepTemp removes only old temp files', async (t) => {
  const crashed = store.createWriter()
  await pipeline(chunked(randomBytes(500)), crashed.stream)
  // never committed nor aborted: what a crash leaves
  const old = Date.now() / 1000 - 7200
  await utimes(join(root, 'tmp', crashed.name), old, old)
  const fresh = store.createWriter()
  await pipeline(chunked(randomBytes(500)), fresh.stream)

  t.equal(await sweepTemp(root, 3600_000), 1)
  t.same(await files(root), [`tmp/${fresh.name}`], 'the fresh upload is untouched')
  await fresh.commit()
  t.equal(await store.exists(fresh.name), true)
  await store.delete(fresh.name)
  t.equal(await sweepTemp(join(root, 'nowhere'), 0), 0, 'no tmp dir: nothing to do')
})

t.test('local: checkWritable fails when the store is not a directory', async (t) => {
  const file = join(root, 'not-a-dir')
  await writeFile(file, 'x')
  t.throws(() => createLocalBlobStore(file), /ENOTDIR|EEXIST/)
  await rm(file)
  const gone = join(root, 'gone')
  const doomed = createLocalBlobStore(gone)
  await rm(gone, { recursive: true })
  await t.rejects(doomed.checkWritable(), /ENOENT/)
})
