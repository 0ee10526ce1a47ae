import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { Abonnement, Paiement, Plan, StatutPaiement } from '../../db/tables/billing.ts'
import type { PaiementDto, PayBody } from '../../openapi/billing.ts'
import { actorOf, type AuditEntry } from '../../src/audit.ts'
import { Errors } from '../../src/errors.ts'
import { type FeexPay, FeexPayRefused, FeexPayTimeout, FeexPayUnavailable, type FeexTransaction, normalisePhone, normaliseStatus, REDIRECT_NETWORKS } from './feexpay.ts'
import { issueInvoice, type SellerSettings } from './invoices.ts'
import { DAY_MS, nextCharge, periodEnd } from './plans.ts'
import { changeSubscription, lockSubscription, plansByCode } from './subscriptions.ts'

export const POLL_QUEUE = 'billing.paiement.verifier'

declare module '../../src/jobs.ts' {
  interface JobPayloads {
    'billing.paiement.verifier': { paiement_id: string; tentative: number }
  }
}

/** A pending payment is given up (`expire`) this long after it was requested. */
export const PAYMENT_LIFETIME_MS = DAY_MS
/** While a payment younger than this is pending, a new one is refused: both could be paid. */
const PENDING_GUARD_MS = 15 * 60_000
const MAX_POLL_SECONDS = 3_600
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

export interface PaymentSettings {
  feexpay: FeexPay
  publicUrl: string
  vatRate: number
  pollSeconds: number
  /** FEEXPAY_TIMEOUT_MS: a reference-less payment younger than this may still get one. */
  requestTimeoutMs: number
  seller: SellerSettings
}

export function toPaiementDto(p: Paiement, factureId: string | null): PaiementDto {
  return {
    id: p.id,
    statut: p.statut,
    nature: p.nature,
    plan: p.plan_code,
    periodicite: p.periodicite,
    montant: p.montant,
    devise: 'XOF',
    moyen: p.moyen,
    reseau: p.reseau,
    telephone: p.telephone,
    reference: p.reference,
    payment_url: p.payment_url,
    raison: p.raison,
    facture_id: factureId,
    created_at: p.created_at.toISOString(),
    updated_at: new Date(p.updated_at).toISOString(),
    finalise_at: p.finalise_at?.toISOString() ?? null,
  }
}

export async function paymentDto(app: FastifyInstance, p: Paiement): Promise<PaiementDto> {
  const facture = await app.db.selectFrom('factures').select('id').where('paiement_id', '=', p.id).executeTakeFirst()
  return toPaiementDto(p, facture?.id ?? null)
}

export function pollDelaySeconds(settings: Pick<PaymentSettings, 'pollSeconds'>, attempt: number): number {
  return Math.min(MAX_POLL_SECONDS, settings.pollSeconds * 2 ** Math.min(attempt, 20))
}

async function schedulePoll(app: FastifyInstance, settings: PaymentSettings, paymentId: string, attempt: number): Promise<void> {
  if (!app.jobs.enabled) return
  await app.jobs.send(POLL_QUEUE, { paiement_id: paymentId, tentative: attempt }, { startAfter: pollDelaySeconds(settings, attempt) })
}

type Checked =
  | { moyen: 'mobile_money'; reseau: string; phone: string }
  | { moyen: 'carte'; phone: string; prenom: string; nom: string; email: string; ville: string; code_postal: string; pays: string }

/** The number as FeexPay takes it; what each means of payment requires, the schema checked. */
function checkBody(body: PayBody): Checked {
  if (body.moyen === 'mobile_money') {
    const checked = normalisePhone(body.reseau, body.telephone)
    if (!checked.ok) throw invalidField('body.telephone', checked.reason)
    return { moyen: 'mobile_money', reseau: body.reseau, phone: checked.phone }
  }
  const { prenom, nom, email, ville, pays } = body
  return { moyen: 'carte', phone: body.telephone.replace(/[\s+]/g, ''), prenom, nom, email, ville, code_postal: body.code_postal ?? '', pays }
}

function invalidField(field: string, message: string): Error {
  return Object.assign(new Errors.VALIDATION_ERROR(), { fields: [{ field, message }] })
}

/**
 * POST /abonnement/payer: the payment row, its amount decided here from the plan, is committed
 * before FeexPay is called with its id in `callback_info`; then FeexPay's answer is recorded.
 */
