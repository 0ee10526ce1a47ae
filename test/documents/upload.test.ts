import { randomBytes } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { request as httpRequest } from 'node:http'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { addMember, signUp } from '../helpers/auth.ts'
import { localBlobRoot } from '../../src/blobs.ts'
import { build, listen, testStorage } from '../helpers/build.ts'
import { filesUnder, journal, multipart, sha256, storedRows, tree, upload, uploadFile } from './helpers.ts'

const MAX = 2 * 1024 * 1024

t.test('uploads', async (t) => {
  const storage = await testStorage(t)
  const app = await build(t, { STORAGE_DIR: storage, UPLOAD_MAX_BYTES: String(MAX) })
  const blobRoot = localBlobRoot({ STORAGE_DIR: storage })
  const admin = await signUp(app)
  const headers = admin.headers

  /** Polls until `check` holds; uploads that fail clean up after the response. */
  async function eventually(check: () => Promise<boolean>, what: string): Promise<void> {
    for (let i = 0; i < 200; i++) {
      if (await check()) return
      await sleep(25)
    }
    throw new Error(`never: ${what}`)
  }

  async function nothingLeftBehind(t: { same: (a: unknown, b: unknown, msg: string) => void }, before: Awaited<ReturnType<typeof storedRows>>, blobsBefore: string[]) {
    await eventually(async () => (await filesUnder(blobRoot)).length === blobsBefore.length, 'no blob left')
    t.same(await filesUnder(blobRoot), blobsBefore, 'no blob and no temp file left')
    t.same(await storedRows(app, admin.organisationId), before, 'no row left, storage unchanged')
  }

  t.test('the receipt, the rows, and a blob that holds no plaintext', async (t) => {
    const { dossier } = await tree(app, admin)
    const content = Buffer.concat([Buffer.from('Contrat de travail — confidentiel. '), randomBytes(150_000)])
    const res = await upload(app, admin, `/dossiers/${dossier}/fichiers`, content, { filename: 'Contrat été 2025.pdf', type: 'application/pdf' })
    t.equal(res.statusCode, 201)
    const body = res.json()
    t.match(body, {
      fichier: { dossier_id: dossier, nom: 'Contrat été 2025.pdf', type_mime: 'application/pdf', taille: content.length, version_courante: 1 },
      version: { version_number: 1, courante: true, nom: 'Contrat été 2025.pdf', created_by: admin.userId, restauree_depuis: null },
      sha256: sha256(content),
      taille: content.length,
    })
    t.notOk('suppression_locale' in body)
    t.ok(Date.parse(body.stocke_le) <= Date.now())

    const version = await app.db.selectFrom('versions_fichiers').selectAll().where('id', '=', body.version.id).executeTakeFirstOrThrow()
    const key = await app.db.selectFrom('cles_chiffrement').selectAll().where('id', '=', version.cle_id).executeTakeFirstOrThrow()
    t.match(key, { organisation_id: admin.organisationId, version_id: version.id, algorithme: 'AES-256-GCM', version_cle_maitre: 1 })
    t.equal(key.cle_enveloppee?.length, 60, 'wrapped: nonce, key, tag')
    t.match(version.blob, /^[0-9a-f]{32}$/, 'a random name')
    const blob = await readFile(join(blobRoot, version.blob.slice(0, 2), version.blob.slice(2, 4), version.blob))
    t.equal(blob.length, version.taille_chiffree)
    t.equal(blob.subarray(0, 4).toString(), 'ARM1')
    t.same(blob.subarray(4, 11), version.nonce_prefixe)
    t.equal(blob.indexOf(Buffer.from('Contrat de travail')), -1, 'no plaintext on disk')
    t.equal(blob.indexOf(content.subarray(1000, 1032)), -1)

    const entry = (await journal(app, admin.organisationId)).at(-1)
    t.match(entry, { action: 'FILE_UPLOADED', cible_type: 'fichier', cible_id: body.fichier.id, resultat: 'succes' })
    t.match(entry?.details, { version_number: 1, sha256: sha256(content), taille: content.length })
  })

  t.test('text fields before or after the file, and local deletion after upload', async (t) => {
    const { dossier } = await tree(app, admin)
    const content = Buffer.from('à effacer du poste')
    const body = multipart([
      { name: 'fichier', filename: 'ignored.txt', type: 'text/plain; charset=utf-8', content },
      { name: 'nom', value: '  Note de frais.txt ' },
      { name: 'sha256', value: sha256(content).toUpperCase() },
      { name: 'delete_after_upload', value: 'true' },
    ])
    const res = await app.inject({ method: 'POST', url: `/dossiers/${dossier}/fichiers`, headers: { ...headers, ...body.headers }, payload: body.payload })
    t.equal(res.statusCode, 201)
    const receipt = res.json()
    t.equal(receipt.fichier.nom, 'Note de frais.txt')
    t.equal(receipt.fichier.type_mime, 'text/plain')
    t.same(receipt.suppression_locale, { autorisee: true, sha256: sha256(content) })

    const viaQuery = await upload(app, admin, `/dossiers/${dossier}/fichiers`, content, { filename: 'b.txt', query: 'delete_after_upload=true' })
    t.same(viaQuery.json().suppression_locale, { autorisee: true, sha256: sha256(content) })

    const url = `/fichiers/${receipt.fichier.id}/versions/1/suppression-locale`
    const wrong = await app.inject({ method: 'POST', url, headers, payload: { appareil: 'PC-COMPTA-02', sha256: sha256('autre chose') } })
    t.equal(wrong.statusCode, 422)
    t.equal(wrong.json().code, 'CHECKSUM_MISMATCH')
    const ok = await app.inject({ method: 'POST', url, headers, payload: { appareil: 'PC-COMPTA-02', sha256: sha256(content) } })
    t.equal(ok.statusCode, 200)
    t.match(ok.json(), { fichier_id: receipt.fichier.id, version_number: 1, appareil: 'PC-COMPTA-02', sha256: sha256(content) })
    const missing = await app.inject({ method: 'POST', url: `/fichiers/${receipt.fichier.id}/versions/9/suppression-locale`, headers, payload: { appareil: 'x', sha256: sha256(content) } })
    t.equal(missing.statusCode, 404)
    const entries = (await journal(app, admin.organisationId)).filter((e) => e.action === 'FILE_LOCAL_DELETION')
    t.same(entries.map((e) => e.resultat), ['refus', 'succes'])
    t.match(entries[1]?.details, { appareil: 'PC-COMPTA-02', version_number: 1 })
  })

  t.test('a checksum that does not match leaves nothing behind', async (t) => {
    const { dossier } = await tree(app, admin)
    const before = await storedRows(app, admin.organisationId)
    const blobsBefore = await filesUnder(blobRoot)
    const content = randomBytes(100_000)
    const viaHeader = await upload(app, admin, `/dossiers/${dossier}/fichiers`, content, { headers: { 'x-checksum-sha256': sha256('autre') } })
    t.equal(viaHeader.statusCode, 422)
    t.equal(viaHeader.json().code, 'CHECKSUM_MISMATCH')
    const body = multipart([
      { name: 'fichier', filename: 'x.bin', content },
      { name: 'sha256', value: sha256('autre') },
    ])
    const viaField = await app.inject({ method: 'POST', url: `/dossiers/${dossier}/fichiers`, headers: { ...headers, ...body.headers }, payload: body.payload })
    t.equal(viaField.statusCode, 422, 'a field after the content is checked too')
    await nothingLeftBehind(t, before, blobsBefore)
    const good = await upload(app, admin, `/dossiers/${dossier}/fichiers`, content, { headers: { 'x-checksum-sha256': sha256(content) } })
    t.equal(good.statusCode, 201)
    const failures = (await journal(app, admin.organisationId)).filter((e) => e.action === 'FILE_UPLOADED' && e.resultat === 'echec')
    t.ok(failures.length >= 2 && failures.every((e) => (e.details as { raison: string }).raison === 'CHECKSUM_MISMATCH'))
  })

  t.test('a file over the size limit leaves nothing behind', async (t) => {
    const { dossier } = await tree(app, admin)
    const before = await storedRows(app, admin.organisationId)
    const blobsBefore = await filesUnder(blobRoot)
    const res = await upload(app, admin, `/dossiers/${dossier}/fichiers`, randomBytes(MAX + 1))
    t.equal(res.statusCode, 413)
    t.equal(res.json().code, 'PAYLOAD_TOO_LARGE')
    await nothingLeftBehind(t, before, blobsBefore)
    t.equal((await upload(app, admin, `/dossiers/${dossier}/fichiers`, randomBytes(MAX))).statusCode, 201, 'exactly the limit passes')
  })

  t.test('the quota: refused before storing beyond it, usage kept exact', async (t) => {
    const owner = await signUp(app, { organisation: 'Petite' })
    const { dossier } = await tree(app, owner)
    await app.db.insertInto('stockage_organisations').values({ organisation_id: owner.organisationId, quota_octets: 300_000 }).execute()
    await uploadFile(app, owner, dossier, randomBytes(200_000), { filename: 'a' })
    const blobsBefore = await filesUnder(blobRoot)
    const over = await upload(app, owner, `/dossiers/${dossier}/fichiers`, randomBytes(100_001), { filename: 'b' })
    t.equal(over.statusCode, 409)
    t.equal(over.json().code, 'QUOTA_EXCEEDED')
    t.equal(over.json().detail, 'Quota « stockage » de l’organisation dépassé : 300000 octets autorisés', 'the quota that applies, the organisation’s own')
    t.same(await filesUnder(blobRoot), blobsBefore)
    t.equal((await storedRows(app, owner.organisationId)).stockage, 200_000)
    await uploadFile(app, owner, dossier, randomBytes(100_000), { filename: 'c' })
    t.equal((await storedRows(app, owner.organisationId)).stockage, 300_000, 'up to the byte')
    const full = await upload(app, owner, `/dossiers/${dossier}/fichiers`, Buffer.alloc(0), { filename: 'd' })
    t.equal(full.json().code, 'QUOTA_EXCEEDED', 'a full vault takes nothing more')
    const version = await upload(app, owner, `/fichiers/${(await app.db.selectFrom('fichiers').select('id').where('organisation_id', '=', owner.organisationId).executeTakeFirstOrThrow()).id}/version`, randomBytes(10))
    t.equal(version.json().code, 'QUOTA_EXCEEDED', 'every version counts')
  })

  t.test('malformed uploads', async (t) => {
    const { dossier } = await tree(app, admin)
    const url = `/dossiers/${dossier}/fichiers`
    const json = await app.inject({ method: 'POST', url, headers, payload: { fichier: 'x' } })
    t.equal(json.statusCode, 415)
    t.equal(json.json().code, 'UNSUPPORTED_MEDIA_TYPE')
    const noFile = multipart([{ name: 'nom', value: 'x' }])
    const res = await app.inject({ method: 'POST', url, headers: { ...headers, ...noFile.headers }, payload: noFile.payload })
    t.equal(res.statusCode, 400)
    t.same(res.json().errors, [{ field: 'body.fichier', message: 'la partie « fichier » manque' }])
    const wrongPart = multipart([{ name: 'document', filename: 'a.txt', content: Buffer.from('a') }])
    t.equal((await app.inject({ method: 'POST', url, headers: { ...headers, ...wrongPart.headers }, payload: wrongPart.payload })).statusCode, 400)
    const twoFiles = multipart([
      { name: 'fichier', filename: 'a.txt', content: Buffer.from('a') },
      { name: 'fichier', filename: 'b.txt', content: Buffer.from('b') },
    ])
    t.equal((await app.inject({ method: 'POST', url, headers: { ...headers, ...twoFiles.headers }, payload: twoFiles.payload })).statusCode, 413, 'one file per upload')
    const badName = await upload(app, admin, url, Buffer.from('a'), { fields: { nom: 'a/b' } })
    t.equal(badName.statusCode, 400)
    t.same(badName.json().errors.map((e: { field: string }) => e.field), ['body.nom'])

    await uploadFile(app, admin, dossier, Buffer.from('a'), { filename: 'pris.txt' })
    const taken = await upload(app, admin, url, Buffer.from('b'), { filename: 'PRIS.TXT' })
    t.equal(taken.statusCode, 409)
    t.equal(taken.json().code, 'NAME_CONFLICT')
    const takenNom = await upload(app, admin, url, Buffer.from('b'), { filename: 'libre.txt', fields: { nom: 'Pris.txt' } })
    t.equal(takenNom.json().code, 'NAME_CONFLICT', 'a `nom` before the file is checked before its content')

    // A `nom` after the file part wins over the part's file name, taken or invalid.
    for (const filename of ['pris.txt', 'x'.repeat(300)]) {
      const late = multipart([
        { name: 'fichier', filename, content: Buffer.from('c') },
        { name: 'nom', value: `renommé-${filename.length}.txt` },
      ])
      const res = await app.inject({ method: 'POST', url, headers: { ...headers, ...late.headers }, payload: late.payload })
      t.equal(res.statusCode, 201, res.body)
      t.equal(res.json().fichier.nom, `renommé-${filename.length}.txt`)
    }
    const lateTaken = multipart([
      { name: 'fichier', filename: 'libre-2.txt', content: Buffer.from('d') },
      { name: 'nom', value: 'PRIS.txt' },
    ])
    const refused = await app.inject({ method: 'POST', url, headers: { ...headers, ...lateTaken.headers }, payload: lateTaken.payload })
    t.equal(refused.json().code, 'NAME_CONFLICT', 'a late `nom` that is taken is refused once read')
    const lecteur = await addMember(app, admin, 'lecteur')
    t.equal((await upload(app, lecteur, url, Buffer.from('a'), { filename: 'l.txt' })).statusCode, 403)
    t.equal((await upload(app, admin, `/dossiers/${admin.userId}/fichiers`, Buffer.from('a'))).statusCode, 404)
  })

  t.test('concurrent uploads into one folder are all stored and counted', async (t) => {
    const owner = await signUp(app, { organisation: 'Concurrence' })
    const { dossier } = await tree(app, owner)
    const contents = Array.from({ length: 12 }, (_, i) => randomBytes(20_000 + i))
    const results = await Promise.all(contents.map((c, i) => upload(app, owner, `/dossiers/${dossier}/fichiers`, c, { filename: `f${i}.bin` })))
    t.same(results.map((r) => r.statusCode), contents.map(() => 201))
    const rows = await storedRows(app, owner.organisationId)
    t.match(rows, { fichiers: 12, versions: 12, cles: 12, stockage: contents.reduce((s, c) => s + c.length, 0) })
    for (const [i, r] of results.entries()) t.equal(r.json().sha256, sha256(contents[i]!))
  })

  t.test('over a real socket: a streamed upload, and a client that aborts midway leaves nothing', async (t) => {
    const base = await listen(app)
    const { dossier } = await tree(app, admin)
    const content = randomBytes(MAX - 10)
    const form = new FormData()
    form.append('fichier', new Blob([content]), 'réseau.bin')
    const res = await fetch(`${base}/dossiers/${dossier}/fichiers`, { method: 'POST', headers, body: form })
    t.equal(res.status, 201)
    const receipt = (await res.json()) as { fichier: { id: string; nom: string }; sha256: string }
    t.equal(receipt.sha256, sha256(content))
    t.equal(receipt.fichier.nom, 'réseau.bin')
    const again = new FormData()
    again.append('nom', 'RÉSEAU.bin')
    again.append('fichier', new Blob([content]), 'autre.bin')
    const taken = await fetch(`${base}/dossiers/${dossier}/fichiers`, { method: 'POST', headers, body: again })
    t.equal(taken.status, 409, 'refused before the content is read, and the answer still arrives')
    t.equal(((await taken.json()) as { code: string }).code, 'NAME_CONFLICT')

    const before = await storedRows(app, admin.organisationId)
    const blobsBefore = await filesUnder(blobRoot)
    const boundary = 'armoire-abort'
    const url = new URL(`${base}/dossiers/${dossier}/fichiers`)
    const req = httpRequest({
      method: 'POST',
      host: url.hostname,
      port: url.port,
      path: url.pathname,
      headers: { ...headers, 'content-type': `multipart/form-data; boundary=${boundary}`, 'content-length': String(MAX) },
    })
    req.on('error', () => {})
    req.write(`--${boundary}\r\nContent-Disposition: form-data; name="fichier"; filename="coupé.bin"\r\n\r\n`)
    req.write(randomBytes(400_000))
    // Wait until the server is writing the encrypted temp blob, then vanish.
    await eventually(async () => (await filesUnder(join(blobRoot, 'tmp'))).length > 0, 'the upload started')
    req.destroy()
    await nothingLeftBehind(t, before, blobsBefore)
    await eventually(
      async () => (await journal(app, admin.organisationId)).some((e) => e.action === 'FILE_UPLOADED' && e.resultat === 'echec' && (e.details as { client_deconnecte?: boolean }).client_deconnecte === true),
      'the failure is journaled',
    )
    t.pass('the aborted upload is journaled as a failure')
  })
})
