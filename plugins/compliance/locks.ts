import type { FastifyInstance, FastifyRequest } from 'fastify'
import { type Kysely, sql } from 'kysely'
import type { VerrouRow } from '../../db/tables/compliance.ts'
import type { DB } from '../../db/types.ts'
import { listVerrous, lockDossier, lockFichier, unlockDossier, unlockFichier, type VerrouDto } from '../../openapi/compliance.ts'
import { actorOf } from '../../src/audit.ts'
import { principalOf } from '../../src/auth.ts'
import { isUniqueViolation } from '../../src/db.ts'
import { Errors } from '../../src/errors.ts'
import { type Binding, handle } from '../../src/routes.ts'
import { newestFirst } from '../../src/pagination.ts'
import { iso } from './listing.ts'

export const toVerrou = (r: VerrouRow): VerrouDto => ({
  id: r.id,
  cible: { type: r.cible_type, id: r.cible_id },
  motif: r.motif,
  created_by: r.created_by,
  created_at: r.created_at.toISOString(),
  leve_at: iso(r.leve_at),
  leve_par: r.leve_par,
})

const LABEL = { fichier: 'Fichier', dossier: 'Dossier' } as const

/** A live file or folder of the organisation, locked for the transaction, or 404. */
export async function lockLiveElement(db: Kysely<DB>, organisationId: string, kind: 'fichier' | 'dossier' | 'armoire' | 'casier', id: string) {
  const table = { fichier: 'fichiers', dossier: 'dossiers', armoire: 'armoires', casier: 'casiers' }[kind]
  const { rows } = await sql<{ id: string; nom: string }>`select id, nom from ${sql.table(table)}
    where id = ${id} and organisation_id = ${organisationId} and deleted_at is null for no key update`.execute(db)
  if (!rows[0]) throw new Errors.NOT_FOUND({ fichier: 'Fichier', dossier: 'Dossier', armoire: 'Armoire', casier: 'Casier' }[kind])
  return rows[0]
}

export function lockBindings(app: FastifyInstance): Binding[] {
  const { db } = app

  const lock = async (request: FastifyRequest, kind: 'fichier' | 'dossier', id: string, motif: string) => {
    const { organisationId, userId } = principalOf(request)
    return db.transaction().execute(async (trx) => {
      const element = await lockLiveElement(trx, organisationId, kind, id)
      const row = await trx
        .insertInto('verrous')
        .values({ organisation_id: organisationId, cible_type: kind, cible_id: id, motif: motif.trim(), created_by: userId })
        .returningAll()
        .executeTakeFirstOrThrow()
        .catch((error: unknown) => {
          if (isUniqueViolation(error)) throw new Errors.ALREADY_LOCKED(`${LABEL[kind]} « ${element.nom} »`)
          throw error
        })
      await app.audit.record(trx, { ...actorOf(request), action: 'LOCKED', target: { type: kind, id, nom: element.nom }, details: { verrou_id: row.id, motif: row.motif } })
      return toVerrou(row)
    })
  }

  const unlock = async (request: FastifyRequest, kind: 'fichier' | 'dossier', id: string) => {
    const { organisationId, userId, role } = principalOf(request)
    await db.transaction().execute(async (trx) => {
      const element = await lockLiveElement(trx, organisationId, kind, id)
      const current = await trx
        .selectFrom('verrous')
        .selectAll()
        .where('organisation_id', '=', organisationId)
        .where('cible_type', '=', kind)
        .where('cible_id', '=', id)
        .where('leve_at', 'is', null)
        .forUpdate()
        .executeTakeFirst()
      if (!current) throw new Errors.NOT_LOCKED(`${LABEL[kind]} « ${element.nom} »`)
      if (current.created_by !== userId && role !== 'admin') throw new Errors.FORBIDDEN()
      await trx.updateTable('verrous').set({ leve_at: sql`now()`, leve_par: userId }).where('id', '=', current.id).execute()
      await app.audit.record(trx, { ...actorOf(request), action: 'UNLOCKED', target: { type: kind, id, nom: element.nom }, details: { verrou_id: current.id, pose_par: current.created_by } })
    })
  }

  return [
    handle(lockFichier, async (request, reply) => reply.code(201).send(await lock(request, 'fichier', request.params.id, request.body.motif))),
    handle(lockDossier, async (request, reply) => reply.code(201).send(await lock(request, 'dossier', request.params.id, request.body.motif))),
    handle(unlockFichier, async (request, reply) => {
      await unlock(request, 'fichier', request.params.id)
      return reply.code(204).send(null)
    }),
    handle(unlockDossier, async (request, reply) => {
      await unlock(request, 'dossier', request.params.id)
      return reply.code(204).send(null)
    }),
    handle(listVerrous, async (request) => {
      const { organisationId } = principalOf(request)
      let query = db.selectFrom('verrous as v').selectAll('v').where('v.organisation_id', '=', organisationId)
      if (request.query.actif) query = query.where('v.leve_at', 'is', null)
      return newestFirst(query, 'v', request.query, toVerrou)
    }),
  ]
}
