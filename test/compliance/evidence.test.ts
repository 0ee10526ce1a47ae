/*
 * The evidence bundle, checked as a third party would: this file reads the ZIP and recomputes
 * every hash with Node's standard library alone (no Armoire code, no ZIP library), from what
 * LISEZ-MOI.txt says.
 */
import { createHash, randomBytes } from 'node:crypto'
import { crc32, inflateRawSync } from 'node:zlib'
import t from 'tap'
import { signUp } from '../helpers/auth.ts'
import { build } from '../helpers/build.ts'
import { tree, upload, uploadFile } from '../documents/helpers.ts'
import { caller } from './helpers.ts'

/** Reads a ZIP from its central directory: stored and deflated entries, CRC-32 checked. */
function unzip(zip: Buffer): Map<string, Buffer> {
  let end = zip.length - 22
  while (end >= 0 && zip.readUInt32LE(end) !== 0x06054b50) end--
  if (end < 0) throw new Error('no end of central directory')
  const count = zip.readUInt16LE(end + 10)
  let at = zip.readUInt32LE(end + 16)
  const files = new Map<string, Buffer>()
  for (let i = 0; i < count; i++) {
    if (zip.readUInt32LE(at) !== 0x02014b50) throw new Error('bad central directory entry')
    const method = zip.readUInt16LE(at + 10)
    const crc = zip.readUInt32LE(at + 16)
    const size = zip.readUInt32LE(at + 20)
    const nameLength = zip.readUInt16LE(at + 28)
    const skip = nameLength + zip.readUInt16LE(at + 30) + zip.readUInt16LE(at + 32)
    const local = zip.readUInt32LE(at + 42)
    const name = zip.subarray(at + 46, at + 46 + nameLength).toString('utf8')
    const start = local + 30 + zip.readUInt16LE(local + 26) + zip.readUInt16LE(local + 28)
    const raw = zip.subarray(start, start + size)
    const data = method === 0 ? raw : method === 8 ? inflateRawSync(raw) : null
    if (!data) throw new Error(`method ${method}`)
    if (crc32(data) !== crc) throw new Error(`CRC of ${name}`)
    files.set(name, data)
    at += 46 + skip
  }
  return files
}

const sha256 = (data: Buffer | string) => createHash('sha256').update(data).digest()

function canonical(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value)
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`
  const keys = Object.keys(value).sort()
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical((value as Record<string, unknown>)[k])}`).join(',')}}`
}

interface Entry {
  sequence: number
  organisation_id: string
  utilisateur_id: string | null
  action: string
  cible_type: string | null
  cible_id: string | null
  cible_nom: string | null
  resultat: string
  severite: string
  ip: string | null
  user_agent: string | null
  details: unknown
  created_at: string
  schema_hash: 1 | 2 | 3
  hash_precedent: string | null
  hash: string
}

function recompute(e: Entry): string {
  const described = [e.utilisateur_id, e.action, e.cible_type, e.cible_id, e.cible_nom, e.resultat, e.severite, e.ip, e.user_agent, canonical(e.details), e.created_at]
  if (e.schema_hash === 1) return sha256(JSON.stringify([e.organisation_id, e.sequence, ...described, e.hash_precedent])).toString('hex')
  // Scheme 3 is RFC 8785 over the same list, details as a value; for strings, integers, booleans
  // and nulls, that is the sorted-keys form above.
  const digest =
    e.schema_hash === 2
      ? sha256(JSON.stringify([e.organisation_id, ...described]))
      : sha256(canonical([e.organisation_id, ...described.slice(0, 9), e.details, e.created_at]))
  const place = Buffer.alloc(8)
  place.writeBigInt64BE(BigInt(e.sequence))
  return sha256(Buffer.concat([Buffer.from(e.hash_precedent ?? '', 'hex'), digest, place])).toString('hex')
}

t.test('an evidence bundle verifies offline with the standard library', async (t) => {
  const app = await build(t)
  const admin = await signUp(app)
  const as = caller(app, admin)
  const { armoire, dossier } = await tree(app, admin)
  const v1 = randomBytes(5000)
  const v2 = randomBytes(700)
  const file = (await uploadFile(app, admin, dossier, v1, { filename: 'contrat cadre.pdf' })).fichier.id
  await upload(app, admin, `/fichiers/${file}/version`, v2)
  await as.patch(`/fichiers/${file}`, { nom: 'contrat-cadre.pdf' })
  const rule = (await as.post('/conformite/regles', { nom: 'Contrats', cible: { type: 'armoire', id: armoire }, duree: 5, unite: 'annees', evenement: 'creation', action_terme: 'revue', mode: 'conformite' })).json()
  await as.post(`/fichiers/${file}/verrou`, { motif: 'Signé' })
  await as.delete(`/fichiers/${file}/verrou`)
  await as.delete(`/fichiers/${file}`) // refused: under retention, journaled
  const hold = (await as.post('/conformite/gels', { nom: 'Audit', motif: 'Contrôle', objets: [{ type: 'dossier', id: dossier }] })).json()

  const res = await as.get(`/fichiers/${file}/preuve`)
  t.equal(res.statusCode, 200)
  t.equal(res.headers['content-type'], 'application/zip')
  t.equal(res.headers['content-disposition'], `attachment; filename=preuve-${file}.zip`)
  const files = unzip(res.rawPayload)
  t.same([...files.keys()].sort(), ['LISEZ-MOI.txt', 'conformite.json', 'empreintes.json', 'fichier.json', 'journal.json'])
  const read = (name: string) => JSON.parse(files.get(name)!.toString('utf8'))

  const manifest = read('empreintes.json')
  for (const [name, hash] of Object.entries(manifest.sha256)) t.equal(sha256(files.get(name)!).toString('hex'), hash, `${name} has its hash`)

  const described = read('fichier.json')
  t.same(described.versions.map((v: { sha256: string }) => v.sha256), [sha256(v1).toString('hex'), sha256(v2).toString('hex')])
  t.equal(described.fichier.sha256, sha256(v2).toString('hex'))

  const journal = read('journal.json')
  t.match(journal.verification, { intact: true })
  const entries = journal.entrees as Entry[]
  t.same(entries.map((e) => e.action), ['FILE_UPLOADED', 'FILE_VERSION_ADDED', 'RENAMED', 'LOCKED', 'UNLOCKED', 'CHANGE_REFUSED'])
  t.ok(entries.every((e) => e.schema_hash === 3), 'new entries are written with scheme 3')
  for (const e of entries) t.equal(recompute(e), e.hash, `entry ${e.sequence} (${e.action}) recomputes`)
  t.equal(entries[0]!.details && (entries[0]!.details as { sha256: string }).sha256, sha256(v1).toString('hex'), 'the journal names the content’s hash')
  const forged = { ...entries[2]!, cible_nom: 'autre.pdf' }
  t.not(recompute(forged), forged.hash, 'a changed entry no longer matches its hash')

  const compliance = read('conformite.json')
  t.match(compliance.regles, [{ id: rule.id, mode: 'conformite' }])
  t.match(compliance.verrous, [{ motif: 'Signé', leve_at: /^\d{4}-/ }])
  t.match(compliance.gels, [{ id: hold.id, nom: 'Audit', cible_type: 'dossier' }])
  t.match(files.get('LISEZ-MOI.txt')!.toString('utf8'), /SHA-256\( octets\(hash_precedent\) \|\| empreinte/)

  const stranger = caller(app, await signUp(app, { organisation: 'Autre' }))
  t.equal((await stranger.get(`/fichiers/${file}/preuve`)).statusCode, 404)
})
