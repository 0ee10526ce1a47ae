import { randomBytes } from 'node:crypto'
import t from 'tap'
import { addMember, onUnlimitedPlan, signUp } from '../helpers/auth.ts'
import { build } from '../helpers/build.ts'
import { tree, upload, uploadFile } from '../documents/helpers.ts'
import { caller, refusals } from './helpers.ts'

t.test('a locked file is read-only until its locker or an admin unlocks it', async (t) => {
  const app = await build(t)
  const admin = await signUp(app)
  await onUnlimitedPlan(app, admin)
  const writer = await addMember(app, admin, 'contributeur')
  const other = await addMember(app, admin, 'contributeur')
  const reader = await addMember(app, admin, 'lecteur')
  const { dossier, casier } = await tree(app, admin)
  const elsewhere = await tree(app, admin)
  const file = (await uploadFile(app, writer, dossier, randomBytes(100), { filename: 'contrat.pdf' })).fichier.id
  const as = caller(app, writer)

  t.equal((await caller(app, reader).post(`/fichiers/${file}/verrou`, { motif: 'x' })).statusCode, 403, 'a reader cannot lock')
  t.equal((await as.post(`/fichiers/${file}/verrou`, {})).statusCode, 400, 'a reason is required')
  const locked = await as.post(`/fichiers/${file}/verrou`, { motif: 'Signature en cours' })
  t.equal(locked.statusCode, 201)
  t.match(locked.json(), { cible: { type: 'fichier', id: file }, motif: 'Signature en cours', created_by: writer.userId, leve_at: null })
  t.equal((await as.post(`/fichiers/${file}/verrou`, { motif: 'encore' })).json().code, 'ALREADY_LOCKED')

  const refused = [
    await upload(app, admin, `/fichiers/${file}/version`, randomBytes(10)),
    await caller(app, admin).patch(`/fichiers/${file}`, { nom: 'autre.pdf' }),
    await caller(app, admin).patch(`/fichiers/${file}`, { dossier_id: elsewhere.dossier }),
    await caller(app, admin).delete(`/fichiers/${file}`),
    await caller(app, admin).post(`/fichiers/${file}/versions/1/restaurer`),
  ]
  for (const res of refused) {
    t.equal(res.statusCode, 423)
    t.equal(res.json().code, 'LOCKED')
    t.match(res.json().detail, /contrat\.pdf.*Signature en cours/)
  }
  t.equal((await caller(app, admin).get(`/fichiers/${file}`)).json().version_courante, 1, 'nothing changed')
  const journaled = await refusals(app, admin.organisationId)
  t.equal(journaled.length, refused.length, 'every refusal is journaled')
  t.match(journaled[0], { cible_id: file, resultat: 'refus', details: { raison: 'verrou' } })

  const listed = (await caller(app, reader).get('/conformite/verrous')).json()
  t.same(listed.items.map((v: { id: string }) => v.id), [locked.json().id], 'listed for every member')

  t.equal((await caller(app, other).delete(`/fichiers/${file}/verrou`)).statusCode, 403, 'another contributor cannot unlock')
  t.equal((await caller(app, admin).delete(`/fichiers/${file}/verrou`)).statusCode, 204, 'an admin can')
  t.equal((await caller(app, admin).delete(`/fichiers/${file}/verrou`)).json().code, 'NOT_LOCKED')
  t.equal((await caller(app, reader).get('/conformite/verrous')).json().items.length, 0)
  t.equal((await caller(app, reader).get('/conformite/verrous?actif=false')).json().items[0].leve_par, admin.userId)
  t.equal((await caller(app, admin).patch(`/fichiers/${file}`, { nom: 'autre.pdf' })).statusCode, 200, 'writable again')

  // The locker unlocks their own lock.
  await as.post(`/fichiers/${file}/verrou`, { motif: 'Relecture' })
  t.equal((await as.delete(`/fichiers/${file}/verrou`)).statusCode, 204)

  t.test('a locked folder locks what it holds, and nothing can be added to it', async (t) => {
    const folder = await caller(app, writer).post(`/dossiers/${dossier}/verrou`, { motif: 'Audit' })
    t.equal(folder.statusCode, 201)
    const sub = await caller(app, admin).post(`/dossiers/${dossier}/dossiers`, { nom: 'Nouveau' })
    t.equal(sub.statusCode, 423)
    t.equal((await upload(app, admin, `/dossiers/${dossier}/fichiers`, randomBytes(10), { filename: 'ajout.bin' })).statusCode, 423)
    t.equal((await caller(app, admin).patch(`/fichiers/${file}`, { nom: 'encore.pdf' })).statusCode, 423, 'a file inside is read-only')
    t.equal((await caller(app, admin).patch(`/dossiers/${dossier}`, { nom: 'Renommé' })).statusCode, 423)
    t.equal((await caller(app, admin).delete(`/casiers/${casier}?recursif=true`)).statusCode, 423, 'its container cannot be deleted either')
    t.equal((await caller(app, admin).patch(`/fichiers/${(await uploadFile(app, admin, elsewhere.dossier, randomBytes(5))).fichier.id}`, { dossier_id: dossier })).statusCode, 423, 'nothing moves in')
    t.equal((await caller(app, admin).delete(`/dossiers/${dossier}/verrou`)).statusCode, 204)
    t.equal((await caller(app, admin).delete(`/casiers/${casier}?recursif=true`)).statusCode, 204)
  })

  t.test('another organisation’s ids answer 404', async (t) => {
    const stranger = await signUp(app, { organisation: 'Autre' })
    const mine = (await uploadFile(app, admin, elsewhere.dossier, randomBytes(5), { filename: 'à moi.bin' })).fichier.id
    t.equal((await caller(app, stranger).post(`/fichiers/${mine}/verrou`, { motif: 'x' })).statusCode, 404)
    t.equal((await caller(app, stranger).post(`/dossiers/${elsewhere.dossier}/verrou`, { motif: 'x' })).statusCode, 404)
    await caller(app, admin).post(`/fichiers/${mine}/verrou`, { motif: 'à moi' })
    t.equal((await caller(app, stranger).delete(`/fichiers/${mine}/verrou`)).statusCode, 404)
    t.equal((await caller(app, stranger).get('/conformite/verrous')).json().items.length, 0)
  })
})
