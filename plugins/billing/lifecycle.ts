import type { FastifyInstance } from 'fastify'
import { sql } from 'kysely'
import type { Abonnement } from '../../db/tables/billing.ts'
import { renderMail } from '../../src/mail-templates.ts'
import { expirePayment } from './payments.ts'
import { DAY_MS, nextCharge } from './plans.ts'
import { changeSubscription, mailAdmins, plansByCode } from './subscriptions.ts'
import { dateFr, fcfa } from './template.ts'

export const LIFECYCLE_QUEUE = 'billing.cycle'

declare module '../../src/jobs.ts' {
  interface JobPayloads {
    'billing.cycle': Record<string, never>
  }
}

export interface LifecycleSettings {
  graceDays: number
  reminderDays: readonly number[]
  vatRate: number
  timeZone: string
  publicUrl: string
}

function reminderMail(sub: Abonnement, planNom: string, days: number, amount: number | null, s: LifecycleSettings) {
  const when = dateFr(sub.periode_fin, s.timeZone)
  const essai = sub.statut === 'essai' || sub.statut === 'en_attente_paiement'
  return renderMail({
    subject: essai ? `Votre essai Armoire se termine le ${when}` : `Votre abonnement Armoire arrive à échéance le ${when}`,
    title: essai ? 'Fin de votre période d’essai' : 'Échéance de votre abonnement',
    paragraphs: [
      'Bonjour,',
      `${essai ? 'La période d’essai' : `L’abonnement ${planNom}`} de votre organisation se termine dans ${days} jour${days > 1 ? 's' : ''}, le ${when}.`,
      amount
        ? `Pour continuer sans interruption, réglez ${fcfa(amount)} TTC par mobile money ou carte depuis l’espace Abonnement.`
        : 'Pour continuer, choisissez un plan et réglez-le depuis l’espace Abonnement.',
      'Sans paiement, l’espace passe en lecture seule après le délai de grâce. Vos documents ne sont jamais supprimés et restent consultables.',
    ],
    action: { label: 'Gérer mon abonnement', url: `${s.publicUrl}/abonnement` },
  })
}

function statusMail(statut: 'en_retard' | 'suspendu' | 'expire', graceDays: number, s: LifecycleSettings) {
  const texts = {
    en_retard: [
      'Votre abonnement Armoire est échu',
      `La période de votre abonnement est terminée sans paiement. Vous disposez d’un délai de grâce de ${graceDays} jours pour régler ; passé ce délai, l’espace passera en lecture seule.`,
    ],
    suspendu: [
      'Votre espace Armoire est en lecture seule',
      'Faute de paiement à la fin du délai de grâce, les dépôts, nouvelles versions et nouveaux classements sont suspendus. Vos documents restent consultables et téléchargeables ; le paiement rétablit tout immédiatement.',
    ],
    expire: [
      'Votre abonnement Armoire a expiré',
      'Votre abonnement sans renouvellement automatique est arrivé à son terme : l’espace est en lecture seule. Vos documents restent consultables ; choisissez un plan pour reprendre.',
    ],
  } as const
  const [title, text] = texts[statut]
  return renderMail({ subject: title, title, paragraphs: ['Bonjour,', text], action: { label: 'Gérer mon abonnement', url: `${s.publicUrl}/abonnement` } })
}

/**
 * One pass of the subscription lifecycle, run by a pg-boss cron (once across instances) and
 * safe to run again: each subscription is changed in its own transaction, under its row lock,
 * only when its state still calls for it.
 */
