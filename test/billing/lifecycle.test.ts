import { randomBytes } from 'node:crypto'
import { sql } from 'kysely'
import t from 'tap'
import { billingSettings } from '../../plugins/billing/index.ts'
import { runLifecycle } from '../../plugins/billing/lifecycle.ts'
import { loadConfig } from '../../src/config.ts'
import { signUp } from '../helpers/auth.ts'
import { runJob } from '../helpers/jobs.ts'
import { tree, upload, uploadFile } from '../documents/helpers.ts'
import { as, billingApp, choose, pay, webhook } from './helpers.ts'

const DAY = 86_400_000

t.test('the lifecycle: reminders, en_retard, then read-only suspension lifted by paying', async (t) => {
  const { app, fake } = await billingApp(t, { FEEXPAY_POLL_SECONDS: '3600', BILLING_GRACE_DAYS: '7' })
  const { lifecycle } = billingSettings(loadConfig({ BILLING_GRACE_DAYS: '7' }))
  const admin = await signUp(app)
  const { armoire, dossier } = await tree(app, admin)
  const { fichier } = await uploadFile(app, admin, dossier, randomBytes(1000), { filename: 'contrat.pdf' })
  const status = async () => (await app.inject({ method: 'GET', url: '/abonnement', headers: as(admin) })).json()
  const setSub = (values: Record<string, unknown>) => app.db.updateTable('abonnements').set(values).where('organisation_id', '=', admin.organisationId).execute()

  t.test('a reminder before the end, in French, once per threshold', async (t) => {
    await setSub({ periode_debut: new Date(Date.now() - 11 * DAY), periode_fin: new Date(Date.now() + 3 * DAY) })
    await runLifecycle(app, lifecycle)
    await runLifecycle(app, lifecycle)
    const mails = await app.db.selectFrom('courriels').selectAll().where('organisation_id', '=', admin.organisationId).where('kind', '=', 'rappel_echeance').execute()
    t.equal(mails.length, 1, 'one reminder for the 7-day threshold, not two')
    t.match(mails[0]?.sujet, /Votre essai Armoire se termine le/)
  })

  t.test('at the end, unpaid: en_retard, still writable during the grace period', async (t) => {
    await setSub({ periode_debut: new Date(Date.now() - 14 * DAY), periode_fin: new Date(Date.now() - 1000) })
    await runLifecycle(app, lifecycle)
    const sub = await status()
    t.match(sub, { statut: 'en_retard', lecture_seule: false })
    t.equal((await upload(app, admin, `/dossiers/${dossier}/fichiers`, randomBytes(10), { filename: 'b.txt' })).statusCode, 201)
  })

  t.test('after the grace period: suspendu, read-only with SUBSCRIPTION_INACTIVE', async (t) => {
    await setSub({ en_retard_depuis: new Date(Date.now() - 8 * DAY) })
    await runLifecycle(app, lifecycle)
    const sub = await status()
    t.match(sub, { statut: 'suspendu', lecture_seule: true })
    const refused = [
      await upload(app, admin, `/dossiers/${dossier}/fichiers`, randomBytes(10), { filename: 'c.txt' }),
      await upload(app, admin, `/fichiers/${fichier.id}/version`, randomBytes(10)),
      await app.inject({ method: 'POST', url: '/armoires', headers: as(admin), payload: { nom: 'Nouvelle' } }),
      await app.inject({ method: 'POST', url: `/armoires/${armoire}/casiers`, headers: as(admin), payload: { nom: 'Nouveau' } }),
      await app.inject({ method: 'POST', url: `/dossiers/${dossier}/dossiers`, headers: as(admin), payload: { nom: 'Sous' } }),
    ]
    for (const res of refused) {
      t.equal(res.statusCode, 402)
      t.equal(res.json().code, 'SUBSCRIPTION_INACTIVE')
    }
    t.equal((await app.inject({ method: 'GET', url: `/fichiers/${fichier.id}/contenu`, headers: as(admin) })).statusCode, 200, 'downloads keep working')
    t.equal((await app.inject({ method: 'GET', url: `/dossiers/${dossier}/fichiers`, headers: as(admin) })).statusCode, 200, 'reading keeps working')
    t.equal((await app.inject({ method: 'GET', url: '/journal', headers: as(admin) })).statusCode, 200, 'the journal keeps working')
    const kept = await app.db.selectFrom('fichiers').select('id').where('organisation_id', '=', admin.organisationId).execute()
    t.equal(kept.length, 2, 'nothing deleted')
    const changed = await app.db.selectFrom('journal_activite').select('details').where('organisation_id', '=', admin.organisationId).where('action', '=', 'SUBSCRIPTION_CHANGED').execute()
    t.same(changed.map((c) => (c.details as { apres: { statut: string } }).apres.statut), ['en_retard', 'suspendu'])
    const mails = await app.db.selectFrom('courriels').select('kind').where('organisation_id', '=', admin.organisationId).execute()
    t.ok(mails.some((m) => m.kind === 'abonnement_suspendu'))
  })

  t.test('read-only even before the job runs, once the grace period is over', async (t) => {
    const other = await signUp(app)
    await app.db.updateTable('abonnements').set({ periode_debut: new Date(Date.now() - 23 * DAY), periode_fin: new Date(Date.now() - 9 * DAY) }).where('organisation_id', '=', other.organisationId).execute()
    const res = await app.inject({ method: 'POST', url: '/armoires', headers: as(other), payload: { nom: 'Tard' } })
    t.equal(res.statusCode, 402)
  })

  t.test('paying reactivates at once', async (t) => {
    await choose(app, admin, 'essentiel')
    const payment = (await pay(app, admin)).json()
    fake.settle(payment.reference, 'SUCCESSFUL')
    t.equal((await webhook(app, fake.webhookBody(payment.reference))).statusCode, 200)
    t.match(await status(), { statut: 'actif', lecture_seule: false, plan: { code: 'essentiel' } })
    t.equal((await upload(app, admin, `/dossiers/${dossier}/fichiers`, randomBytes(10), { filename: 'd.txt' })).statusCode, 201)
  })
})

