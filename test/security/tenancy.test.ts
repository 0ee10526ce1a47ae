import type { FastifyInstance, InjectOptions } from 'fastify'
import t from 'tap'
import { contract } from '../../openapi/index.ts'
import type { Operation } from '../../openapi/operation.ts'
import { sweepDisposals } from '../../plugins/compliance/disposal.ts'
import { addMember, type Member, signUp } from '../helpers/auth.ts'
import { backup, settled } from '../backup/helpers.ts'
import { pastRule } from '../compliance/helpers.ts'
import { billingApp, choose, pay, webhook } from '../billing/helpers.ts'
import type { FakeFeexPay } from '../helpers/feexpay.ts'
import { multipart, sha256, type Tree, tree, uploadFile } from '../documents/helpers.ts'

/** Organisation A's objects, one of each kind an operation can name. */
interface World {
  admin: Member
  member: Member
  sessionId: string
  docs: Tree & { fichier: string; trashed: string }
  /** One object of each kind the backup, billing and compliance domains keep. */
  kept: Record<'sauvegarde' | 'restauration' | 'planification' | 'paiement' | 'facture' | 'regle' | 'gel' | 'elimination' | 'certificat' | 'export', string>
}

const CONTENT = Buffer.from('contenu de l’organisation A')

async function organisationA(app: FastifyInstance, fake: FakeFeexPay): Promise<World> {
  const admin = await signUp(app, { organisation: 'Organisation A' })
  const member = await addMember(app, admin, 'contributeur')
  const sessions = await app.inject({ method: 'GET', url: '/auth/sessions', headers: member.headers })
  const docs = await tree(app, member)
  const { fichier } = await uploadFile(app, member, docs.dossier, CONTENT, { filename: 'contrat.pdf' })
  const spare = await app.inject({ method: 'POST', url: '/armoires', headers: member.headers, payload: { nom: 'À jeter' } })
  await app.inject({ method: 'DELETE', url: `/armoires/${spare.json().id}`, headers: member.headers })
  return {
    admin,
    member,
    sessionId: sessions.json().items[0].id,
    docs: { ...docs, fichier: fichier.id, trashed: spare.json().id },
    kept: { ...(await backupsOf(app, admin, fichier.id)), ...(await billingOf(app, admin, fake)), ...(await complianceOf(app, admin, fichier.id)) },
  }
}

async function created<T = { id: string }>(app: FastifyInstance, admin: Member, url: string, payload: Record<string, unknown>): Promise<T> {
  const res = await app.inject({ method: 'POST', url, headers: admin.headers, payload })
  if (res.statusCode >= 300) throw new Error(`POST ${url}: ${res.statusCode} ${res.body}`)
  return res.json()
}

async function backupsOf(app: FastifyInstance, admin: Member, fichier: string) {
  const done = await backup(app, admin, { type: 'fichier', cible_id: fichier })
  const sauvegarde = (await settled(app, admin, `/sauvegardes/${done.id}`)).id
  const restauration = (await created(app, admin, `/sauvegardes/${sauvegarde}/restaurer`, { simulation: true })).id
  const planification = (
    await created(app, admin, '/sauvegardes/planifications', { type: 'systeme', frequence: '0 2 * * *', fuseau: 'Africa/Porto-Novo', conservation: { derniers: 3, quotidiennes: 0, hebdomadaires: 0, mensuelles: 0 } })
  ).id
  return { sauvegarde, restauration, planification }
}

async function billingOf(app: FastifyInstance, admin: Member, feexpay: FakeFeexPay) {
  await choose(app, admin, 'professionnel')
  const payment = (await pay(app, admin)).json()
  feexpay.settle(payment.reference, 'SUCCESSFUL')
  await webhook(app, feexpay.webhookBody(payment.reference))
  const settledPayment = (await app.inject({ method: 'GET', url: `/paiements/${payment.id}`, headers: admin.headers })).json()
  if (!settledPayment.facture_id) throw new Error(`no invoice for ${payment.id}`)
  return { paiement: payment.id as string, facture: settledPayment.facture_id as string }
}

