import { randomBytes } from 'node:crypto'
import t from 'tap'
import { addMember, signUp } from '../helpers/auth.ts'
import { build } from '../helpers/build.ts'
import { enrollTotp } from '../helpers/mfa.ts'
import { backup, readZip } from '../backup/helpers.ts'
import { journal, tree, uploadFile } from '../documents/helpers.ts'
import { caller, refusals } from './helpers.ts'

const jsonOf = async (zip: Buffer) => {
  const entries = await readZip(zip)
  return Object.fromEntries([...entries].map(([name, e]) => [name, JSON.parse(e.data.toString('utf8'))]))
}

t.test('GDPR: export of one’s own data, an admin’s export, and erasure that a legal hold limits', async (t) => {
  const app = await build(t)
  const admin = await signUp(app)
  const alice = await addMember(app, admin, 'contributeur')
  const bob = await addMember(app, admin, 'contributeur')
  const secret = await enrollTotp(app, alice)
  t.ok(secret.backupCodes.length > 0)
  const { dossier, casier } = await tree(app, admin)
  const aliceFile = (await uploadFile(app, alice, dossier, randomBytes(20), { filename: 'note-alice.txt' })).fichier.id
  const other = await tree(app, admin)
  const bobFile = (await uploadFile(app, bob, other.dossier, randomBytes(20), { filename: 'note-bob.txt' })).fichier.id

  const mine = await caller(app, alice).get('/me/export')
  t.equal(mine.statusCode, 200)
  t.equal(mine.headers['content-type'], 'application/zip')
  const data = await jsonOf(mine.rawPayload)
  t.same(Object.keys(data).sort(), ['compte.json', 'facteurs.json', 'fichiers.json', 'journal.json', 'sessions.json'])
  t.match(data['compte.json'].compte, { id: alice.userId, email: alice.email, role: 'contributeur' })
  t.ok(data['sessions.json'].length >= 1)
  t.match(data['facteurs.json'], { facteurs: [{ methode: 'totp' }], codes_secours: { restants: secret.backupCodes.length } })
  t.notOk(JSON.stringify(data['facteurs.json']).includes('secret'), 'no secret in the export')
  t.same(data['fichiers.json'].fichiers.map((f: { id: string }) => f.id), [aliceFile])
  t.ok(data['journal.json'].some((e: { action: string; hash: string }) => e.action === 'MFA_ENABLED' && /^[0-9a-f]{64}$/.test(e.hash)))
  t.ok(data['journal.json'].some((e: { action: string }) => e.action === 'USER_INVITED'), 'entries about them, not only by them')

  t.equal((await caller(app, alice).get(`/users/${bob.userId}/export`)).statusCode, 403, 'another member’s export is for admins')
  const bobs = await jsonOf((await caller(app, admin).get(`/users/${bob.userId}/export`)).rawPayload)
  t.equal(bobs['compte.json'].compte.email, bob.email)
  const stranger = await signUp(app, { organisation: 'Autre' })
  t.equal((await caller(app, stranger).get(`/users/${bob.userId}/export`)).statusCode, 404)
  t.equal((await caller(app, stranger).post(`/users/${bob.userId}/effacement`, { motif: 'x' })).statusCode, 404)
  t.equal((await caller(app, alice).post(`/users/${bob.userId}/effacement`, { motif: 'x' })).statusCode, 403)

  t.test('erasure without a hold: anonymised, signed out, the journal’s chain intact', async (t) => {
    const res = await caller(app, admin).post(`/users/${bob.userId}/effacement`, { motif: 'Demande du 4 mars' })
    t.equal(res.statusCode, 200)
    t.match(res.json(), { utilisateur_id: bob.userId, statut: 'complet', identite_conservee: false, refus: [] })
    t.ok(res.json().sessions_supprimees >= 1)
    const user = await app.db.selectFrom('utilisateurs').selectAll().where('id', '=', bob.userId).executeTakeFirstOrThrow()
    t.match(user, { actif: false, mot_de_passe_hash: null, nom: res.json().pseudonyme })
    t.notOk(user.email.includes(bob.email.split('@')[0]!), 'the address is gone')
    t.equal((await caller(app, bob).get('/me')).statusCode, 401, 'the session ends at once')
    const signIn = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: bob.email, mot_de_passe: bob.password } })
    t.equal(signIn.statusCode, 401, 'nor can they sign in again')
    t.equal((await caller(app, admin).get(`/fichiers/${bobFile}`)).json().created_by, bob.userId, 'the file stays, its author now a pseudonym')
    t.match((await journal(app, admin.organisationId)).find((e) => e.action === 'USER_ERASED'), { cible_id: bob.userId, severite: 'HIGH', details: { statut: 'complet', motif: 'Demande du 4 mars' } })
    t.equal((await caller(app, admin).get('/journal/verification')).json().intact, true, 'nothing in the journal was rewritten')
  })

  t.test('a hold wins: the identity linked to held files is kept, the refusal reported and journaled', async (t) => {
    const hold = (await caller(app, admin).post('/conformite/gels', { nom: 'Enquête interne', motif: 'Signalement', objets: [{ type: 'casier', id: casier }] })).json()
    const res = await caller(app, admin).post(`/users/${alice.userId}/effacement`, { motif: 'Départ' })
    t.equal(res.statusCode, 200)
    t.match(res.json(), { statut: 'partiel', identite_conservee: true, refus: [{ gel: { id: hold.id, nom: 'Enquête interne' }, fichiers: [{ id: aliceFile, nom: 'note-alice.txt' }] }] })
    t.ok(res.json().facteurs_supprimes >= 1, 'factors go all the same')
    const user = await app.db.selectFrom('utilisateurs').selectAll().where('id', '=', alice.userId).executeTakeFirstOrThrow()
    t.match(user, { actif: false, email: alice.email })
    t.equal((await app.db.selectFrom('facteurs_mfa').select('id').where('utilisateur_id', '=', alice.userId).execute()).length, 0)
    t.match((await refusals(app, admin.organisationId)).at(-1), { cible_id: alice.userId, severite: 'HIGH', details: { action: 'erase', raison: 'gel', gels: [hold.id], fichiers: [aliceFile] } })
  })

  t.test('a hold keeps the backups covering what it holds', async (t) => {
    const held = await backup(app, admin, { type: 'dossier', cible_id: dossier })
    const whole = await backup(app, admin, { type: 'systeme' })
    const free = await backup(app, admin, { type: 'dossier', cible_id: other.dossier })
    t.equal(held.statut, 'terminee')
    for (const b of [held, whole]) {
      const res = await caller(app, admin).delete(`/sauvegardes/${b.id}`)
      t.equal(res.statusCode, 409)
      t.equal(res.json().code, 'LEGAL_HOLD')
    }
    t.equal((await caller(app, admin).delete(`/sauvegardes/${free.id}`)).statusCode, 204, 'a backup of nothing held is pruned')
    t.ok((await refusals(app, admin.organisationId)).some((r) => r.details.action === 'prune'), 'journaled')
  })
})
