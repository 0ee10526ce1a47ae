/** The documents domain on the S3 driver (BLOB_DRIVER=s3), against s3rver run in this process. */
import { randomBytes } from 'node:crypto'
import t from 'tap'
import { signUp } from '../helpers/auth.ts'
import { build, listen } from '../helpers/build.ts'
import { startS3rver } from '../helpers/s3rver.ts'
import { sha256, tree } from './helpers.ts'

t.test('upload and download through the app on S3', async (t) => {
  const s3 = await startS3rver(t, 'coffre')
  const objects = async () => (await s3.keys()).length

  const app = await build(t, s3.env())
  const base = await listen(app)
  const admin = await signUp(app)
  const { dossier } = await tree(app, admin)

  // Over 5 MiB: the driver's multipart upload.
  const content = randomBytes(7 * 1024 * 1024 + 123)
  const form = new FormData()
  form.append('fichier', new Blob([content], { type: 'application/zip' }), 'archive.zip')
  const res = await fetch(`${base}/dossiers/${dossier}/fichiers`, { method: 'POST', headers: admin.headers, body: form })
  t.equal(res.status, 201)
  const receipt = (await res.json()) as { fichier: { id: string }; sha256: string }
  t.equal(receipt.sha256, sha256(content))
  t.equal(await objects(), 1, 'one object in the bucket')

  const whole = await fetch(`${base}/fichiers/${receipt.fichier.id}/contenu`, { headers: admin.headers })
  t.equal(whole.status, 200)
  t.equal(whole.headers.get('content-type'), 'application/zip')
  t.ok(Buffer.from(await whole.arrayBuffer()).equals(content), 'byte for byte')

  const start = 5 * 1024 * 1024 - 7
  const part = await fetch(`${base}/fichiers/${receipt.fichier.id}/contenu`, { headers: { ...admin.headers, range: `bytes=${start}-${start + 99_999}` } })
  t.equal(part.status, 206)
  t.ok(Buffer.from(await part.arrayBuffer()).equals(content.subarray(start, start + 100_000)), 'a range, from the segments it spans')

  await app.inject({ method: 'DELETE', url: `/fichiers/${receipt.fichier.id}`, headers: admin.headers })
  t.equal((await app.inject({ method: 'DELETE', url: `/corbeille/fichier/${receipt.fichier.id}`, headers: admin.headers })).statusCode, 204)
  t.equal(await objects(), 0, 'the purge removed the object')
})
