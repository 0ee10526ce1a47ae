import cronParser from 'cron-parser'
import { sql } from 'kysely'
import {
  createPlanification,
  deletePlanification,
  getPlanification,
  listPlanifications,
  type PlanificationDto,
  updatePlanification,
} from '../../openapi/backup-planifications.ts'
import type { Conservation, PlanificationRow, SauvegardeRow } from '../../db/tables/backup.ts'
import { actorOf } from '../../src/audit.ts'
import { principalOf } from '../../src/auth.ts'
import { Errors } from '../../src/errors.ts'
import { renderMail } from '../../src/mail-templates.ts'
import { newestFirst } from '../../src/pagination.ts'
import { type Binding, handle } from '../../src/routes.ts'
import { exportTree } from '../documents/public.ts'
import { adminEmails } from '../security/public.ts'
import { requestBackup } from './backups.ts'
import { jobError, shredKey } from './repository.ts'
import { type BackupContext, coveredBy, targetName, targetOf } from './run.ts'


/** The first run of `cron` in `fuseau` after `after`, or a 400 naming the field. */
export function nextRun(cron: string, fuseau: string, after: Date): Date {
  try {
    return cronParser.parseExpression(cron, { currentDate: after, tz: fuseau }).next().toDate()
  } catch (error) {
    throw Object.assign(new Errors.VALIDATION_ERROR(), { fields: [{ field: 'body.frequence', message: `expression cron ou fuseau invalide (${(error as Error).message})` }] })
  }
}

function toPlanification(row: PlanificationRow): PlanificationDto {
  return {
    id: row.id,
    type: row.type,
    cible_id: row.cible_id,
    frequence: row.frequence,
    fuseau: row.fuseau,
    versions: row.versions,
    conservation: row.conservation,
    active: row.active,
    derniere_execution: row.derniere_execution?.toISOString() ?? null,
    prochaine_execution: row.active ? nextRun(row.frequence, row.fuseau, row.derniere_execution ?? row.created_at).toISOString() : null,
    created_by: row.created_by,
    created_at: row.created_at.toISOString(),
    updated_at: row.updated_at.toISOString(),
  }
}

async function findPlanification(ctx: BackupContext, organisationId: string, id: string): Promise<PlanificationRow> {
  const row = await ctx.app.db.selectFrom('planifications_sauvegarde').selectAll().where('id', '=', id).where('organisation_id', '=', organisationId).executeTakeFirst()
  if (!row) throw new Errors.NOT_FOUND('Planification')
  return row
}

/** The calendar buckets of an instant in a time zone: its day, ISO week and month. */
function buckets(date: Date, fuseau: string): { day: string; week: string; month: string } {
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat('en-CA', { timeZone: fuseau, year: 'numeric', month: '2-digit', day: '2-digit' }).formatToParts(date).map((p) => [p.type, p.value]),
  )
  const day = `${parts.year}-${parts.month}-${parts.day}`
  const local = new Date(`${day}T00:00:00Z`)
  const weekday = (local.getUTCDay() + 6) % 7
  local.setUTCDate(local.getUTCDate() - weekday + 3)
  const firstThursday = new Date(Date.UTC(local.getUTCFullYear(), 0, 4))
  const week = 1 + Math.round(((local.getTime() - firstThursday.getTime()) / 86_400_000 - 3 + ((firstThursday.getUTCDay() + 6) % 7)) / 7)
  return { day, week: `${local.getUTCFullYear()}-W${week}`, month: `${parts.year}-${parts.month}` }
}

/**
 * restic/Borg `forget --keep-last/daily/weekly/monthly`: newest first, a backup is kept by
 * `derniers` if among the first N, and by each calendar rule if it is the newest of one of
 * the N most recent periods that have a backup. Answers the ids to keep.
 */
export function keep(backups: readonly { id: string; created_at: Date }[], policy: Conservation, fuseau: string): Set<string> {
  const sorted = [...backups].sort((a, b) => b.created_at.getTime() - a.created_at.getTime())
  const kept = new Set(sorted.slice(0, policy.derniers).map((b) => b.id))
  for (const [rule, n] of [['day', policy.quotidiennes], ['week', policy.hebdomadaires], ['month', policy.mensuelles]] as const) {
    const seen = new Set<string>()
    for (const b of sorted) {
      if (seen.size >= n) break
      const bucket = buckets(b.created_at, fuseau)[rule]
      if (seen.has(bucket)) continue
      seen.add(bucket)
      kept.add(b.id)
    }
  }
  return kept
}

/**
 * After a scheduled backup: destroys the schedule's finished backups its policy does not
 * keep, never the last verified backup of the target, each shredded, removed and journaled.
 */
