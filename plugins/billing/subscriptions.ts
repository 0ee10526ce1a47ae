import { type Kysely, type Transaction } from 'kysely'
import type { FastifyInstance } from 'fastify'
import type { Abonnement, Periodicite, Plan, StatutAbonnement } from '../../db/tables/billing.ts'
import type { DB } from '../../db/types.ts'
import type { AbonnementDto } from '../../openapi/billing.ts'
import { Errors, type QuotaBreach } from '../../src/errors.ts'
import { armoireCount, usage } from '../documents/public.ts'
import { seatsTaken } from '../security/public.ts'
import type { OutgoingMail } from '../../src/mail.ts'
import { DAY_MS, nextCharge, toPlanDto } from './plans.ts'

/** Statuses in which the organisation may add content; the others are read-only. */
const WRITABLE: ReadonlySet<StatutAbonnement> = new Set(['essai', 'en_attente_paiement', 'actif', 'en_retard'])

export interface BillingSettings {
  vatRate: number
  graceDays: number
}

export async function findSubscription(db: Kysely<DB>, organisationId: string): Promise<Abonnement> {
  const sub = await db.selectFrom('abonnements').selectAll().where('organisation_id', '=', organisationId).executeTakeFirst()
  // Every organisation has one from its creation (a trigger of the billing migration).
  if (!sub) throw new Errors.NOT_FOUND('Abonnement')
  return sub
}

export async function lockSubscription(trx: Transaction<DB>, organisationId: string): Promise<Abonnement> {
  const sub = await trx.selectFrom('abonnements').selectAll().where('organisation_id', '=', organisationId).forUpdate().executeTakeFirst()
  if (!sub) throw new Errors.NOT_FOUND('Abonnement')
  return sub
}

export async function plansByCode(db: Kysely<DB>): Promise<Map<string, Plan>> {
  const rows = await db.selectFrom('plans').selectAll().execute()
  return new Map(rows.map((p) => [p.code, p]))
}

/**
 * Read-only once suspended or expired; also once the grace period is over even if the
 * lifecycle job has not run yet, so a stopped job queue never keeps an unpaid space open.
 */
export function isReadOnly(sub: Pick<Abonnement, 'statut' | 'periode_fin' | 'en_retard_depuis'>, graceDays: number, now = new Date()): boolean {
  if (!WRITABLE.has(sub.statut)) return true
  const since = sub.statut === 'en_retard' ? (sub.en_retard_depuis ?? sub.periode_fin) : sub.periode_fin
  return since.getTime() + graceDays * DAY_MS <= now.getTime()
}

export interface Usage {
  stockage_octets: number
  membres: number
  armoires: number
}

/** What the organisation holds now, as the documents and security domains count it. */
export async function usageOf(db: Kysely<DB>, organisationId: string): Promise<Usage> {
  const [storage, membres, armoires] = await Promise.all([usage(db, organisationId, 0), seatsTaken(db, organisationId), armoireCount(db, organisationId)])
  return { stockage_octets: storage.used, membres, armoires }
}

const QUOTA_NAMES = { stockage_octets: 'stockage', membres: 'membres', armoires: 'armoires' } as const

export function quotasOf(plan: Plan): Usage {
  return { stockage_octets: plan.quota_stockage_octets, membres: plan.quota_membres, armoires: plan.quota_armoires }
}

/** The first quota of `plan` that `usage` exceeds, or null when everything fits (0 = unlimited). */
export function exceededQuota(plan: Plan, usage: Usage): QuotaBreach | null {
  const quotas = quotasOf(plan)
  for (const key of ['stockage_octets', 'membres', 'armoires'] as const) {
    if (quotas[key] > 0 && usage[key] > quotas[key]) return { quota: QUOTA_NAMES[key], used: usage[key], allowed: quotas[key], plan: plan.nom }
  }
  return null
}