export async function runLifecycle(app: FastifyInstance, s: LifecycleSettings, now = new Date()): Promise<Record<string, number>> {
  const counts = { rappels: 0, en_retard: 0, suspendus: 0, expires: 0, changements: 0, paiements_expires: 0 }
  const plans = await plansByCode(app.db)
  const horizon = new Date(now.getTime() + Math.max(0, ...s.reminderDays) * DAY_MS)
  const due = await app.db
    .selectFrom('abonnements')
    .select('id')
    .where((eb) =>
      eb.or([
        eb.and([eb('statut', 'in', ['essai', 'en_attente_paiement', 'actif', 'en_retard']), eb('periode_fin', '<=', horizon)]),
        eb.and([eb('effet_demande', '=', 'fin_periode'), eb('changement_at', '<=', now)]),
      ]),
    )
    .execute()
  for (const { id } of due) {
    await app.unitOfWork(async (trx) => {
      let sub = await trx.selectFrom('abonnements').selectAll().where('id', '=', id).forUpdate().executeTakeFirstOrThrow()
      // A downgrade chosen for the end of the period applies now.
      if (sub.effet_demande === 'fin_periode' && sub.changement_at && sub.changement_at <= now && sub.plan_demande && sub.periodicite_demandee) {
        sub = await changeSubscription(
          trx,
          sub,
          { plan_code: sub.plan_demande, periodicite: sub.periodicite_demandee, plan_demande: null, periodicite_demandee: null, effet_demande: null, changement_at: null },
          { evenement: 'plan_change', details: { depuis: sub.plan_code } },
        )
        counts.changements++
      }
      const ended = sub.periode_fin <= now
      if (!ended && ['essai', 'en_attente_paiement', 'actif'].includes(sub.statut)) {
        const left = Math.ceil((sub.periode_fin.getTime() - now.getTime()) / DAY_MS)
        const owed = s.reminderDays.filter((d) => left <= d && !sub.rappels_envoyes.includes(d))
        if (owed.length === 0) return
        const charge = nextCharge(sub, plans, s.vatRate, now)
        await mailAdmins(app, trx, sub.organisation_id, { kind: 'rappel_echeance', ...reminderMail(sub, plans.get(sub.plan_code)?.nom ?? sub.plan_code, left, charge?.ttc ?? null, s) })
        await trx
          .updateTable('abonnements')
          .set({ rappels_envoyes: sql`array(select distinct unnest(rappels_envoyes || ${sql.val(owed)}::integer[]))` })
          .where('id', '=', sub.id)
          .execute()
        counts.rappels++
        return
      }
      if (!ended) return
      let statut: 'en_retard' | 'suspendu' | 'expire' | null = null
      if (['essai', 'en_attente_paiement', 'actif'].includes(sub.statut)) statut = sub.renouvellement_auto ? 'en_retard' : 'expire'
      else if (sub.statut === 'en_retard' && (sub.en_retard_depuis ?? sub.periode_fin).getTime() + s.graceDays * DAY_MS <= now.getTime()) statut = 'suspendu'
      if (!statut) return
      const next = await changeSubscription(
        trx,
        sub,
        {
          statut,
          ...(statut === 'en_retard' ? { en_retard_depuis: now } : {}),
          ...(statut === 'suspendu' ? { suspendu_depuis: now } : {}),
        },
        { evenement: statut },
      )
      await app.audit.record(trx, {
        organisationId: sub.organisation_id,
        userId: null,
        action: 'SUBSCRIPTION_CHANGED',
        target: { type: 'abonnement', id: sub.id, nom: plans.get(sub.plan_code)?.nom ?? sub.plan_code },
        details: { avant: { statut: sub.statut }, apres: { statut: next.statut }, periode_fin: sub.periode_fin.toISOString() },
      })
      await mailAdmins(app, trx, sub.organisation_id, { kind: `abonnement_${statut}`, ...statusMail(statut, s.graceDays, s) })
      counts[statut === 'en_retard' ? 'en_retard' : statut === 'suspendu' ? 'suspendus' : 'expires']++
    })
  }
  // Payments nobody confirmed within a day (their poll chain may have been lost with an instance).
  const stale = await app.db.selectFrom('paiements').selectAll().where('statut', '=', 'en_attente').where('expire_at', '<=', now).execute()
  for (const payment of stale) {
    await expirePayment(app, payment)
    counts.paiements_expires++
  }
  return counts
}
