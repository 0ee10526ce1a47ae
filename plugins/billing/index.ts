import type { FastifyInstance } from 'fastify'
import { sql } from 'kysely'
import {
  choisirAbonnement,
  feexpayWebhook,
  getAbonnement,
  getFacturation,
  getFacture,
  getFacturePdf,
  getPaiement,
  listFactures,
  listPaiements,
  listPlans,
  payerAbonnement,
  putFacturation,
} from '../../openapi/billing.ts'
import { actorOf } from '../../src/audit.ts'
import { principalOf } from '../../src/auth.ts'
import { type Config, publicUrl } from '../../src/config.ts'
import { attachment } from '../../src/attachment.ts'
import { Errors } from '../../src/errors.ts'
import { decodeCursor, page } from '../../src/pagination.ts'
import { armoireCount } from '../documents/public.ts'
import { seatsTaken } from '../security/public.ts'
import { handle, registerOperations } from '../../src/routes.ts'
import { createFeexPay } from './feexpay.ts'
import { PDF_QUEUE, readInvoicePdf, renderInvoicePdf, type SellerSettings, toFactureDto } from './invoices.ts'
import { LIFECYCLE_QUEUE, type LifecycleSettings, runLifecycle } from './lifecycle.ts'
import { handleWebhook, paymentDto, paymentMetrics, toPaiementDto, type PaymentSettings, POLL_QUEUE, pollPayment, refreshPayment, startPayment } from './payments.ts'
import { listActivePlans, priceOf, toPlanDto } from './plans.ts'
import {
  type BillingSettings,
  changeSubscription,
  exceededQuota,
  findSubscription,
  isDowngrade,
  isReadOnly,
  lockSubscription,
  plansByCode,
  toAbonnementDto,
  usageOf,
} from './subscriptions.ts'

export type BillingConfig = Pick<
  Config,
  | 'FEEXPAY_BASE_URL'
  | 'FEEXPAY_API_KEY'
  | 'FEEXPAY_SHOP_ID'
  | 'FEEXPAY_WEBHOOK_SECRET'
  | 'FEEXPAY_TIMEOUT_MS'
  | 'FEEXPAY_POLL_SECONDS'
  | 'BILLING_VAT_RATE'
  | 'BILLING_GRACE_DAYS'
  | 'BILLING_REMINDER_DAYS'
  | 'BILLING_TIMEZONE'
  | 'BILLING_SELLER_NAME'
  | 'BILLING_SELLER_ADDRESS'
  | 'BILLING_SELLER_IFU'
  | 'BILLING_SELLER_RCCM'
  | 'BILLING_SELLER_EMAIL'
  | 'PUBLIC_URL'
  | 'HOST'
  | 'PORT'
>

const TIMESTAMP = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d{1,6})?[+-]\d{2}(:\d{2})?$/
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

/** Newest first over (timestamp, id); the cursor carries the timestamp as PostgreSQL prints it. */
function newestFirst(cursor: string | undefined): { ts: string; id: string } | null {
  if (!cursor) return null
  const [ts, id] = decodeCursor<[string, string]>(cursor, ['string', 'string'])
  if (!TIMESTAMP.test(ts) || !UUID.test(id)) throw new Errors.INVALID_CURSOR()
  return { ts, id }
}

export function billingSettings(config: BillingConfig) {
  const seller: SellerSettings = {
    name: config.BILLING_SELLER_NAME,
    address: config.BILLING_SELLER_ADDRESS,
    ifu: config.BILLING_SELLER_IFU,
    rccm: config.BILLING_SELLER_RCCM,
    email: config.BILLING_SELLER_EMAIL,
    timeZone: config.BILLING_TIMEZONE,
  }
  const base = publicUrl(config as Config)
  const payments: PaymentSettings = {
    feexpay: createFeexPay({
      baseUrl: config.FEEXPAY_BASE_URL,
      apiKey: config.FEEXPAY_API_KEY,
      shopId: config.FEEXPAY_SHOP_ID,
      timeoutMs: config.FEEXPAY_TIMEOUT_MS,
    }),
    publicUrl: base,
    vatRate: config.BILLING_VAT_RATE,
    pollSeconds: config.FEEXPAY_POLL_SECONDS,
    requestTimeoutMs: config.FEEXPAY_TIMEOUT_MS,
    seller,
  }
  const lifecycle: LifecycleSettings = {
    graceDays: config.BILLING_GRACE_DAYS,
    reminderDays: config.BILLING_REMINDER_DAYS ? config.BILLING_REMINDER_DAYS.split(',').map(Number) : [],
    vatRate: config.BILLING_VAT_RATE,
    timeZone: config.BILLING_TIMEZONE,
    publicUrl: base,
  }
  const billing: BillingSettings = { vatRate: config.BILLING_VAT_RATE, graceDays: config.BILLING_GRACE_DAYS }
  return { seller, payments, lifecycle, billing }
}

