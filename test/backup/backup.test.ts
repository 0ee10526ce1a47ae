import { randomBytes } from 'node:crypto'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import type { SauvegardeDto } from '../../openapi/backup.ts'
import { localBlobRoot } from '../../src/blobs.ts'
import { HEADER_SIZE } from '../../src/crypto/segmented.ts'
import { addMember, signUp } from '../helpers/auth.ts'
import { build, testStorage } from '../helpers/build.ts'
import { journal, sha256, tree, upload, uploadFile } from '../documents/helpers.ts'
import { archive, backup, externalCheck, manifestOf, readZip, settled } from './helpers.ts'

t.test('backups', async (t) => {
  const storage = await testStorage(t)
  const scratch = await testStorage(t)
  const app = await build(t, { STORAGE_DIR: storage })
  const blobRoot = localBlobRoot({ STORAGE_DIR: storage })
  const admin = await signUp(app)
  const headers = admin.headers
  const { armoire, casier, dossier } = await tree(app, admin, 'RH')
  const sub = (await app.inject({ method: 'POST', url: `/dossiers/${dossier}/dossiers`, headers, payload: { nom: 'Contrats' } })).json().id
  const pdf = randomBytes(200_000)
  const text = Buffer.from('Ligne de texte répétée, très compressible.\n'.repeat(5_000))
  const empty = Buffer.alloc(0)
  const contract = await uploadFile(app, admin, sub, pdf, { filename: 'ContratRH.pdf', type: 'application/pdf' })
  await uploadFile(app, admin, dossier, text, { filename: 'notes.txt', type: 'text/plain' })
  await uploadFile(app, admin, dossier, empty, { filename: 'vide.bin' })
  const odd = await uploadFile(app, admin, dossier, Buffer.from('barre'), { filename: 'ab.txt', type: 'text/plain', fields: { nom: 'a\\b.txt' } })
  const pdf2 = randomBytes(70_000)
  await upload(app, admin, `/fichiers/${contract.fichier.id}/version`, pdf2, { filename: 'ContratRH.pdf', type: 'application/pdf' })
  await app.inject({ method: 'POST', url: '/armoires', headers, payload: { nom: 'Autre' } })

  const root = 'Armoire RH/Casier RH/Dossier RH'
  let armoireBackup: SauvegardeDto

  t.test('an armoire backup is a real, encrypted ZIP mirroring the tree', async (t) => {
    const res = await app.inject({ method: 'POST', url: '/sauvegardes', headers, payload: { type: 'armoire', cible_id: armoire } })
    t.equal(res.statusCode, 202)
    t.match(res.json(), { statut: 'en_attente', type: 'armoire', cible_id: armoire, declencheur: 'manuel', versions: 'derniere' })
    armoireBackup = await settled(app, admin, `/sauvegardes/${res.json().id}`)
    t.match(armoireBackup, {
      statut: 'terminee',
      erreur: null,
      contenu: {
        nom: 'Armoire RH',
        type: 'armoire',
        version_number: 1,
        nombre_elements: 1,
        nombre_casiers: 1,
        nombre_dossiers: 2,
        nombre_fichiers: 4,
        nombre_versions: 4,
        octets_en_clair: pdf2.length + text.length + 5,
        created_by: admin.userId,
      },
      progression: { entrees_faites: 4, entrees_total: 4 },
    })
    const zip = await archive(app, admin, armoireBackup.id)
    t.equal(zip.length, armoireBackup.taille)
    t.equal(sha256(zip), armoireBackup.sha256)

    const checked = await externalCheck(scratch, zip)
    t.match(checked.unzip, /No errors detected/)
    t.match(checked.sevenZip, /Everything is Ok/)
    t.same(checked.listing.sort(), [
      'Armoire RH/',
      'Armoire RH/Casier RH/',
      `${root}/`,
      `${root}/Contrats/`,
      `${root}/Contrats/ContratRH.pdf`,
      `${root}/a_b.txt`,
      `${root}/notes.txt`,
      `${root}/vide.bin`,
      'manifest.json',
    ].sort())

    const entries = await readZip(zip)
    t.same(entries.get(`${root}/Contrats/ContratRH.pdf`)?.data, pdf2, 'byte-identical to what was stored')
    t.same(entries.get(`${root}/notes.txt`)?.data, text)
    t.same(entries.get(`${root}/vide.bin`)?.data, empty)
    t.equal(entries.get(`${root}/Contrats/ContratRH.pdf`)?.method, 0, 'a PDF is stored')
    t.equal(entries.get(`${root}/notes.txt`)?.method, 8, 'text is deflated')

    const manifest = manifestOf(entries)
    t.match(manifest, {
      format: 'armoire-sauvegarde',
      version_format: 1,
      organisation_id: admin.organisationId,
      sauvegarde: { id: armoireBackup.id, type: 'armoire', cible_id: armoire, versions: 'derniere' },
      ancetres: [],
    })
    t.same(manifest.conteneurs.map((c) => [c.type, c.chemin]), [
      ['armoire', 'Armoire RH'],
      ['casier', 'Armoire RH/Casier RH'],
      ['dossier', root],
      ['dossier', `${root}/Contrats`],
    ])
    const byName = new Map(manifest.fichiers.map((f) => [f.nom, f]))
    t.match(byName.get('ContratRH.pdf'), { id: contract.fichier.id, chemin: `${root}/Contrats/ContratRH.pdf`, version_courante: 2, versions: [{ version_number: 2, sha256: sha256(pdf2), taille: pdf2.length, type_mime: 'application/pdf' }] })
    t.match(byName.get('a\\b.txt'), { id: odd.fichier.id, chemin: `${root}/a_b.txt` }, 'the exact name stays in the manifest')
    for (const f of manifest.fichiers) for (const v of f.versions) t.equal(sha256(entries.get(v.entree)!.data), v.sha256, `sha256 of ${v.entree}`)

    const blob = await app.db.selectFrom('sauvegardes').select(['chemin', 'cle_id']).where('id', '=', armoireBackup.id).executeTakeFirstOrThrow()
    const stored = await readFile(join(blobRoot, blob.chemin!.slice(0, 2), blob.chemin!.slice(2, 4), blob.chemin!))
    t.equal(stored.subarray(0, 4).toString(), 'ARM1', 'stored in the segmented format')
    t.notOk(stored.includes(text.subarray(0, 40)), 'never in clear at rest')
    t.notOk(stored.includes(Buffer.from('manifest.json')))
    const key = await app.db.selectFrom('cles_chiffrement').selectAll().where('id', '=', blob.cle_id!).executeTakeFirstOrThrow()
    t.match(key, { sauvegarde_id: armoireBackup.id, fichier_id: null, organisation_id: admin.organisationId })
    t.ok(key.cle_enveloppee, 'its own wrapped data key')

    const actions = (await journal(app, admin.organisationId)).filter((e) => e.cible_id === armoireBackup.id).map((e) => e.action)
    t.same(actions, ['BACKUP_REQUESTED', 'BACKUP_STARTED', 'BACKUP_CREATED', 'BACKUP_DOWNLOADED'])
  })

  t.test('with every version, older ones go under .versions/', async (t) => {
    const done = await backup(app, admin, { type: 'dossier', cible_id: sub, versions: 'toutes' })
    t.match(done, { statut: 'terminee', contenu: { nom: 'Contrats', type: 'dossier', nombre_fichiers: 1, nombre_versions: 2, version_number: 1 } })
    const zip = await archive(app, admin, done.id)
    const checked = await externalCheck(scratch, zip)
    t.match(checked.sevenZip, /Everything is Ok/)
    const entries = await readZip(zip)
    t.same(entries.get(`${root}/Contrats/ContratRH.pdf`)?.data, pdf2)
    t.same(entries.get(`${root}/Contrats/.versions/ContratRH.v1.pdf`)?.data, pdf)
    const manifest = manifestOf(entries)
    t.same(manifest.ancetres.map((c) => c.chemin), ['Armoire RH', 'Armoire RH/Casier RH', root])
    t.same(manifest.fichiers[0]?.versions.map((v) => [v.version_number, v.entree]), [
      [1, `${root}/Contrats/.versions/ContratRH.v1.pdf`],
      [2, `${root}/Contrats/ContratRH.pdf`],
    ])
  })

  t.test('file and system backups; ranks count per target', async (t) => {
    const file = await backup(app, admin, { type: 'fichier', cible_id: contract.fichier.id })
    t.match(file.contenu, { nom: 'ContratRH.pdf', type: 'application/pdf', type_mime: 'application/pdf', taille: pdf2.length, version_number: 1 })
    const again = await backup(app, admin, { type: 'fichier', cible_id: contract.fichier.id })
    t.equal(again.contenu?.version_number, 2)
    const system = await backup(app, admin, { type: 'systeme' })
    t.match(system.contenu, { nom: 'Sauvegarde système', type: 'systeme', nombre_armoires: 2, nombre_dossiers: 2, nombre_fichiers: 4, version_number: 1 })
    const entries = await readZip(await archive(app, admin, system.id))
    t.ok(entries.has('Autre/'), 'an empty armoire is kept as a directory')
    const list = (await app.inject({ method: 'GET', url: '/sauvegardes?limit=2&type=fichier', headers })).json()
    t.same(list.items.map((b: SauvegardeDto) => b.id), [again.id, file.id])
    t.equal(list.next_cursor, null)
    const page1 = (await app.inject({ method: 'GET', url: '/sauvegardes?limit=3', headers })).json()
    const page2 = (await app.inject({ method: 'GET', url: `/sauvegardes?limit=3&cursor=${page1.next_cursor}`, headers })).json()
    t.equal(page1.items.length + page2.items.length, 5)
    t.same((await app.inject({ method: 'GET', url: `/sauvegardes?cible_id=${armoire}`, headers })).json().items.map((b: SauvegardeDto) => b.id), [armoireBackup.id])
  })

  t.test('download: ETag, ranges', async (t) => {
    const whole = await archive(app, admin, armoireBackup.id)
    const res = await app.inject({ method: 'GET', url: `/sauvegardes/${armoireBackup.id}/archive`, headers: { ...headers, range: 'bytes=70000-70099' } })
    t.equal(res.statusCode, 206)
    t.same(res.rawPayload, whole.subarray(70_000, 70_100))
    t.equal(res.headers['content-range'], `bytes 70000-70099/${whole.length}`)
    const full = await app.inject({ method: 'GET', url: `/sauvegardes/${armoireBackup.id}/archive`, headers })
    t.equal(full.headers.etag, `"${armoireBackup.sha256}"`)
    t.match(full.headers['content-disposition'], /^attachment; filename=sauvegarde-armoire-\d{8}-\d{6}\.zip$/)
    t.equal(full.headers['content-type'], 'application/zip')
    const cached = await app.inject({ method: 'GET', url: `/sauvegardes/${armoireBackup.id}/archive`, headers: { ...headers, 'if-none-match': full.headers.etag as string } })
    t.equal(cached.statusCode, 304)
  })

  t.test('verify: intact, then a tampered archive is reported', async (t) => {
    const ok = await app.inject({ method: 'POST', url: `/sauvegardes/${armoireBackup.id}/verifier`, headers })
    t.equal(ok.statusCode, 200)
    t.match(ok.json(), { valide: true, entrees: 5, fichiers: 4, erreurs: [] })
    t.match((await app.inject({ method: 'GET', url: `/sauvegardes/${armoireBackup.id}`, headers })).json(), { verification: { valide: true }, verifiee_le: String })

    const other = await backup(app, admin, { type: 'casier', cible_id: casier })
    const row = await app.db.selectFrom('sauvegardes').select('chemin').where('id', '=', other.id).executeTakeFirstOrThrow()
    const path = join(blobRoot, row.chemin!.slice(0, 2), row.chemin!.slice(2, 4), row.chemin!)
    const bytes = await readFile(path)
    bytes[HEADER_SIZE + 100]! ^= 1
    await writeFile(path, bytes)
    const bad = await app.inject({ method: 'POST', url: `/sauvegardes/${other.id}/verifier`, headers })
    t.equal(bad.statusCode, 200)
    t.match(bad.json(), { valide: false, erreurs: [/altérée|intacte/] })
    t.match((await journal(app, admin.organisationId)).at(-1), { action: 'BACKUP_VERIFIED', resultat: 'echec', severite: 'CRITICAL', cible_id: other.id })
  })

  t.test('delete: the key is shredded, then the blob; journaled', async (t) => {
    const done = await backup(app, admin, { type: 'fichier', cible_id: odd.fichier.id })
    const row = await app.db.selectFrom('sauvegardes').select(['chemin', 'cle_id']).where('id', '=', done.id).executeTakeFirstOrThrow()
    const res = await app.inject({ method: 'DELETE', url: `/sauvegardes/${done.id}`, headers })
    t.equal(res.statusCode, 204)
    const key = await app.db.selectFrom('cles_chiffrement').selectAll().where('id', '=', row.cle_id!).executeTakeFirstOrThrow()
    t.equal(key.cle_enveloppee, null)
    t.ok(key.detruite_at)
    t.equal(key.detruite_par, admin.userId)
    t.notOk(await app.blobs.exists(row.chemin!))
    t.equal((await app.inject({ method: 'GET', url: `/sauvegardes/${done.id}`, headers })).statusCode, 404)
    t.match((await journal(app, admin.organisationId)).at(-1), { action: 'BACKUP_DELETED', cible_id: done.id, details: { cle_detruite: row.cle_id } })
  })

  t.test('roles and organisations', async (t) => {
    const lecteur = await addMember(app, admin, 'lecteur')
    const contributeur = await addMember(app, admin, 'contributeur')
    t.equal((await app.inject({ method: 'POST', url: '/sauvegardes', headers: lecteur.headers, payload: { type: 'systeme' } })).statusCode, 403)
    t.equal((await app.inject({ method: 'GET', url: '/sauvegardes', headers: lecteur.headers })).statusCode, 200)
    t.equal((await app.inject({ method: 'GET', url: `/sauvegardes/${armoireBackup.id}`, headers: lecteur.headers })).statusCode, 200)
    const byContributor = await app.inject({ method: 'POST', url: '/sauvegardes', headers: contributeur.headers, payload: { type: 'dossier', cible_id: dossier } })
    t.equal(byContributor.statusCode, 202)
    for (const [method, url] of [
      ['GET', `/sauvegardes/${armoireBackup.id}/archive`],
      ['POST', `/sauvegardes/${armoireBackup.id}/verifier`],
      ['DELETE', `/sauvegardes/${armoireBackup.id}`],
      ['POST', `/sauvegardes/${armoireBackup.id}/restaurer`],
      
    ] as const) {
      t.equal((await app.inject({ method, url, headers: contributeur.headers, ...(method === 'POST' ? { payload: {} } : {}) })).statusCode, 403, `${method} ${url} is for admins`)
    }

    const stranger = await signUp(app, { organisation: 'Ailleurs' })
    t.equal((await app.inject({ method: 'GET', url: `/sauvegardes/${armoireBackup.id}`, headers: stranger.headers })).statusCode, 404)
    t.equal((await app.inject({ method: 'GET', url: `/sauvegardes/${armoireBackup.id}/archive`, headers: stranger.headers })).statusCode, 404)
    t.same((await app.inject({ method: 'GET', url: '/sauvegardes', headers: stranger.headers })).json().items, [])
    const foreign = await app.inject({ method: 'POST', url: '/sauvegardes', headers: stranger.headers, payload: { type: 'armoire', cible_id: armoire } })
    t.equal(foreign.statusCode, 404)
    t.equal(foreign.headers['content-type'], 'application/problem+json; charset=utf-8')
    t.equal(foreign.json().code, 'NOT_FOUND')
    const bad = await app.inject({ method: 'POST', url: '/sauvegardes', headers, payload: { type: 'systeme', cible_id: armoire } })
    t.equal(bad.statusCode, 422)
    t.equal(bad.json().code, 'INVALID_TARGET')
    t.equal((await app.inject({ method: 'POST', url: '/sauvegardes', headers, payload: { type: 'armoire' } })).json().code, 'INVALID_TARGET')
    t.equal((await app.inject({ method: 'POST', url: '/sauvegardes', headers, payload: { type: 'disque' } })).statusCode, 400)
  })
})

t.test('an archive that would pass the quota is refused before it is written', async (t) => {
  const app = await build(t, { STORAGE_QUOTA_BYTES: '300000' })
  const admin = await signUp(app)
  const { armoire, dossier } = await tree(app, admin)
  await uploadFile(app, admin, dossier, randomBytes(200_000), { filename: 'gros.bin' })
  const res = await app.inject({ method: 'POST', url: '/sauvegardes', headers: admin.headers, payload: { type: 'armoire', cible_id: armoire } })
  t.equal(res.statusCode, 409)
  t.equal(res.json().code, 'QUOTA_EXCEEDED')
  t.same((await app.inject({ method: 'GET', url: '/sauvegardes', headers: admin.headers })).json().items, [])
})
