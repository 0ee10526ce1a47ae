import t from 'tap'
import type { SauvegardeDto } from '../../openapi/backup.ts'
import { keep } from '../../plugins/backup/schedules.ts'
import { addMember, signUp } from '../helpers/auth.ts'
import { build } from '../helpers/build.ts'
import { journal, tree, uploadFile } from '../documents/helpers.ts'
import { settled } from './helpers.ts'

t.test('retention keeps what restic/Borg forget --keep-* keeps', async (t) => {
  const at = (iso: string) => ({ id: iso, created_at: new Date(iso) })
  const backups = [
    at('2026-03-10T02:00:00Z'),
    at('2026-03-09T14:00:00Z'),
    at('2026-03-09T02:00:00Z'),
    at('2026-03-08T02:00:00Z'),
    at('2026-03-01T02:00:00Z'),
    at('2026-02-15T02:00:00Z'),
    at('2026-01-20T02:00:00Z'),
  ]
  t.same([...keep(backups, { derniers: 2, quotidiennes: 0, hebdomadaires: 0, mensuelles: 0 }, 'UTC')].sort(), ['2026-03-09T14:00:00Z', '2026-03-10T02:00:00Z'])
  t.same([...keep(backups, { derniers: 0, quotidiennes: 3, hebdomadaires: 0, mensuelles: 0 }, 'UTC')].sort(), ['2026-03-08T02:00:00Z', '2026-03-09T14:00:00Z', '2026-03-10T02:00:00Z'], 'the newest of each of the last 3 days')
  t.same([...keep(backups, { derniers: 0, quotidiennes: 0, hebdomadaires: 2, mensuelles: 0 }, 'UTC')].sort(), ['2026-03-08T02:00:00Z', '2026-03-10T02:00:00Z'], 'ISO weeks: Monday 9 March starts a new one')
  t.same([...keep(backups, { derniers: 1, quotidiennes: 0, hebdomadaires: 0, mensuelles: 3 }, 'UTC')].sort(), ['2026-01-20T02:00:00Z', '2026-02-15T02:00:00Z', '2026-03-10T02:00:00Z'])
  t.same([...keep(backups, { derniers: 0, quotidiennes: 1, hebdomadaires: 0, mensuelles: 0 }, 'Pacific/Honolulu')], ['2026-03-10T02:00:00Z'], 'days are the schedule’s own')
})

