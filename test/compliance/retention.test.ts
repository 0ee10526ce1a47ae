import { randomBytes } from 'node:crypto'
import t from 'tap'
import { addMember, signUp } from '../helpers/auth.ts'
import { build } from '../helpers/build.ts'
import { journal, tree, upload, uploadFile } from '../documents/helpers.ts'
import { caller, refusals } from './helpers.ts'

const rule = (cible: { type: string; id: string }, over: Record<string, unknown> = {}) => ({
  nom: 'Contrats',
  cible,
  duree: 10,
  unite: 'annees',
  evenement: 'creation',
  action_terme: 'revue',
  mode: 'conformite',
  ...over,
})

t.test('retention: compliance mode only extends, governance shortens with a reason, inheritance and the longest wins', async (t) => {
  const app = await build(t)
  const admin = await signUp(app)
  const writer = await addMember(app, admin, 'contributeur')
  const as = caller(app, admin)
  const { armoire, casier, dossier } = await tree(app, admin)
  const file = (await uploadFile(app, writer, dossier, randomBytes(100), { filename: 'bail.pdf' })).fichier.id

  t.equal((await caller(app, writer).post('/conformite/regles', rule({ type: 'armoire', id: armoire }))).statusCode, 403, 'rules are for admins')
  const strict = await as.post('/conformite/regles', rule({ type: 'armoire', id: armoire }))
  t.equal(strict.statusCode, 201)
  const strictId = strict.json().id

  const refused = await caller(app, writer).delete(`/fichiers/${file}`)
  t.equal(refused.statusCode, 409)
  t.equal(refused.json().code, 'RETENTION_ACTIVE')
  const end = new Date()
  end.setUTCFullYear(end.getUTCFullYear() + 10)
  t.match(refused.json().detail, `règle « Contrats »`, 'the refusal names the rule')
  t.match(refused.json().detail, end.toISOString().slice(0, 10), 'and its end date')
  t.equal((await as.delete(`/casiers/${casier}?recursif=true`)).json().code, 'RETENTION_ACTIVE', 'nor can what holds it be deleted')

  // Compliance mode: nobody shortens or removes it, not even an admin.
  for (const change of [{ duree: 9 }, { unite: 'mois' }, { evenement: 'derniere_modification' }, { mode: 'gouvernance' }, { action_terme: 'destruction' }]) {
    const res = await as.patch(`/conformite/regles/${strictId}`, { ...change, motif: 'essai' })
    t.equal(res.json().code, 'RETENTION_COMPLIANCE_MODE', JSON.stringify(change))
  }
  t.equal((await as.delete(`/conformite/regles/${strictId}`, { motif: 'essai' })).json().code, 'RETENTION_COMPLIANCE_MODE')
  const longer = await as.patch(`/conformite/regles/${strictId}`, { duree: 12 })
  t.equal(longer.statusCode, 200, 'extending is allowed')
  t.equal(longer.json().duree, 12)

  // Governance mode, attached lower: shortened or removed by an admin with a reason, journaled HIGH.
  const soft = (await as.post('/conformite/regles', rule({ type: 'dossier', id: dossier }, { nom: 'Dossier RH', mode: 'gouvernance', duree: 20 }))).json()
  let view = (await as.get(`/fichiers/${file}/conservation`)).json()
  t.equal(view.termes.length, 2, 'both rules apply')
  t.match(view, { sous_conservation: true, regle_determinante: { id: soft.id, nom: 'Dossier RH' } }, 'the longest wins')
  t.match(view.termes.find((x: { regle: { id: string } }) => x.regle.id === strictId), { origine: 'heritee', depuis: { type: 'armoire', id: armoire } })

  t.equal((await as.patch(`/conformite/regles/${soft.id}`, { duree: 2 })).json().code, 'REASON_REQUIRED')
  t.equal((await as.patch(`/conformite/regles/${soft.id}`, { duree: 2, motif: 'Erreur de saisie' })).statusCode, 200)
  view = (await as.get(`/fichiers/${file}/conservation`)).json()
  t.equal(view.regle_determinante.id, strictId, 'the compliance rule is now the longest')
  t.equal((await as.delete(`/conformite/regles/${soft.id}`, { motif: 'Doublon' })).statusCode, 204)
  t.equal((await as.get(`/conformite/regles/${soft.id}`)).json().motif_retrait, 'Doublon', 'a removed rule stays readable')
  t.equal((await as.get('/conformite/regles')).json().items.length, 1, 'listing shows the rules in force')
  const entries = await journal(app, admin.organisationId)
  t.match(entries.find((e) => e.action === 'RETENTION_SHORTENED'), { severite: 'HIGH', details: { motif: 'Erreur de saisie', raccourcissements: ['durée plus courte'] } })
  t.match(entries.find((e) => e.action === 'RETENTION_REMOVED'), { severite: 'HIGH', details: { motif: 'Doublon' } })
  t.match((await refusals(app, admin.organisationId))[0], { cible_id: file, details: { raison: 'conservation', regle_id: strictId } })

  t.test('moving out from under a rule keeps its term', async (t) => {
    const other = await tree(app, admin)
    const moved = await caller(app, writer).patch(`/fichiers/${file}`, { dossier_id: other.dossier })
    t.equal(moved.statusCode, 200)
    const after = (await as.get(`/fichiers/${file}/conservation`)).json()
    t.match(after, { sous_conservation: true, regle_determinante: { id: strictId } })
    t.match(after.termes, [{ origine: 'deplacement', regle: { id: strictId }, mode: 'conformite' }])
    t.equal((await caller(app, writer).delete(`/fichiers/${file}`)).json().code, 'RETENTION_ACTIVE')
    // A folder moved out carries the term to every file in it.
    const inner = (await as.post(`/dossiers/${dossier}/dossiers`, { nom: 'Sous-dossier' })).json().id
    const deep = (await uploadFile(app, writer, inner, randomBytes(10), { filename: 'profond.bin' })).fichier.id
    t.equal((await as.patch(`/dossiers/${inner}`, { casier_id: other.casier })).statusCode, 200)
    t.equal((await as.get(`/fichiers/${deep}/conservation`)).json().termes[0].origine, 'deplacement')
    t.equal((await as.delete(`/dossiers/${inner}?recursif=true`)).json().code, 'RETENTION_ACTIVE')
  })

  t.test('a term from the closure starts when the folder is closed; a term over lets go', async (t) => {
    const other = await tree(app, admin)
    const f = (await uploadFile(app, writer, other.dossier, randomBytes(10), { filename: 'clos.bin' })).fichier.id
    await as.post('/conformite/regles', rule({ type: 'casier', id: other.casier }, { nom: 'À la clôture', duree: 6, unite: 'mois', evenement: 'cloture', mode: 'gouvernance' }))
    let v = (await as.get(`/fichiers/${f}/conservation`)).json()
    t.match(v, { sous_conservation: true, jusqua: null }, 'no end before the closure')
    const closed = await caller(app, writer).post(`/dossiers/${other.dossier}/cloture`, { motif: 'Affaire terminée' })
    t.equal(closed.statusCode, 201)
    t.equal((await caller(app, writer).post(`/dossiers/${other.dossier}/cloture`, {})).json().code, 'ALREADY_CLOSED')
    v = (await as.get(`/fichiers/${f}/conservation`)).json()
    const expected = new Date(closed.json().cloture_at)
    expected.setUTCMonth(expected.getUTCMonth() + 6)
    t.equal(v.jusqua.slice(0, 10), expected.toISOString().slice(0, 10))

    const past = await tree(app, admin)
    const old = (await uploadFile(app, writer, past.dossier, randomBytes(10), { filename: 'ancien.bin' })).fichier.id
    await as.post('/conformite/regles', rule({ type: 'dossier', id: past.dossier }, { nom: 'Échue', duree: 1, unite: 'jours', evenement: 'date', date_depart: '2001-01-01T00:00:00Z' }))
    v = (await as.get(`/fichiers/${old}/conservation`)).json()
    t.match(v, { sous_conservation: false, jusqua: '2001-01-02T00:00:00.000Z' })
    t.equal((await caller(app, writer).delete(`/fichiers/${old}`)).statusCode, 204, 'a term over no longer keeps the file')
  })

  t.test('a term from the last change starts again with every new version', async (t) => {
    const other = await tree(app, admin)
    const f = (await uploadFile(app, writer, other.dossier, randomBytes(10), { filename: 'modifie.bin' })).fichier.id
    await as.post('/conformite/regles', rule({ type: 'dossier', id: other.dossier }, { nom: 'Depuis la modification', duree: 1, unite: 'jours', evenement: 'derniere_modification', mode: 'gouvernance' }))
    // Last changed three days ago: the one-day term is over.
    const threeDaysAgo = new Date(Date.now() - 3 * 86_400_000)
    await app.db.updateTable('fichiers').set({ updated_at: threeDaysAgo }).where('id', '=', f).execute()
    let v = (await as.get(`/fichiers/${f}/conservation`)).json()
    t.equal(v.sous_conservation, false)
    t.equal(Date.parse(v.jusqua), threeDaysAgo.getTime() + 86_400_000, 'its end is the last change plus a day')
    const version = await upload(app, writer, `/fichiers/${f}/version`, randomBytes(12))
    t.equal(version.statusCode, 201)
    v = (await as.get(`/fichiers/${f}/conservation`)).json()
    t.equal(v.sous_conservation, true, 'a new version restarts it')
    t.ok(Math.abs(Date.parse(v.jusqua) - (Date.now() + 86_400_000)) < 60_000, `ends a day after the new version (${v.jusqua})`)
    t.equal((await caller(app, writer).delete(`/fichiers/${f}`)).json().code, 'RETENTION_ACTIVE')
  })

  t.test('another organisation sees none of it', async (t) => {
    const stranger = caller(app, await signUp(app, { organisation: 'Autre' }))
    t.equal((await stranger.get(`/conformite/regles/${strictId}`)).statusCode, 404)
    t.equal((await stranger.patch(`/conformite/regles/${strictId}`, { duree: 50 })).statusCode, 404)
    t.equal((await stranger.get(`/fichiers/${file}/conservation`)).statusCode, 404)
    t.equal((await stranger.post('/conformite/regles', rule({ type: 'armoire', id: armoire }))).statusCode, 404)
    t.equal((await stranger.get('/conformite/regles')).json().items.length, 0)
  })
})