export async function prune(ctx: BackupContext, planification: PlanificationRow): Promise<number> {
  const { app } = ctx
  const backups = await app.db
    .selectFrom('sauvegardes')
    .selectAll()
    .where('planification_id', '=', planification.id)
    .where('organisation_id', '=', planification.organisation_id)
    .where('statut', '=', 'terminee')
    .execute()
  const kept = keep(backups, planification.conservation, planification.fuseau)
  const verified = await app.db
    .selectFrom('sauvegardes')
    .select('id')
    .where('organisation_id', '=', planification.organisation_id)
    .where('type', '=', planification.type)
    .where(sql<boolean>`cible_id is not distinct from ${planification.cible_id}::uuid`)
    .where('statut', '=', 'terminee')
    .where(sql<boolean>`(verification->>'valide')::boolean`)
    .orderBy('created_at', 'desc')
    .limit(1)
    .executeTakeFirst()
  if (verified) kept.add(verified.id)
  let removed = 0
  for (const backup of backups.filter((b) => !kept.has(b.id))) {
    const gone = await app.db.transaction().execute(async (trx) => {
      const row = await trx.selectFrom('sauvegardes').selectAll().where('id', '=', backup.id).where('statut', '=', 'terminee').forUpdate().executeTakeFirst()
      if (!row) return null
      // A legal hold on anything the backup covers keeps it (a system backup: any hold of the organisation).
      await app.safeguards.assertMayChange(trx, { organisationId: row.organisation_id, userId: null, object: coveredBy(row), action: 'prune' })
      await shredKey(trx, row.cle_id, null)
      await trx.deleteFrom('sauvegardes').where('id', '=', row.id).execute()
      await app.audit.record(trx, {
        organisationId: row.organisation_id,
        userId: null,
        action: 'BACKUP_DELETED',
        target: { type: 'sauvegarde', id: row.id, nom: targetName(row) },
        details: { automatique: true, planification_id: planification.id, cle_detruite: row.cle_id, taille: row.taille },
      })
      return row
    }).catch((err: unknown) => {
      // A retention rule or a hold on the target keeps it: left for the next run.
      app.log.warn({ err, sauvegarde: backup.id }, 'a backup the schedule would prune is kept')
      return null
    })
    if (gone?.chemin) await ctx.store.delete(gone.chemin).catch((err: unknown) => app.log.warn({ err }, 'could not remove a pruned backup’s blob'))
    if (gone) removed++
  }
  return removed
}

/** Tells the organisation's admins that a scheduled backup failed, and why. */
async function mailFailure(ctx: BackupContext, backup: Pick<SauvegardeRow, 'id' | 'organisation_id' | 'type' | 'contenu' | 'erreur'>): Promise<void> {
  const { app } = ctx
  const recipients = await adminEmails(app.db, backup.organisation_id)
  const erreur = backup.erreur ?? { code: 'INTERNAL_ERROR', detail: 'Erreur interne' }
  const mail = renderMail({
    subject: `Échec d’une sauvegarde planifiée : ${targetName(backup)}`,
    title: 'Une sauvegarde planifiée a échoué',
    paragraphs: [
      `La sauvegarde planifiée de ${targetName(backup)} n’a pas pu être faite.`,
      `Motif : ${erreur.detail} (${erreur.code}).`,
      `Référence de la sauvegarde : ${backup.id}. Elle sera retentée à la prochaine échéance ; vous pouvez aussi la relancer.`,
    ],
  })
  await app.unitOfWork(async (trx) => {
    for (const to of recipients) await app.mailer.queue(trx, { ...mail, to, kind: 'sauvegarde_echec', organisationId: backup.organisation_id })
  })
}

/** What runs when a backup's job ends: a scheduled one is pruned after, or its failure mailed. */
export async function afterScheduled(ctx: BackupContext, backupId: string): Promise<void> {
  const backup = await ctx.app.db.selectFrom('sauvegardes').selectAll().where('id', '=', backupId).executeTakeFirst()
  if (!backup?.planification_id) return
  if (backup.statut === 'echec') return mailFailure(ctx, backup)
  const planification = await ctx.app.db.selectFrom('planifications_sauvegarde').selectAll().where('id', '=', backup.planification_id).executeTakeFirst()
  if (planification && backup.statut === 'terminee') await prune(ctx, planification)
}

/**
 * The minutely tick (one pg-boss job across instances): each active schedule whose next run
 * is due is claimed by moving `derniere_execution` (so two ticks never run it twice) and
 * requests its backup; a request refused at once (target gone, quota) is a failed backup,
 * mailed like any other failure.
 */