t.test('scheduled backups', async (t) => {
  const app = await build(t)
  const admin = await signUp(app)
  const headers = admin.headers
  const { armoire, dossier } = await tree(app, admin)
  await uploadFile(app, admin, dossier, Buffer.from('contenu planifié'), { filename: 'a.txt', type: 'text/plain' })
  const policy = { derniers: 1, quotidiennes: 0, hebdomadaires: 0, mensuelles: 0 }

  const created = await app.inject({
    method: 'POST',
    url: '/sauvegardes/planifications',
    headers,
    payload: { type: 'armoire', cible_id: armoire, frequence: '0 2 * * *', fuseau: 'Europe/Paris', conservation: policy },
  })
  t.equal(created.statusCode, 201)
  const schedule = created.json()
  t.match(schedule, { type: 'armoire', cible_id: armoire, active: true, derniere_execution: null, prochaine_execution: /T0[01]:00:00\.000Z$/ })
  t.equal((await app.inject({ method: 'GET', url: `/sauvegardes/planifications/${schedule.id}`, headers })).json().id, schedule.id)
  t.same((await app.inject({ method: 'GET', url: '/sauvegardes/planifications', headers })).json().items.map((p: { id: string }) => p.id), [schedule.id])
  const bad = await app.inject({ method: 'POST', url: '/sauvegardes/planifications', headers, payload: { type: 'systeme', frequence: '99 99 * * *', conservation: policy } })
  t.equal(bad.statusCode, 400)
  t.match(bad.json().errors, [{ field: 'body.frequence' }])
  const lecteur = await addMember(app, admin, 'lecteur')
  t.equal((await app.inject({ method: 'GET', url: '/sauvegardes/planifications', headers: lecteur.headers })).statusCode, 403)
  const stranger = await signUp(app, { organisation: 'Ailleurs' })
  t.equal((await app.inject({ method: 'GET', url: `/sauvegardes/planifications/${schedule.id}`, headers: stranger.headers })).statusCode, 404)

  /** A due run: the schedule's last run moved an hour back, then the minutely tick's job. */
  const run = async (id: string) => {
    await app.db.updateTable('planifications_sauvegarde').set({ derniere_execution: new Date(Date.now() - 48 * 3_600_000) }).where('id', '=', id).execute()
    const before = (await app.db.selectFrom('sauvegardes').select('id').where('planification_id', '=', id).execute()).map((r) => r.id)
    await app.jobs.send('backup.planifications', {})
    for (let i = 0; i < 400; i++) {
      const row = await app.db.selectFrom('sauvegardes').select('id').where('planification_id', '=', id).where('id', 'not in', before.length ? before : ['00000000-0000-0000-0000-000000000000']).executeTakeFirst()
      if (row) return settled<SauvegardeDto>(app, admin, `/sauvegardes/${row.id}`)
      await new Promise((r) => setTimeout(r, 50))
    }
    throw new Error('the tick started no backup')
  }

  const first = await run(schedule.id)
  t.match(first, { statut: 'terminee', declencheur: 'planifie', planification_id: schedule.id, type: 'armoire', cible_id: armoire })
  t.match((await app.inject({ method: 'POST', url: `/sauvegardes/${first.id}/verifier`, headers })).json(), { valide: true })
  const second = await run(schedule.id)
  const third = await run(schedule.id)
  const left = async () => (await app.inject({ method: 'GET', url: `/sauvegardes?cible_id=${armoire}`, headers })).json().items.map((b: SauvegardeDto) => b.id)
  for (let i = 0; i < 100 && (await left()).length > 2; i++) await new Promise((r) => setTimeout(r, 50))
  t.same((await left()).sort(), [first.id, third.id].sort(), 'keeps the last one, and the last verified one whatever the policy')
  t.match((await journal(app, admin.organisationId)).filter((e) => e.action === 'BACKUP_DELETED'), [{ cible_id: second.id, details: { automatique: true, planification_id: schedule.id } }])

  const patched = await app.inject({ method: 'PATCH', url: `/sauvegardes/planifications/${schedule.id}`, headers, payload: { active: false } })
  t.match(patched.json(), { active: false, prochaine_execution: null })

  // A failed scheduled backup is mailed to the admins.
  const other = await app.inject({
    method: 'POST',
    url: '/sauvegardes/planifications',
    headers,
    payload: { type: 'dossier', cible_id: dossier, frequence: '*/5 * * * *', conservation: policy },
  })
  t.equal((await app.inject({ method: 'DELETE', url: `/dossiers/${dossier}?recursif=true`, headers })).statusCode, 204)
  const failed = await run(other.json().id)
  t.match(failed, { statut: 'echec', declencheur: 'planifie', erreur: { code: 'NOT_FOUND' } })
  let mail
  for (let i = 0; i < 100 && !mail; i++) {
    mail = await app.db.selectFrom('courriels').selectAll().where('kind', '=', 'sauvegarde_echec').executeTakeFirst()
    if (!mail) await new Promise((r) => setTimeout(r, 50))
  }
  t.match(mail, { destinataire: admin.email, sujet: /Échec d’une sauvegarde planifiée/ })
  t.equal((await app.inject({ method: 'DELETE', url: `/sauvegardes/planifications/${other.json().id}`, headers })).statusCode, 204)
  t.match((await journal(app, admin.organisationId)).at(-1), { action: 'BACKUP_SCHEDULE_CHANGED', details: { changement: 'suppression' } })
})
