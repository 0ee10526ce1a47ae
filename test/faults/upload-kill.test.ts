import { randomBytes } from 'node:crypto'
import { stat } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { localBlobRoot } from '../../src/blobs.ts'
import { signUp } from '../helpers/auth.ts'
import { build, testDatabase, testStorage } from '../helpers/build.ts'
import { startInstance } from '../helpers/instance.ts'
import { filesUnder, storedRows, tree, uploadFile } from '../documents/helpers.ts'
import { streamUpload } from '../documents/large-stream.ts'

// Real servers started, killed and restarted: on a busy machine each start takes tens of seconds.
t.setTimeout(600_000)

const SIZE = 500 * 1024 * 1024
// Killed once this much of the blob is on disk: the upload is well under way, the test stays short.
const KILL_AT = 48 * 1024 * 1024

async function sizeOf(path: string): Promise<number> {
  return stat(path).then(
    (s) => s.size,
    () => 0,
  )
}

t.test('kill -9 during a 500 MB upload: no file, no version, usage unchanged; the collector removes the partial blob after the grace period only', async (t) => {
  const env = { DATABASE_URL: await testDatabase(t), STORAGE_DIR: await testStorage(t), UPLOAD_MAX_BYTES: String(SIZE), STORAGE_QUOTA_BYTES: '0' }
  const setup = await build(t, env)
  const admin = await signUp(setup)
  const { dossier } = await tree(setup, admin)
  const kept = randomBytes(200_000)
  const committed = await uploadFile(setup, admin, dossier, kept, { filename: 'deja-la.bin' })
  const before = await storedRows(setup, admin.organisationId)
  await setup.close()

  const root = localBlobRoot(env)
  const server = await startInstance(t, env)
  const started = performance.now()
  const upload = streamUpload(`${server.url}/dossiers/${dossier}/fichiers`, admin.headers, SIZE, 'grand.bin').then(
    (answer) => answer,
    (error: Error) => error,
  )
  let partial: { path: string; size: number } | undefined
  for (let i = 0; i < 6000 && !partial; i++) {
    await new Promise((r) => setTimeout(r, 10))
    for (const path of await filesUnder(join(root, 'tmp'))) {
      const size = await sizeOf(path)
      if (size >= KILL_AT) partial = { path, size }
    }
  }
  t.ok(partial, 'the blob was growing on disk')
  await server.kill()
  const outcome = await upload
  t.comment(`killed the instance (kill -9) ${Math.round(performance.now() - started)} ms into a ${SIZE / 2 ** 20} MiB upload, ${(partial!.size / 2 ** 20).toFixed(1)} MiB of its blob written`)
  t.type(outcome, Error, `the client saw the connection die (${(outcome as Error).message})`)
  const partialName = partial!.path.slice(partial!.path.lastIndexOf('/') + 1)
  const partialSize = await sizeOf(partial!.path)
  t.ok(partialSize >= KILL_AT, 'the partial blob is left on disk: no rollback hook runs under kill -9')

  const after = await build(t, env)
  t.same(await storedRows(after, admin.organisationId), before, 'no file, version or key row; storage usage unchanged')
  const listing = await after.inject({ method: 'GET', url: `/dossiers/${dossier}/fichiers`, headers: admin.headers })
  t.same(listing.json().items.map((f: { nom: string }) => f.nom), ['deja-la.bin'], 'the listing shows only the committed file')
  t.comment(`after the kill: ${before.fichiers} file, ${before.versions} version, usage ${before.stockage} bytes (as before); partial blob ${partialName} of ${partialSize} bytes in tmp/`)

  const withinGrace = await after.blobCollector.collect()
  t.match(withinGrace, { supprimes: 0, recents: 2 }, 'with the default 24 h grace the collector keeps it (it may be an upload in flight)')
  t.equal(await sizeOf(partial!.path), partialSize)
  await after.close()

  // The grace period over: a collector whose grace is 0 h sees what one would a day later. No
  // jobs there: its hourly run must not meet another test's uploads in flight.
  const later = await build(t, { ...env, JOBS_ENABLED: 'false', BLOB_ORPHAN_GRACE_HOURS: '0' })
  const collected = await later.blobCollector.collect()
  t.comment(`collector after the grace period: ${JSON.stringify(collected)}`)
  t.match(collected, { supprimes: 1, examines: 2 }, 'the partial blob, and it alone, is removed')
  t.same((await filesUnder(root)).map((p) => p.slice(p.lastIndexOf('/') + 1)).filter((n) => /^[0-9a-f]{32}$/.test(n)).length, 1, 'one blob left on disk')
  t.equal(await sizeOf(partial!.path), 0, 'the partial blob is gone')
  const download = await later.inject({ method: 'GET', url: `/fichiers/${committed.fichier.id}/contenu`, headers: admin.headers })
  t.ok(download.rawPayload.equals(kept), 'the committed file’s blob is kept: it still downloads')
  t.match(
    await later.db.selectFrom('journal_activite').select(['organisation_id', 'details']).where('action', '=', 'ORPHAN_BLOBS_REMOVED').execute(),
    [{ organisation_id: null, details: { supprimes: 1 } }],
    'journaled',
  )
})
