import { execFile } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { buffer } from 'node:stream/consumers'
import { promisify } from 'node:util'
import t from 'tap'
import type { ExportRgpdDto } from '../../openapi/compliance-exports.ts'
import { exportSize } from '../../plugins/compliance/export-jobs.ts'
import { rotateMasterKeys } from '../../scripts/keys-rotate.ts'
import { createLocalKeySource } from '../../src/crypto/keys.ts'
import { addMember, type Member, signUp } from '../helpers/auth.ts'
import { build } from '../helpers/build.ts'
import { runJob } from '../helpers/jobs.ts'
import { readZip } from '../backup/helpers.ts'
import { journal, tree, uploadFile } from '../documents/helpers.ts'
import { caller } from './helpers.ts'

const THRESHOLD = 6

t.test('a GDPR export above the threshold is built by a job, stored encrypted, downloaded and journaled', async (t) => {
  const masterKey = randomBytes(32)
  const app = await build(t, { GDPR_EXPORT_JOB_THRESHOLD: String(THRESHOLD), MASTER_KEY: masterKey.toString('base64') })
  const admin = await signUp(app)
  const alice = await addMember(app, admin, 'contributeur')
  const bob = await addMember(app, admin, 'contributeur')
  const { dossier } = await tree(app, admin)
  for (let i = 0; i < THRESHOLD; i++) await uploadFile(app, alice, dossier, randomBytes(30), { filename: `note-${i}.txt` })

  const settled = async (member: Member, id: string) => {
    for (let i = 0; i < 400; i++) {
      const res = await caller(app, member).get(`/conformite/exports/${id}`)
      if (res.statusCode !== 200) throw new Error(`GET export: ${res.statusCode} ${res.body}`)
      const body = res.json() as ExportRgpdDto
      if (body.statut === 'terminee' || body.statut === 'echec') return body
      await new Promise((r) => setTimeout(r, 50))
    }
    throw new Error('export never settled')
  }

  const small = await exportSize(app.db, admin.organisationId, bob.userId)
  t.ok(small <= THRESHOLD, `a fresh member has ${small} entries and files`)
  const direct = await caller(app, admin).get(`/users/${bob.userId}/export`)
  t.equal(direct.statusCode, 200, 'a small export is answered at once')
  t.equal(direct.headers['content-type'], 'application/zip')

  const res = await caller(app, alice).get('/me/export')
  t.equal(res.statusCode, 202, 'a large export is deferred')
  const requested = res.json() as ExportRgpdDto
  t.equal(res.headers.location, `/conformite/exports/${requested.id}`)
  t.match(requested, { utilisateur_id: alice.userId, demande_par: alice.userId, taille: null })
  t.ok(requested.elements > THRESHOLD)

  const done = await settled(alice, requested.id)
  t.match(done, { statut: 'terminee', erreur: null })
  t.ok(done.expire_le && new Date(done.expire_le) > new Date(), 'downloadable until it expires')
  t.equal((await caller(app, bob).get(`/conformite/exports/${requested.id}`)).statusCode, 404, 'another member does not see it')
  t.equal((await caller(app, bob).get(`/conformite/exports/${requested.id}/archive`)).statusCode, 404)
  const stranger = await signUp(app, { organisation: 'Autre' })
  t.equal((await caller(app, stranger).get(`/conformite/exports/${requested.id}`)).statusCode, 404, 'nor another organisation’s admin')
  t.equal((await caller(app, admin).get(`/conformite/exports/${requested.id}`)).statusCode, 200, 'an admin of the organisation does')

  const row = await app.db.selectFrom('exports_rgpd').selectAll().where('id', '=', requested.id).executeTakeFirstOrThrow()
  const stored = await buffer(await app.blobs.read(row.blob!))
  t.notOk(stored.includes(Buffer.from('compte.json')), 'the stored blob is ciphertext (a ZIP names its entries in the clear)')

  const download = await caller(app, alice).get(`/conformite/exports/${requested.id}/archive`)
  t.equal(download.statusCode, 200)
  t.equal(download.headers['content-type'], 'application/zip')
  const zip = download.rawPayload
  t.equal(zip.length, done.taille)
  t.equal(createHash('sha256').update(zip).digest('hex'), done.sha256, 'the archive is the one recorded')
  const dir = await mkdtemp(join(tmpdir(), 'armoire-rgpd-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  await writeFile(join(dir, 'export.zip'), zip)
  const { stdout } = await promisify(execFile)('unzip', ['-t', join(dir, 'export.zip')])
  t.match(stdout, /No errors detected/, 'unzip -t passes')
  const entries = await readZip(zip)
  const json = (name: string) => JSON.parse(entries.get(name)!.data.toString('utf8'))
  t.same([...entries.keys()].sort(), ['compte.json', 'facteurs.json', 'fichiers.json', 'journal.json', 'sessions.json'])
  t.equal(json('compte.json').compte.email, alice.email)
  t.equal(json('fichiers.json').fichiers.length, THRESHOLD)

  const entriesAbout = (await journal(app, admin.organisationId)).filter((e) => (e.details as { export_id?: string }).export_id === requested.id)
  t.same(entriesAbout.map((e) => e.action), ['USER_DATA_EXPORT_REQUESTED', 'USER_DATA_EXPORTED', 'USER_DATA_EXPORT_DOWNLOADED'])
  t.ok(entriesAbout.every((e) => e.utilisateur_id === alice.userId && e.cible_id === alice.userId))
  t.match(entriesAbout[1]!.details, { differe: true, taille: done.taille, sha256: done.sha256 })

  const rotation = await rotateMasterKeys(app.db, createLocalKeySource(new Map([[1, masterKey], [2, randomBytes(32)]])), { log: () => {} })
  t.match(rotation.kinds.find((k) => k.kind === 'exports_rgpd'), { rewrapped: 1, unreadable: 0 }, 'master-key rotation re-wraps an export’s key')

  t.test('an admin’s export of a member, then its expiry destroys the archive', async (t) => {
    const byAdmin = await caller(app, admin).get(`/users/${alice.userId}/export`)
    t.equal(byAdmin.statusCode, 202)
    const theirs = await settled(admin, byAdmin.json().id)
    t.equal(theirs.demande_par, admin.userId)
    t.equal((await caller(app, alice).get(`/conformite/exports/${theirs.id}`)).statusCode, 404, 'an admin’s export is the admin’s')
    t.equal((await caller(app, admin).get(`/conformite/exports/${theirs.id}/archive`)).statusCode, 200)

    const blob = (await app.db.selectFrom('exports_rgpd').select('blob').where('id', '=', theirs.id).executeTakeFirstOrThrow()).blob!
    await app.db.updateTable('exports_rgpd').set({ expire_le: new Date(Date.now() - 1000) }).where('id', '=', theirs.id).execute()
    t.equal((await runJob(app, 'conformite.export.expiration'))?.state, 'completed')
    t.match((await caller(app, admin).get(`/conformite/exports/${theirs.id}`)).json(), { statut: 'expiree' })
    const gone = await caller(app, admin).get(`/conformite/exports/${theirs.id}/archive`)
    t.equal(gone.statusCode, 409)
    t.equal(gone.json().code, 'EXPORT_NOT_READY')
    t.equal(await app.blobs.exists(blob), false, 'its blob is removed')
    t.equal((await app.db.selectFrom('exports_rgpd').select('cle_enveloppee').where('id', '=', theirs.id).executeTakeFirstOrThrow()).cle_enveloppee, null, 'its key is shredded')
    t.ok((await journal(app, admin.organisationId)).some((e) => e.action === 'USER_DATA_EXPORT_EXPIRED' && (e.details as { export_id?: string }).export_id === theirs.id))
  })
})