async function complianceOf(app: FastifyInstance, admin: Member, fichier: string) {
  const gel = (await created(app, admin, '/conformite/gels', { nom: 'Litige', motif: 'Assignation', objets: [{ type: 'fichier', id: fichier }] })).id
  // Two files whose term is long past: one approved for destruction gives a certificate, one stays in review.
  const due = await tree(app, admin, 'echu')
  for (const name of ['détruit.pdf', 'en revue.pdf']) await uploadFile(app, admin, due.dossier, Buffer.from(name), { filename: name })
  const regle = (await created(app, admin, '/conformite/regles', pastRule('dossier', due.dossier))).id
  await sweepDisposals(app, 30)
  const queue = (await app.inject({ method: 'GET', url: '/conformite/eliminations?statut=en_attente', headers: admin.headers })).json().items
  const decided = await created<{ certificat_id: string }>(app, admin, `/conformite/eliminations/${queue[0].id}/decision`, {
    decision: 'approuver',
    motif: 'Terme échu',
  })
  // The test's app builds every GDPR export as a job (threshold 1): one of them, in the background.
  const deferred = await app.inject({ method: 'GET', url: '/me/export', headers: admin.headers })
  if (deferred.statusCode !== 202) throw new Error(`GET /me/export: ${deferred.statusCode}`)
  return { gel, regle, elimination: queue[1].id as string, certificat: decided.certificat_id, export: deferred.json().id as string }
}

const upload = () => {
  const body = multipart([{ name: 'fichier', filename: 'intrus.txt', type: 'text/plain', content: Buffer.from('intrus') }])
  return { payload: body.payload, headers: body.headers }
}

type Request = Pick<InjectOptions, 'payload' | 'headers'> & { params: Record<string, string> }

/** A's object named by `id`, with the contract's example body (any valid body will do: the id is refused first). */
const example =
  (kind: keyof World['kept'] | 'fichier' | 'dossier' | 'membre') =>
  (w: World, op: Operation): Request => ({
    params: { id: kind === 'membre' ? w.member.userId : kind === 'fichier' || kind === 'dossier' ? w.docs[kind] : w.kept[kind] },
    payload: op.request?.body as InjectOptions['payload'],
  })

/**
 * How to call each operation that names an object, with organisation A's object and an
 * otherwise valid request. An operation missing here fails the walk: add it when you add it.
 */
const fixtures: Record<string, (w: World, op: Operation) => Request> = {
  revokeSession: (w) => ({ params: { id: w.sessionId } }),
  updateUser: (w) => ({ params: { id: w.member.userId }, payload: { nom: 'Intrus' } }),
  resetMemberMfa: (w) => ({ params: { id: w.member.userId } }),
  getArmoire: (w) => ({ params: { id: w.docs.armoire } }),
  updateArmoire: (w) => ({ params: { id: w.docs.armoire }, payload: { nom: 'Intrus' } }),
  deleteArmoire: (w) => ({ params: { id: w.docs.armoire } }),
  createCasier: (w) => ({ params: { id: w.docs.armoire }, payload: { nom: 'Intrus' } }),
  listCasiers: (w) => ({ params: { id: w.docs.armoire } }),
  getCasier: (w) => ({ params: { id: w.docs.casier } }),
  updateCasier: (w) => ({ params: { id: w.docs.casier }, payload: { nom: 'Intrus' } }),
  deleteCasier: (w) => ({ params: { id: w.docs.casier } }),
  createDossier: (w) => ({ params: { id: w.docs.casier }, payload: { nom: 'Intrus' } }),
  listDossiers: (w) => ({ params: { id: w.docs.casier } }),
  createSousDossier: (w) => ({ params: { id: w.docs.dossier }, payload: { nom: 'Intrus' } }),
  listSousDossiers: (w) => ({ params: { id: w.docs.dossier } }),
  getDossier: (w) => ({ params: { id: w.docs.dossier } }),
  updateDossier: (w) => ({ params: { id: w.docs.dossier }, payload: { nom: 'Intrus' } }),
  deleteDossier: (w) => ({ params: { id: w.docs.dossier } }),
  uploadFichier: (w) => ({ params: { id: w.docs.dossier }, ...upload() }),
  listFichiers: (w) => ({ params: { id: w.docs.dossier } }),
  getFichier: (w) => ({ params: { id: w.docs.fichier } }),
  updateFichier: (w) => ({ params: { id: w.docs.fichier }, payload: { nom: 'intrus.pdf' } }),
  deleteFichier: (w) => ({ params: { id: w.docs.fichier } }),
  downloadFichier: (w) => ({ params: { id: w.docs.fichier } }),
  listVersions: (w) => ({ params: { id: w.docs.fichier } }),
  uploadVersion: (w) => ({ params: { id: w.docs.fichier }, ...upload() }),
  downloadVersion: (w) => ({ params: { id: w.docs.fichier, n: '1' } }),
  restoreVersion: (w) => ({ params: { id: w.docs.fichier, n: '1' } }),
  reportLocalDeletion: (w) => ({ params: { id: w.docs.fichier, n: '1' }, payload: { appareil: 'Poste intrus', sha256: sha256(CONTENT) } }),
  restoreFromTrash: (w) => ({ params: { type: 'armoire', id: w.docs.trashed } }),
  purgeFromTrash: (w) => ({ params: { type: 'armoire', id: w.docs.trashed } }),
  getPlanification: example('planification'),
  updatePlanification: example('planification'),
  deletePlanification: example('planification'),
  getSauvegarde: example('sauvegarde'),
  downloadSauvegarde: example('sauvegarde'),
  verifySauvegarde: example('sauvegarde'),
  deleteSauvegarde: example('sauvegarde'),
  restoreSauvegarde: example('sauvegarde'),
  getRestauration: example('restauration'),
  getPaiement: example('paiement'),
  getFacture: example('facture'),
  getFacturePdf: example('facture'),
  lockFichier: example('fichier'),
  unlockFichier: example('fichier'),
  lockDossier: example('dossier'),
  unlockDossier: example('dossier'),
  closeDossier: example('dossier'),
  getConservation: example('fichier'),
  getPreuve: example('fichier'),
  getRegle: example('regle'),
  updateRegle: example('regle'),
  deleteRegle: example('regle'),
  getGel: example('gel'),
  addGelObjets: example('gel'),
  releaseGel: example('gel'),
  decideElimination: example('elimination'),
  objectElimination: example('elimination'),
  getCertificat: example('certificat'),
  getExportRgpd: example('export'),
  downloadExportRgpd: example('export'),
  exportUser: example('membre'),
  eraseUser: example('membre'),
  getUserDashboard: example('membre'),
}

