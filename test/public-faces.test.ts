import { randomBytes, randomUUID } from 'node:crypto'
import { buffer } from 'node:stream/consumers'
import t from 'tap'
import {
  findLiveObject,
  lockLiveObject,
  openVersionContent,
  purgeFromTrash,
  setStorageQuota,
  usage,
} from '../plugins/documents/public.ts'
import { activeAdmins, auditTargets, findMember, getMember } from '../plugins/security/public.ts'
import { addMember, signUp } from './helpers/auth.ts'
import { build } from './helpers/build.ts'
import { tree, upload, uploadFile } from './documents/helpers.ts'

t.test('documents: live objects of the organisation, found and locked', async (t) => {
  const app = await build(t)
  const owner = await signUp(app)
  const other = await signUp(app)
  const { dossier } = await tree(app, owner, 'public')
  t.match(await findLiveObject(app.db, owner.organisationId, 'dossier', dossier), { kind: 'dossier', id: dossier, nom: 'Dossier public' })
  await t.rejects(findLiveObject(app.db, other.organisationId, 'dossier', dossier), { code: 'NOT_FOUND' }, 'another organisation’s is not found')

  const locked = await app.unitOfWork((trx) => lockLiveObject(trx, owner.organisationId, 'dossier', dossier, 'exclusive'))
  t.equal(locked.nom, 'Dossier public')
  t.equal((await app.inject({ method: 'DELETE', url: `/dossiers/${dossier}`, headers: owner.headers })).statusCode, 204)
  await t.rejects(findLiveObject(app.db, owner.organisationId, 'dossier', dossier), { code: 'NOT_FOUND' }, 'a trashed object is not live')
  await t.rejects(app.unitOfWork((trx) => lockLiveObject(trx, owner.organisationId, 'dossier', dossier)), { code: 'NOT_FOUND' })
})

t.test('documents: usage, quota and a version’s plaintext', async (t) => {
  const app = await build(t)
  const owner = await signUp(app)
  const { dossier } = await tree(app, owner)
  const content = randomBytes(100_000)
  const { version } = await uploadFile(app, owner, dossier, content, { filename: 'contrat.pdf', type: 'application/pdf' })

  t.same(await usage(app.db, owner.organisationId, 10_000), { used: 100_000, quota: 10_000 })
  await app.unitOfWork((trx) => setStorageQuota(trx, owner.organisationId, 150_000))
  t.same(await usage(app.db, owner.organisationId, 10_000), { used: 100_000, quota: 150_000 })
  const refused = await upload(app, owner, `/dossiers/${dossier}/fichiers`, randomBytes(60_000))
  t.equal(refused.json().code, 'QUOTA_EXCEEDED', 'uploads beyond the quota set are refused')

  const opened = await openVersionContent(app.db, app, owner.organisationId, version.id)
  t.match(opened, { versionNumber: 1, nom: 'contrat.pdf', typeMime: 'application/pdf', taille: 100_000 })
  t.ok((await buffer(opened.stream)).equals(content), 'the plaintext, decrypted')
  const other = await signUp(app)
  await t.rejects(openVersionContent(app.db, app, other.organisationId, version.id), { code: 'NOT_FOUND' })
  await t.rejects(openVersionContent(app.db, app, owner.organisationId, randomUUID()), { code: 'NOT_FOUND' })
})

t.test('documents: purging a trashed file in a unit of work shreds its keys and removes its blobs once committed', async (t) => {
  const app = await build(t)
  const owner = await signUp(app)
  const { dossier } = await tree(app, owner)
  const { fichier, version } = await uploadFile(app, owner, dossier, randomBytes(5_000))
  const { blob } = await app.db.selectFrom('versions_fichiers').select('blob').where('id', '=', version.id).executeTakeFirstOrThrow()
  t.equal((await app.inject({ method: 'DELETE', url: `/fichiers/${fichier.id}`, headers: owner.headers })).statusCode, 204)

  const actor = { organisationId: owner.organisationId, userId: owner.userId }
  await t.rejects(
    app.unitOfWork(async (trx) => {
      await purgeFromTrash(trx, app, 'fichier', fichier.id, actor)
      throw new Error('la sauvegarde a échoué')
    }),
  )
  t.ok(await app.blobs.exists(blob), 'rolled back: the blob stays')
  await openVersionContent(app.db, app, owner.organisationId, version.id).then((c) => c.stream.destroy())

  const result = await app.unitOfWork((trx) => purgeFromTrash(trx, app, 'fichier', fichier.id, actor))
  t.equal(result.files[0]?.versions.length, 1)
  t.notOk(await app.blobs.exists(blob), 'committed: the blob is gone')
  await t.rejects(openVersionContent(app.db, app, owner.organisationId, version.id), { code: 'NOT_FOUND' })
  const journaled = await app.db.selectFrom('journal_activite').select('action').where('cible_id', '=', fichier.id).where('action', '=', 'PURGED').execute()
  t.equal(journaled.length, 1)
})

t.test('security: members of the organisation, its admins, and their journal targets', async (t) => {
  const app = await build(t)
  const owner = await signUp(app)
  const reader = await addMember(app, owner, 'lecteur')
  const other = await signUp(app)
  t.match(await findMember(app.db, owner.organisationId, reader.userId), { id: reader.userId, role: 'lecteur', actif: true, email: reader.email })
  t.equal(await findMember(app.db, other.organisationId, reader.userId), undefined)
  await t.rejects(getMember(app.db, other.organisationId, reader.userId), { code: 'NOT_FOUND' })
  t.same((await activeAdmins(app.db, owner.organisationId)).map((m) => m.id), [owner.userId])
  const member = await getMember(app.db, owner.organisationId, owner.userId)
  t.same(auditTargets.member(member), { type: 'utilisateur', id: owner.userId, nom: member.nom })
})
