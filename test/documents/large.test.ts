import t from 'tap'
import { signUp } from '../helpers/auth.ts'
import { build, listen } from '../helpers/build.ts'
import { tree } from './helpers.ts'
import { streamDownload, streamUpload } from './large-stream.ts'

// The 2 GiB round trip: ARMOIRE_ROUND_TRIP_BYTES=2147483648. The default keeps the
// suite light, for the code path is the same at any size.
const SIZE = Number(process.env.ARMOIRE_ROUND_TRIP_BYTES ?? 256 * 1024 ** 2)

t.test(`a ${SIZE} byte round trip, byte for byte, in bounded memory`, async (t) => {
  const app = await build(t, { UPLOAD_MAX_BYTES: String(SIZE), STORAGE_QUOTA_BYTES: '0' })
  const base = await listen(app)
  const admin = await signUp(app)
  const { dossier } = await tree(app, admin)
  // RSS here includes the client and tap's async-hook bookkeeping (which churns the heap per
  // async operation), so the bound checked is on Buffers held: what buffering a file would grow.
  const before = process.memoryUsage()
  let peakRss = before.rss
  let peakBuffers = before.arrayBuffers
  const sampler = setInterval(() => {
    const now = process.memoryUsage()
    peakRss = Math.max(peakRss, now.rss)
    peakBuffers = Math.max(peakBuffers, now.arrayBuffers)
  }, 50)
  t.teardown(() => clearInterval(sampler))

  const started = performance.now()
  const up = await streamUpload(`${base}/dossiers/${dossier}/fichiers`, admin.headers, SIZE, 'grand.bin')
  const uploadMs = performance.now() - started
  t.equal(up.status, 201, up.body.slice(0, 200))
  const receipt = JSON.parse(up.body) as { fichier: { id: string }; sha256: string; taille: number }
  t.equal(receipt.taille, SIZE)
  t.equal(receipt.sha256, up.sha256, 'the server hashed what was sent')

  const downStarted = performance.now()
  const down = await streamDownload(`${base}/fichiers/${receipt.fichier.id}/contenu`, admin.headers)
  const downloadMs = performance.now() - downStarted
  t.equal(down.status, 200)
  t.equal(down.size, SIZE)
  t.equal(down.sha256, up.sha256, 'what comes back is what went in')
  clearInterval(sampler)
  const mb = SIZE / 1024 / 1024
  const inMb = (bytes: number) => (bytes / 1024 / 1024).toFixed(0)
  t.comment(
    `upload ${(mb / (uploadMs / 1000)).toFixed(0)} MB/s, download ${(mb / (downloadMs / 1000)).toFixed(0)} MB/s; ` +
      `growth: buffers ${inMb(peakBuffers - before.arrayBuffers)} MB, RSS ${inMb(peakRss - before.rss)} MB (client and server in one process)`,
  )
  t.ok(peakBuffers - before.arrayBuffers < 100 * 1024 * 1024, 'Buffers held stay bounded whatever the size')
})