t.test('every operation naming an object answers 404 to another organisation', async (t) => {
  const { app, fake } = await billingApp(t, { GDPR_EXPORT_JOB_THRESHOLD: '1' })
  const world = await organisationA(app, fake)
  const intruder = await signUp(app, { organisation: 'Organisation B' })

  // Public operations (the SSO redirects, named by provider) belong to no organisation.
  const named = contract.filter((op) => op.url.includes(':') && !('public' in op.access))
  t.ok(named.length > 0)
  for (const op of named) {
    const fixture = fixtures[op.operationId]
    if (!fixture) {
      t.fail(`no cross-organisation fixture for ${op.operationId} (${op.method} ${op.url})`)
      continue
    }
    const { params, payload, headers } = fixture(world, op)
    const url = op.url.replace(/:(\w+)/g, (_, name: string) => {
      const value = params[name]
      if (value === undefined) throw new Error(`${op.operationId}: no value for :${name}`)
      return encodeURIComponent(value)
    })
    const res = await app.inject({ method: op.method, url, payload, headers: { ...headers, ...intruder.headers } } as InjectOptions)
    t.equal(res.statusCode, 404, `${op.operationId} ${op.method} ${url}: ${res.statusCode} ${res.json().code ?? ''}`)
    t.notMatch(res.body, new RegExp(world.admin.email), 'nothing of A leaks in the answer')
  }

  // A's objects are untouched.
  const me = await app.inject({ method: 'GET', url: '/me', headers: world.member.headers })
  t.equal(me.statusCode, 200)
  t.equal(me.json().utilisateur.nom, 'Membre contributeur')
  const file = await app.inject({ method: 'GET', url: `/fichiers/${world.docs.fichier}/contenu`, headers: world.member.headers })
  t.equal(file.statusCode, 200)
  t.equal(file.body, CONTENT.toString())
  const armoire = await app.inject({ method: 'GET', url: `/armoires/${world.docs.armoire}`, headers: world.member.headers })
  t.equal(armoire.statusCode, 200, 'not deleted')
  t.match(armoire.json().nom, /^Armoire /, 'not renamed')
  for (const [kind, url] of [
    ['sauvegarde', `/sauvegardes/${world.kept.sauvegarde}`],
    ['planification', `/sauvegardes/planifications/${world.kept.planification}`],
    ['regle', `/conformite/regles/${world.kept.regle}`],
    ['gel', `/conformite/gels/${world.kept.gel}`],
  ] as const) {
    const res = await app.inject({ method: 'GET', url, headers: world.admin.headers })
    t.equal(res.statusCode, 200, `${kind} not deleted`)
  }
  const gel = (await app.inject({ method: 'GET', url: `/conformite/gels/${world.kept.gel}`, headers: world.admin.headers })).json()
  t.equal(gel.leve_at, null, 'the hold is not released')
  const verrou = await app.inject({ method: 'GET', url: '/conformite/verrous', headers: world.admin.headers })
  t.same(verrou.json().items, [], 'nothing was locked')
})
