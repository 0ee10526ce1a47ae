import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { promisify } from 'node:util'
import t from 'tap'
import { rotateMasterKeys } from '../../scripts/keys-rotate.ts'
import { localBlobRoot } from '../../src/blobs.ts'
import { createLocalKeySource } from '../../src/crypto/keys.ts'
import { signUp } from '../helpers/auth.ts'
import { build, testDatabase, testStorage } from '../helpers/build.ts'
import { filesUnder, journal, sha256, tree, upload, uploadFile } from './helpers.ts'

const run = promisify(execFile)

t.test('master key rotation re-wraps data keys only, resumably', async (t) => {
  const old = randomBytes(32)
  const next = randomBytes(32)
  const newer = randomBytes(32)
  const storage = await testStorage(t)
  const DATABASE_URL = await testDatabase(t)
  const env = { STORAGE_DIR: storage, DATABASE_URL }
  const app = await build(t, { ...env, MASTER_KEY: old.toString('base64') })
  const admin = await signUp(app)
  const { dossier } = await tree(app, admin)
  const contents = new Map<string, Buffer[]>()
  for (let i = 0; i < 4; i++) {
    const first = randomBytes(70_000 + i)
    const file = await uploadFile(app, admin, dossier, first, { filename: `f${i}` })
    const second = randomBytes(100 + i)
    await upload(app, admin, `/fichiers/${file.fichier.id}/version`, second)
    contents.set(file.fichier.id, [first, second])
  }
  const purged = await uploadFile(app, admin, dossier, randomBytes(10), { filename: 'purgé' })
  await app.inject({ method: 'DELETE', url: `/fichiers/${purged.fichier.id}`, headers: admin.headers })
  await app.inject({ method: 'DELETE', url: `/corbeille/fichier/${purged.fichier.id}`, headers: admin.headers })

  const blobRoot = localBlobRoot({ STORAGE_DIR: storage })
  const fingerprint = async () => Promise.all((await filesUnder(blobRoot)).sort().map(async (p) => `${p}:${sha256(await readFile(p))}`))
  const blobsBefore = await fingerprint()
  const both = createLocalKeySource(new Map([[1, old], [2, next]]))

  const partial = await rotateMasterKeys(app.db, both, { batchSize: 3, maxBatches: 1 })
  t.match(partial, { rewrapped: 3, remaining: 5, currentVersion: 2 }, 'interrupted after one batch')
  const resumed = await rotateMasterKeys(app.db, both, { batchSize: 3 })
  t.match(resumed, { rewrapped: 5, remaining: 0 }, 'a second run finishes the job')
  t.match(await rotateMasterKeys(app.db, both), { rewrapped: 0, remaining: 0, currentVersion: 2, removable: [1] }, 'idempotent')

  const keys = await app.db.selectFrom('cles_chiffrement').selectAll().where('organisation_id', '=', admin.organisationId).execute()
  t.ok(keys.filter((k) => k.cle_enveloppee).every((k) => k.version_cle_maitre === 2 && k.reenveloppee_at))
  t.same(keys.filter((k) => !k.cle_enveloppee).map((k) => k.fichier_id), [purged.fichier.id], 'a destroyed key stays destroyed')
  t.same(await fingerprint(), blobsBefore, 'no blob touched')
  t.ok((await journal(app, admin.organisationId)).some((e) => e.action === 'MASTER_KEY_ROTATED' && e.severite === 'HIGH'))

  t.test('the old master key is no longer needed', async (t) => {
    const onlyNew = await build(t, { ...env, MASTER_KEYS: `2:${next.toString('base64')}` })
    for (const [id, versions] of contents) {
      for (const [i, expected] of versions.entries()) {
        const res = await onlyNew.inject({ method: 'GET', url: `/fichiers/${id}/versions/${i + 1}/contenu`, headers: admin.headers })
        t.equal(res.statusCode, 200)
        t.ok(res.rawPayload.equals(expected), `${id} v${i + 1} reads under the new key alone`)
      }
    }
    const fresh = await uploadFile(onlyNew, admin, dossier, Buffer.from('après'), { filename: 'après' })
    const key = await onlyNew.db.selectFrom('versions_fichiers as v').innerJoin('cles_chiffrement as k', 'k.id', 'v.cle_id').select('k.version_cle_maitre').where('v.id', '=', fresh.version.id).executeTakeFirstOrThrow()
    t.equal(key.version_cle_maitre, 2, 'new keys are wrapped under the newest version')
  })

  t.test('npm run keys:rotate', async (t) => {
    const { stdout } = await run(process.execPath, ['--import', 'tsx', 'scripts/keys-rotate.ts'], {
      env: {
        ...process.env,
        DATABASE_URL,
        STORAGE_DIR: storage,
        MASTER_KEYS: `2:${next.toString('base64')},3:${newer.toString('base64')}`,
      },
    })
    t.match(stdout, /cles_chiffrement: 9 re-wrapped; all under version 3/)
    t.match(stdout, /done: 9 secrets re-wrapped; every wrapped secret is under master key version 3, versions 2 can be removed from MASTER_KEYS/)
    const onlyNewest = await build(t, { ...env, MASTER_KEYS: `3:${newer.toString('base64')}` })
    const [id, versions] = [...contents][0]!
    t.ok((await onlyNewest.inject({ method: 'GET', url: `/fichiers/${id}/contenu`, headers: admin.headers })).rawPayload.equals(versions[1]!))
  })
})
