import { execFile } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { sweepDisposals } from '../../plugins/compliance/disposal.ts'
import { signUp } from '../helpers/auth.ts'
import { build } from '../helpers/build.ts'
import { tree, uploadFile } from '../documents/helpers.ts'
import { caller } from '../compliance/helpers.ts'

const DAY = 86_400_000
const run = promisify(execFile)

const rule = (type: string, id: string, over: Record<string, unknown> = {}) => ({
  nom: 'Règle',
  cible: { type, id },
  duree: 10,
  unite: 'annees',
  evenement: 'creation',
  action_terme: 'revue',
  mode: 'gouvernance',
  ...over,
})
const past = { duree: 1, unite: 'jours', evenement: 'date', date_depart: '2001-01-01T00:00:00Z' }

t.test('the global dashboard’s compliance section: retention, holds and disposals due, exact', async (t) => {
  const app = await build(t)
  const admin = await signUp(app, { organisation: 'Conforme' })
  const other = await signUp(app, { organisation: 'Autre' })
  const as = caller(app, admin)
  const ok = async (res: Promise<{ statusCode: number; body: string; json: () => { id: string } }>, status = 201) => {
    const r = await res
    t.equal(r.statusCode, status, r.statusCode === status ? 'accepted' : r.body)
    return r.statusCode === 204 ? null : r.json()
  }
  const section = async (member = admin) => (await caller(app, member).get('/dashboard/global')).json().conformite

  t.same(await section(), {
    regles_actives: 0,
    objets_sous_conservation: 0,
    gels_actifs: 0,
    objets_sous_gel: 0,
    eliminations_dues: 0,
    eliminations_en_revue: 0,
    destructions_planifiees: 0,
  })

  const kept = await tree(app, admin, 'gardé')
  const review = await tree(app, admin, 'revue')
  const scheduled = await tree(app, admin, 'destruction')
  const file = async (dossier: string, name: string) => (await uploadFile(app, admin, dossier, Buffer.from(name), { filename: name })).fichier.id
  const k1 = await file(kept.dossier, 'k1.pdf')
  const r1 = await file(review.dossier, 'r1.pdf')
  const r2 = await file(review.dossier, 'r2.pdf')
  const r3 = await file(review.dossier, 'r3.pdf')
  await file(scheduled.dossier, 's1.pdf')

  // Four rules in force on four objects (a running one on an armoire and a dossier, two at term), one withdrawn.
  await ok(as.post('/conformite/regles', rule('armoire', kept.armoire)))
  await ok(as.post('/conformite/regles', rule('dossier', kept.dossier)))
  await ok(as.post('/conformite/regles', rule('dossier', review.dossier, { nom: 'Échue', ...past })))
  await ok(as.post('/conformite/regles', rule('dossier', scheduled.dossier, { nom: 'À détruire', ...past, action_terme: 'destruction' })))
  const withdrawn = await ok(as.post('/conformite/regles', rule('casier', scheduled.casier)))
  await ok(as.delete(`/conformite/regles/${withdrawn!.id}`, { motif: 'Remplacée' }), 204)

  // One hold in force on two objects (one of them named by another hold too), one released.
  await ok(as.post('/conformite/gels', { nom: 'Contrôle fiscal', motif: 'Demande du 2 mai', objets: [{ type: 'fichier', id: k1 }, { type: 'dossier', id: kept.dossier }] }))
  const released = await ok(as.post('/conformite/gels', { nom: 'Ancien litige', motif: 'Assignation', objets: [{ type: 'casier', id: kept.casier }] }))
  await ok(as.post(`/conformite/gels/${released!.id}/levee`, { motif: 'Transaction signée' }), 200)
  await ok(as.post('/conformite/gels', { nom: 'Audit', motif: 'Audit interne', objets: [{ type: 'fichier', id: k1 }] }))
  await ok(as.post(`/conformite/gels/${(await ok(as.post('/conformite/gels', { nom: 'Levé', motif: 'x', objets: [{ type: 'fichier', id: r1 }] })))!.id}/levee`, { motif: 'Fin' }), 200)

  // At term: three files of the review folder are proposed for review, one scheduled for destruction.
  t.same(await sweepDisposals(app, 30, new Date()), { proposees: 4, detruites: 0 })
  const queue = (await as.get('/conformite/eliminations?statut=en_attente')).json().items as { id: string; fichier: { id: string } }[]
  const of = (id: string) => queue.find((e) => e.fichier.id === id)!.id
  // Extending one and keeping another closes their reviews and gives each a term of its own.
  await ok(as.post(`/conformite/eliminations/${of(r2)}/decision`, { decision: 'prolonger', motif: 'Contentieux', jusqua: new Date(Date.now() + 365 * DAY).toISOString() }), 200)
  await ok(as.post(`/conformite/eliminations/${of(r3)}/decision`, { decision: 'conserver', motif: 'Valeur historique' }), 200)

  const expected = {
    regles_actives: 4,
    objets_sous_conservation: 6,
    gels_actifs: 2,
    objets_sous_gel: 2,
    eliminations_dues: 2,
    eliminations_en_revue: 1,
    destructions_planifiees: 1,
  }
  t.same(await section(), expected, '4 objects named by rules + r2 and r3 with their own terms; k1 and its folder held; r1 in review, s1 scheduled')
  t.same(await section(other), { ...expected, regles_actives: 0, objets_sous_conservation: 0, gels_actifs: 0, objets_sous_gel: 0, eliminations_dues: 0, eliminations_en_revue: 0, destructions_planifiees: 0 }, 'another organisation sees none of it')

  const pdf = await app.inject({ method: 'GET', url: '/dashboard/global', headers: { authorization: admin.headers.authorization, accept: 'application/pdf' } })
  t.equal(pdf.statusCode, 200)
  const dir = await mkdtemp(join(tmpdir(), 'armoire-conformite-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  await writeFile(join(dir, 'global.pdf'), pdf.rawPayload)
  t.match((await run('pdfinfo', [join(dir, 'global.pdf')])).stdout, /Pages:\s+1\n/, 'still one page')
  const text = (await run('pdftotext', ['-layout', join(dir, 'global.pdf'), '-'])).stdout
  t.match(text, /Conformité/)
  t.match(text, /Sous conservation\s+6/)
  t.match(text, /Sous gel juridique\s+2/)
  t.match(text, /En revue\s+1/)
  t.match(text, /À détruire\s+1/)
})
