import t from 'tap'
import { addMember, signUp } from '../helpers/auth.ts'
import { as, billingApp, choose } from './helpers.ts'

t.test('plans, the trial and choosing a plan', async (t) => {
  const { app } = await billingApp(t)
  const admin = await signUp(app)

  t.test('GET /plans is public and lists the four plans with their quotas', async (t) => {
    const res = await app.inject({ method: 'GET', url: '/plans' })
    t.equal(res.statusCode, 200)
    const plans = res.json().items
    t.same(plans.map((p: { code: string }) => p.code), ['essai', 'essentiel', 'professionnel', 'entreprise'])
    t.equal(plans[0].essai_jours, 14)
    t.equal(plans[0].prix_mensuel_ht, 0)
    t.ok(plans[1].prix_mensuel_ht > 0)
    t.match(plans[1].quotas, { stockage_octets: Number, membres: Number, armoires: Number })
  })

  t.test('a new organisation starts on a 14-day trial', async (t) => {
    const res = await app.inject({ method: 'GET', url: '/abonnement', headers: as(admin) })
    t.equal(res.statusCode, 200)
    const sub = res.json()
    t.equal(sub.plan.code, 'essai')
    t.equal(sub.statut, 'essai')
    t.equal(sub.jours_restants, 13, '13 full days left of 14')
    t.equal(sub.lecture_seule, false)
    t.equal(sub.prochain_paiement, null, 'nothing due on the trial')
    t.same(sub.utilisation.membres, { utilise: 1, quota: 3 })
    t.same(sub.utilisation.armoires, { utilise: 0, quota: 0 })
    const history = await app.db.selectFrom('abonnements_historique').select('evenement').where('organisation_id', '=', admin.organisationId).execute()
    t.same(history.map((h) => h.evenement), ['essai_demarre'])
  })

  t.test('only admins see and change the subscription', async (t) => {
    const reader = await addMember(app, admin, 'lecteur')
    t.equal((await app.inject({ method: 'GET', url: '/abonnement', headers: as(reader) })).statusCode, 403)
    const res = await app.inject({ method: 'POST', url: '/abonnement/choisir', headers: as(reader), payload: { plan: 'essentiel', periodicite: 'mensuelle' } })
    t.equal(res.statusCode, 403)
  })

  t.test('choosing a paid plan from the trial waits for its payment, amount from the plan', async (t) => {
    const sub = await choose(app, admin, 'essentiel', 'annuelle')
    t.equal(sub.statut, 'en_attente_paiement')
    t.equal(sub.plan.code, 'essai', 'not in force before it is paid')
    t.same(sub.changement_prevu, { plan: 'essentiel', periodicite: 'annuelle', effet: 'paiement' })
    t.same(sub.prochain_paiement, {
      plan: 'essentiel',
      periodicite: 'annuelle',
      montant_ht: 100_000,
      montant_tva: 18_000,
      montant_ttc: 118_000,
      credit_prorata_ht: 0,
      devise: 'XOF',
    })
    const journal = await app.db.selectFrom('journal_activite').select('action').where('organisation_id', '=', admin.organisationId).where('action', '=', 'SUBSCRIPTION_CHOSEN').execute()
    t.equal(journal.length, 1)
  })

  t.test('an unknown plan is a 404, the trial cannot be chosen, bad input is a 400', async (t) => {
    const unknown = await app.inject({ method: 'POST', url: '/abonnement/choisir', headers: as(admin), payload: { plan: 'platine', periodicite: 'mensuelle' } })
    t.equal(unknown.statusCode, 404)
    const trial = await app.inject({ method: 'POST', url: '/abonnement/choisir', headers: as(admin), payload: { plan: 'essai', periodicite: 'mensuelle' } })
    t.equal(trial.statusCode, 409)
    const bad = await app.inject({ method: 'POST', url: '/abonnement/choisir', headers: as(admin), payload: { plan: 'essentiel', periodicite: 'hebdo' } })
    t.equal(bad.statusCode, 400)
    t.equal(bad.json().code, 'VALIDATION_ERROR')
  })

  t.test('a plan whose quotas the current usage exceeds is refused, naming the quota', async (t) => {
    const big = await signUp(app)
    await app.db.updateTable('plans').set({ quota_membres: 1 }).where('code', '=', 'essentiel').execute()
    t.teardown(() => app.db.updateTable('plans').set({ quota_membres: 5 }).where('code', '=', 'essentiel').execute())
    await addMember(app, big, 'contributeur')
    const res = await app.inject({ method: 'POST', url: '/abonnement/choisir', headers: as(big), payload: { plan: 'essentiel', periodicite: 'mensuelle' } })
    t.equal(res.statusCode, 409)
    t.equal(res.json().code, 'QUOTA_EXCEEDED')
    t.match(res.json().detail, /membres/)
    t.match(res.json().detail, /Quota « membres » du plan Essentiel dépassé : 2 membres pour 1 autorisés/)
  })

  t.test('the plan’s members quota: invitations and reactivations take a seat, invited members count', async (t) => {
    const org = await signUp(app)
    const seats = (await app.db.selectFrom('plans').select('quota_membres').where('code', '=', 'essai').executeTakeFirstOrThrow()).quota_membres
    t.equal(seats, 3, 'the trial has three seats')
    const invite = (email: string) =>
      app.inject({ method: 'POST', url: '/users', headers: as(org), payload: { email, nom: 'Invité', role: 'lecteur' } })
    const member = await addMember(app, org, 'contributeur')
    t.equal((await invite('troisieme@exemple.fr')).statusCode, 201, 'the third seat, still invited')
    const full = await invite('quatrieme@exemple.fr')
    t.equal(full.statusCode, 409)
    t.equal(full.json().code, 'QUOTA_EXCEEDED')
    t.match(full.json().detail, /membres/)
    t.match(full.json().detail, /3 membres pour 3 autorisés/)
    t.notOk(await app.db.selectFrom('utilisateurs').select('id').where('email', '=', 'quatrieme@exemple.fr').executeTakeFirst(), 'nobody created')

    // Deactivating frees a seat; reactivating takes one, refused when the seat was given meanwhile.
    const off = await app.inject({ method: 'PUT', url: `/users/${member.userId}`, headers: as(org), payload: { actif: false } })
    t.equal(off.statusCode, 200, off.body)
    t.equal((await invite('quatrieme@exemple.fr')).statusCode, 201, 'the freed seat')
    const back = await app.inject({ method: 'PUT', url: `/users/${member.userId}`, headers: as(org), payload: { actif: true } })
    t.equal(back.statusCode, 409)
    t.equal(back.json().code, 'QUOTA_EXCEEDED')

    // Five invitations at once for the last seat of a fresh organisation: one wins.
    const race = await signUp(app)
    await addMember(app, race, 'lecteur')
    const at = await Promise.all(
      Array.from({ length: 5 }, (_, i) =>
        app.inject({ method: 'POST', url: '/users', headers: as(race), payload: { email: `course-${i}@exemple.fr`, nom: 'Course', role: 'lecteur' } }),
      ),
    )
    t.same(at.map((r) => r.statusCode).sort(), [201, 409, 409, 409, 409], 'one seat, one invitation')
  })
})

