/**
 * Fault (issue 16): the S3 server down, then back. The blob store is the S3 driver against
 * s3rver, closed in the middle: uploads and downloads answer 503 STORAGE_UNAVAILABLE, never an
 * integrity failure, and nothing is recorded; once it is back, both work again.
 */
import S3rver from '@20minutes/s3rver'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { signUp } from '../helpers/auth.ts'
import { build } from '../helpers/build.ts'
import { journal, sha256, storedRows, tree, upload, uploadFile } from '../documents/helpers.ts'

t.test('S3 down: 503 STORAGE_UNAVAILABLE with no row, and everything works once it is back', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'armoire-fault-s3-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const s3 = (port: number) => new S3rver({ address: '127.0.0.1', port, silent: true, directory: dir, configureBuckets: [{ name: 'coffre' }] })
  let server = s3(0)
  const { port } = await server.run()
  t.teardown(() => server.close())
  const app = await build(t, {
    BLOB_DRIVER: 's3',
    S3_ENDPOINT: `http://127.0.0.1:${port}`,
    S3_BUCKET: 'coffre',
    S3_ACCESS_KEY_ID: 'S3RVER',
    S3_SECRET_ACCESS_KEY: 'S3RVER',
    S3_FORCE_PATH_STYLE: 'true',
  })
  const admin = await signUp(app)
  const { dossier } = await tree(app, admin)
  const kept = randomBytes(200_000)
  const stored = await uploadFile(app, admin, dossier, kept, { filename: 'avant.bin' })

  await server.close()
  t.comment(`s3rver on port ${port} closed`)
  const before = await storedRows(app, admin.organisationId)
  const entries = (await journal(app, admin.organisationId)).length
  for (const size of [100_000, 6 * 1024 * 1024]) {
    const started = performance.now()
    const res = await upload(app, admin, `/dossiers/${dossier}/fichiers`, randomBytes(size), { filename: `pendant-${size}.bin` })
    t.comment(`upload of ${size} bytes with S3 down: ${res.statusCode} ${res.json().code} in ${Math.round(performance.now() - started)} ms`)
    t.equal(res.statusCode, 503, `${size} bytes: 503`)
    t.match(res.headers['content-type'], /^application\/problem\+json/)
    t.equal(res.json().code, 'STORAGE_UNAVAILABLE')
    t.ok(Number(res.headers['retry-after']) > 0, 'with a Retry-After')
  }
  t.same(await storedRows(app, admin.organisationId), before, 'no row, usage unchanged')

  const started = performance.now()
  const down = await app.inject({ method: 'GET', url: `/fichiers/${stored.fichier.id}/contenu`, headers: admin.headers })
  t.comment(`download with S3 down: ${down.statusCode} ${down.json().code} in ${Math.round(performance.now() - started)} ms`)
  t.equal(down.statusCode, 503, 'a download answers 503, before any byte of content')
  t.equal(down.json().code, 'STORAGE_UNAVAILABLE')
  const added = (await journal(app, admin.organisationId)).slice(entries)
  t.notOk(added.some((e) => e.action === 'FILE_INTEGRITY_FAILED'), 'an outage is not journaled as an integrity failure')
  t.notOk(added.some((e) => e.action === 'FILE_UPLOADED' && e.resultat !== 'echec'), 'no journal entry claims an upload')

  server = s3(port)
  await server.run()
  t.comment(`s3rver back on port ${port}`)
  const back = await app.inject({ method: 'GET', url: `/fichiers/${stored.fichier.id}/contenu`, headers: admin.headers })
  t.equal(back.statusCode, 200)
  t.equal(sha256(back.rawPayload), sha256(kept), 'the stored file downloads byte for byte')
  const again = await upload(app, admin, `/dossiers/${dossier}/fichiers`, randomBytes(100_000), { filename: 'apres.bin' })
  t.equal(again.statusCode, 201, 'uploads work again')
})
