import t from 'tap'
import { signUp, type Member } from '../helpers/auth.ts'
import { as, billingApp, choose, MTN_BJ, pay, until, webhook } from './helpers.ts'

const year = new Date().getUTCFullYear()

async function journal(app: Awaited<ReturnType<typeof billingApp>>['app'], organisationId: string | null, action: string) {
  let q = app.db.selectFrom('journal_activite').selectAll().where('action', '=', action)
  q = organisationId ? q.where('organisation_id', '=', organisationId) : q.where('organisation_id', 'is', null)
  return q.execute()
}

t.test('paying through FeexPay, confirmed by webhook', async (t) => {
  // Polling is slowed down here so that what credits is the webhook under test.
  const { app, fake } = await billingApp(t, { FEEXPAY_POLL_SECONDS: '3600' })

  async function customer(plan = 'essentiel'): Promise<Member> {
    const admin = await signUp(app)
    await choose(app, admin, plan)
    return admin
  }

  t.test('pending, then successful: one unit of work activates, invoices and journals', async (t) => {
    const admin = await customer()
    // The amount is the plan's: a client's own is an unknown field, refused rather than dropped.
    const priced = await pay(app, admin, { ...MTN_BJ, montant: 100 })
    t.equal(priced.statusCode, 400)
    t.match(priced.json(), { code: 'VALIDATION_ERROR', errors: [{ field: 'body.montant', message: /inconnu/ }] })
    const res = await pay(app, admin, MTN_BJ)
    t.equal(res.statusCode, 202)
    const payment = res.json()
    t.match(payment, { statut: 'en_attente', montant: 11_800, devise: 'XOF', plan: 'essentiel', nature: 'souscription', reseau: 'mtn', payment_url: null, facture_id: null })
    t.match(payment.reference, /^FP-/)
    const call = fake.requests.find((r) => r.path === '/api/transactions/public/requesttopay/mtn' && r.body?.callback_info === payment.id)
    t.ok(call, 'FeexPay was asked through requesttopay/mtn, our payment id in callback_info')
    t.equal(call?.authorization, `Bearer ${fake.apiKey}`)
    t.match(call?.body, { shop: fake.shopId, amount: 11_800, phoneNumber: '2290161000000', description: /^[A-Za-z0-9 ]+$/ })

    fake.settle(payment.reference, 'SUCCESSFUL')
    const hook = await webhook(app, fake.webhookBody(payment.reference))
    t.equal(hook.statusCode, 200)
    t.same(hook.json(), { recu: true })

    const paid = (await app.inject({ method: 'GET', url: `/paiements/${payment.id}`, headers: as(admin) })).json()
    t.equal(paid.statut, 'reussi')
    t.type(paid.facture_id, 'string')
    const sub = (await app.inject({ method: 'GET', url: '/abonnement', headers: as(admin) })).json()
    t.match(sub, { statut: 'actif', plan: { code: 'essentiel' }, changement_prevu: null, lecture_seule: false })
    t.ok(sub.jours_restants >= 27)
    const facture = (await app.inject({ method: 'GET', url: `/factures/${paid.facture_id}`, headers: as(admin) })).json()
    t.match(facture, { type: 'facture', numero: new RegExp(`^FAC-${year}-\\d{6}$`), montant_ht: 10_000, montant_tva: 1_800, montant_ttc: 11_800, taux_tva: 18, reference_paiement: payment.reference })
    for (const action of ['PAYMENT_STARTED', 'PAYMENT_SUCCEEDED', 'SUBSCRIPTION_CHANGED']) {
      t.equal((await journal(app, admin.organisationId, action)).length, 1, `${action} journaled`)
    }

    t.test('a duplicate or late webhook credits nothing more', async (t) => {
      for (let i = 0; i < 3; i++) t.equal((await webhook(app, fake.webhookBody(payment.reference))).statusCode, 200)
      const factures = await app.db.selectFrom('factures').select('id').where('organisation_id', '=', admin.organisationId).execute()
      t.equal(factures.length, 1)
      t.equal((await journal(app, admin.organisationId, 'PAYMENT_SUCCEEDED')).length, 1)
    })
  })

  t.test('20 webhooks for one reference at once: one payment credited, one invoice', async (t) => {
    const admin = await customer('professionnel')
    const payment = (await pay(app, admin)).json()
    fake.settle(payment.reference, 'SUCCESSFUL')
    const answers = await Promise.all(Array.from({ length: 20 }, () => webhook(app, fake.webhookBody(payment.reference))))
    t.same(answers.map((a) => a.statusCode), Array(20).fill(200))
    const factures = await app.db.selectFrom('factures').select('numero').where('organisation_id', '=', admin.organisationId).execute()
    t.equal(factures.length, 1)
    t.equal((await journal(app, admin.organisationId, 'PAYMENT_SUCCEEDED')).length, 1)
    const history = await app.db.selectFrom('abonnements_historique').select('evenement').where('organisation_id', '=', admin.organisationId).where('evenement', '=', 'active').execute()
    t.equal(history.length, 1, 'the subscription was activated once')
  })

  t.test('pending, then failed with a reason', async (t) => {
    const admin = await customer()
    const payment = (await pay(app, admin)).json()
    fake.settle(payment.reference, 'FAILED', 'LOW_BALANCE_OR_PAYEE_LIMIT_REACHED_OR_NOT_ALLOWED')
    t.equal((await webhook(app, fake.webhookBody(payment.reference))).statusCode, 200)
    const failed = (await app.inject({ method: 'GET', url: `/paiements/${payment.id}`, headers: as(admin) })).json()
    t.match(failed, { statut: 'echoue', raison: 'LOW_BALANCE_OR_PAYEE_LIMIT_REACHED_OR_NOT_ALLOWED', facture_id: null })
    t.equal((await app.inject({ method: 'GET', url: '/abonnement', headers: as(admin) })).json().statut, 'en_attente_paiement')
    t.equal((await journal(app, admin.organisationId, 'PAYMENT_FAILED')).length, 1)
  })

  t.test('Moov answers a final status at once', async (t) => {
    const admin = await customer()
    fake.next({ kind: 'final', status: 'SUCCESSFUL' })
    const res = await pay(app, admin, { moyen: 'mobile_money', reseau: 'moov', telephone: '22901 97 00 00 00' })
    t.equal(res.statusCode, 202)
    t.match(res.json(), { statut: 'reussi', telephone: '2290197000000', facture_id: String })
    t.equal((await app.inject({ method: 'GET', url: '/abonnement', headers: as(admin) })).json().statut, 'actif')
  })

  t.test('a redirect operator answers the payment_url to open', async (t) => {
    const admin = await customer()
    const res = await pay(app, admin, { moyen: 'mobile_money', reseau: 'orange_ci', telephone: '2250700000000' })
    t.equal(res.statusCode, 202)
    t.match(res.json(), { statut: 'en_attente', payment_url: new RegExp(`^${fake.url}/pay/FP-`) })
    const call = fake.requests.at(-1)
    t.match(call?.body, { return_url: /\/abonnement\?paiement=/, cancel_url: /\/abonnement\?paiement=/ })
  })

  t.test('a card payment answers the payment_url', async (t) => {
    const admin = await customer()
    const res = await pay(app, admin, { moyen: 'carte', prenom: 'Awa', nom: 'Dossou', email: 'awa@exemple.bj', telephone: '2290161000000', ville: 'Cotonou', pays: 'BJ' })
    t.equal(res.statusCode, 202)
    t.match(res.json(), { moyen: 'carte', statut: 'en_attente', payment_url: /\/pay\/FP-/ })
    t.match(fake.requests.at(-1), { path: '/api/transactions/public/requesttopay/init', body: { currency: 'XOF', amount: 11_800, country: 'BJ' } })
  })

  t.test('numbers and networks are checked before FeexPay is called', async (t) => {
    const admin = await customer()
    const calls = fake.requests.length
    const bad = await pay(app, admin, { moyen: 'mobile_money', reseau: 'mtn', telephone: '22997000000' })
    t.equal(bad.statusCode, 400)
    t.match(bad.json(), { code: 'VALIDATION_ERROR', errors: [{ field: 'body.telephone', message: /229 puis 10 chiffres commençant par 01/ }] })
    const network = await pay(app, admin, { moyen: 'mobile_money', reseau: 'airtel', telephone: '2290161000000' })
    t.equal(network.statusCode, 400)
    // What each means requires is in the schema (one branch per moyen), named in the refusal.
    const noNetwork = await pay(app, admin, { moyen: 'mobile_money', telephone: '2290161000000' })
    t.equal(noNetwork.statusCode, 400)
    t.match(noNetwork.json().errors, [{ field: 'body.reseau' }], noNetwork.body)
    const noCity = await pay(app, admin, { moyen: 'carte', prenom: 'Awa', nom: 'Dossou', email: 'awa@exemple.bj', telephone: '2290161000000', pays: 'BJ' })
    t.equal(noCity.statusCode, 400)
    t.match(noCity.json().errors, [{ field: 'body.ville' }], noCity.body)
    const mixed = await pay(app, admin, { moyen: 'mobile_money', reseau: 'mtn', telephone: '2290161000000', ville: 'Cotonou' })
    t.equal(mixed.statusCode, 400, 'a card field on a mobile-money payment is refused, not ignored')
    t.equal(fake.requests.length, calls, 'FeexPay was not called')
  })

  t.test('FeexPay refusals come back as 422 PAYMENT_REFUSED with its reason', async (t) => {
    const admin = await customer()
    fake.next({ kind: 'refuse', status: 400, code: 'ERR_INVALID_PHONE_NUMBER', message: ['phoneNumber is not a valid MTN number'] })
    const res = await pay(app, admin)
    t.equal(res.statusCode, 422)
    t.match(res.json(), { code: 'PAYMENT_REFUSED', detail: /phoneNumber is not a valid MTN number \(ERR_INVALID_PHONE_NUMBER\)/ })
    const rows = await app.db.selectFrom('paiements').selectAll().where('organisation_id', '=', admin.organisationId).execute()
    t.match(rows, [{ statut: 'echoue', raison: /ERR_INVALID_PHONE_NUMBER/ }])
  })

  t.test('FeexPay down: 502, and the payment stays pending', async (t) => {
    const admin = await customer()
    fake.down('http503')
    t.teardown(() => fake.down(false))
    const res = await pay(app, admin)
    t.equal(res.statusCode, 502)
    t.equal(res.json().code, 'PAYMENT_PROVIDER_UNAVAILABLE')
    const rows = await app.db.selectFrom('paiements').select('statut').where('organisation_id', '=', admin.organisationId).execute()
    t.same(rows, [{ statut: 'en_attente' }])
    t.equal((await pay(app, admin)).json().code, 'PAYMENT_PENDING', 'a second payment waits for the first one’s outcome')
  })

  t.test('nothing is due on the trial without a chosen plan', async (t) => {
    const admin = await signUp(app)
    const res = await pay(app, admin)
    t.equal(res.statusCode, 409)
    t.equal(res.json().code, 'NOTHING_DUE')
  })

  t.test('webhooks that must credit nothing', async (t) => {
    const admin = await customer()
    const payment = (await pay(app, admin)).json()

    t.test('a wrong or missing secret is refused and journaled', async (t) => {
      const res = await webhook(app, fake.webhookBody(payment.reference, { status: 'SUCCESSFUL' }), 'devine')
      t.equal(res.statusCode, 401)
      const none = await app.inject({ method: 'POST', url: '/paiements/feexpay/webhook', payload: fake.webhookBody(payment.reference) })
      t.equal(none.statusCode, 401)
      t.ok((await journal(app, null, 'PAYMENT_WEBHOOK_REFUSED')).length >= 2)
    })

    t.test('a forged SUCCESSFUL body that FeexPay does not confirm is journaled HIGH', async (t) => {
      const res = await webhook(app, fake.webhookBody(payment.reference, { status: 'SUCCESSFUL', amount: 11_800 }))
      t.equal(res.statusCode, 200)
      const row = await app.db.selectFrom('paiements').select('statut').where('id', '=', payment.id).executeTakeFirstOrThrow()
      t.equal(row.statut, 'en_attente')
      const refused = await journal(app, admin.organisationId, 'PAYMENT_WEBHOOK_REFUSED')
      t.match(refused, [{ severite: 'HIGH', resultat: 'refus', details: { motif: 'statut_non_confirme', statut_feexpay: 'PENDING' } }])
      t.equal((await app.db.selectFrom('factures').select('id').where('organisation_id', '=', admin.organisationId).execute()).length, 0)
    })

    t.test('a reference FeexPay does not know credits nothing', async (t) => {
      const res = await webhook(app, { reference: 'FP-FORGED', status: 'SUCCESSFUL', amount: 11_800, callback_info: payment.id })
      t.equal(res.statusCode, 200)
      t.equal((await app.db.selectFrom('paiements').select('statut').where('id', '=', payment.id).executeTakeFirstOrThrow()).statut, 'en_attente')
    })

    t.test('FeexPay unreachable during the check: 503 so that it comes back', async (t) => {
      fake.down('reset')
      t.teardown(() => fake.down(false))
      const res = await webhook(app, fake.webhookBody(payment.reference))
      t.equal(res.statusCode, 503)
      t.ok(res.headers['retry-after'])
    })

    t.test('an amount that differs from what we asked credits nothing and is journaled', async (t) => {
      const tx = fake.transactions.get(payment.reference)
      if (tx) tx.amount = 100
      fake.settle(payment.reference, 'SUCCESSFUL')
      t.equal((await webhook(app, fake.webhookBody(payment.reference, { amount: 11_800 }))).statusCode, 200)
      const row = await app.db.selectFrom('paiements').selectAll().where('id', '=', payment.id).executeTakeFirstOrThrow()
      t.match(row, { statut: 'echoue', raison: /100.*11800/ })
      t.equal((await app.db.selectFrom('factures').select('id').where('organisation_id', '=', admin.organisationId).execute()).length, 0)
      const refused = await journal(app, admin.organisationId, 'PAYMENT_WEBHOOK_REFUSED')
      t.ok(refused.some((e) => (e.details as { motif?: string }).motif === 'montant_different'))
      t.equal((await app.inject({ method: 'GET', url: '/abonnement', headers: as(admin) })).json().statut, 'en_attente_paiement')
    })

    t.test('a reference that is not ours is acknowledged', async (t) => {
      fake.transactions.set('FP-AUTRE', { ...(fake.transactions.get(payment.reference) as NonNullable<ReturnType<typeof fake.transactions.get>>), reference: 'FP-AUTRE', callback_info: 'commande-42' })
      t.equal((await webhook(app, { reference: 'FP-AUTRE' })).statusCode, 200)
    })
  })

  t.test('GET /paiements lists newest first; GET /paiements/{id} refreshes a pending one', async (t) => {
    const admin = await customer()
    const first = (await pay(app, admin)).json()
    fake.settle(first.reference, 'FAILED', 'PAYER_NOT_FOUND')
    t.equal((await app.inject({ method: 'GET', url: `/paiements/${first.id}`, headers: as(admin) })).json().statut, 'echoue', 'read again from FeexPay')
    const second = (await pay(app, admin)).json()
    fake.settle(second.reference, 'SUCCESSFUL')
    t.equal((await app.inject({ method: 'GET', url: `/paiements/${second.id}`, headers: as(admin) })).json().statut, 'reussi')
    const list = (await app.inject({ method: 'GET', url: '/paiements?limit=1', headers: as(admin) })).json()
    t.same(list.items.map((p: { id: string }) => p.id), [second.id])
    const next = (await app.inject({ method: 'GET', url: `/paiements?limit=1&cursor=${list.next_cursor}`, headers: as(admin) })).json()
    t.same(next.items.map((p: { id: string }) => p.id), [first.id])
    t.equal(next.next_cursor, null)
    const other = await signUp(app)
    t.equal((await app.inject({ method: 'GET', url: `/paiements/${first.id}`, headers: as(other) })).statusCode, 404)
  })

  t.test('50 payments confirmed at once across organisations: consecutive invoice numbers', async (t) => {
    const admins = await Promise.all(Array.from({ length: 50 }, () => customer()))
    const payments = await Promise.all(admins.map(async (a) => (await pay(app, a)).json()))
    const before = await app.db.selectFrom('compteurs_factures').select('dernier').where('serie', '=', 'FAC').executeTakeFirst()
    for (const p of payments) fake.settle(p.reference, 'SUCCESSFUL')
    const answers = await Promise.all(payments.map((p) => webhook(app, fake.webhookBody(p.reference))))
    t.same(answers.map((a) => a.statusCode), Array(50).fill(200))
    const factures = await app.db
      .selectFrom('factures')
      .select(['rang', 'numero'])
      .where('paiement_id', 'in', payments.map((p) => p.id))
      .orderBy('rang')
      .execute()
    t.equal(factures.length, 50)
    const start = (before?.dernier ?? 0) + 1
    t.same(factures.map((f) => f.rang), Array.from({ length: 50 }, (_, i) => start + i), 'no gap, no duplicate')
    t.equal(factures[0]?.numero, `FAC-${year}-${String(start).padStart(6, '0')}`)
  })
})