export async function startPayment(app: FastifyInstance, request: FastifyRequest, raw: PayBody, settings: PaymentSettings): Promise<{ payment: Paiement }> {
  const principal = request.principal
  if (!principal) throw new Errors.UNAUTHENTICATED()
  const { organisationId, userId } = principal
  const body = checkBody(raw)
  const phone = body.phone
  const plans = await plansByCode(app.db)
  const payment = await app.db.transaction().execute(async (trx) => {
    const sub = await lockSubscription(trx, organisationId)
    const pending = await trx
      .selectFrom('paiements')
      .select('id')
      .where('organisation_id', '=', organisationId)
      .where('statut', '=', 'en_attente')
      .where('created_at', '>', new Date(Date.now() - PENDING_GUARD_MS))
      .executeTakeFirst()
    if (pending) throw new Errors.PAYMENT_PENDING(pending.id)
    const charge = nextCharge(sub, plans, settings.vatRate)
    if (!charge) throw new Errors.NOTHING_DUE()
    const row = await trx
      .insertInto('paiements')
      .values({
        organisation_id: organisationId,
        abonnement_id: sub.id,
        plan_code: charge.plan.code,
        periodicite: charge.periodicite,
        nature: charge.nature,
        montant: charge.ttc,
        montant_ht: charge.ht,
        montant_tva: charge.tva,
        taux_tva: charge.tauxTva,
        credit_prorata_ht: charge.creditHt,
        credit_jours: charge.creditJours,
        moyen: body.moyen,
        reseau: body.moyen === 'mobile_money' ? body.reseau : null,
        telephone: phone,
        expire_at: new Date(Date.now() + PAYMENT_LIFETIME_MS),
        created_by: userId,
      })
      .returningAll()
      .executeTakeFirstOrThrow()
    await app.audit.record(trx, {
      ...actorOf(request),
      action: 'PAYMENT_STARTED',
      target: { type: 'paiement', id: row.id, nom: `${charge.plan.nom} ${charge.periodicite}` },
      details: { montant: row.montant, devise: 'XOF', moyen: row.moyen, reseau: row.reseau, nature: row.nature },
    })
    return row
  })

  const description = `Abonnement Armoire ${plans.get(payment.plan_code)?.nom ?? payment.plan_code} ${payment.periodicite}`
  const back = `${settings.publicUrl}/abonnement?paiement=${payment.id}`
  let answer: FeexTransaction
  try {
    answer =
      body.moyen === 'mobile_money'
        ? await settings.feexpay.requestToPay({
            network: body.reseau,
            phoneNumber: phone,
            amount: payment.montant,
            description,
            callbackInfo: payment.id,
            ...(REDIRECT_NETWORKS.has(body.reseau) ? { returnUrl: back, cancelUrl: back } : {}),
          })
        : await settings.feexpay.cardInit({
            amount: payment.montant,
            currency: 'XOF',
            firstName: body.prenom,
            lastName: body.nom,
            email: body.email,
            phoneNumber: phone,
            city: body.ville,
            zip: body.code_postal,
            country: body.pays,
            callbackInfo: payment.id,
          })
  } catch (error) {
    if (error instanceof FeexPayRefused) {
      await failPayment(app, payment.id, `${error.feexCode ?? error.httpStatus} ${error.reason}`, actorOf(request))
      throw new Errors.PAYMENT_REFUSED(`${error.reason}${error.feexCode ? ` (${error.feexCode})` : ''}`)
    }
    // No longer in flight: an unknown reference's webhook need not wait for this request.
    await app.db
      .updateTable('paiements')
      .set({ statut_fournisseur: error instanceof FeexPayTimeout ? 'SANS_REPONSE' : 'INJOIGNABLE', updated_at: new Date() })
      .where('id', '=', payment.id)
      .where('reference', 'is', null)
      .execute()
    await schedulePoll(app, settings, payment.id, 0)
    // A slow answer is not a failure: the customer may still confirm; the webhook or the poll will tell.
    if (error instanceof FeexPayTimeout) {
      request.log.warn({ paiement: payment.id }, 'FeexPay did not answer in time: the payment stays pending')
      return { payment: await reload(app, payment.id) }
    }
    if (error instanceof FeexPayUnavailable) {
      request.log.warn({ paiement: payment.id, err: error }, 'FeexPay unavailable: the payment stays pending')
      throw new Errors.PAYMENT_PROVIDER_UNAVAILABLE()
    }
    throw error
  }
  await app.db
    .updateTable('paiements')
    .set({ reference: answer.reference, payment_url: answer.paymentUrl, statut_fournisseur: answer.status, updated_at: new Date() })
    .where('id', '=', payment.id)
    // An early webhook may have recorded it already, through callback_info.
    .where((eb) => eb.or([eb('reference', 'is', null), eb('reference', '=', answer.reference)]))
    .execute()
  // Moov may answer a final status at once; that answer comes from FeexPay itself, over our authenticated call.
  if (answer.status !== 'PENDING') await settle(app, settings, payment.id, answer, 'reponse')
  else await schedulePoll(app, settings, payment.id, 0)
  return { payment: await reload(app, payment.id) }
}

