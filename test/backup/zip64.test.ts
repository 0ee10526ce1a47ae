import { createHash, randomUUID } from 'node:crypto'
import t from 'tap'
import yazl from 'yazl'
import type { Manifest } from '../../plugins/backup/archive.ts'
import { signUp } from '../helpers/auth.ts'
import { build, testStorage } from '../helpers/build.ts'
import { multipart } from '../documents/helpers.ts'
import { archive, externalCheck } from './helpers.ts'

const ENTRIES = 65_600

// 65 600 entries read back one by one through the decryption, then by unzip and 7z: minutes on a loaded machine.
t.setTimeout(600_000)

t.test('an archive of more than 65 535 entries is ZIP64: imported, verified entry by entry through the decryption, and passes unzip -t and 7z t', async (t) => {
  const app = await build(t, { STORAGE_DIR: await testStorage(t) })
  const admin = await signUp(app)
  const now = new Date().toISOString()
  const ids = { armoire: randomUUID(), casier: randomUUID(), dossier: randomUUID() }
  const empty = createHash('sha256').update('').digest('hex')
  const container = (type: 'armoire' | 'casier' | 'dossier', chemin: string, parent: { type: 'armoire' | 'casier'; id: string } | null) =>
    ({ type, id: ids[type], nom: chemin.split('/').at(-1)!, parent, chemin, created_by: null, created_at: now })
  const manifest: Manifest = {
    format: 'armoire-sauvegarde',
    version_format: 1,
    organisation_id: randomUUID(),
    sauvegarde: { id: randomUUID(), type: 'armoire', cible_id: ids.armoire, versions: 'derniere', created_by: null, created_at: now },
    ancetres: [],
    conteneurs: [container('armoire', 'A', null), container('casier', 'A/C', { type: 'armoire', id: ids.armoire }), container('dossier', 'A/C/D', { type: 'casier', id: ids.casier })],
    fichiers: Array.from({ length: ENTRIES }, (_, i) => {
      const id = randomUUID()
      const nom = `f${i}.txt`
      const version = { id: randomUUID(), version_number: 1, nom, type_mime: 'text/plain', taille: 0, sha256: empty, entree: `A/C/D/${nom}`, restauree_depuis: null, created_by: null, created_at: now }
      return { id, dossier_id: ids.dossier, nom, chemin: version.entree, type_mime: 'text/plain', taille: 0, sha256: empty, version_courante: 1, created_by: null, created_at: now, versions: [version] }
    }),
    absents: [],
  }
  const zip = new yazl.ZipFile()
  for (const dir of ['A/', 'A/C/', 'A/C/D/']) zip.addEmptyDirectory(dir, {})
  for (const f of manifest.fichiers) zip.addBuffer(Buffer.alloc(0), f.chemin, { compress: false })
  zip.addBuffer(Buffer.from(JSON.stringify(manifest)), 'manifest.json', { compress: true })
  zip.end()
  const chunks: Buffer[] = []
  for await (const c of zip.outputStream as AsyncIterable<Buffer>) chunks.push(c)
  const bytes = Buffer.concat(chunks)
  t.ok(bytes.includes(Buffer.from([0x50, 0x4b, 0x06, 0x06])), 'a ZIP64 end of central directory record')

  const body = multipart([{ name: 'archive', filename: 'zip64.zip', type: 'application/zip', content: bytes }])
  const res = await app.inject({ method: 'POST', url: '/sauvegardes/import', headers: { ...admin.headers, ...body.headers }, payload: body.payload })
  t.equal(res.statusCode, 201, res.body.slice(0, 500))
  t.match(res.json(), { verification: { valide: true, entrees: ENTRIES + 1, fichiers: ENTRIES }, contenu: { nombre_fichiers: ENTRIES } })
  const checked = await externalCheck(await testStorage(t), await archive(app, admin, res.json().id))
  t.match(checked.unzip, /No errors detected/)
  t.match(checked.sevenZip, /Everything is Ok/)
  t.equal(checked.listing.length, ENTRIES + 4)
})
