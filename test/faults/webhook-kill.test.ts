import pg from 'pg'
import t from 'tap'
import { signUp } from '../helpers/auth.ts'
import { build, testDatabase, testStorage } from '../helpers/build.ts'
import { feexpayEnv, startFakeFeexPay } from '../helpers/feexpay.ts'
import { startInstance } from '../helpers/instance.ts'
import { choose, pay, until, WEBHOOK_SECRET } from '../billing/helpers.ts'

// Real servers started, killed and restarted: on a busy machine each start takes tens of seconds.
t.setTimeout(600_000)

const year = new Date().getUTCFullYear()

t.test('kill -9 inside the webhook’s transaction: nothing credited; FeexPay’s next delivery credits once, one invoice, no gap', async (t) => {
  const fake = await startFakeFeexPay(t)
  // Polling slowed down: what credits here is the webhook under test.
  const env = feexpayEnv(fake, { DATABASE_URL: await testDatabase(t), STORAGE_DIR: await testStorage(t), FEEXPAY_POLL_SECONDS: '3600' })
  const setup = await build(t, env)
  const admin = await signUp(setup)
  await choose(setup, admin, 'essentiel')
  const payment = (await pay(setup, admin)).json()
  t.equal(payment.statut, 'en_attente')
  fake.settle(payment.reference, 'SUCCESSFUL')
  const state = async () => ({
    paiement: (await setup.db.selectFrom('paiements').select(['statut', 'finalise_at']).where('id', '=', payment.id).executeTakeFirstOrThrow()),
    abonnement: await setup.db.selectFrom('abonnements').select(['plan_code', 'statut', 'periode_debut', 'periode_fin']).where('organisation_id', '=', admin.organisationId).executeTakeFirstOrThrow(),
    factures: (await setup.db.selectFrom('factures').select('numero').where('organisation_id', '=', admin.organisationId).execute()).map((f) => f.numero),
    credits: (await setup.db.selectFrom('journal_activite').select('id').where('organisation_id', '=', admin.organisationId).where('action', '=', 'PAYMENT_SUCCEEDED').execute()).length,
    activations: (await setup.db.selectFrom('abonnements_historique').select('id').where('organisation_id', '=', admin.organisationId).where('evenement', '=', 'active').execute()).length,
  })
  const before = await state()

  // The webhook's transaction journals last, under its organisation's chain lock
  // (journal_ajouter): held here, the transaction waits there having already activated the
  // subscription, marked the payment paid and numbered the invoice, none of it committed.
  const locker = new pg.Client({ connectionString: env.DATABASE_URL })
  await locker.connect()
  t.teardown(() => locker.end())
  const chain = `journal:${admin.organisationId}`
  await locker.query('select pg_advisory_lock(hashtextextended($1, 0))', [chain])

  const server = await startInstance(t, env)
  const delivery = fetch(`${server.url}/paiements/feexpay/webhook?secret=${encodeURIComponent(WEBHOOK_SECRET)}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(fake.webhookBody(payment.reference)),
  }).then(
    (res) => res.status,
    (error: Error) => error,
  )
  const blocked = await until('the webhook’s transaction to wait on the chain lock', async () => {
    const { rows } = await locker.query<{ pid: number; writes: boolean }>(
      `select a.pid, exists (select 1 from pg_locks w where w.pid = a.pid and w.locktype = 'transactionid' and w.granted) as writes
       from pg_stat_activity a join pg_locks l on l.pid = a.pid
       where a.datname = current_database() and l.locktype = 'advisory' and not l.granted`,
    )
    return rows[0]
  }, 60_000)
  t.ok(blocked.writes, 'blocked inside its transaction, after its first writes (it holds a transaction id)')
  t.same(await state(), before, 'seen from outside meanwhile: nothing committed')

  await server.kill()
  t.type(await delivery, Error, 'FeexPay’s delivery saw the connection die: it will deliver again')
  await locker.query('select pg_advisory_unlock(hashtextextended($1, 0))', [chain])
  // Released, the orphaned backend finishes its statement, finds its client gone and rolls back.
  await until('the killed instance’s backend to end', async () => {
    const { rows } = await locker.query('select 1 from pg_stat_activity where pid = $1', [blocked.pid])
    return rows.length === 0
  }, 60_000)
  const killed = await state()
  t.same(killed, before, 'after the kill: payment pending, subscription unchanged, no invoice, no credit')
  t.comment(`killed (kill -9) with the webhook's transaction blocked in it (backend ${blocked.pid}); after: payment ${killed.paiement.statut}, subscription ${killed.abonnement.statut}, ${killed.factures.length} invoice, ${killed.credits} credit`)

  const restarted = await startInstance(t, env)
  const redeliver = () =>
    fetch(`${restarted.url}/paiements/feexpay/webhook?secret=${encodeURIComponent(WEBHOOK_SECRET)}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(fake.webhookBody(payment.reference)),
    })
  t.equal((await redeliver()).status, 200, 'FeexPay delivers again to the restarted instance')
  const credited = await state()
  t.match(credited, { paiement: { statut: 'reussi' }, abonnement: { statut: 'actif', plan_code: 'essentiel' }, credits: 1, activations: 1 })
  t.same(credited.factures, [`FAC-${year}-000001`], 'one invoice, numbered without a gap: the killed transaction’s number was never taken')
  for (let i = 0; i < 2; i++) t.equal((await redeliver()).status, 200)
  t.same(await state(), credited, 'two more deliveries: idempotent, nothing credited twice')
  t.comment(`re-delivered to a restarted instance: payment ${credited.paiement.statut}, invoice ${credited.factures.join(', ')}, ${credited.credits} credit; 2 more deliveries changed nothing`)
})