async function reload(app: FastifyInstance, id: string): Promise<Paiement> {
  return app.db.selectFrom('paiements').selectAll().where('id', '=', id).executeTakeFirstOrThrow()
}

async function failPayment(app: FastifyInstance, id: string, raison: string, actor: Partial<AuditEntry>): Promise<void> {
  return app.db.transaction().execute(async (trx) => {
    const failed = await trx
      .updateTable('paiements')
      .set({ statut: 'echoue', raison, finalise_at: new Date(), updated_at: new Date() })
      .where('id', '=', id)
      .where('statut', '=', 'en_attente')
      .returningAll()
      .executeTakeFirst()
    if (failed) {
      await app.audit.record(trx, {
        organisationId: failed.organisation_id,
        userId: actor.userId ?? null,
        ip: actor.ip ?? null,
        userAgent: actor.userAgent ?? null,
        action: 'PAYMENT_FAILED',
        result: 'echec',
        target: { type: 'paiement', id },
        details: { raison, montant: failed.montant },
      })
    }
  })
}

export type Outcome = 'credite' | 'deja_traite' | 'en_attente' | 'echoue' | 'montant_different' | 'inconnu'

/** The new state of a subscription a confirmed payment buys, and the period the invoice names. */
function purchased(sub: Abonnement, payment: Paiement, now: Date): { change: Partial<Abonnement>; debut: Date; fin: Date } {
  const early = payment.nature === 'renouvellement' && sub.statut === 'actif' && sub.periode_fin > now
  const debut = early ? sub.periode_fin : now
  const fin = periodEnd(debut, payment.periodicite)
  const keepsPending = sub.effet_demande === 'fin_periode'
  const change: Partial<Abonnement> = {
    statut: 'actif',
    periode_debut: early ? sub.periode_debut : now,
    periode_fin: fin,
    en_retard_depuis: null,
    suspendu_depuis: null,
    rappels_envoyes: [],
    // A downgrade waiting for the period's end keeps the current plan until then.
    ...(keepsPending && payment.nature === 'renouvellement'
      ? {}
      : { plan_code: payment.plan_code, periodicite: payment.periodicite, plan_demande: null, periodicite_demandee: null, effet_demande: null, changement_at: null }),
  }
  return { change, debut, fin }
}

/**
 * Applies what FeexPay says of a payment, in one transaction: a success marks it paid,
 * activates or renews the subscription, issues the numbered invoice and queues its PDF and
 * mail. The payment row is locked first, so however many webhooks, polls and answers arrive
 * at once, one of them credits and the others find it done.
 */
