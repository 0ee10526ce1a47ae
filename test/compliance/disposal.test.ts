import { createHash, randomBytes } from 'node:crypto'
import t from 'tap'
import { sweepDisposals } from '../../plugins/compliance/disposal.ts'
import { addMember, signUp } from '../helpers/auth.ts'
import { build } from '../helpers/build.ts'
import { pdfText } from '../helpers/pdf.ts'
import { journal, sha256, tree, upload, uploadFile } from '../documents/helpers.ts'
import { caller, pastRule, refusals } from './helpers.ts'

const DAY = 86_400_000

/** The certificate's canonical form, written again from its description: sorted keys, no spaces. */
function canonical(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value)
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`
  const keys = Object.keys(value).sort()
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical((value as Record<string, unknown>)[k])}`).join(',')}}`
}


t.test('disposal at term: review, extension, keeping, scheduled destruction, objection, holds, certificates', async (t) => {
  const app = await build(t)
  const admin = await signUp(app)
  const writer = await addMember(app, admin, 'contributeur')
  const reader = await addMember(app, admin, 'lecteur')
  const as = caller(app, admin)
  const review = await tree(app, admin, 'revue')
  const scheduled = await tree(app, admin, 'destruction')

  const v1 = randomBytes(3000)
  const v2 = randomBytes(2000)
  const a = (await uploadFile(app, writer, review.dossier, v1, { filename: 'à revoir.pdf' })).fichier.id
  await upload(app, writer, `/fichiers/${a}/version`, v2)
  const d = (await uploadFile(app, writer, review.dossier, randomBytes(10), { filename: 'à prolonger.pdf' })).fichier.id
  const e = (await uploadFile(app, writer, review.dossier, randomBytes(10), { filename: 'à garder.pdf' })).fichier.id
  const b = (await uploadFile(app, writer, scheduled.dossier, randomBytes(10), { filename: 'programmé.pdf' })).fichier.id
  const c = (await uploadFile(app, writer, scheduled.dossier, randomBytes(10), { filename: 'gelé.pdf' })).fichier.id
  const o = (await uploadFile(app, writer, scheduled.dossier, randomBytes(10), { filename: 'contesté.pdf' })).fichier.id
  const revueRule = (await as.post('/conformite/regles', pastRule('dossier', review.dossier))).json()
  await as.post('/conformite/regles', pastRule('dossier', scheduled.dossier, { nom: 'Destruction', action_terme: 'destruction' }))
  await as.post('/conformite/gels', { nom: 'Contrôle fiscal', motif: 'Demande du 2 mai', objets: [{ type: 'fichier', id: c }] })

  const now = new Date()
  t.same(await sweepDisposals(app, 30, now), { proposees: 6, detruites: 0 })
  t.same(await sweepDisposals(app, 30, now), { proposees: 0, detruites: 0 }, 'one open elimination per file')
  const queue = (await caller(app, reader).get('/conformite/eliminations?statut=en_attente')).json().items
  t.same(queue.map((x: { fichier: { id: string } }) => x.fichier.id).sort(), [a, d, e].sort())
  t.match(queue[0], { action_terme: 'revue', regle: { id: revueRule.id, nom: 'Échue' }, terme: '2001-01-02T00:00:00.000Z' })
  const planned = (await as.get('/conformite/eliminations?statut=planifiee')).json().items
  t.equal(planned.length, 3)
  t.ok(Math.abs(new Date(planned[0].destruction_prevue_at).getTime() - (now.getTime() + 30 * DAY)) < 1000, 'after the notice period')
  const byFile = (items: { id: string; fichier: { id: string } }[], id: string) => items.find((x) => x.fichier.id === id)!.id

  t.test('review: approving destroys every version and certifies it', async (t) => {
    const id = byFile(queue, a)
    t.equal((await caller(app, writer).post(`/conformite/eliminations/${id}/decision`, { decision: 'approuver', motif: 'x' })).statusCode, 403)
    t.equal((await as.post(`/conformite/eliminations/${id}/decision`, { decision: 'approuver' })).statusCode, 400, 'a reason is required')
    const keys = await app.db.selectFrom('versions_fichiers').select(['cle_id', 'blob', 'sha256']).where('fichier_id', '=', a).orderBy('version_number').execute()
    const decided = await as.post(`/conformite/eliminations/${id}/decision`, { decision: 'approuver', motif: 'Délai légal écoulé' })
    t.equal(decided.statusCode, 200)
    t.match(decided.json(), { statut: 'detruite', decision: 'approuver', decide_par: admin.userId, motif: 'Délai légal écoulé' })
    t.equal((await as.get(`/fichiers/${a}`)).statusCode, 404)
    for (const k of keys) t.equal(await app.blobs.exists(k.blob), false, 'blob removed')
    const destroyed = await app.db.selectFrom('cles_chiffrement').selectAll().where('id', 'in', keys.map((k) => k.cle_id)).execute()
    t.ok(destroyed.length === 2 && destroyed.every((k) => k.cle_enveloppee === null && k.detruite_par === admin.userId), 'keys shredded')

    const cert = (await caller(app, reader).get(`/conformite/certificats/${decided.json().certificat_id}`)).json()
    t.match(cert, {
      fichier: { id: a, nom: 'à revoir.pdf', chemin: 'Armoire revue / Casier revue / Dossier revue / à revoir.pdf', taille_totale: v1.length + v2.length },
      regle: { id: revueRule.id, nom: 'Échue', mode: 'gouvernance' },
      decision: { automatique: false, par: admin.userId, motif: 'Délai légal écoulé' },
    })
    t.same(cert.versions.map((v: { sha256: string }) => v.sha256), [sha256(v1), sha256(v2)], 'the hashes of what was destroyed')
    const { empreinte, ...content } = cert
    t.equal(empreinte, createHash('sha256').update(canonical(content)).digest('hex'), 'the certificate hashes as it says')
    const entries = await journal(app, admin.organisationId)
    const entry = entries.find((x) => x.action === 'DESTROYED' && x.cible_id === a)!
    t.equal(cert.journal.destruction.hash, entry.hash.toString('hex'), 'it names the journal entry that proves it')
    t.same(cert.journal.historique.map((h: { action: string }) => h.action), ['FILE_UPLOADED', 'FILE_VERSION_ADDED', 'DISPOSAL_PROPOSED', 'DESTROYED'])
    for (const h of cert.journal.historique) t.equal(h.hash, entries.find((x) => x.sequence === h.sequence)!.hash.toString('hex'))
    t.equal((await as.get('/journal/verification')).json().intact, true)

    const pdf = await as.get(`/conformite/certificats/${cert.id}?format=pdf`)
    t.equal(pdf.headers['content-type'], 'application/pdf')
    t.equal(pdf.headers['content-disposition'], `attachment; filename=certificat-${cert.id}.pdf`)
    const text = await pdfText(pdf.rawPayload)
    t.match(text, 'Certificat de destruction')
    t.match(text, 'à revoir.pdf')
    t.equal((await caller(app, await signUp(app, { organisation: 'Autre' })).get(`/conformite/certificats/${cert.id}`)).statusCode, 404)
    t.equal((await as.post(`/conformite/eliminations/${id}/decision`, { decision: 'conserver', motif: 'x' })).json().code, 'DISPOSAL_DECIDED')
  })

  t.test('review: extending gives a new term, keeping gives none', async (t) => {
    t.equal((await as.post(`/conformite/eliminations/${byFile(queue, d)}/decision`, { decision: 'prolonger', motif: 'x' })).statusCode, 400, 'a new term is required')
    const until = new Date(Date.now() + 365 * DAY).toISOString()
    t.match((await as.post(`/conformite/eliminations/${byFile(queue, d)}/decision`, { decision: 'prolonger', motif: 'Contentieux possible', jusqua: until })).json(), { statut: 'prolongee' })
    t.match((await as.get(`/fichiers/${d}/conservation`)).json(), { sous_conservation: true, jusqua: until, termes: [{ origine: 'heritee' }, { origine: 'prolongation' }] })
    t.match((await as.post(`/conformite/eliminations/${byFile(queue, e)}/decision`, { decision: 'conserver', motif: 'Valeur historique' })).json(), { statut: 'conservee' })
    t.match((await as.get(`/fichiers/${e}/conservation`)).json(), { sous_conservation: true, jusqua: null })
    t.equal((await caller(app, writer).delete(`/fichiers/${e}`)).json().code, 'RETENTION_ACTIVE')
    t.same(await sweepDisposals(app, 30, new Date()), { proposees: 0, detruites: 0 }, 'neither comes back')
  })

  t.test('scheduled destruction: after the notice, unless objected to or held', async (t) => {
    t.equal((await caller(app, reader).post(`/conformite/eliminations/${byFile(planned, o)}/opposition`, { motif: 'x' })).statusCode, 403)
    t.match((await caller(app, writer).post(`/conformite/eliminations/${byFile(planned, o)}/opposition`, { motif: 'Dossier encore ouvert' })).json(), {
      statut: 'en_attente',
      decision: 'opposer',
      destruction_prevue_at: null,
    })
    t.same(await sweepDisposals(app, 30, new Date(now.getTime() + 31 * DAY)), { proposees: 0, detruites: 1 })
    t.equal((await as.get(`/fichiers/${b}`)).statusCode, 404, 'destroyed at the end of its notice')
    const done = (await as.get('/conformite/eliminations?statut=detruite')).json().items.find((x: { fichier: { id: string } }) => x.fichier.id === b)
    const cert = (await as.get(`/conformite/certificats/${done.certificat_id}`)).json()
    t.match(cert.decision, { automatique: true, par: null })
    t.equal((await as.get(`/fichiers/${o}`)).statusCode, 200, 'the objected one waits for review')
    t.equal((await as.get(`/fichiers/${c}`)).statusCode, 200, 'the held one is kept')
    t.match((await as.get('/conformite/eliminations?statut=planifiee')).json().items, [{ fichier: { id: c } }])
    t.match((await refusals(app, admin.organisationId)).filter((r) => r.details.action === 'dispose'), [{ cible_id: c, details: { raison: 'gel' } }])
    const held = await as.post(`/conformite/eliminations/${byFile(planned, c)}/decision`, { decision: 'approuver', motif: 'Forcer' })
    t.equal(held.json().code, 'LEGAL_HOLD', 'a hold wins over an approval too')
  })
})