t.test('billing details: defaults from the organisation, then saved and journaled', async (t) => {
  const { app } = await billingApp(t)
  const admin = await signUp(app, { organisation: 'Cabinet Adjovi' })
  const before = await app.inject({ method: 'GET', url: '/organisation/facturation', headers: as(admin) })
  t.equal(before.statusCode, 200)
  t.match(before.json(), { raison_sociale: 'Cabinet Adjovi', adresse: '', ifu: null, updated_at: null })
  const body = { raison_sociale: 'Cabinet Adjovi SARL', adresse: '12 rue des Cocotiers', ville: 'Cotonou', pays: 'Bénin', ifu: '3201900000001', rccm: 'RB/COT/19 B 0001' }
  const put = await app.inject({ method: 'PUT', url: '/organisation/facturation', headers: as(admin), payload: body })
  t.equal(put.statusCode, 200)
  t.match(put.json(), body)
  const after = await app.inject({ method: 'GET', url: '/organisation/facturation', headers: as(admin) })
  t.match(after.json(), { ...body, email: null })
  const journal = await app.db.selectFrom('journal_activite').select('action').where('organisation_id', '=', admin.organisationId).where('action', '=', 'BILLING_DETAILS_UPDATED').execute()
  t.equal(journal.length, 1)
})
