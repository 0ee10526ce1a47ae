import { randomBytes } from 'node:crypto'
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import yazl from 'yazl'
import type { RestaurationDto, SauvegardeDto } from '../../openapi/backup.ts'
import { localBlobRoot } from '../../src/blobs.ts'
import { addMember, type Member, signUp } from '../helpers/auth.ts'
import { build, testStorage } from '../helpers/build.ts'
import { filesUnder, journal, multipart, sha256, tree, upload, uploadFile } from '../documents/helpers.ts'
import { archive, backup, externalCheck, readZip, settled } from './helpers.ts'

async function importZip(app: FastifyInstance, member: Member, zip: Buffer, part = 'archive') {
  const body = multipart([{ name: part, filename: 'sauvegarde.zip', type: 'application/zip', content: zip }])
  return app.inject({ method: 'POST', url: '/sauvegardes/import', headers: { ...member.headers, ...body.headers }, payload: body.payload })
}

async function restore(app: FastifyInstance, member: Member, backupId: string, body: Record<string, unknown> = {}): Promise<RestaurationDto> {
  const res = await app.inject({ method: 'POST', url: `/sauvegardes/${backupId}/restaurer`, headers: member.headers, payload: body })
  if (res.statusCode !== 202) throw new Error(`restore: ${res.statusCode} ${res.body}`)
  return settled<RestaurationDto>(app, member, `/restaurations/${res.json().id}`)
}

/** A ZIP built by yazl from these entries (deflated unless said). */
async function zipOf(entries: { name: string; data: Buffer; compress?: boolean }[]): Promise<Buffer> {
  const zip = new yazl.ZipFile()
  for (const e of entries) zip.addBuffer(e.data, e.name, { compress: e.compress ?? true })
  zip.end()
  const chunks: Buffer[] = []
  for await (const c of zip.outputStream as AsyncIterable<Buffer>) chunks.push(c)
  return Buffer.concat(chunks)
}

/** Every occurrence of `from` replaced by `to` (same length): a name yazl would refuse, written in afterwards. */
function patched(buf: Buffer, from: string, to: string): Buffer {
  const out = Buffer.from(buf)
  const needle = Buffer.from(from)
  for (let i = out.indexOf(needle); i !== -1; i = out.indexOf(needle, i + 1)) Buffer.from(to).copy(out, i)
  return out
}