export async function tick(ctx: BackupContext, now = new Date()): Promise<number> {
  const { app } = ctx
  const rows = await app.db.selectFrom('planifications_sauvegarde').selectAll().where('active', '=', true).execute()
  let started = 0
  for (const row of rows) {
    if (nextRun(row.frequence, row.fuseau, row.derniere_execution ?? row.created_at) > now) continue
    const claimed = await app.db
      .updateTable('planifications_sauvegarde')
      .set({ derniere_execution: now })
      .where('id', '=', row.id)
      .where(sql<boolean>`derniere_execution is not distinct from ${row.derniere_execution}::timestamptz`)
      .executeTakeFirst()
    if (Number(claimed.numUpdatedRows) === 0) continue
    started++
    const actor = { organisationId: row.organisation_id, userId: row.created_by }
    try {
      await requestBackup(ctx, actor, { type: row.type, cibleId: row.cible_id, versions: row.versions, declencheur: 'planifie', planificationId: row.id })
    } catch (error) {
      const erreur = jobError(error)
      const failed = await app.db.transaction().execute(async (trx) => {
        const created = await trx
          .insertInto('sauvegardes')
          .values({
            organisation_id: row.organisation_id,
            type: row.type,
            cible_id: row.cible_id,
            declencheur: 'planifie',
            planification_id: row.id,
            versions: row.versions,
            statut: 'echec',
            erreur: JSON.stringify(erreur),
            created_by: row.created_by,
            terminee_le: now,
          })
          .returningAll()
          .executeTakeFirstOrThrow()
        await app.audit.record(trx, { ...actor, action: 'BACKUP_FAILED', target: { type: 'sauvegarde', id: created.id, nom: targetName(created) }, result: 'echec', details: { ...erreur, planification_id: row.id } })
        return created
      })
      await mailFailure(ctx, failed)
    }
  }
  return started
}

export function scheduleBindings(ctx: BackupContext): Binding[] {
  const { app } = ctx
  const { db } = app
  const journal = (request: Parameters<typeof actorOf>[0], row: PlanificationRow, change: string) =>
    (trx: Parameters<typeof app.audit.record>[0]) =>
      app.audit.record(trx, {
        ...actorOf(request),
        action: 'BACKUP_SCHEDULE_CHANGED',
        target: { type: 'planification', id: row.id, nom: targetName({ type: row.type, contenu: {} }) },
        details: { changement: change, type: row.type, cible_id: row.cible_id, frequence: row.frequence, fuseau: row.fuseau, conservation: row.conservation, active: row.active },
      })
  return [
    handle(createPlanification, async (request, reply) => {
      const { organisationId, userId } = principalOf(request)
      const body = request.body
      const cibleId = body.cible_id ?? null
      if ((body.type === 'systeme') !== (cibleId === null)) throw new Errors.INVALID_TARGET(body.type === 'systeme' ? 'une sauvegarde système ne prend pas de cible_id' : 'cible_id est requis pour ce type')
      const fuseau = body.fuseau ?? 'Europe/Paris'
      nextRun(body.frequence, fuseau, new Date())
      await exportTree(db, organisationId, targetOf({ type: body.type, cible_id: cibleId }), false)
      const row = await db.transaction().execute(async (trx) => {
        const created = await trx
          .insertInto('planifications_sauvegarde')
          .values({
            organisation_id: organisationId,
            type: body.type,
            cible_id: cibleId,
            frequence: body.frequence,
            fuseau,
            versions: body.versions ?? 'derniere',
            conservation: JSON.stringify(body.conservation),
            active: body.active ?? true,
            created_by: userId,
          })
          .returningAll()
          .executeTakeFirstOrThrow()
        await journal(request, created, 'creation')(trx)
        return created
      })
      return reply.code(201).send(toPlanification(row))
    }),

    handle(listPlanifications, async (request) => {
      const { organisationId } = principalOf(request)
      const { limit, cursor } = request.query
      const query = db
        .selectFrom('planifications_sauvegarde')
        .selectAll()
        .where('organisation_id', '=', organisationId)
      return newestFirst(query, 'planifications_sauvegarde', { limit, cursor }, toPlanification)
    }),

    handle(getPlanification, async (request) => toPlanification(await findPlanification(ctx, principalOf(request).organisationId, request.params.id))),

    handle(updatePlanification, async (request) => {
      const { organisationId } = principalOf(request)
      const current = await findPlanification(ctx, organisationId, request.params.id)
      const body = request.body
      const frequence = body.frequence ?? current.frequence
      const fuseau = body.fuseau ?? current.fuseau
      nextRun(frequence, fuseau, new Date())
      const row = await db.transaction().execute(async (trx) => {
        const updated = await trx
          .updateTable('planifications_sauvegarde')
          .set({
            frequence,
            fuseau,
            ...(body.versions ? { versions: body.versions } : {}),
            ...(body.conservation ? { conservation: JSON.stringify(body.conservation) } : {}),
            ...(body.active !== undefined ? { active: body.active } : {}),
            updated_at: sql`now()`,
          })
          .where('id', '=', current.id)
          .returningAll()
          .executeTakeFirstOrThrow()
        await journal(request, updated, 'modification')(trx)
        return updated
      })
      return toPlanification(row)
    }),

    handle(deletePlanification, async (request, reply) => {
      const { organisationId } = principalOf(request)
      const current = await findPlanification(ctx, organisationId, request.params.id)
      await db.transaction().execute(async (trx) => {
        await trx.deleteFrom('planifications_sauvegarde').where('id', '=', current.id).execute()
        await journal(request, current, 'suppression')(trx)
      })
      return reply.code(204).send(null)
    }),
  ]
}