t.test('quotas from the plan; proration on upgrade; downgrade at the period end', async (t) => {
  const { app, fake } = await billingApp(t, { FEEXPAY_POLL_SECONDS: '3600' })
  const { lifecycle } = billingSettings(loadConfig({}))

  t.test('armoires: the plan’s count', async (t) => {
    const admin = await signUp(app)
    await app.db.updateTable('plans').set({ quota_armoires: 3 }).where('code', '=', 'essai').execute()
    t.teardown(() => app.db.updateTable('plans').set({ quota_armoires: 0 }).where('code', '=', 'essai').execute())
    for (let i = 0; i < 3; i++) t.equal((await app.inject({ method: 'POST', url: '/armoires', headers: as(admin), payload: { nom: `A${i}` } })).statusCode, 201)
    const res = await app.inject({ method: 'POST', url: '/armoires', headers: as(admin), payload: { nom: 'A3' } })
    t.equal(res.statusCode, 409)
    t.match(res.json(), { code: 'QUOTA_EXCEEDED', detail: /Quota « armoires » du plan Essai gratuit dépassé : 3 armoires pour 3 autorisées/ })
  })

  t.test('storage: the plan’s quota replaces the configured default', async (t) => {
    const admin = await signUp(app)
    await app.db.updateTable('plans').set({ quota_stockage_octets: 5000 }).where('code', '=', 'essai').execute()
    t.teardown(() => app.db.updateTable('plans').set({ quota_stockage_octets: 2 * 1024 ** 3 }).where('code', '=', 'essai').execute())
    const { dossier } = await tree(app, admin)
    await uploadFile(app, admin, dossier, randomBytes(4000), { filename: 'a' })
    const res = await upload(app, admin, `/dossiers/${dossier}/fichiers`, randomBytes(2000), { filename: 'b' })
    t.equal(res.statusCode, 409)
    t.equal(res.json().code, 'QUOTA_EXCEEDED')
    t.match(res.json().detail, /Quota « stockage » de l’organisation dépassé : 5000 octets autorisés/)
    const sub = (await app.inject({ method: 'GET', url: '/abonnement', headers: as(admin) })).json()
    t.same(sub.utilisation.stockage_octets, { utilise: 4000, quota: 5000 })
  })

  t.test('an upgrade credits the rest of the period prorated to the day; a downgrade waits for its end', async (t) => {
    const admin = await signUp(app)
    await choose(app, admin, 'professionnel')
    const first = (await pay(app, admin)).json()
    fake.settle(first.reference, 'SUCCESSFUL')
    await webhook(app, fake.webhookBody(first.reference))
    // Ten days into a 30-day period of 25 000 HT: 20 days left, 16 666 HT credited.
    await sql`update abonnements set periode_debut = now() - interval '10 days', periode_fin = now() + interval '20 days' + interval '1 hour'
      where organisation_id = ${admin.organisationId}`.execute(app.db)
    const up = await choose(app, admin, 'entreprise')
    t.same(up.changement_prevu, { plan: 'entreprise', periodicite: 'mensuelle', effet: 'paiement' })
    t.equal(up.prochain_paiement.credit_prorata_ht, Math.floor((25_000 * 20) / 30))
    t.equal(up.prochain_paiement.montant_ht, 75_000 - Math.floor((25_000 * 20) / 30))
    // Paid: the invoice shows the new plan whole and the credit as a line of its own.
    const upgrade = (await pay(app, admin)).json()
    fake.settle(upgrade.reference, 'SUCCESSFUL')
    t.equal((await webhook(app, fake.webhookBody(upgrade.reference))).statusCode, 200)
    const { facture_id: invoiceId } = (await app.inject({ method: 'GET', url: `/paiements/${upgrade.id}`, headers: as(admin) })).json()
    const invoice = (await app.inject({ method: 'GET', url: `/factures/${invoiceId}`, headers: as(admin) })).json()
    const credit = Math.floor((25_000 * 20) / 30)
    t.match(invoice.lignes, [
      { quantite: 1, prix_unitaire_ht: 75_000, montant_ht: 75_000 },
      { libelle: /^Crédit au prorata : 20 jours restants de l’abonnement Professionnel/, quantite: 1, prix_unitaire_ht: -credit, montant_ht: -credit },
    ])
    t.equal(invoice.lignes.length, 2)
    t.match((await app.inject({ method: 'GET', url: '/abonnement', headers: as(admin) })).json(), { plan: { code: 'entreprise' }, statut: 'actif' })
    const down = await choose(app, admin, 'essentiel')
    t.same(down.changement_prevu, { plan: 'essentiel', periodicite: 'mensuelle', effet: 'fin_periode' })
    t.equal(down.plan.code, 'entreprise', 'the current plan runs to its end')
    await sql`update abonnements set changement_at = now() - interval '1 second' where organisation_id = ${admin.organisationId}`.execute(app.db)
    await runLifecycle(app, lifecycle)
    const after = (await app.inject({ method: 'GET', url: '/abonnement', headers: as(admin) })).json()
    t.match(after, { plan: { code: 'essentiel' }, changement_prevu: null, statut: 'actif' })
  })
})