/**
 * The billing domain: plans, the organisation's subscription, FeexPay payments (request,
 * webhook, polling), gap-free invoices and their PDFs, the subscription lifecycle.
 */
export async function billingDomain(app: FastifyInstance, opts: { config: BillingConfig }) {
  const { db } = app
  const { seller, payments, lifecycle, billing } = billingSettings(opts.config)
  paymentMetrics(app)

  async function abonnementOf(organisationId: string) {
    const [sub, plans, usage] = await Promise.all([findSubscription(db, organisationId), plansByCode(db), usageOf(db, organisationId)])
    return toAbonnementDto(sub, plans, usage, billing)
  }

  // Documents asks before adding anything: read-only while suspended, the plan's quotas.
  app.entitlements.fill(async (executor, organisationId, addition) => {
    const row = await executor
      .selectFrom('abonnements')
      .innerJoin('plans', 'plans.code', 'abonnements.plan_code')
      .select(['abonnements.statut', 'abonnements.periode_fin', 'abonnements.en_retard_depuis', 'plans.nom', 'plans.quota_stockage_octets', 'plans.quota_armoires', 'plans.quota_membres'])
      .where('abonnements.organisation_id', '=', organisationId)
      // Counted additions queue on the subscription row: two invitations at once cannot both take the last seat.
      .$if(addition === 'membre' || addition === 'armoire', (q) => q.forUpdate('abonnements'))
      .executeTakeFirst()
    if (!row) return { storageQuota: null }
    if (isReadOnly(row, billing.graceDays)) throw new Errors.SUBSCRIPTION_INACTIVE(row.statut === 'expire' ? 'expiré' : 'suspendu')
    if (addition === 'armoire' && row.quota_armoires > 0) {
      const used = await armoireCount(executor, organisationId)
      if (used >= row.quota_armoires) throw new Errors.QUOTA_EXCEEDED({ quota: 'armoires', used, allowed: row.quota_armoires, plan: row.nom })
    }
    if (addition === 'membre' && row.quota_membres > 0) {
      // Invited members count: they hold a seat from the invitation on; deactivated ones do not.
      const used = await seatsTaken(executor, organisationId)
      if (used >= row.quota_membres) throw new Errors.QUOTA_EXCEEDED({ quota: 'membres', used, allowed: row.quota_membres, plan: row.nom })
    }
    return { storageQuota: row.quota_stockage_octets }
  })

  app.mailer.attachmentSource('facture', async (id) => {
    const stored = await readInvoicePdf(app, id)
    if (!stored) throw new Error(`invoice ${id} has no PDF yet`)
    return { filename: `${stored.numero}.pdf`, contentType: 'application/pdf', content: stored.pdf }
  })

  registerOperations(app, [
    handle(listPlans, async () => ({ items: (await listActivePlans(db)).map(toPlanDto) })),

    handle(getAbonnement, async (request) => abonnementOf(principalOf(request).organisationId)),

    handle(choisirAbonnement, async (request) => {
      const { organisationId, userId } = principalOf(request)
      const { plan: code, periodicite } = request.body
      const plans = await plansByCode(db)
      const target = plans.get(code)
      if (!target || !target.actif) throw new Errors.NOT_FOUND(`Plan « ${code} »`)
      if (priceOf(target, periodicite) === 0) throw new Errors.CONFLICT('L’essai gratuit ne se choisit pas : il est offert à la création de l’organisation')
      await db.transaction().execute(async (trx) => {
        const sub = await lockSubscription(trx, organisationId)
        const current = plans.get(sub.plan_code)
        if (!current) throw new Error(`unknown plan ${sub.plan_code}`)
        const unchanged = target.code === sub.plan_code && periodicite === sub.periodicite
        if (unchanged && !sub.plan_demande) throw new Errors.CONFLICT('Ce plan et cette périodicité sont déjà ceux de l’abonnement')
        let change
        if (unchanged) {
          // Choosing the plan in force again cancels the change that was waiting.
          change = { plan_demande: null, periodicite_demandee: null, effet_demande: null, changement_at: null }
        } else {
          const exceeded = exceededQuota(target, await usageOf(trx, organisationId))
          if (exceeded) throw new Errors.QUOTA_EXCEEDED(exceeded)
          const paidAndRunning = sub.statut === 'actif' && priceOf(current, sub.periodicite) > 0 && sub.periode_fin > new Date()
          const downgrade = paidAndRunning && isDowngrade(current, sub.periodicite, target, periodicite)
          change = {
            plan_demande: target.code,
            periodicite_demandee: periodicite,
            effet_demande: downgrade ? ('fin_periode' as const) : ('paiement' as const),
            changement_at: downgrade ? sub.periode_fin : null,
            ...(sub.statut === 'essai' ? { statut: 'en_attente_paiement' as const } : {}),
          }
        }
        const next = await changeSubscription(trx, sub, change, { evenement: unchanged ? 'changement_annule' : 'plan_choisi', userId, details: { plan: code, periodicite } })
        await app.audit.record(trx, {
          ...actorOf(request),
          action: 'SUBSCRIPTION_CHOSEN',
          target: { type: 'abonnement', id: sub.id, nom: target.nom },
          details: { plan: code, periodicite, effet: next.effet_demande, avant: sub.plan_code },
        })
      })
      return abonnementOf(organisationId)
    }),

    handle(payerAbonnement, async (request, reply) => {
      const { payment } = await startPayment(app, request, request.body, payments)
      return reply.code(202).send(await paymentDto(app, payment))
    }),

    handle(listPaiements, async (request) => {
      const { organisationId } = principalOf(request)
      const { limit, cursor } = request.query
      const after = newestFirst(cursor)
      let query = db
        .selectFrom('paiements')
        .leftJoin('factures', 'factures.paiement_id', 'paiements.id')
        .selectAll('paiements')
        .select(['factures.id as facture_id', sql<string>`paiements.created_at::text`.as('k')])
        .where('paiements.organisation_id', '=', organisationId)
      if (after) query = query.where(sql<boolean>`(paiements.created_at, paiements.id) < (cast(${after.ts} as timestamptz), cast(${after.id} as uuid))`)
      const rows = await query.orderBy('paiements.created_at', 'desc').orderBy('paiements.id', 'desc').limit(limit + 1).execute()
      return page(rows, limit, (r) => toPaiementDto(r, r.facture_id), (r) => [r.k, r.id])
    }),

    handle(getPaiement, async (request) => {
      const { organisationId } = principalOf(request)
      const find = () =>
        db.selectFrom('paiements').selectAll().where('id', '=', request.params.id).where('organisation_id', '=', organisationId).executeTakeFirst()
      const payment = await find()
      if (!payment) throw new Errors.NOT_FOUND('Paiement')
      if (payment.statut !== 'en_attente') return paymentDto(app, payment)
      await refreshPayment(app, payments, payment)
      return paymentDto(app, (await find()) ?? payment)
    }),

    // The kernel checked the shared secret (the contract declares the webhook's access).
    handle(feexpayWebhook, async (request, reply) => {
      const outcome = await handleWebhook(app, request, request.body as Record<string, unknown>, payments)
      if (outcome === 'retry') {
        reply.header('retry-after', '30')
        throw new Errors.SERVICE_UNAVAILABLE()
      }
      return reply.send({ recu: true as const })
    }),

    handle(listFactures, async (request) => {
      const { organisationId } = principalOf(request)
      const { limit, cursor } = request.query
      const after = newestFirst(cursor)
      let query = db
        .selectFrom('factures')
        .leftJoin('factures_pdf', 'factures_pdf.facture_id', 'factures.id')
        .selectAll('factures')
        .select(['factures_pdf.sha256 as pdf_sha256', sql<string>`factures.emise_at::text`.as('k')])
        .where('factures.organisation_id', '=', organisationId)
      if (after) query = query.where(sql<boolean>`(factures.emise_at, factures.id) < (cast(${after.ts} as timestamptz), cast(${after.id} as uuid))`)
      const rows = await query.orderBy('factures.emise_at', 'desc').orderBy('factures.id', 'desc').limit(limit + 1).execute()
      return page(rows, limit, (r) => toFactureDto(r, r.pdf_sha256), (r) => [r.k, r.id])
    }),

    handle(getFacture, async (request) => {
      const { organisationId } = principalOf(request)
      const row = await db
        .selectFrom('factures')
        .leftJoin('factures_pdf', 'factures_pdf.facture_id', 'factures.id')
        .selectAll('factures')
        .select('factures_pdf.sha256 as pdf_sha256')
        .where('factures.id', '=', request.params.id)
        .where('factures.organisation_id', '=', organisationId)
        .executeTakeFirst()
      if (!row) throw new Errors.NOT_FOUND('Facture')
      return toFactureDto(row, row.pdf_sha256)
    }),

    handle(getFacturePdf, async (request, reply) => {
      const { organisationId } = principalOf(request)
      const facture = await db
        .selectFrom('factures')
        .select(['id', 'numero'])
        .where('id', '=', request.params.id)
        .where('organisation_id', '=', organisationId)
        .executeTakeFirst()
      if (!facture) throw new Errors.NOT_FOUND('Facture')
      const stored = await readInvoicePdf(app, facture.id)
      if (!stored) {
        reply.header('retry-after', '5')
        throw new Errors.PDF_NOT_READY()
      }
      return reply
        .type('application/pdf')
        .header('content-disposition', attachment(`${stored.numero}.pdf`))
        .header('x-content-sha256', stored.sha256)
        .header('cache-control', 'private, no-store')
        .send(stored.pdf as unknown as string)
    }),

    handle(getFacturation, async (request) => {
      const { organisationId } = principalOf(request)
      const row = await db.selectFrom('organisations_facturation').selectAll().where('organisation_id', '=', organisationId).executeTakeFirst()
      if (row) return { ...row, updated_at: row.updated_at.toISOString() }
      const org = await db.selectFrom('organisations').select('nom').where('id', '=', organisationId).executeTakeFirstOrThrow()
      return { raison_sociale: org.nom, adresse: '', ville: null, pays: null, ifu: null, rccm: null, email: null, telephone: null, updated_at: null }
    }),

    handle(putFacturation, async (request) => {
      const { organisationId } = principalOf(request)
      const b = request.body
      const values = {
        raison_sociale: b.raison_sociale.trim(),
        adresse: b.adresse.trim(),
        ville: b.ville?.trim() || null,
        pays: b.pays?.trim() || null,
        ifu: b.ifu?.trim() || null,
        rccm: b.rccm?.trim() || null,
        email: b.email?.trim() || null,
        telephone: b.telephone?.trim() || null,
        updated_at: new Date(),
      }
      const row = await db.transaction().execute(async (trx) => {
        const saved = await trx
          .insertInto('organisations_facturation')
          .values({ organisation_id: organisationId, ...values })
          .onConflict((oc) => oc.column('organisation_id').doUpdateSet(values))
          .returningAll()
          .executeTakeFirstOrThrow()
        await app.audit.record(trx, {
          ...actorOf(request),
          action: 'BILLING_DETAILS_UPDATED',
          target: { type: 'organisation', id: organisationId, nom: values.raison_sociale },
          details: { champs: Object.keys(b) },
        })
        return saved
      })
      return { ...row, updated_at: row.updated_at.toISOString() }
    }),
  ])

  await app.jobs.work(PDF_QUEUE, (job) => renderInvoicePdf(app, job.data.facture_id, seller.timeZone), {
    retryLimit: 10,
    retryDelay: 10,
    retryBackoff: true,
    concurrency: 2,
  })
  await app.jobs.work(POLL_QUEUE, (job) => pollPayment(app, payments, job.data.paiement_id, job.data.tentative), { retryLimit: 5, retryDelay: 30, retryBackoff: true })
  await app.jobs.work(LIFECYCLE_QUEUE, () => runLifecycle(app, lifecycle), { expireInSeconds: 15 * 60 })
  await app.jobs.schedule(LIFECYCLE_QUEUE, '*/15 * * * *', {})
}
