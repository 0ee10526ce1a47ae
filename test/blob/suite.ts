/**
 * The contract every BlobStore driver must honour; each driver's test file runs it against a
 * fresh store and says how to list everything the store holds.
 */
import { randomBytes } from 'node:crypto'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import t from 'tap'
import { BlobNotFoundError, type BlobStore } from '../../src/blob/store.ts'
import { SEGMENT_SIZE, createDecryptStream, createEncryptStream, decryptRange, randomDataKey } from '../../src/crypto/segmented.ts'

export interface SuiteTarget {
  store: BlobStore
  /** Every stored object or file, temporary ones included. */
  listAll(): Promise<string[]>
  /** Big enough to exercise the driver's chunking (multipart for S3). */
  largeSize: number
}

export async function collect(source: Readable): Promise<Buffer> {
  const parts: Buffer[] = []
  for await (const part of source) parts.push(part as Buffer)
  return Buffer.concat(parts)
}

export function chunked(data: Buffer, size = 20_011): Readable {
  const chunks: Buffer[] = []
  for (let offset = 0; offset < data.length; offset += size) chunks.push(data.subarray(offset, offset + size))
  return Readable.from(chunks)
}

const failure = (promise: Promise<unknown>): Promise<unknown> =>
  promise.then(
    () => null,
    (error: unknown) => error,
  )

export function blobStoreSuite(name: string, target: () => SuiteTarget): void {
  t.test(`${name}: write, commit, read, range, delete`, async (t) => {
    const { store, listAll } = target()
    const data = randomBytes(200_000)
    const writer = store.createWriter()
    t.match(writer.name, /^[0-9a-f]{32}$/)
    t.equal(await store.exists(writer.name), false, 'invisible before commit')
    await pipeline(chunked(data), writer.stream)
    await writer.commit()
    t.equal(await store.exists(writer.name), true)

    t.same(await collect(await store.read(writer.name)), data, 'whole read')
    t.same(await collect(await store.read(writer.name, { start: 1000, end: 70_000 })), data.subarray(1000, 70_001), 'range')
    // bytes=0-0 would be the natural one-byte case, but s3rver answers it with the whole object.
    t.same(await collect(await store.read(writer.name, { start: 1, end: 1 })), data.subarray(1, 2), 'one byte')
    t.same(
      await collect(await store.read(writer.name, { start: data.length - 10, end: data.length + 100 })),
      data.subarray(-10),
      'range past the end is clipped',
    )
    await writer.abort()
    t.equal(await store.exists(writer.name), true, 'abort after commit changes nothing')
    await t.rejects(writer.commit(), /committed/, 'no second commit')

    await store.delete(writer.name)
    t.equal(await store.exists(writer.name), false)
    t.type(await failure(store.read(writer.name)), BlobNotFoundError)
    await store.delete(writer.name)
    t.pass('delete is idempotent')
    t.same(await listAll(), [], 'nothing left')
  })

  t.test(`${name}: abort leaves nothing`, async (t) => {
    const { store, listAll } = target()

    const midway = store.createWriter()
    midway.stream.write(randomBytes(100_000))
    await new Promise((resolve) => setTimeout(resolve, 50))
    await midway.abort()
    t.equal(await store.exists(midway.name), false)
    t.same(await listAll(), [], 'abort while writing')

    const ended = store.createWriter()
    await pipeline(chunked(randomBytes(50_000)), ended.stream)
    await ended.abort()
    t.equal(await store.exists(ended.name), false)
    await t.rejects(ended.commit(), /aborted/)
    t.same(await listAll(), [], 'abort after the stream ended')

    const early = store.createWriter()
    early.stream.write(Buffer.from('not finished'))
    await t.rejects(early.commit(), /end the blob stream before commit/)
    await early.abort()
    t.same(await listAll(), [], 'commit refused before end, then abort')

    const broken = store.createWriter()
    const source = new Readable({
      read() {
        this.destroy(new Error('client went away'))
      },
    })
    source.push(randomBytes(10_000))
    await t.rejects(pipeline(source, broken.stream), /client went away/)
    await broken.abort()
    t.equal(await store.exists(broken.name), false)
    t.same(await listAll(), [], 'failed upload, then abort')
  })

  t.test(`${name}: names`, async (t) => {
    const { store } = target()
    const a = store.createWriter()
    const b = store.createWriter()
    t.not(a.name, b.name, 'random')
    await Promise.all([a.abort(), b.abort()])
    for (const bad of ['../../etc/passwd', 'AB'.repeat(16), 'ab/cd', '', `${'a'.repeat(32)}.json`]) {
      t.type(await failure(store.read(bad)), TypeError, `read refuses ${JSON.stringify(bad)}`)
      t.type(await failure(store.delete(bad)), TypeError, `delete refuses ${JSON.stringify(bad)}`)
      t.type(await failure(store.exists(bad)), TypeError, `exists refuses ${JSON.stringify(bad)}`)
    }
    t.type(await failure(store.read(a.name, { start: 5, end: 4 })), RangeError, 'inverted range')
  })

  t.test(`${name}: list`, async (t) => {
    const { store } = target()
    const before = Date.now()
    const names: string[] = []
    for (let i = 0; i < 3; i++) {
      const writer = store.createWriter()
      await pipeline(chunked(randomBytes(1000 + i)), writer.stream)
      await writer.commit()
      names.push(writer.name)
    }
    await store.checkWritable()
    const listed = []
    for await (const entry of store.list()) listed.push(entry)
    t.same(listed.map((e) => e.name).sort(), [...names].sort(), 'every committed blob, nothing else')
    for (const entry of listed) t.ok(entry.lastModified.getTime() >= before - 2000 && entry.lastModified.getTime() <= Date.now() + 2000, 'modified now')
    for (const name of names) await store.delete(name)
    const after = []
    for await (const entry of store.list()) after.push(entry.name)
    t.same(after, [], 'nothing once removed')
  })

  t.test(`${name}: checkWritable`, async (t) => {
    const { store, listAll } = target()
    await store.checkWritable()
    t.same(await listAll(), [], 'the probe is removed')
  })

  t.test(`${name}: encrypted blob end to end`, async (t) => {
    const { store, listAll, largeSize } = target()
    const key = randomDataKey()
    const aad = 'a2f1d9a4-92a6-4b8e-8f64-0f1a3b9c7d55'
    for (const size of [3 * SEGMENT_SIZE + 17, largeSize]) {
      const plain = randomBytes(size)
      const writer = store.createWriter()
      await pipeline(chunked(plain, 65_000), createEncryptStream({ key, aad }), writer.stream)
      await writer.commit()

      const whole = await collect((await store.read(writer.name)).pipe(createDecryptStream({ key, aad })))
      t.ok(whole.equals(plain), `${size} bytes: whole file decrypts`)

      const read = (range: { start: number; end: number }) => store.read(writer.name, range)
      for (const [start, end] of [
        [0, 10],
        [SEGMENT_SIZE - 5, SEGMENT_SIZE + 5],
        [size - 100, size - 1],
        [Math.floor(size / 3), Math.floor(size / 2)],
      ] as const) {
        const part = await collect(await decryptRange(read, { key, aad, plainSize: size, start, end }))
        t.ok(part.equals(plain.subarray(start, end + 1)), `${size} bytes: range ${start}-${end}`)
      }
      const other = await failure(collect(await decryptRange(read, { key, aad: 'other', plainSize: size, start: 0, end: 5 })))
      t.equal((other as Error | null)?.name, 'IntegrityError', 'another version id fails')
      await store.delete(writer.name)
    }
    t.same(await listAll(), [])
  })
}
