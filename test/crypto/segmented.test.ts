import { randomBytes, webcrypto } from 'node:crypto'
import { Readable, Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import t from 'tap'
import {
  HEADER_SIZE,
  IntegrityError,
  SEALED_SEGMENT_SIZE,
  SEGMENT_SIZE,
  TAG_SIZE,
  createDecryptStream,
  createEncryptStream,
  createRangeDecryptStream,
  decryptRange,
  encryptedSize,
  openSegment,
  randomDataKey,
  sealSegment,
  segmentSpan,
} from '../../src/crypto/segmented.ts'

const AAD = '0b7d4c1e-2f49-4f7a-9a57-3c3b1d7e8a10'

function chunksOf(data: Buffer, sizes: number[]): Buffer[] {
  const out: Buffer[] = []
  for (let offset = 0, i = 0; offset < data.length; i++) {
    const n = sizes[i % sizes.length]!
    out.push(data.subarray(offset, offset + n))
    offset += n
  }
  return out
}

async function collect(source: Readable): Promise<Buffer> {
  const parts: Buffer[] = []
  for await (const part of source) parts.push(part as Buffer)
  return Buffer.concat(parts)
}

async function run(input: Buffer, transform: NodeJS.ReadWriteStream, sizes = [8192]): Promise<Buffer> {
  const parts: Buffer[] = []
  await pipeline(
    Readable.from(chunksOf(input, sizes)),
    transform,
    new Writable({
      write(chunk: Buffer, _enc, cb) {
        parts.push(chunk)
        cb()
      },
    }),
  )
  return Buffer.concat(parts)
}

const encrypt = (plain: Buffer, key: Buffer, aad = AAD, sizes?: number[]) =>
  run(plain, createEncryptStream({ key, aad }), sizes)
const decrypt = (blob: Buffer, key: Buffer, aad = AAD, sizes?: number[]) =>
  run(blob, createDecryptStream({ key, aad }), sizes)

/** Settles to the rejection reason, or null when the promise fulfilled. */
const failure = (promise: Promise<unknown>): Promise<unknown> =>
  promise.then(
    () => null,
    (err: unknown) => err,
  )

t.test('GCM spec test case 16 through the segment primitive', async (t) => {
  const hex = (s: string) => Buffer.from(s, 'hex')
  const key = hex('feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308')
  const iv = hex('cafebabefacedbaddecaf888')
  const plain = hex(
    'd9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72' +
      '1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39',
  )
  const aad = hex('feedfacedeadbeeffeedfacedeadbeefabaddad2')
  const cipher =
    '522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa' +
    '8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662'
  const tag = '76fc6ece0f4e1768cddf8853bb2d551b'

  const sealed = sealSegment(key, iv, aad, plain)
  t.equal(sealed.toString('hex'), cipher + tag)
  t.same(openSegment(key, iv, aad, sealed), plain)
  sealed[0]! ^= 1
  t.throws(() => openSegment(key, iv, aad, sealed), IntegrityError)
})

t.test('on-disk format matches the documented layout (WebCrypto cross-check)', async (t) => {
  const key = randomDataKey()
  const plain = randomBytes(3 * SEGMENT_SIZE + 1000)
  const blob = await encrypt(plain, key)
  t.equal(blob.length, encryptedSize(plain.length))
  t.equal(blob.subarray(0, 4).toString('latin1'), 'ARM1')
  const prefix = blob.subarray(4, 11)

  const cryptoKey = await webcrypto.subtle.importKey('raw', key, 'AES-GCM', false, ['decrypt'])
  const open = (iv: Buffer, data: Buffer) =>
    webcrypto.subtle.decrypt(
      { name: 'AES-GCM', iv, additionalData: new TextEncoder().encode(AAD), tagLength: 128 },
      cryptoKey,
      data,
    )

  const segments = 4
  for (let i = 0; i < segments; i++) {
    const last = i === segments - 1
    const start = 11 + i * (65536 + 16)
    const data = blob.subarray(start, last ? blob.length : start + 65536 + 16)
    const nonce = Buffer.alloc(12)
    prefix.copy(nonce, 0)
    nonce.writeUInt32BE(i, 7)
    nonce[11] = last ? 0x01 : 0x00
    const opened = Buffer.from(await open(nonce, data))
    t.same(opened, plain.subarray(i * 65536, (i + 1) * 65536), `segment ${i} decrypts by hand`)

    nonce[11] ^= 0x01
    await t.rejects(open(nonce, data), `segment ${i} refuses the opposite last flag`)
  }
})

t.test('round trips', async (t) => {
  const key = randomDataKey()
  const sizes = [0, 1, 65535, 65536, 65537, 3 * 65536, 1_000_003]
  for (const size of sizes) {
    const plain = randomBytes(size)
    const blob = await encrypt(plain, key)
    t.equal(blob.length, encryptedSize(size), `size ${size}: blob length`)
    t.equal(blob.length - HEADER_SIZE - size, Math.max(1, Math.ceil(size / 65536)) * TAG_SIZE, `size ${size}: one tag per segment`)
    t.same(await decrypt(blob, key), plain, `size ${size}: decrypts`)
  }
  t.equal(encryptedSize(0), HEADER_SIZE + TAG_SIZE, 'empty plaintext is one empty final segment')
})

t.test('odd chunk sizes on both sides', async (t) => {
  const key = randomDataKey()
  const plain = randomBytes(5 * SEGMENT_SIZE + 777)
  for (const sizes of [[1, 3, 65535, 7], [65537], [131073, 5], [SEALED_SEGMENT_SIZE + 1, 11]]) {
    const blob = await encrypt(plain, key, AAD, sizes)
    t.equal(blob.length, encryptedSize(plain.length))
    t.same(await decrypt(blob, key, AAD, [...sizes].reverse()), plain, `chunks ${sizes.join(',')}`)
  }
  const tiny = randomBytes(3000)
  t.same(await decrypt(await encrypt(tiny, key, AAD, [1]), key, AAD, [1]), tiny, 'byte at a time')
})

t.test('memory stays bounded under backpressure', async (t) => {
  const key = randomDataKey()
  const total = 64 * SEGMENT_SIZE
  let produced = 0
  const source = new Readable({
    read() {
      if (produced >= total) return this.push(null)
      produced += 16384
      this.push(randomBytes(16384))
    },
  })
  const enc = createEncryptStream({ key, aad: AAD })
  let maxBuffered = 0
  let received = 0
  const sink = new Writable({
    highWaterMark: 1,
    write(chunk: Buffer, _e, cb) {
      received += chunk.length
      maxBuffered = Math.max(maxBuffered, enc.readableLength + enc.writableLength, produced - received)
      setImmediate(cb)
    },
  })
  await pipeline(source, enc, sink)
  t.equal(received, encryptedSize(total))
  t.ok(maxBuffered < 4 * SEALED_SEGMENT_SIZE, `at most a few segments in flight (saw ${maxBuffered} bytes)`)
})

t.test('a finished stream keeps no segment buffer, however long it is referenced', async (t) => {
  // yazl keeps every entry's source stream until the archive ends: 5 000 entries each holding
  // a 64 KiB block made a backup's server grow by hundreds of MB.
  setFlagsFromString('--expose-gc')
  const gc = runInNewContext('gc') as () => void
  const key = randomDataKey()
  const blob = await encrypt(randomBytes(1000), key)
  const held: NodeJS.ReadWriteStream[] = []
  gc()
  const before = process.memoryUsage().arrayBuffers
  for (let i = 0; i < 1000; i++) {
    const encrypting = createEncryptStream({ key, aad: AAD })
    const decrypting = createDecryptStream({ key, aad: AAD })
    held.push(encrypting, decrypting)
    await run(randomBytes(1000), encrypting)
    await run(blob, decrypting)
    const range = createRangeDecryptStream({ key, aad: AAD, header: blob.subarray(0, HEADER_SIZE), plainSize: 1000, start: 0, end: 999 })
    held.push(range)
    await run(blob.subarray(HEADER_SIZE), range)
  }
  gc()
  const grown = process.memoryUsage().arrayBuffers - before
  t.equal(held.length, 3000)
  // A block each would be 3000 × 64 KiB (196 MB); what is left is a few small buffers each,
  // plus whatever else the process holds then (7 to 32 MB seen in full runs).
  t.ok(grown < (3000 * SEALED_SEGMENT_SIZE) / 2, `3000 finished streams hold ${grown} bytes`)
})

t.test('tampering is detected', async (t) => {
  const key = randomDataKey()
  const plain = randomBytes(3 * SEGMENT_SIZE + 100)
  const blob = await encrypt(plain, key)
  const seg = (i: number) => {
    const start = HEADER_SIZE + i * SEALED_SEGMENT_SIZE
    return blob.subarray(start, Math.min(blob.length, start + SEALED_SEGMENT_SIZE))
  }
  const flip = (offset: number) => {
    const copy = Buffer.from(blob)
    copy[offset]! ^= 0x10
    return copy
  }

  t.type(await failure(decrypt(flip(0), key)), IntegrityError, 'magic bit')
  t.type(await failure(decrypt(flip(6), key)), IntegrityError, 'nonce prefix bit')
  t.type(await failure(decrypt(flip(HEADER_SIZE + SEALED_SEGMENT_SIZE + 1234), key)), IntegrityError, 'middle segment bit')
  t.type(await failure(decrypt(flip(blob.length - 1), key)), IntegrityError, 'final tag bit')
  t.type(await failure(decrypt(flip(HEADER_SIZE + SEALED_SEGMENT_SIZE - 1), key)), IntegrityError, 'first tag bit')

  const atBoundary = blob.subarray(0, HEADER_SIZE + 3 * SEALED_SEGMENT_SIZE)
  t.type(await failure(decrypt(atBoundary, key)), IntegrityError, 'final segment dropped')
  t.type(await failure(decrypt(blob.subarray(0, blob.length - 40), key)), IntegrityError, 'cut mid-segment')
  t.type(await failure(decrypt(blob.subarray(0, HEADER_SIZE + 10), key)), IntegrityError, 'cut inside the first segment')
  t.type(await failure(decrypt(blob.subarray(0, 5), key)), IntegrityError, 'cut inside the header')
  t.type(await failure(decrypt(Buffer.alloc(0), key)), IntegrityError, 'empty input')
  t.type(await failure(decrypt(Buffer.concat([blob, seg(1)]), key)), IntegrityError, 'segment appended')
  t.type(await failure(decrypt(Buffer.concat([blob, Buffer.from([0])]), key)), IntegrityError, 'one byte appended')
  t.type(await failure(decrypt(Buffer.concat([blob.subarray(0, HEADER_SIZE), seg(0), seg(2), seg(1), seg(3)]), key)), IntegrityError, 'segments swapped')
  t.type(await failure(decrypt(Buffer.concat([blob.subarray(0, HEADER_SIZE), seg(0), seg(2), seg(3)]), key)), IntegrityError, 'middle segment dropped')
  t.type(await failure(decrypt(blob, key, 'another-version-id')), IntegrityError, 'another aad')
  t.type(await failure(decrypt(blob, randomDataKey())), IntegrityError, 'another key')

  const full = await encrypt(randomBytes(2 * SEGMENT_SIZE), key)
  t.type(await failure(decrypt(full.subarray(0, HEADER_SIZE + SEALED_SEGMENT_SIZE), key)), IntegrityError, 'exact-multiple file, last dropped')
  const empty = await encrypt(Buffer.alloc(0), key)
  t.type(await failure(decrypt(empty.subarray(0, HEADER_SIZE), key)), IntegrityError, 'empty file, its segment dropped')

  const otherBlob = await encrypt(plain, key)
  t.type(await failure(decrypt(Buffer.concat([blob.subarray(0, HEADER_SIZE), seg(0), otherBlob.subarray(HEADER_SIZE + SEALED_SEGMENT_SIZE)]), key)), IntegrityError, 'segments spliced from another blob of the same key')
})

t.test('nothing unverified is released', async (t) => {
  const key = randomDataKey()
  const plain = randomBytes(4 * SEGMENT_SIZE)
  const blob = await encrypt(plain, key)
  blob[HEADER_SIZE + 2 * SEALED_SEGMENT_SIZE + 5]! ^= 1
  const received: Buffer[] = []
  const err = await pipeline(
    Readable.from(chunksOf(blob, [10000])),
    createDecryptStream({ key, aad: AAD }),
    new Writable({
      write(chunk: Buffer, _e, cb) {
        received.push(chunk)
        cb()
      },
    }),
  ).catch((e: unknown) => e)
  t.ok(err instanceof IntegrityError)
  t.same(Buffer.concat(received), plain.subarray(0, 2 * SEGMENT_SIZE), 'only the segments before the damage')
})

t.test('ranges', async (t) => {
  const key = randomDataKey()

  async function rangeReader(blob: Buffer) {
    let bytesRead = 0
    const read = async ({ start, end }: { start: number; end: number }) => {
      const slice = blob.subarray(start, end + 1)
      bytesRead += slice.length
      return Readable.from(chunksOf(slice, [5000, 333]))
    }
    return { read, bytes: () => bytesRead }
  }

  for (const size of [5 * SEGMENT_SIZE + 12345, 3 * SEGMENT_SIZE, 1, 700]) {
    const plain = randomBytes(size)
    const blob = await encrypt(plain, key)
    const ranges: [number, number][] = [
      [0, size - 1],
      [size - 1, size - 1],
      [0, 0],
      [Math.max(0, size - 70000), size - 1],
    ]
    for (let i = 0; i < 60; i++) {
      const a = Math.floor(Math.random() * size)
      const b = Math.floor(Math.random() * size)
      ranges.push([Math.min(a, b), Math.max(a, b)])
    }
    let failures = 0
    for (const [start, end] of ranges) {
      const reader = await rangeReader(blob)
      const out = await collect(await decryptRange(reader.read, { key, aad: AAD, plainSize: size, start, end }))
      const span = segmentSpan(size, start, end)
      const segments = span.lastSegment - span.firstSegment + 1
      const lastSegmentPlain = Math.min(SEGMENT_SIZE, size - span.lastSegment * SEGMENT_SIZE)
      const expectedRead = HEADER_SIZE + (segments - 1) * SEALED_SEGMENT_SIZE + lastSegmentPlain + TAG_SIZE
      if (!out.equals(plain.subarray(start, end + 1)) || reader.bytes() !== expectedRead) {
        failures++
        t.fail(`size ${size} range ${start}-${end}: read ${reader.bytes()} bytes, expected ${expectedRead}`)
      }
    }
    t.equal(failures, 0, `size ${size}: ${ranges.length} ranges equal the slice, reading only their segments`)
  }

  const size = 5 * SEGMENT_SIZE + 12345
  const plain = randomBytes(size)
  const blob = await encrypt(plain, key)
  const reader = await rangeReader(blob)
  await collect(await decryptRange(reader.read, { key, aad: AAD, plainSize: size, start: 2 * SEGMENT_SIZE + 10, end: 2 * SEGMENT_SIZE + 20 }))
  t.equal(reader.bytes(), HEADER_SIZE + SEALED_SEGMENT_SIZE, 'an 11-byte range reads one segment')

  const span = segmentSpan(size, 0, size - 1)
  t.equal(span.blobEnd, blob.length - 1, 'a full range spans the whole blob')
  t.equal(span.blobStart, HEADER_SIZE)
})

t.test('range tampering and misuse', async (t) => {
  const key = randomDataKey()
  const size = 4 * SEGMENT_SIZE + 500
  const plain = randomBytes(size)
  const blob = await encrypt(plain, key)
  const header = blob.subarray(0, HEADER_SIZE)

  const range = (data: Buffer, opts: { start: number; end: number; plainSize?: number; aad?: string; key?: Buffer; header?: Buffer }) => {
    const plainSize = opts.plainSize ?? size
    const span = segmentSpan(plainSize, opts.start, opts.end)
    const stream = createRangeDecryptStream({
      key: opts.key ?? key,
      aad: opts.aad ?? AAD,
      header: opts.header ?? header,
      plainSize,
      start: opts.start,
      end: opts.end,
    })
    return run(data.subarray(span.blobStart, span.blobEnd + 1), stream, [4096])
  }

  t.same(await range(blob, { start: 100, end: 3 * SEGMENT_SIZE }), plain.subarray(100, 3 * SEGMENT_SIZE + 1))
  const flipped = Buffer.from(blob)
  flipped[HEADER_SIZE + SEALED_SEGMENT_SIZE + 9]! ^= 4
  t.type(await failure(range(flipped, { start: SEGMENT_SIZE, end: SEGMENT_SIZE + 5 })), IntegrityError, 'flipped bit in range')
  t.same(await range(flipped, { start: 0, end: 10 }), plain.subarray(0, 11), 'damage outside the range is not read')
  t.type(await failure(range(blob, { start: size - 10, end: size - 1, plainSize: size + 1 })), IntegrityError, 'wrong size: final flag/length mismatch')
  t.type(await failure(range(blob, { start: 0, end: 10, plainSize: 65536 })), IntegrityError, 'claimed final segment is not final')
  t.type(await failure(range(blob, { start: 0, end: 10, aad: 'other' })), IntegrityError, 'another aad')
  t.type(await failure(range(blob, { start: 0, end: 10, key: randomDataKey() })), IntegrityError, 'another key')
  const badHeader = Buffer.from(header)
  badHeader[8]! ^= 1
  t.type(await failure(range(blob, { start: 0, end: 10, header: badHeader })), IntegrityError, 'another nonce prefix')
  t.throws(
    () => createRangeDecryptStream({ key, aad: AAD, header: Buffer.from('XXXX1234567'), plainSize: size, start: 0, end: 1 }),
    IntegrityError,
    'bad magic',
  )

  const span = segmentSpan(size, 0, 10)
  const mk = () => createRangeDecryptStream({ key, aad: AAD, header, plainSize: size, start: 0, end: 10 })
  t.type(await failure(run(blob.subarray(span.blobStart, span.blobEnd), mk())), IntegrityError, 'range source one byte short')
  t.type(await failure(run(blob.subarray(span.blobStart, span.blobEnd + 2), mk())), IntegrityError, 'range source one byte long')

  t.throws(() => segmentSpan(size, 10, 9), RangeError)
  t.throws(() => segmentSpan(size, 0, size), RangeError)
  t.throws(() => segmentSpan(0, 0, 0), RangeError)
  t.throws(() => segmentSpan(size, -1, 3), RangeError)
})

t.test('keys are checked', async (t) => {
  t.throws(() => createEncryptStream({ key: Buffer.alloc(16), aad: AAD }), TypeError)
  t.throws(() => createDecryptStream({ key: Buffer.alloc(33), aad: AAD }), TypeError)
  t.equal(randomDataKey().length, 32)
  t.not(randomDataKey().toString('hex'), randomDataKey().toString('hex'))
})