t.test('a slow FeexPay answer is never a failure; the early webhook resolves it by callback_info', async (t) => {
  const { app, fake } = await billingApp(t, { FEEXPAY_TIMEOUT_MS: '1500', FEEXPAY_POLL_SECONDS: '3600' })

  t.test('while a request waits for FeexPay, a webhook it may concern is asked to come back', async (t) => {
    const admin = await signUp(app)
    await choose(app, admin, 'essentiel')
    fake.next({ kind: 'slow', ms: 700 })
    const known = fake.transactions.size
    const paying = pay(app, admin)
    await until('FeexPay to receive the request', async () => fake.transactions.size > known)
    const stranger = [...fake.transactions.values()].at(-1)
    if (!stranger) throw new Error('no transaction')
    fake.transactions.set('FP-INCONNUE', { ...stranger, reference: 'FP-INCONNUE', callback_info: null })
    t.equal((await webhook(app, { reference: 'FP-INCONNUE' })).statusCode, 503)
    const res = await paying
    t.equal(res.statusCode, 202)
    t.match(res.json(), { statut: 'en_attente', reference: stranger.reference })
    t.equal((await webhook(app, { reference: 'FP-INCONNUE' })).statusCode, 200, 'once no request is in flight, it is not ours')
  })

  t.test('a 120 s answer: pending at the timeout, credited by the webhook found through callback_info', async (t) => {
    const admin = await signUp(app)
    await choose(app, admin, 'essentiel')
    fake.next({ kind: 'slow', ms: 120_000 })
    const res = await pay(app, admin)
    t.equal(res.statusCode, 202, 'no answer within FEEXPAY_TIMEOUT_MS: still accepted, pending')
    const payment = res.json()
    t.match(payment, { statut: 'en_attente', reference: null })
    const tx = fake.byCallback(payment.id)
    t.ok(tx, 'FeexPay holds the transaction, named by our id')
    if (!tx) return
    fake.settle(tx.reference, 'SUCCESSFUL')
    t.equal((await webhook(app, fake.webhookBody(tx.reference))).statusCode, 200)
    const row = await app.db.selectFrom('paiements').selectAll().where('id', '=', payment.id).executeTakeFirstOrThrow()
    t.match(row, { statut: 'reussi', reference: tx.reference })
    t.equal((await app.inject({ method: 'GET', url: '/abonnement', headers: as(admin) })).json().statut, 'actif')
  })
})

