import { randomBytes } from 'node:crypto'
import t from 'tap'
import type { RestaurationDto } from '../../openapi/backup.ts'
import { localBlobRoot } from '../../src/blobs.ts'
import { loadConfig } from '../../src/config.ts'
import { signUp } from '../helpers/auth.ts'
import { build, testStorage } from '../helpers/build.ts'
import { filesUnder, multipart, tree, uploadFile } from '../documents/helpers.ts'
import { archive, backup, readZip, settled } from './helpers.ts'

t.test('BACKUP_BLOB_* name a separate store: archives land there, never in the primary one', async (t) => {
  const storage = await testStorage(t)
  const archives = await testStorage(t)
  const app = await build(t, { STORAGE_DIR: storage, BACKUP_BLOB_DRIVER: 'local', BACKUP_BLOB_DIR: archives })
  const primary = localBlobRoot({ STORAGE_DIR: storage })
  const separate = localBlobRoot({ STORAGE_DIR: archives })
  const admin = await signUp(app)
  const headers = admin.headers
  const { armoire, dossier } = await tree(app, admin, 'Hors site')
  const content = randomBytes(300_000)
  const file = await uploadFile(app, admin, dossier, content, { filename: 'bilan.pdf', type: 'application/pdf' })
  const stored = await filesUnder(primary)

  const saved = await backup(app, admin, { type: 'armoire', cible_id: armoire })
  t.equal(saved.statut, 'terminee')
  const { chemin } = await app.db.selectFrom('sauvegardes').select('chemin').where('id', '=', saved.id).executeTakeFirstOrThrow()
  t.ok((await filesUnder(separate)).some((f) => f.endsWith(chemin!)), 'the archive is in BACKUP_BLOB_DIR')
  t.same(await filesUnder(primary), stored, 'nothing added to the primary store')

  const zip = await archive(app, admin, saved.id)
  t.same((await readZip(zip)).get('Armoire Hors site/Casier Hors site/Dossier Hors site/bilan.pdf')?.data, content, 'downloaded from the separate store')
  t.match((await app.inject({ method: 'POST', url: `/sauvegardes/${saved.id}/verifier`, headers })).json(), { valide: true, fichiers: 1 })

  t.equal((await app.inject({ method: 'DELETE', url: `/fichiers/${file.fichier.id}`, headers })).statusCode, 204)
  t.equal((await app.inject({ method: 'DELETE', url: `/corbeille/fichier/${file.fichier.id}`, headers })).statusCode, 204)
  const res = await app.inject({ method: 'POST', url: `/sauvegardes/${saved.id}/restaurer`, headers, payload: {} })
  t.equal(res.statusCode, 202)
  const done = await settled<RestaurationDto>(app, admin, `/restaurations/${res.json().id}`)
  t.match(done, { statut: 'terminee', rapport: { crees: 1, echecs: 0 } })
  t.same((await app.inject({ method: 'GET', url: `/fichiers/${file.fichier.id}/contenu`, headers })).rawPayload, content, 'restored from the separate store')
  t.ok((await filesUnder(primary)).length > 0 && (await filesUnder(separate)).length === 1, 'the restored content is in the primary store, the archive alone in the separate one')

  const body = multipart([{ name: 'archive', filename: 'sauvegarde.zip', type: 'application/zip', content: zip }])
  const imported = await app.inject({ method: 'POST', url: '/sauvegardes/import', headers: { ...headers, ...body.headers }, payload: body.payload })
  t.equal(imported.statusCode, 201, imported.body)
  t.equal((await filesUnder(separate)).length, 2, 'an imported archive goes to the separate store too')

  for (const id of [saved.id, imported.json().id as string]) {
    t.equal((await app.inject({ method: 'DELETE', url: `/sauvegardes/${id}`, headers })).statusCode, 204)
  }
  t.same((await filesUnder(separate)).filter((f) => !f.includes('/tmp/')), [], 'deleted from the separate store')
})

t.test('a separate store that is not separate, or not named, is refused by the configuration', async (t) => {
  const base = { STORAGE_DIR: '/srv/armoire' }
  t.throws(() => loadConfig({ ...base, BACKUP_BLOB_DRIVER: 'local' }), /BACKUP_BLOB_DIR/)
  t.throws(() => loadConfig({ ...base, BACKUP_BLOB_DRIVER: 'local', BACKUP_BLOB_DIR: '/srv/armoire/' }), /another directory/)
  t.throws(() => loadConfig({ ...base, BACKUP_BLOB_DRIVER: 's3' }), /requires BACKUP_BLOB_S3_BUCKET/)
  const s3 = { BLOB_DRIVER: 's3', S3_BUCKET: 'armoire', S3_ACCESS_KEY_ID: 'k', S3_SECRET_ACCESS_KEY: 's' }
  t.throws(() => loadConfig({ ...s3, BACKUP_BLOB_DRIVER: 's3', BACKUP_BLOB_S3_BUCKET: 'armoire', BACKUP_BLOB_S3_ACCESS_KEY_ID: 'k', BACKUP_BLOB_S3_SECRET_ACCESS_KEY: 's' }), /must differ/)
  t.match(loadConfig({ ...s3, BACKUP_BLOB_DRIVER: 's3', BACKUP_BLOB_S3_BUCKET: 'armoire-hors-site', BACKUP_BLOB_S3_ACCESS_KEY_ID: 'k', BACKUP_BLOB_S3_SECRET_ACCESS_KEY: 's' }), { BACKUP_BLOB_S3_BUCKET: 'armoire-hors-site' })
  t.match(loadConfig({ ...base, BACKUP_BLOB_DRIVER: 'local', BACKUP_BLOB_DIR: '/mnt/hors-site' }), { BACKUP_BLOB_DIR: '/mnt/hors-site' })
})