t.test('import', async (t) => {
  const scratch = await testStorage(t)
  const app = await build(t, { STORAGE_DIR: await testStorage(t) })
  const admin = await signUp(app)
  const { armoire, dossier } = await tree(app, admin, 'Paie')
  const sub = (await app.inject({ method: 'POST', url: `/dossiers/${dossier}/dossiers`, headers: admin.headers, payload: { nom: 'Bulletins' } })).json().id
  const pdf1 = randomBytes(120_000)
  const pdf2 = randomBytes(90_000)
  const text = Buffer.from('Bulletin de paie, ligne répétée.\n'.repeat(4_000))
  const contract = await uploadFile(app, admin, dossier, pdf1, { filename: 'Contrat.pdf', type: 'application/pdf' })
  await upload(app, admin, `/fichiers/${contract.fichier.id}/version`, pdf2, { filename: 'Contrat.pdf', type: 'application/pdf' })
  await uploadFile(app, admin, sub, text, { filename: 'janvier.txt', type: 'text/plain' })
  await uploadFile(app, admin, sub, Buffer.alloc(0), { filename: 'vide.bin' })
  const small = await uploadFile(app, admin, sub, randomBytes(4_000), { filename: 'petit.pdf', type: 'application/pdf' })
  const saved = await backup(app, admin, { type: 'armoire', cible_id: armoire, versions: 'toutes' })
  t.equal(saved.statut, 'terminee')
  const zip = await archive(app, admin, saved.id)
  const original = await readZip(zip)

  t.test('an archive exported from one instance is imported into a fresh one, verified, and restored byte for byte', async (t) => {
    const fresh = await build(t, { STORAGE_DIR: await testStorage(t) })
    const other = await signUp(fresh, { organisation: 'Reprise' })
    const res = await importZip(fresh, other, zip)
    t.equal(res.statusCode, 201, res.body)
    const imported = res.json() as SauvegardeDto
    t.match(imported, {
      declencheur: 'import',
      statut: 'terminee',
      type: 'armoire',
      cible_id: armoire,
      versions: 'toutes',
      taille: zip.length,
      sha256: sha256(zip),
      verification: { valide: true, erreurs: [] },
      contenu: {
        nom: 'Armoire Paie',
        type: 'armoire',
        version_number: 1,
        nombre_fichiers: 4,
        nombre_versions: 5,
        origine: { organisation_id: admin.organisationId, sauvegarde_id: saved.id },
      },
      created_by: other.userId,
    })
    t.ok(imported.verifiee_le)
    t.match((await journal(fresh, other.organisationId)).filter((e) => e.action === 'BACKUP_IMPORTED'), [
      { cible_type: 'sauvegarde', cible_id: imported.id, resultat: 'succes', details: { sha256: sha256(zip), fichiers: 5 } },
    ])
    t.match((await fresh.inject({ method: 'POST', url: `/sauvegardes/${imported.id}/verifier`, headers: other.headers })).json(), { valide: true, fichiers: 5 })
    t.same(await archive(fresh, other, imported.id), zip, 'stored encrypted, read back whole')

    const done = await restore(fresh, other, imported.id)
    t.match(done, { statut: 'terminee', rapport: { echecs: 0, crees: 8 } })
    // What is now in the fresh instance, read back through a backup of its own.
    const copy = await readZip(await archive(fresh, other, (await backup(fresh, other, { type: 'systeme', versions: 'toutes' })).id))
    const files = [...original.values()].filter((e) => e.name !== 'manifest.json' && !e.name.endsWith('/'))
    t.equal(files.length, 5)
    for (const entry of files) t.same(copy.get(entry.name)?.data, entry.data, `${entry.name} is byte-identical`)
    const restoredContract = done.rapport!.elements.find((e) => e.source_id === contract.fichier.id)!
    t.same((await fresh.inject({ method: 'GET', url: `/fichiers/${restoredContract.id}/contenu`, headers: other.headers })).rawPayload, pdf2)
    const versions = (await fresh.inject({ method: 'GET', url: `/fichiers/${restoredContract.id}/versions`, headers: other.headers })).json().items
    t.match(versions, [{ version_number: 2, sha256: sha256(pdf2) }, { version_number: 1, sha256: sha256(pdf1) }], 'every version came across')
    const again = await restore(fresh, other, imported.id)
    t.match(again.rapport, { crees: 0, nouvelles_versions: 0, identiques: 4 }, 'a re-run finds everything there')
  })

  t.test('into another organisation of the same instance', async (t) => {
    const other = await signUp(app, { organisation: 'Filiale' })
    const res = await importZip(app, other, zip)
    t.equal(res.statusCode, 201, res.body)
    const done = await restore(app, other, res.json().id)
    t.match(done, { statut: 'terminee', rapport: { echecs: 0, crees: 8 } })
    t.not(done.rapport!.elements.find((e) => e.type === 'armoire')!.id, armoire, 'a copy under new ids: the original stays the original organisation’s')
    const listed = (await app.inject({ method: 'GET', url: '/sauvegardes?limit=100', headers: other.headers })).json().items
    t.match(listed, [{ declencheur: 'import' }])
    t.equal((await app.inject({ method: 'GET', url: '/armoires', headers: admin.headers })).json().items.length, 1, 'the exporting organisation is untouched')
  })

  t.test('refused archives answer a stable code and leave nothing behind', async (t) => {
    const storage = await testStorage(t)
    const guarded = await build(t, {
      STORAGE_DIR: storage,
      STORAGE_QUOTA_BYTES: '200000',
      BACKUP_IMPORT_MAX_BYTES: String(2 * 1024 * 1024),
      BACKUP_IMPORT_MAX_ENTRIES: '20',
      BACKUP_IMPORT_MAX_RATIO: '50',
      BACKUP_IMPORT_MAX_EXPANDED_BYTES: String(64 * 1024 * 1024),
    })
    const victim = await signUp(guarded)
    const blobRoot = localBlobRoot({ STORAGE_DIR: storage })
    const smallBackup = await backup(app, admin, { type: 'fichier', cible_id: small.fichier.id })
    const smallZip = await archive(app, admin, smallBackup.id)
    const accepted = await importZip(guarded, victim, smallZip)
    t.equal(accepted.statusCode, 201, 'the limits let an honest archive through')
    t.equal((await guarded.inject({ method: 'DELETE', url: `/sauvegardes/${accepted.json().id}`, headers: victim.headers })).statusCode, 204)
    const baselineKeys = await guarded.db.selectFrom('cles_chiffrement').select('id').where('sauvegarde_id', 'is not', null).execute()

    const manifest = Buffer.from(JSON.stringify({ format: 'armoire-sauvegarde', version_format: 1, organisation_id: victim.organisationId }))
    const zeros = Buffer.alloc(4 * 1024 * 1024)
    const tampered = Buffer.from(smallZip)
    const pdfAt = tampered.indexOf((await readZip(smallZip)).get('Armoire Paie/Casier Paie/Dossier Paie/Bulletins/petit.pdf')!.data.subarray(0, 64))
    t.ok(pdfAt > 0)
    tampered[pdfAt + 100]! ^= 0x20
    const declared = await zipOf([{ name: 'manifest.json', data: manifest }, { name: 'x.bin', data: Buffer.from('petit') }])
    // The central directory's uncompressed size of x.bin, made to lie (ZIP bomb by declaration).
    const central = declared.indexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02]), declared.indexOf(Buffer.from('x.bin')) + 1)
    const lying = Buffer.from(declared)
    lying.writeUInt32LE(0x7ffffff0, central + 24)

    const cases: [string, Buffer, number, string, RegExp][] = [
      ['not a ZIP', randomBytes(5_000), 422, 'ARCHIVE_INVALID', /pas une archive ZIP/],
      ['a ZIP without manifest', await zipOf([{ name: 'a.txt', data: Buffer.from('bonjour') }]), 422, 'ARCHIVE_INVALID', /manifest\.json manque/],
      ['a manifest that is not JSON', await zipOf([{ name: 'manifest.json', data: Buffer.from('{pas du json') }]), 422, 'ARCHIVE_INVALID', /pas du JSON/],
      ['a malformed manifest', await zipOf([{ name: 'manifest.json', data: manifest }]), 422, 'ARCHIVE_INVALID', /mal formé/],
      ['a ZIP bomb by ratio', await zipOf([{ name: 'manifest.json', data: manifest }, { name: 'zeros.bin', data: zeros }]), 422, 'ARCHIVE_INVALID', /se décompresse plus de 50 fois/],
      ['a ZIP bomb by declared size', lying, 422, 'ARCHIVE_INVALID', /déclarent plus de/],
      ['too many entries', await zipOf(Array.from({ length: 25 }, (_, i) => ({ name: `f${i}.txt`, data: Buffer.alloc(0) }))), 422, 'ARCHIVE_INVALID', /25 entrées/],
      ['an entry climbing out with ../', patched(await zipOf([{ name: 'manifest.json', data: manifest }, { name: 'zz/evil.txt', data: Buffer.from('x') }]), 'zz/evil', '../evil'), 422, 'ARCHIVE_INVALID', /sort de l’arborescence \(invalid relative path/],
      ['an absolute path', patched(await zipOf([{ name: 'manifest.json', data: manifest }, { name: 'Zetc/evil', data: Buffer.from('x') }]), 'Zetc/evil', '/etc/evil'), 422, 'ARCHIVE_INVALID', /sort de l’arborescence \(absolute path/],
      ['a backslash', patched(await zipOf([{ name: 'manifest.json', data: manifest }, { name: 'aZevil.txt', data: Buffer.from('x') }]), 'aZevil', 'a\\evil'), 422, 'ARCHIVE_INVALID', /sort de l’arborescence \(invalid characters/],
      ['a checksum mismatch', tampered, 422, 'BACKUP_TAMPERED', /CRC-32 incorrect|ne correspond pas/],
      ['over quota', zip, 409, 'QUOTA_EXCEEDED', /Quota/],
      ['too large', randomBytes(2 * 1024 * 1024 + 100_000), 413, 'PAYLOAD_TOO_LARGE', /taille/],
    ]
    for (const [label, body, status, code, detail] of cases) {
      const res = await importZip(guarded, victim, body)
      t.equal(res.statusCode, status, `${label}: ${res.body}`)
      t.match(res.headers['content-type'], /application\/problem\+json/)
      t.match(res.json(), { code, detail }, label)
      t.same(await guarded.db.selectFrom('sauvegardes').select('id').where('organisation_id', '=', victim.organisationId).execute(), [], `${label}: no backup row`)
      t.same(await guarded.db.selectFrom('cles_chiffrement').select('id').where('sauvegarde_id', 'is not', null).execute(), baselineKeys, `${label}: no key`)
      t.same((await filesUnder(blobRoot)).filter((f) => !f.includes('/tmp/') && !f.endsWith('.probe')), [], `${label}: no blob, not even a temp file`)
    }
    const refusals = (await journal(guarded, victim.organisationId)).filter((e) => e.action === 'BACKUP_IMPORTED' && e.resultat === 'echec')
    t.equal(refusals.length, cases.length, 'each refusal is journaled')
    t.match(refusals[0], { details: { raison: 'ARCHIVE_INVALID' } })

    const wrongPart = await importZip(guarded, victim, smallZip, 'fichier')
    t.equal(wrongPart.statusCode, 400)
    t.equal(wrongPart.json().code, 'VALIDATION_ERROR')
    const json = await guarded.inject({ method: 'POST', url: '/sauvegardes/import', headers: victim.headers, payload: {} })
    t.equal(json.statusCode, 415)
    t.equal(json.json().code, 'UNSUPPORTED_MEDIA_TYPE')
    const contributeur = await addMember(guarded, victim, 'contributeur')
    t.equal((await importZip(guarded, contributeur, smallZip)).statusCode, 403, 'admins only')
  })

  t.test('the imported archive passes unzip -t and 7z t once downloaded again', async (t) => {
    const res = await importZip(app, admin, zip)
    t.equal(res.statusCode, 201)
    const checked = await externalCheck(scratch, await archive(app, admin, res.json().id))
    t.match(checked.unzip, /No errors detected/)
    t.match(checked.sevenZip, /Everything is Ok/)
    t.match(res.json().contenu, { version_number: 2 }, 'ranked after the original backup of the same target')
  })
})