t.test('a lost webhook: polling activates, through FeexPay down then back', async (t) => {
  const { app, fake } = await billingApp(t, { FEEXPAY_POLL_SECONDS: '1' })
  const admin = await signUp(app)
  await choose(app, admin, 'essentiel')
  const payment = (await pay(app, admin)).json()
  fake.down('reset')
  fake.settle(payment.reference, 'SUCCESSFUL')
  const polled = () => fake.requests.filter((r) => r.path.endsWith(`/status/${payment.reference}`)).length
  await until('a poll while FeexPay is down', async () => polled() >= 1)
  t.equal((await app.db.selectFrom('paiements').select('statut').where('id', '=', payment.id).executeTakeFirstOrThrow()).statut, 'en_attente')
  fake.down(false)
  const paid = await until('the poll to credit', async () => {
    const row = await app.db.selectFrom('paiements').select('statut').where('id', '=', payment.id).executeTakeFirstOrThrow()
    return row.statut === 'reussi' && row
  })
  t.equal(paid.statut, 'reussi')
  t.ok(polled() >= 2, 'polled again after the outage')
  t.equal((await app.inject({ method: 'GET', url: '/abonnement', headers: as(admin) })).json().statut, 'actif')
  t.equal((await app.db.selectFrom('factures').select('id').where('organisation_id', '=', admin.organisationId).execute()).length, 1)
})
