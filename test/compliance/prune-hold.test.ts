import t from 'tap'
import type { SauvegardeDto } from '../../openapi/backup.ts'
import { holdsCoveringBackup } from '../../plugins/compliance/public.ts'
import { signUp } from '../helpers/auth.ts'
import { build } from '../helpers/build.ts'
import { settled } from '../backup/helpers.ts'
import { journal, tree, uploadFile } from '../documents/helpers.ts'
import { caller, refusals } from './helpers.ts'

const wait = async (until: () => Promise<boolean>, what: string) => {
  for (let i = 0; i < 400; i++) {
    if (await until()) return
    await new Promise((r) => setTimeout(r, 50))
  }
  throw new Error(`never: ${what}`)
}

t.test('scheduled pruning keeps the backups covering a held file, and prunes them once the hold is released', async (t) => {
  const app = await build(t)
  const admin = await signUp(app)
  const { armoire, dossier } = await tree(app, admin)
  const elsewhere = await tree(app, admin)
  const held = (await uploadFile(app, admin, dossier, Buffer.from('pièce du litige'), { filename: 'litige.txt' })).fichier.id
  const policy = { derniers: 1, quotidiennes: 0, hebdomadaires: 0, mensuelles: 0 }
  const schedule = async (body: Record<string, unknown>) => {
    const res = await caller(app, admin).post('/sauvegardes/planifications', { frequence: '0 2 * * *', conservation: policy, ...body })
    t.equal(res.statusCode, 201)
    return res.json().id as string
  }
  const ofArmoire = await schedule({ type: 'armoire', cible_id: armoire })
  const ofSystem = await schedule({ type: 'systeme' })
  const ofOther = await schedule({ type: 'armoire', cible_id: elsewhere.armoire })
  const backupsOf = async (planification: string) =>
    (await app.db.selectFrom('sauvegardes').select('id').where('planification_id', '=', planification).orderBy('created_at').execute()).map((r) => r.id)

  /** A due run of one schedule, as the minutely tick starts it; answers the finished backup. */
  const run = async (planification: string) => {
    const before = await backupsOf(planification)
    await app.db.updateTable('planifications_sauvegarde').set({ active: false }).where('id', '<>', planification).execute()
    await app.db.updateTable('planifications_sauvegarde').set({ active: true, derniere_execution: new Date(Date.now() - 48 * 3_600_000) }).where('id', '=', planification).execute()
    await app.jobs.send('backup.planifications', {})
    let id: string | undefined
    await wait(async () => Boolean((id = (await backupsOf(planification)).find((b) => !before.includes(b)))), 'the tick started a backup')
    return settled<SauvegardeDto>(app, admin, `/sauvegardes/${id}`)
  }
  /** Runs a schedule and waits for its pruning to be over: `kept` backups refused, or the count down to `left`. */
  const runAndPrune = async (planification: string, expect: { refused: number } | { left: number }) => {
    const refusedBefore = (await refusals(app, admin.organisationId)).filter((r) => (r.details as { action?: string }).action === 'prune').length
    const done = await run(planification)
    t.equal(done.statut, 'terminee')
    if ('refused' in expect) {
      await wait(async () => (await refusals(app, admin.organisationId)).filter((r) => (r.details as { action?: string }).action === 'prune').length >= refusedBefore + expect.refused, 'pruning refused')
    } else {
      await wait(async () => (await backupsOf(planification)).length === expect.left, 'pruned')
    }
    return done.id
  }

  const hold = (await caller(app, admin).post('/conformite/gels', { nom: 'Litige fournisseur', motif: 'Assignation reçue', objets: [{ type: 'fichier', id: held }] })).json()
  t.same(await holdsCoveringBackup(app.db, admin.organisationId, { type: 'armoire', id: armoire }), [{ id: hold.id, nom: 'Litige fournisseur' }], 'compliance says a backup of the cabinet covers the held file')
  t.same(await holdsCoveringBackup(app.db, admin.organisationId, { type: 'armoire', id: elsewhere.armoire }), [], 'and that one of another cabinet does not')

  const a1 = await runAndPrune(ofArmoire, { left: 1 })
  const a2 = await runAndPrune(ofArmoire, { refused: 1 })
  t.same(await backupsOf(ofArmoire), [a1, a2], 'the older backup of the cabinet, which the policy would prune, is kept')
  const s1 = await runAndPrune(ofSystem, { left: 1 })
  const s2 = await runAndPrune(ofSystem, { refused: 1 })
  t.same(await backupsOf(ofSystem), [s1, s2], 'so is a system backup: it covers everything')
  await runAndPrune(ofOther, { left: 1 })
  const o2 = await runAndPrune(ofOther, { left: 1 })
  t.same(await backupsOf(ofOther), [o2], 'a backup covering nothing held is pruned as the policy says')
  t.match((await refusals(app, admin.organisationId)).filter((r) => (r.details as { action?: string }).action === 'prune'), [
    { cible_type: 'armoire', cible_id: armoire, severite: 'HIGH', details: { raison: 'gel', gels: [hold.id] } },
    { cible_type: 'organisation', cible_id: admin.organisationId, details: { raison: 'gel', gels: [hold.id] } },
  ], 'each refusal is journaled')

  t.equal((await caller(app, admin).post(`/conformite/gels/${hold.id}/levee`, { motif: 'Litige clos' })).statusCode, 200)
  const a3 = await runAndPrune(ofArmoire, { left: 1 })
  t.same(await backupsOf(ofArmoire), [a3], 'released, the next pruning removes what the hold kept')
  const s3 = await runAndPrune(ofSystem, { left: 1 })
  t.same(await backupsOf(ofSystem), [s3])
  const deleted = (await journal(app, admin.organisationId)).filter((e) => e.action === 'BACKUP_DELETED').map((e) => e.cible_id)
  t.ok([a1, a2, s1, s2].every((id) => deleted.includes(id)), 'each pruned backup is journaled')
})