t.test('legal holds: recursive, later additions included, they beat everything and only an admin releases them', async (t) => {
  const app = await build(t)
  const admin = await signUp(app)
  const writer = await addMember(app, admin, 'contributeur')
  const as = caller(app, admin)
  const { casier, dossier } = await tree(app, admin)
  const trashed = (await uploadFile(app, writer, dossier, randomBytes(10), { filename: 'jeté.bin' })).fichier.id
  t.equal((await caller(app, writer).delete(`/fichiers/${trashed}`)).statusCode, 204)

  t.equal((await caller(app, writer).post('/conformite/gels', { nom: 'x', motif: 'y', objets: [{ type: 'casier', id: casier }] })).statusCode, 403)
  const hold = await as.post('/conformite/gels', { nom: 'Litige Dupont', motif: 'Assignation du 3 mars', reference: 'RG 24/123', objets: [{ type: 'casier', id: casier }] })
  t.equal(hold.statusCode, 201)
  t.match(hold.json(), { nom: 'Litige Dupont', reference: 'RG 24/123', objets: [{ type: 'casier', id: casier, origine: 'explicite' }], leve_at: null })
  const holdId = hold.json().id

  const later = (await uploadFile(app, writer, dossier, randomBytes(10), { filename: 'après.bin' })).fichier.id
  const del = await caller(app, writer).delete(`/fichiers/${later}`)
  t.equal(del.statusCode, 409, 'a file added after the hold is held')
  t.equal(del.json().code, 'LEGAL_HOLD')
  t.match(del.json().detail, 'Litige Dupont')
  const purge = await as.delete(`/corbeille/fichier/${trashed}`)
  t.equal(purge.json().code, 'LEGAL_HOLD', 'a hold blocks the purge of what is already in the trash')
  const conflicts = (await refusals(app, admin.organisationId)).filter((e) => e.details.raison === 'gel')
  t.equal(conflicts.length, 2, 'every conflict is journaled')
  t.match(conflicts[1], { severite: 'HIGH', utilisateur_id: admin.userId, details: { action: 'purge', gels: [holdId] } })
  t.match((await as.get(`/fichiers/${later}/conservation`)).json().gels, [{ id: holdId, depuis: { type: 'casier', id: casier } }])

  // Moving out of the held drawer keeps the hold on the moved file.
  const other = await tree(app, admin)
  t.equal((await caller(app, writer).patch(`/fichiers/${later}`, { dossier_id: other.dossier })).statusCode, 200)
  t.equal((await caller(app, writer).delete(`/fichiers/${later}`)).json().code, 'LEGAL_HOLD')
  t.match((await as.get(`/conformite/gels/${holdId}`)).json().objets, [{ type: 'casier' }, { type: 'fichier', id: later, origine: 'deplacement' }])

  t.equal((await caller(app, writer).post(`/conformite/gels/${holdId}/levee`, { motif: 'fin' })).statusCode, 403)
  t.equal((await as.post(`/conformite/gels/${holdId}/levee`, {})).statusCode, 400, 'a reason is required')
  const released = await as.post(`/conformite/gels/${holdId}/levee`, { motif: 'Transaction signée' })
  t.match(released.json(), { leve_par: admin.userId, motif_levee: 'Transaction signée' })
  t.equal((await as.post(`/conformite/gels/${holdId}/levee`, { motif: 'encore' })).json().code, 'HOLD_RELEASED')
  t.equal((await as.delete(`/corbeille/fichier/${trashed}`)).statusCode, 204, 'released, the purge goes through')
  t.equal((await caller(app, writer).delete(`/fichiers/${later}`)).statusCode, 204)
  t.match((await journal(app, admin.organisationId)).find((e) => e.action === 'LEGAL_HOLD_RELEASED'), { severite: 'HIGH', details: { motif: 'Transaction signée' } })
  t.equal((await as.get('/conformite/gels')).json().items.length, 0)
  t.equal((await as.get('/conformite/gels?actif=false')).json().items.length, 1)

  const stranger = caller(app, await signUp(app, { organisation: 'Autre' }))
  t.equal((await stranger.get(`/conformite/gels/${holdId}`)).statusCode, 404)
  t.equal((await stranger.post('/conformite/gels', { nom: 'x', motif: 'y', objets: [{ type: 'dossier', id: dossier }] })).statusCode, 404, 'another organisation cannot hold my objects')
})