t.test('the lifecycle job: scheduled every quarter hour; without auto-renewal the end is expire; a payment unconfirmed for 24 h expires', async (t) => {
  const { app } = await billingApp(t, { FEEXPAY_POLL_SECONDS: '3600' })
  const schedules = await app.jobs.boss!.getSchedules()
  t.match(schedules.find((s) => s.name === 'billing.cycle'), { cron: '*/15 * * * *' })

  const admin = await signUp(app)
  const { dossier } = await tree(app, admin)
  await choose(app, admin, 'essentiel')
  const pending = (await pay(app, admin)).json()
  t.equal(pending.statut, 'en_attente')
  await app.db.updateTable('paiements').set({ expire_at: new Date(Date.now() - 1000) }).where('id', '=', pending.id).execute()
  await app.db
    .updateTable('abonnements')
    .set({ renouvellement_auto: false, periode_debut: new Date(Date.now() - 14 * DAY), periode_fin: new Date(Date.now() - 1000) })
    .where('organisation_id', '=', admin.organisationId)
    .execute()

  // Through the queue, as the schedule runs it.
  const job = await runJob(app, 'billing.cycle')
  t.equal(job?.state, 'completed')
  t.match(job?.output, { expires: 1, paiements_expires: 1 })

  const sub = (await app.inject({ method: 'GET', url: '/abonnement', headers: as(admin) })).json()
  t.match(sub, { statut: 'expire', lecture_seule: true }, 'not en_retard: nothing was to be renewed')
  const refused = await upload(app, admin, `/dossiers/${dossier}/fichiers`, randomBytes(10), { filename: 'apres.txt' })
  t.equal(refused.statusCode, 402)
  t.equal(refused.json().code, 'SUBSCRIPTION_INACTIVE')
  const payment = (await app.inject({ method: 'GET', url: `/paiements/${pending.id}`, headers: as(admin) })).json()
  t.match(payment, { statut: 'expire' })
  const entry = await app.db
    .selectFrom('journal_activite')
    .select(['action', 'details'])
    .where('organisation_id', '=', admin.organisationId)
    .where('cible_id', '=', pending.id)
    .where('action', '=', 'PAYMENT_FAILED')
    .executeTakeFirst()
  t.match(entry, { details: { raison: 'expire' } }, 'journaled')
  const mail = await app.db.selectFrom('courriels').select('sujet').where('organisation_id', '=', admin.organisationId).where('sujet', 'like', '%expiré%').executeTakeFirst()
  t.ok(mail, 'the admins are told')
})
