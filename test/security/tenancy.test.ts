import type { FastifyInstance, InjectOptions } from 'fastify'
import t from 'tap'
import { contract } from '../../openapi/index.ts'
import { addMember, type Member, signUp } from '../helpers/auth.ts'
import { build } from '../helpers/build.ts'
import { multipart, sha256, type Tree, tree, uploadFile } from '../documents/helpers.ts'

/** Organisation A's objects, one of each kind an operation can name. */
interface World {
  admin: Member
  member: Member
  sessionId: string
  docs: Tree & { fichier: string; trashed: string }
}

const CONTENT = Buffer.from('contenu de l’organisation A')

async function organisationA(app: FastifyInstance): Promise<World> {
  const admin = await signUp(app, { organisation: 'Organisation A' })
  const member = await addMember(app, admin, 'contributeur')
  const sessions = await app.inject({ method: 'GET', url: '/auth/sessions', headers: member.headers })
  const docs = await tree(app, member)
  const { fichier } = await uploadFile(app, member, docs.dossier, CONTENT, { filename: 'contrat.pdf' })
  const spare = await app.inject({ method: 'POST', url: '/armoires', headers: member.headers, payload: { nom: 'À jeter' } })
  await app.inject({ method: 'DELETE', url: `/armoires/${spare.json().id}`, headers: member.headers })
  return { admin, member, sessionId: sessions.json().items[0].id, docs: { ...docs, fichier: fichier.id, trashed: spare.json().id } }
}

const upload = () => {
  const body = multipart([{ name: 'fichier', filename: 'intrus.txt', type: 'text/plain', content: Buffer.from('intrus') }])
  return { payload: body.payload, headers: body.headers }
}

type Request = Pick<InjectOptions, 'payload' | 'headers'> & { params: Record<string, string> }

/**
 * How to call each operation that names an object, with organisation A's object and an
 * otherwise valid request. An operation missing here fails the walk: add it when you add it.
 */
const fixtures: Record<string, (w: World) => Request> = {
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
}

t.test('every operation naming an object answers 404 to another organisation', async (t) => {
  const app = await build(t)
  const world = await organisationA(app)
  const intruder = await signUp(app, { organisation: 'Organisation B' })

  // Public operations (the SSO redirects, named by provider) belong to no organisation.
  // The domains that landed in wave 2 check cross-organisation ids in their own suites
  // (test/backup, test/billing, test/compliance, test/stats) and in the fuzzer's organisation-B
  // mutations, until their fixtures join this table.
  const wave2 = new Set(['sauvegardes', 'abonnement', 'conformite', 'tableaux-de-bord'])
  const named = contract.filter((op) => op.url.includes(':') && !('public' in op.access) && !wave2.has(op.tags[0] ?? ''))
  t.ok(named.length > 0)
  for (const op of named) {
    const fixture = fixtures[op.operationId]
    if (!fixture) {
      t.fail(`no cross-organisation fixture for ${op.operationId} (${op.method} ${op.url})`)
      continue
    }
    const { params, payload, headers } = fixture(world)
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
})
