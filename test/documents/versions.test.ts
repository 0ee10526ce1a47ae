import { randomBytes } from 'node:crypto'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { localBlobRoot } from '../../src/blobs.ts'
import { HEADER_SIZE } from '../../src/crypto/segmented.ts'
import { addMember, signUp } from '../helpers/auth.ts'
import { build, testStorage } from '../helpers/build.ts'
import { filesUnder, journal, sha256, storedRows, tree, upload, uploadFile } from './helpers.ts'

t.test('versions', async (t) => {
  const storage = await testStorage(t)
  const app = await build(t, { STORAGE_DIR: storage })
  const blobRoot = localBlobRoot({ STORAGE_DIR: storage })
  const admin = await signUp(app)
  const headers = admin.headers
  const { dossier } = await tree(app, admin)
  const v1 = randomBytes(70_000)
  const v2 = randomBytes(1_000)
  const v3 = Buffer.from('troisième version')
  const file = await uploadFile(app, admin, dossier, v1, { filename: 'budget.xlsx', type: 'application/vnd.ms-excel' })
  const id = file.fichier.id
  const contentOf = async (n?: number) =>
    (await app.inject({ method: 'GET', url: n ? `/fichiers/${id}/versions/${n}/contenu` : `/fichiers/${id}/contenu`, headers })).rawPayload

  t.test('a new version archives the previous one, intact', async (t) => {
    const second = await upload(app, admin, `/fichiers/${id}/version`, v2, { filename: 'budget (2).xlsx', type: 'text/csv' })
    t.equal(second.statusCode, 201)
    t.match(second.json(), {
      fichier: { id, nom: 'budget.xlsx', version_courante: 2, nombre_versions: 2, taille: v2.length, type_mime: 'text/csv' },
      version: { version_number: 2, nom: 'budget.xlsx', courante: true },
      sha256: sha256(v2),
    })
    await upload(app, admin, `/fichiers/${id}/version`, v3, { headers: { 'x-checksum-sha256': sha256(v3) } })
    t.same(await contentOf(), v3)
    t.same(await contentOf(1), v1)
    t.same(await contentOf(2), v2)

    const page1 = (await app.inject({ method: 'GET', url: `/fichiers/${id}/versions?limit=2`, headers })).json()
    t.same(page1.items.map((v: { version_number: number; courante: boolean }) => [v.version_number, v.courante]), [[3, true], [2, false]])
    const page2 = (await app.inject({ method: 'GET', url: `/fichiers/${id}/versions?limit=2&cursor=${page1.next_cursor}`, headers })).json()
    t.match(page2, { items: [{ version_number: 1, taille: v1.length, sha256: sha256(v1), type_mime: 'application/vnd.ms-excel', created_by: admin.userId }], next_cursor: null })

    const keys = await app.db.selectFrom('versions_fichiers').select(['cle_id', 'blob']).where('fichier_id', '=', id).execute()
    t.equal(new Set(keys.map((k) => k.cle_id)).size, 3, 'a data key per version')
    t.equal(new Set(keys.map((k) => k.blob)).size, 3, 'a blob per version')
    t.equal((await storedRows(app, admin.organisationId)).stockage, v1.length + v2.length + v3.length, 'every version counts')
  })

  t.test('restoring makes the old content a new version; nothing is overwritten', async (t) => {
    const res = await app.inject({ method: 'POST', url: `/fichiers/${id}/versions/1/restaurer`, headers })
    t.equal(res.statusCode, 201)
    t.match(res.json(), { version: { version_number: 4, restauree_depuis: 1, courante: true, sha256: sha256(v1) }, fichier: { version_courante: 4, taille: v1.length, type_mime: 'application/vnd.ms-excel' } })
    t.same(await contentOf(), v1)
    for (const [n, expected] of [[1, v1], [2, v2], [3, v3], [4, v1]] as const) t.same(await contentOf(n), expected, `version ${n}`)
    const blobs = await app.db.selectFrom('versions_fichiers').select(['version_number', 'blob', 'cle_id']).where('fichier_id', '=', id).orderBy('version_number').execute()
    t.not(blobs[3]?.blob, blobs[0]?.blob, 'a copy, under its own key')
    t.not(blobs[3]?.cle_id, blobs[0]?.cle_id)
    const entry = (await journal(app, admin.organisationId)).find((e) => e.action === 'FILE_VERSION_RESTORED')
    t.match(entry, { action: 'FILE_VERSION_RESTORED', severite: 'MEDIUM', cible_id: id, details: { depuis: 1, version_number: 4 } })
    t.equal((await app.inject({ method: 'POST', url: `/fichiers/${id}/versions/9/restaurer`, headers })).statusCode, 404)
    const lecteur = await addMember(app, admin, 'lecteur')
    t.equal((await app.inject({ method: 'POST', url: `/fichiers/${id}/versions/1/restaurer`, headers: lecteur.headers })).statusCode, 403)
  })

  t.test('restoring a damaged version stores nothing', async (t) => {
    const v = await app.db.selectFrom('versions_fichiers').select('blob').where('fichier_id', '=', id).where('version_number', '=', 2).executeTakeFirstOrThrow()
    const path = join(blobRoot, v.blob.slice(0, 2), v.blob.slice(2, 4), v.blob)
    const original = await readFile(path)
    const tampered = Buffer.from(original)
    tampered[HEADER_SIZE]! ^= 1
    await writeFile(path, tampered)
    const before = await storedRows(app, admin.organisationId)
    const blobsBefore = await filesUnder(blobRoot)
    const res = await app.inject({ method: 'POST', url: `/fichiers/${id}/versions/2/restaurer`, headers })
    t.equal(res.statusCode, 500)
    t.equal(res.json().code, 'INTEGRITY_ERROR')
    t.same(await storedRows(app, admin.organisationId), before)
    t.same(await filesUnder(blobRoot), blobsBefore)
    t.match((await journal(app, admin.organisationId)).at(-1), { action: 'FILE_INTEGRITY_FAILED', severite: 'CRITICAL' })
    await writeFile(path, original)
  })
})