export async function settle(app: FastifyInstance, settings: PaymentSettings, paymentId: string, tx: FeexTransaction, source: string): Promise<Outcome> {
  const plans = await plansByCode(app.db)
  // One unit of work: the PDF job it queues wakes its workers once this commits.
  return app.unitOfWork(async (trx): Promise<Outcome> => {
    const payment = await trx.selectFrom('paiements').selectAll().where('id', '=', paymentId).forUpdate().executeTakeFirst()
    if (!payment) return 'inconnu'
    if (payment.reference && payment.reference !== tx.reference) return 'inconnu'
    if (payment.statut !== 'en_attente') return 'deja_traite'
    const now = new Date()
    const system = { organisationId: payment.organisation_id, userId: null, target: { type: 'paiement' as const, id: payment.id } }
    const seen = { reference: tx.reference, statut_fournisseur: tx.status, verifie_at: now, updated_at: now }
    if (tx.status === 'PENDING') {
      await trx.updateTable('paiements').set((eb) => ({ ...seen, verifications: eb('verifications', '+', 1) })).where('id', '=', payment.id).execute()
      return 'en_attente'
    }
    if (tx.status === 'FAILED') {
      const raison = tx.reason ?? 'refusé par l’opérateur'
      await trx.updateTable('paiements').set({ ...seen, statut: 'echoue', raison, finalise_at: now }).where('id', '=', payment.id).execute()
      await app.audit.record(trx, { ...system, action: 'PAYMENT_FAILED', result: 'echec', details: { raison, reference: tx.reference, source } })
      return 'echoue'
    }
    if (tx.amount !== payment.montant) {
      const raison = `montant confirmé par FeexPay (${tx.amount ?? 'absent'}) différent du montant demandé (${payment.montant})`
      await trx.updateTable('paiements').set({ ...seen, statut: 'echoue', raison, finalise_at: now }).where('id', '=', payment.id).execute()
      await app.audit.record(trx, {
        ...system,
        action: 'PAYMENT_WEBHOOK_REFUSED',
        result: 'refus',
        severity: 'HIGH',
        details: { motif: 'montant_different', attendu: payment.montant, confirme: tx.amount, reference: tx.reference, source },
      })
      return 'montant_different'
    }
    const sub = await lockSubscription(trx, payment.organisation_id)
    const previous = plans.get(sub.plan_code) as Plan
    const { change, debut, fin } = purchased(sub, payment, now)
    const next = await changeSubscription(trx, sub, change, {
      evenement: payment.nature === 'renouvellement' ? 'renouvele' : 'active',
      details: { paiement_id: payment.id, plan: payment.plan_code, periodicite: payment.periodicite },
    })
    const paid = await trx
      .updateTable('paiements')
      .set({ ...seen, statut: 'reussi', raison: null, finalise_at: now })
      .where('id', '=', payment.id)
      .returningAll()
      .executeTakeFirstOrThrow()
    const plan = plans.get(payment.plan_code) as Plan
    const facture = await issueInvoice(app, trx, paid, { debut, fin, planNom: plan.nom, creditPlanNom: payment.credit_prorata_ht > 0 ? previous.nom : null }, settings.seller)
    await app.audit.record(trx, {
      ...system,
      action: 'PAYMENT_SUCCEEDED',
      target: { type: 'paiement', id: payment.id, nom: facture.numero },
      details: { montant: payment.montant, reference: tx.reference, facture: facture.numero, source },
    })
    await app.audit.record(trx, {
      ...system,
      action: 'SUBSCRIPTION_CHANGED',
      target: { type: 'abonnement', id: next.id, nom: plan.nom },
      details: { avant: { plan: sub.plan_code, statut: sub.statut }, apres: { plan: next.plan_code, statut: next.statut }, periode_fin: next.periode_fin.toISOString() },
    })
    return 'credite'
  })
}

/** Looks a payment's status up at FeexPay and applies it; FeexPay unreachable leaves it as it is. */
export async function refreshPayment(app: FastifyInstance, settings: PaymentSettings, payment: Paiement): Promise<Outcome | 'injoignable'> {
  if (payment.statut !== 'en_attente' || !payment.reference) return payment.statut === 'en_attente' ? 'en_attente' : 'deja_traite'
  try {
    return await settle(app, settings, payment.id, await settings.feexpay.status(payment.reference), 'verification')
  } catch (error) {
    if (error instanceof FeexPayUnavailable || error instanceof FeexPayRefused) return 'injoignable'
    throw error
  }
}

/** The poll job: until final or expired, with backoff; a lost webhook still activates the subscription. */
export async function pollPayment(app: FastifyInstance, settings: PaymentSettings, paymentId: string, attempt: number): Promise<string> {
  const payment = await app.db.selectFrom('paiements').selectAll().where('id', '=', paymentId).executeTakeFirst()
  if (!payment || payment.statut !== 'en_attente') return 'final'
  if (payment.expire_at <= new Date()) {
    await expirePayment(app, payment)
    return 'expire'
  }
  const outcome = await refreshPayment(app, settings, payment)
  if (outcome === 'en_attente' || outcome === 'injoignable') {
    await schedulePoll(app, settings, paymentId, attempt + 1)
  }
  return outcome
}

