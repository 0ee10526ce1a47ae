import { randomBytes } from 'node:crypto'
import { copyFile, mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import t from 'tap'
import { keyAad } from '../../plugins/documents/content.ts'
import { localBlobRoot } from '../../src/blobs.ts'
import { createDecryptStream } from '../../src/crypto/segmented.ts'
import { signUp } from '../helpers/auth.ts'
import { build, testStorage } from '../helpers/build.ts'
import { filesUnder, journal, sha256, storedRows, tree, upload, uploadFile } from './helpers.ts'

async function decrypts(blob: Buffer, key: Buffer, aad: string): Promise<boolean> {
  try {
    for await (const _chunk of Readable.from([blob]).pipe(createDecryptStream({ key, aad }))) {
      // drained
    }
    return true
  } catch {
    return false
  }
}

t.test('purging shreds the data keys and removes the blobs', async (t) => {
  const storage = await testStorage(t)
  const app = await build(t, { STORAGE_DIR: storage })
  const blobRoot = localBlobRoot({ STORAGE_DIR: storage })
  const admin = await signUp(app)
  const headers = admin.headers
  const { dossier } = await tree(app, admin)
  const v1 = randomBytes(100_000)
  const v2 = randomBytes(5_000)
  const file = await uploadFile(app, admin, dossier, v1, { filename: 'à détruire.bin' })
  await upload(app, admin, `/fichiers/${file.fichier.id}/version`, v2)
  const keep = await uploadFile(app, admin, dossier, randomBytes(10), { filename: 'gardé.bin' })

  const versions = await app.db.selectFrom('versions_fichiers').selectAll().where('fichier_id', '=', file.fichier.id).orderBy('version_number').execute()
  const keyIds = versions.map((v) => v.cle_id)
  const pathOf = (name: string) => join(blobRoot, name.slice(0, 2), name.slice(2, 4), name)
  // What an attacker might hold later: copies of the encrypted blobs.
  const vault = await mkdtemp(join(tmpdir(), 'armoire-copie-'))
  t.teardown(() => rm(vault, { recursive: true, force: true }))
  for (const v of versions) await copyFile(pathOf(v.blob), join(vault, v.blob))
  const usageBefore = (await storedRows(app, admin.organisationId)).stockage

  t.equal((await app.inject({ method: 'DELETE', url: `/fichiers/${file.fichier.id}`, headers })).statusCode, 204)
  t.ok(await app.blobs.exists(versions[0]!.blob), 'the trash keeps the content')
  t.equal((await app.inject({ method: 'DELETE', url: `/corbeille/fichier/${file.fichier.id}`, headers })).statusCode, 204)

  const keys = await app.db.selectFrom('cles_chiffrement').selectAll().where('id', 'in', keyIds).execute()
  t.equal(keys.length, 2, 'the key rows remain, as evidence')
  for (const key of keys) {
    t.equal(key.cle_enveloppee, null, 'no key material left')
    t.ok(key.detruite_at instanceof Date)
    t.equal(key.detruite_par, admin.userId)
  }
  t.equal((await app.db.selectFrom('versions_fichiers').select('id').where('fichier_id', '=', file.fichier.id).execute()).length, 0)
  for (const v of versions) t.equal(await app.blobs.exists(v.blob), false, 'blob removed')
  t.equal((await storedRows(app, admin.organisationId)).stockage, usageBefore - v1.length - v2.length)
  t.equal((await filesUnder(blobRoot)).filter((p) => !p.startsWith(join(blobRoot, 'tmp'))).length, 1, 'only the other file’s blob is left')

  const entry = (await journal(app, admin.organisationId)).find((e) => e.action === 'PURGED' && e.cible_id === file.fichier.id)
  t.match(entry, {
    severite: 'HIGH',
    utilisateur_id: admin.userId,
    cible_nom: 'à détruire.bin',
    details: {
      automatique: false,
      cles_detruites: 2,
      versions: [
        { version_id: versions[0]!.id, version_number: 1, taille: v1.length, sha256: sha256(v1), cle_id: keyIds[0] },
        { version_id: versions[1]!.id, version_number: 2, taille: v2.length, sha256: sha256(v2), cle_id: keyIds[1] },
      ],
    },
  })

  t.test('a copy of a purged blob cannot be read back', async (t) => {
    const copy = await readFile(join(vault, versions[0]!.blob))
    t.equal(copy.subarray(0, 4).toString(), 'ARM1', 'the copy is a real blob')
    t.equal(copy.indexOf(v1.subarray(0, 64)), -1, 'holding no plaintext')
    // Every key still in the database, unwrapped with the master key, fails on it; so does the master key itself.
    const live = await app.db.selectFrom('cles_chiffrement').selectAll().where('cle_enveloppee', 'is not', null).execute()
    t.ok(live.length >= 1)
    for (const row of live) {
      const dataKey = await app.keys.unwrap(row.cle_enveloppee!, row.version_cle_maitre, keyAad(row.id))
      t.equal(await decrypts(copy, dataKey, versions[0]!.id), false, `not under key ${row.id}`)
    }
    const masterKey = Buffer.from((await readFile(join(storage, 'master.key'), 'utf8')).trim(), 'base64')
    t.equal(await decrypts(copy, masterKey, versions[0]!.id), false, 'nor under the master key')
    t.equal((await app.inject({ method: 'GET', url: `/fichiers/${file.fichier.id}/contenu`, headers })).statusCode, 404)
  })

  t.test('purging a container shreds every file below it', async (t) => {
    const other = await tree(app, admin)
    const a = await uploadFile(app, admin, other.dossier, randomBytes(300), { filename: 'a' })
    const sub = (await app.inject({ method: 'POST', url: `/dossiers/${other.dossier}/dossiers`, headers, payload: { nom: 'sous' } })).json()
    const b = await uploadFile(app, admin, sub.id, randomBytes(200), { filename: 'b' })
    await app.inject({ method: 'DELETE', url: `/casiers/${other.casier}?recursif=true`, headers })
    t.equal((await app.inject({ method: 'DELETE', url: `/corbeille/casier/${other.casier}`, headers })).statusCode, 204)
    const shredded = await app.db
      .selectFrom('cles_chiffrement')
      .select(['fichier_id', 'cle_enveloppee'])
      .where('fichier_id', 'in', [a.fichier.id, b.fichier.id])
      .execute()
    t.equal(shredded.length, 2)
    t.ok(shredded.every((k) => k.cle_enveloppee === null))
    const entries = (await journal(app, admin.organisationId)).filter((e) => e.action === 'PURGED')
    t.match(entries.find((e) => e.cible_id === other.casier), { cible_type: 'casier', details: { fichiers: 2, dossiers: 2, octets: 500 } })
    t.ok(entries.some((e) => e.cible_id === b.fichier.id), 'one entry per destroyed file')
    t.equal((await app.inject({ method: 'GET', url: `/fichiers/${keep.fichier.id}/contenu`, headers })).statusCode, 200, 'the rest is untouched')
  })
})