export function toAbonnementDto(sub: Abonnement, plans: ReadonlyMap<string, Plan>, usage: Usage, settings: BillingSettings, now = new Date()): AbonnementDto {
  const plan = plans.get(sub.plan_code)
  if (!plan) throw new Error(`unknown plan ${sub.plan_code}`)
  const charge = nextCharge(sub, plans, settings.vatRate, now)
  const quotas = quotasOf(plan)
  return {
    id: sub.id,
    plan: toPlanDto(plan),
    periodicite: sub.periodicite,
    statut: sub.statut,
    periode_debut: sub.periode_debut.toISOString(),
    periode_fin: sub.periode_fin.toISOString(),
    jours_restants: Math.max(0, Math.floor((sub.periode_fin.getTime() - now.getTime()) / DAY_MS)),
    renouvellement_auto: sub.renouvellement_auto,
    lecture_seule: isReadOnly(sub, settings.graceDays, now),
    changement_prevu:
      sub.plan_demande && sub.periodicite_demandee && sub.effet_demande
        ? { plan: sub.plan_demande, periodicite: sub.periodicite_demandee, effet: sub.effet_demande }
        : null,
    prochain_paiement: charge
      ? {
          plan: charge.plan.code,
          periodicite: charge.periodicite,
          montant_ht: charge.ht,
          montant_tva: charge.tva,
          montant_ttc: charge.ttc,
          credit_prorata_ht: charge.creditHt,
          devise: 'XOF',
        }
      : null,
    utilisation: {
      stockage_octets: { utilise: usage.stockage_octets, quota: quotas.stockage_octets },
      membres: { utilise: usage.membres, quota: quotas.membres },
      armoires: { utilise: usage.armoires, quota: quotas.armoires },
    },
    en_retard_depuis: sub.en_retard_depuis?.toISOString() ?? null,
    suspendu_depuis: sub.suspendu_depuis?.toISOString() ?? null,
    updated_at: new Date(sub.updated_at).toISOString(),
  }
}

/** Writes the subscription's new state and its history line, in the caller's transaction. */
export async function changeSubscription(
  trx: Transaction<DB>,
  sub: Abonnement,
  change: Partial<Omit<Abonnement, 'id' | 'organisation_id' | 'created_at' | 'updated_at'>>,
  event: { evenement: string; userId?: string | null; details?: Record<string, unknown> },
): Promise<Abonnement> {
  const next = await trx
    .updateTable('abonnements')
    .set({ ...change, updated_at: new Date() })
    .where('id', '=', sub.id)
    .returningAll()
    .executeTakeFirstOrThrow()
  await trx
    .insertInto('abonnements_historique')
    .values({
      abonnement_id: next.id,
      organisation_id: next.organisation_id,
      evenement: event.evenement,
      plan_code: next.plan_code,
      periodicite: next.periodicite,
      statut: next.statut,
      periode_debut: next.periode_debut,
      periode_fin: next.periode_fin,
      details: JSON.stringify(event.details ?? {}),
      utilisateur_id: event.userId ?? null,
    })
    .execute()
  return next
}

/** Whether choosing `target` from the current plan is a downgrade (smaller plan, or a shorter period of the same). */
export function isDowngrade(current: Plan, currentPeriod: Periodicite, target: Plan, targetPeriod: Periodicite): boolean {
  if (target.rang !== current.rang) return target.rang < current.rang
  return currentPeriod === 'annuelle' && targetPeriod === 'mensuelle'
}

/** Queues a mail to each active admin of the organisation, in the caller's transaction. */
export async function mailAdmins(app: FastifyInstance, trx: Transaction<DB>, organisationId: string, mail: Omit<OutgoingMail, 'to' | 'organisationId'>): Promise<void> {
  const admins = await trx
    .selectFrom('utilisateurs')
    .select('email')
    .where('organisation_id', '=', organisationId)
    .where('role', '=', 'admin')
    .where('actif', '=', true)
    .execute()
  for (const { email } of admins) await app.mailer.queue(trx, { ...mail, to: email, organisationId })
}
