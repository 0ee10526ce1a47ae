import { sql } from 'kysely'
import t from 'tap'
import { chainHash, entryDigestJcs, verifyChain } from '../../src/audit.ts'
import { checkpointAll } from '../../src/journal-checkpoints.ts'
import { addMember, onUnlimitedPlan, signUp } from '../helpers/auth.ts'
import { build } from '../helpers/build.ts'
import { tamper } from '../helpers/tamper.ts'

t.test('journal checkpoints: the chain is held against its newest signed end', async (t) => {
  const app = await build(t)
  const admin = await signUp(app)
  await onUnlimitedPlan(app, admin)
  for (const role of ['lecteur', 'contributeur'] as const) await addMember(app, admin, role)
  const verify = async () => (await app.inject({ method: 'GET', url: '/journal/verification', headers: admin.headers })).json()

  const head = await app.db.selectFrom('journal_activite').select(['sequence', 'hash']).where('organisation_id', '=', admin.organisationId).orderBy('sequence', 'desc').executeTakeFirstOrThrow()
  const created = await app.inject({ method: 'POST', url: '/journal/points-controle', headers: admin.headers })
  t.equal(created.statusCode, 201, created.body)
  const checkpoint = created.json()
  t.match(checkpoint, { sequence: head.sequence, hash: head.hash.toString('hex'), cle_id: 'points-controle-1', signature: /^[0-9a-f]{64}$/ })
  const key = await app.db.selectFrom('cles_journal').selectAll().executeTakeFirstOrThrow()
  t.equal(key.cle_enveloppee.length, 60, 'the signing key is stored wrapped by the master key only')

  const ok = await verify()
  t.match(ok, { intact: true, premiere_rupture: null, point_controle: { sequence: checkpoint.sequence } })
  const lecteur = await app.inject({ method: 'POST', url: '/journal/points-controle', headers: (await addMember(app, admin, 'lecteur')).headers })
  t.equal(lecteur.statusCode, 403, 'admins only')

  const exported = await app.inject({ method: 'GET', url: '/journal/export?format=json', headers: admin.headers })
  t.same(JSON.parse(String(exported.headers['armoire-point-controle'])), checkpoint, 'the export carries the newest checkpoint')

  t.test('the newest entries deleted: detected', async (t) => {
    const before = await verifyChain(app.db, admin.organisationId)
    t.equal(before.intact, true)
    await tamper(app.db, sql`delete from journal_activite where organisation_id = ${admin.organisationId} and sequence >= ${checkpoint.sequence}`)
    t.equal((await verifyChain(app.db, admin.organisationId)).intact, true, 'the chain alone cannot tell')
    const res = await verify()
    t.match(res, { intact: false, premiere_rupture: { sequence: checkpoint.sequence, raison: /supprimées/ } })
  })

  t.test('the chain recomputed after an edit: detected', async (t) => {
    const app = await build(t)
    const admin = await signUp(app)
    await onUnlimitedPlan(app, admin)
    await addMember(app, admin, 'lecteur')
    t.equal((await app.inject({ method: 'POST', url: '/journal/points-controle', headers: admin.headers })).statusCode, 201)
    await addMember(app, admin, 'lecteur')
    // Someone with write access edits an entry and recomputes every hash after it, as the code does.
    await tamper(app.db, sql`update journal_activite set cible_nom = 'quelqu’un d’autre' where organisation_id = ${admin.organisationId} and sequence = 2`)
    const rows = await app.db.selectFrom('journal_activite').selectAll().where('organisation_id', '=', admin.organisationId).orderBy('sequence').execute()
    let previous: Buffer | null = rows[0]!.hash
    for (const row of rows.slice(1)) {
      const hash = chainHash(previous, entryDigestJcs(row), row.sequence)
      await tamper(app.db, sql`update journal_activite set hash_precedent = ${previous}, hash = ${hash} where id = ${row.id}`)
      previous = hash
    }
    t.equal((await verifyChain(app.db, admin.organisationId)).intact, true, 'a consistent chain again')
    const res = (await app.inject({ method: 'GET', url: '/journal/verification', headers: admin.headers })).json()
    t.match(res, { intact: false, premiere_rupture: { raison: /recalculée/ } })

    // Forging the checkpoint too needs the signing key, which the database does not hold in clear.
    const [cp] = await app.db.selectFrom('journal_points_controle').selectAll().where('organisation_id', '=', admin.organisationId).execute()
    const forged = rows.find((r) => r.sequence === cp!.sequence)!
    await app.db.updateTable('journal_points_controle').set({ hash: (await app.db.selectFrom('journal_activite').select('hash').where('id', '=', forged.id).executeTakeFirstOrThrow()).hash }).execute()
    const again = (await app.inject({ method: 'GET', url: '/journal/verification', headers: admin.headers })).json()
    t.match(again, { intact: false, premiere_rupture: { raison: /signature/ } })
  })

  t.test('periodically: every chain that grew gets a checkpoint', async (t) => {
    const other = await signUp(app)
    const made = await checkpointAll(app.db, app.keys)
    t.ok(made >= 1)
    t.ok(await app.db.selectFrom('journal_points_controle').select('id').where('organisation_id', '=', other.organisationId).executeTakeFirst())
    t.equal(await checkpointAll(app.db, app.keys), 0, 'nothing new, nothing signed')
    const { rows } = await sql<{ cron: string }>`select cron from pgboss.schedule where name = 'security.journal.points-controle'`.execute(app.db)
    t.same(rows, [{ cron: '*/10 * * * *' }], 'scheduled with pg-boss')
  })
})
