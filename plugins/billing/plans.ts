import type { Kysely } from 'kysely'
import type { Abonnement, Periodicite, Plan } from '../../db/tables/billing.ts'
import type { DB } from '../../db/types.ts'
import type { PlanDto } from '../../openapi/billing.ts'

export const DAY_MS = 86_400_000

export async function listActivePlans(db: Kysely<DB>): Promise<Plan[]> {
  return db.selectFrom('plans').selectAll().where('actif', '=', true).orderBy('rang').execute()
}

export async function findPlan(db: Kysely<DB>, code: string): Promise<Plan | undefined> {
  return db.selectFrom('plans').selectAll().where('code', '=', code).executeTakeFirst()
}

export function toPlanDto(plan: Plan): PlanDto {
  return {
    code: plan.code,
    nom: plan.nom,
    prix_mensuel_ht: plan.prix_mensuel,
    prix_annuel_ht: plan.prix_annuel,
    essai_jours: plan.essai_jours,
    quotas: { stockage_octets: plan.quota_stockage_octets, membres: plan.quota_membres, armoires: plan.quota_armoires },
    fonctionnalites: plan.fonctionnalites,
  }
}

export function priceOf(plan: Plan, periodicite: Periodicite): number {
  return periodicite === 'annuelle' ? plan.prix_annuel : plan.prix_mensuel
}

/** The end of a period of `periodicite` starting at `start`, same day of month (clamped, as 31 Jan → 28 Feb). */
export function periodEnd(start: Date, periodicite: Periodicite): Date {
  const end = new Date(start)
  const day = end.getUTCDate()
  end.setUTCDate(1)
  end.setUTCMonth(end.getUTCMonth() + (periodicite === 'annuelle' ? 12 : 1))
  const last = new Date(Date.UTC(end.getUTCFullYear(), end.getUTCMonth() + 1, 0)).getUTCDate()
  end.setUTCDate(Math.min(day, last))
  return end
}

/** What a payment asks for, decided by the server from the plans alone. */
export interface Charge {
  plan: Plan
  periodicite: Periodicite
  nature: 'souscription' | 'renouvellement' | 'changement'
  prixHt: number
  creditHt: number
  creditJours: number
  ht: number
  tva: number
  ttc: number
  tauxTva: number
}

/** FeexPay takes 100 to 2 000 000 XOF per transaction. */
export const MIN_AMOUNT = 100

export function taxed(ht: number, rate: number): { tva: number; ttc: number } {
  const tva = Math.round((ht * rate) / 100)
  return { tva, ttc: ht + tva }
}

/**
 * The next amount due. A chosen upgrade is paid now, less the rest of the current paid period
 * prorated to the day; otherwise the next period of the plan that will then apply. Null when
 * nothing is due (a trial with no paid plan chosen).
 */
export function nextCharge(sub: Abonnement, plans: ReadonlyMap<string, Plan>, rate: number, now = new Date()): Charge | null {
  const current = plans.get(sub.plan_code)
  if (!current) return null
  const pick = (code: string) => {
    const plan = plans.get(code)
    if (!plan) throw new Error(`unknown plan ${code}`)
    return plan
  }
  let plan: Plan
  let periodicite: Periodicite
  let nature: Charge['nature']
  let creditHt = 0
  let creditJours = 0
  if (sub.plan_demande && sub.periodicite_demandee && sub.effet_demande === 'paiement') {
    plan = pick(sub.plan_demande)
    periodicite = sub.periodicite_demandee
    const paidAndRunning = sub.statut === 'actif' && priceOf(current, sub.periodicite) > 0 && sub.periode_fin > now
    nature = paidAndRunning ? 'changement' : 'souscription'
    if (paidAndRunning) {
      const total = Math.max(1, Math.round((sub.periode_fin.getTime() - sub.periode_debut.getTime()) / DAY_MS))
      creditJours = Math.min(total, Math.floor((sub.periode_fin.getTime() - now.getTime()) / DAY_MS))
      creditHt = Math.floor((priceOf(current, sub.periodicite) * creditJours) / total)
    }
  } else {
    const fin = sub.plan_demande && sub.periodicite_demandee && sub.effet_demande === 'fin_periode'
    plan = fin ? pick(sub.plan_demande as string) : current
    periodicite = fin ? (sub.periodicite_demandee as Periodicite) : sub.periodicite
    nature = 'renouvellement'
  }
  const prixHt = priceOf(plan, periodicite)
  if (prixHt === 0) return null
  // The credit never brings the payment under FeexPay's minimum.
  const floorHt = Math.ceil((MIN_AMOUNT * 100) / (100 + rate))
  creditHt = Math.max(0, Math.min(creditHt, prixHt - floorHt))
  const ht = prixHt - creditHt
  return { plan, periodicite, nature, prixHt, creditHt, creditJours, ht, ...taxed(ht, rate), tauxTva: rate }
}