export async function expirePayment(app: FastifyInstance, payment: Paiement): Promise<void> {
  await app.db.transaction().execute(async (trx) => {
    const expired = await trx
      .updateTable('paiements')
      .set({ statut: 'expire', raison: 'aucune confirmation de FeexPay en 24 heures', finalise_at: new Date(), updated_at: new Date() })
      .where('id', '=', payment.id)
      .where('statut', '=', 'en_attente')
      .returning('id')
      .executeTakeFirst()
    if (expired) {
      await app.audit.record(trx, {
        organisationId: payment.organisation_id,
        userId: null,
        action: 'PAYMENT_FAILED',
        result: 'echec',
        target: { type: 'paiement', id: payment.id },
        details: { raison: 'expire', reference: payment.reference },
      })
    }
  })
}

/**
 * POST /paiements/feexpay/webhook once the secret is checked. Only `reference` is read from the
 * body; FeexPay is asked for the rest. Answers whether FeexPay must send it again.
 */
export async function handleWebhook(app: FastifyInstance, request: FastifyRequest, body: Record<string, unknown>, settings: PaymentSettings): Promise<'ok' | 'retry'> {
  const reference = typeof body.reference === 'string' ? body.reference.trim() : ''
  if (!reference) return 'ok'
  const refused = (details: Record<string, unknown>, organisationId: string | null, paymentId: string | null) =>
    app.audit.recordAlone({
      ...actorOf(request),
      organisationId,
      userId: null,
      action: 'PAYMENT_WEBHOOK_REFUSED',
      result: 'refus',
      severity: 'HIGH',
      target: { type: 'paiement', id: paymentId },
      details: { reference, ...details },
    })
  let tx: FeexTransaction
  try {
    tx = await settings.feexpay.status(reference)
  } catch (error) {
    if (error instanceof FeexPayRefused) {
      // FeexPay does not know this reference: a forgery, or another merchant's.
      await refused({ motif: 'reference_inconnue_de_feexpay', statut_annonce: String(body.status ?? '') }, null, null)
      return 'ok'
    }
    if (error instanceof FeexPayUnavailable) return 'retry'
    throw error
  }
  let payment = await app.db.selectFrom('paiements').selectAll().where('reference', '=', reference).executeTakeFirst()
  if (!payment && tx.callbackInfo && UUID.test(tx.callbackInfo)) {
    // Early: FeexPay notified before our request's answer saved the reference. FeexPay's own
    // status names our payment through callback_info.
    payment = await app.db.selectFrom('paiements').selectAll().where('id', '=', tx.callbackInfo).where('reference', 'is', null).executeTakeFirst()
  }
  if (!payment) {
    const inFlight = await app.db
      .selectFrom('paiements')
      .select('id')
      .where('statut', '=', 'en_attente')
      .where('reference', 'is', null)
      .where('statut_fournisseur', 'is', null)
      .where('created_at', '>', new Date(Date.now() - settings.requestTimeoutMs - 60_000))
      .executeTakeFirst()
    // A request still waiting for FeexPay's answer may be this one's: come back later.
    return inFlight ? 'retry' : 'ok'
  }
  const announced = normaliseStatus(body.status)
  if (announced === 'SUCCESSFUL' && tx.status !== 'SUCCESSFUL') {
    await refused({ motif: 'statut_non_confirme', statut_annonce: String(body.status), statut_feexpay: tx.status, montant_annonce: body.amount ?? null }, payment.organisation_id, payment.id)
  }
  await settle(app, settings, payment.id, tx, 'webhook')
  return 'ok'
}

const PAYMENT_STATES: readonly StatutPaiement[] = ['en_attente', 'reussi', 'echoue', 'expire']

/** Payments of every organisation by state, counted at each scrape (one grouped count). */
export function paymentMetrics(app: FastifyInstance): void {
  app.metrics.gauge({
    name: 'armoire_payments',
    help: 'Paiements FeexPay par statut (toutes organisations)',
    labelNames: ['state'],
    async collect() {
      this.reset()
      try {
        const rows = await app.db.selectFrom('paiements').select(['statut', (eb) => eb.fn.countAll<number>().as('n')]).groupBy('statut').execute()
        // Every state is reported, 0 included: an alert on pending payments needs the series to exist.
        for (const state of PAYMENT_STATES) this.set({ state }, Number(rows.find((r) => r.statut === state)?.n ?? 0))
      } catch (err) {
        // The rest of the scrape is still worth having: this series is left out.
        app.log.warn({ err }, 'payments by state not collected')
      }
    },
  })
}
