import { sql } from 'kysely'
import { getRestauration, listRestaurations, restoreSauvegarde } from '../../openapi/backup.ts'
import type { RestaurationRow } from '../../db/tables/backup.ts'
import { actorOf } from '../../src/audit.ts'
import { principalOf } from '../../src/auth.ts'
import { Errors } from '../../src/errors.ts'
import { newestFirst } from '../../src/pagination.ts'
import { type Binding, handle } from '../../src/routes.ts'
import { locate } from '../documents/public.ts'
import { findRestauration, findSauvegarde, jobError, toRestauration } from './repository.ts'
import { finishRestore, Report, RESTORE_TARGETS, restoreBackup } from './restore.ts'
import { type BackupContext, targetName, timer } from './run.ts'

export const RESTORE_QUEUE = 'backup.restore'


/**
 * The job that runs one restore: claims it, beats a heartbeat (with the report so far), and
 * records the report and the outcome; the restore itself journals every element it changes.
 */
export async function runRestore(ctx: BackupContext, id: string): Promise<void> {
  const { app } = ctx
  const claimed = await app.db
    .updateTable('restaurations')
    .set({ statut: 'en_cours', demarree_le: sql`now()`, battement_le: sql`now()` })
    .where('id', '=', id)
    .where('statut', '=', 'en_attente')
    .returningAll()
    .executeTakeFirst()
  if (!claimed) return
  const elapsed = timer()
  const report = new Report()
  const heartbeat = setInterval(() => {
    app.db
      .updateTable('restaurations')
      .set({ battement_le: sql`now()`, rapport: JSON.stringify(report.toJSON()) })
      .where('id', '=', id)
      .where('statut', '=', 'en_cours')
      .execute()
      .catch((err: unknown) => app.log.warn({ err, restauration: id }, 'restore heartbeat failed'))
  }, Math.min(5_000, (ctx.staleSeconds * 1000) / 4))
  let backup
  let failure: unknown = null
  try {
    backup = await findSauvegarde(app.db, claimed.organisation_id, claimed.sauvegarde_id)
    await restoreBackup({ ctx, backup, restoration: claimed, dry: false, report })
  } catch (error) {
    failure = error
  } finally {
    clearInterval(heartbeat)
  }
  await finishRestore(app, claimed, backup ?? { id: claimed.sauvegarde_id, type: 'systeme', contenu: {} }, report, failure)
  ctx.durations.restore.observe({ outcome: failure === null ? 'success' : 'failure' }, elapsed())
}

/** Restores whose job stopped beating are failed with RESTORE_INTERRUPTED, their report so far kept. */
export async function recoverInterruptedRestores(ctx: BackupContext): Promise<number> {
  const { rows } = await sql<RestaurationRow>`update restaurations
    set statut = 'echec', erreur = ${JSON.stringify(jobError(new Errors.RESTORE_INTERRUPTED()))}::jsonb, terminee_le = now(), battement_le = null
    where statut = 'en_cours' and coalesce(battement_le, demarree_le) < now() - make_interval(secs => ${ctx.staleSeconds})
    returning *`.execute(ctx.app.db)
  for (const row of rows) {
    await ctx.app.audit.recordAlone({
      organisationId: row.organisation_id,
      userId: row.created_by,
      action: 'RESTORE_FAILED',
      target: { type: 'restauration', id: row.id },
      result: 'echec',
      details: { sauvegarde_id: row.sauvegarde_id, erreur: 'RESTORE_INTERRUPTED' },
    })
  }
  return rows.length
}

export function restorationBindings(ctx: BackupContext): Binding[] {
  const { app } = ctx
  const { db } = app
  return [
    handle(restoreSauvegarde, async (request, reply) => {
      const { organisationId, userId } = principalOf(request)
      const backup = await findSauvegarde(db, organisationId, request.params.id)
      if (backup.statut !== 'terminee') throw new Errors.BACKUP_NOT_READY(`elle est ${backup.statut.replace('_', ' ')}`)
      const verification = backup.verification as { valide?: boolean } | null
      if (verification?.valide === false) throw new Errors.BACKUP_TAMPERED('sa dernière vérification a échoué : elle ne sert pas de source')
      const { cible_id: cibleId = null, elements = null, simulation = false } = request.body
      let cibleType: RestaurationRow['cible_type'] = null
      if (cibleId) {
        for (const kind of RESTORE_TARGETS[backup.type]) {
          const found = await locate(db, kind, organisationId, cibleId)
          if (found?.state === 'live') cibleType = kind
        }
        if (!cibleType) {
          const known = await Promise.all((['armoire', 'casier', 'dossier'] as const).map((k) => locate(db, k, organisationId, cibleId)))
          if (!known.some((f) => f?.state === 'live')) throw new Errors.NOT_FOUND('Conteneur cible')
          throw new Errors.INVALID_TARGET(
            RESTORE_TARGETS[backup.type].length === 0
              ? 'une sauvegarde système se restaure à son emplacement d’origine'
              : `une sauvegarde de type ${backup.type} se restaure dans : ${RESTORE_TARGETS[backup.type].join(', ')}`,
          )
        }
      }
      const row = await app.unitOfWork(async (trx) => {
        const created = await trx
          .insertInto('restaurations')
          .values({
            organisation_id: organisationId,
            sauvegarde_id: backup.id,
            cible_type: cibleType,
            cible_id: cibleId,
            elements: elements ? JSON.stringify(elements) : undefined,
            simulation,
            created_by: userId,
          })
          .returningAll()
          .executeTakeFirstOrThrow()
        if (!simulation) {
          await app.jobs.sendInTransaction(trx, RESTORE_QUEUE, { restaurationId: created.id })
          await app.audit.record(trx, {
            ...actorOf(request),
            action: 'RESTORE_REQUESTED',
            target: { type: 'sauvegarde', id: backup.id, nom: targetName(backup) },
            details: { restauration_id: created.id, cible_id: cibleId, elements: elements?.length ?? null },
          })
        }
        return created
      })
      if (!simulation) return reply.code(202).send(toRestauration(row))
      // A simulation answers its plan at once, and changes nothing but its own record.
      const report = new Report()
      let failure: unknown = null
      try {
        await restoreBackup({ ctx, backup, restoration: row, dry: true, report })
      } catch (error) {
        failure = error
      }
      await finishRestore(app, row, backup, report, failure)
      if (failure && (failure as { statusCode?: number }).statusCode && (failure as { statusCode: number }).statusCode < 500) throw failure
      return reply.code(200).send(toRestauration(await findRestauration(db, organisationId, row.id)))
    }),

    handle(listRestaurations, async (request) => {
      const { organisationId } = principalOf(request)
      const { limit, cursor, sauvegarde_id: backupId } = request.query
      let query = db
        .selectFrom('restaurations')
        .selectAll()
        .where('organisation_id', '=', organisationId)
      if (backupId) query = query.where('sauvegarde_id', '=', backupId)
      return newestFirst(query, 'restaurations', { limit, cursor }, toRestauration)
    }),

    handle(getRestauration, async (request) => toRestauration(await findRestauration(db, principalOf(request).organisationId, request.params.id))),
  ]
}
