import { createHash } from 'node:crypto'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import t from 'tap'
import { createArmoireClient } from '../../openapi/sdk/index.ts'
import { signUp } from '../helpers/auth.ts'
import { build, listen } from '../helpers/build.ts'
import { tree } from './helpers.ts'
import { pseudoRandom } from './large-stream.ts'

/** `size` pseudo-random bytes as a stream pulled chunk by chunk, hashed as they are read. */
function content(size: number) {
  const hash = createHash('sha256')
  const chunks = pseudoRandom(size)
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      const next = chunks.next()
      if (next.done) return controller.close()
      hash.update(next.value)
      controller.enqueue(next.value)
    },
  })
  return { stream, sha256: () => hash.digest('hex') }
}

// The 2 GiB round trip: ARMOIRE_ROUND_TRIP_BYTES=2147483648. The default keeps the
// suite light, for the code path is the same at any size.
setFlagsFromString('--expose-gc')
const collect = runInNewContext('gc') as () => void

const SIZE = Number(process.env.ARMOIRE_ROUND_TRIP_BYTES ?? 256 * 1024 ** 2)

t.test(`a ${SIZE} byte round trip, byte for byte, in bounded memory`, async (t) => {
  const app = await build(t, { UPLOAD_MAX_BYTES: String(SIZE), STORAGE_QUOTA_BYTES: '0' })
  const base = await listen(app)
  const admin = await signUp(app)
  const { dossier } = await tree(app, admin)
  // The front end's way: the SDK, streaming both ways.
  const armoire = createArmoireClient({ baseUrl: base, tokens: { access_token: admin.token, refresh_token: admin.refreshToken } })
  // RSS here includes the client and tap's async-hook bookkeeping (which churns the heap per
  // async operation), so the bound checked is on Buffers held: what buffering a file would grow.
  // Each sample follows a full collection, so that it counts Buffers still held, not garbage
  // the collector has yet to reach (how much of it waits depends on the V8 of the Node).
  collect()
  const before = process.memoryUsage()
  let peakRss = before.rss
  let peakBuffers = before.arrayBuffers
  const sampler = setInterval(() => {
    collect()
    const now = process.memoryUsage()
    peakRss = Math.max(peakRss, now.rss)
    peakBuffers = Math.max(peakBuffers, now.arrayBuffers)
  }, 200)
  t.teardown(() => clearInterval(sampler))

  const started = performance.now()
  const sent = content(SIZE)
  const receipt = await armoire.upload({ dossier }, sent.stream, { nom: 'grand.bin' })
  const uploadMs = performance.now() - started
  const sha256 = sent.sha256()
  t.equal(receipt.taille, SIZE)
  t.equal(receipt.sha256, sha256, 'the server hashed what was sent')

  const downStarted = performance.now()
  const down = await armoire.download(receipt.fichier.id)
  const received = createHash('sha256')
  let size = 0
  for await (const chunk of down.body as unknown as AsyncIterable<Uint8Array>) {
    received.update(chunk)
    size += chunk.length
  }
  const downloadMs = performance.now() - downStarted
  t.equal(down.status, 200)
  t.equal(down.filename, 'grand.bin')
  t.equal(size, SIZE)
  t.equal(received.digest('hex'), sha256, 'what comes back is what went in')
  clearInterval(sampler)
  const mb = SIZE / 1024 / 1024
  const inMb = (bytes: number) => (bytes / 1024 / 1024).toFixed(0)
  t.comment(
    `upload ${(mb / (uploadMs / 1000)).toFixed(0)} MB/s, download ${(mb / (downloadMs / 1000)).toFixed(0)} MB/s; ` +
      `growth: buffers ${inMb(peakBuffers - before.arrayBuffers)} MB, RSS ${inMb(peakRss - before.rss)} MB (client and server in one process)`,
  )
  t.ok(peakBuffers - before.arrayBuffers < 100 * 1024 * 1024, 'Buffers held stay bounded whatever the size')
})
