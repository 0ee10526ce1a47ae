import type { FastifyInstance } from 'fastify'
import { type Kysely, sql, type Transaction } from 'kysely'
import type { GelRow, TreeType } from '../../db/tables/compliance.ts'
import type { DB } from '../../db/types.ts'
import { addGelObjets, createGel, type GelDto, getGel, listGels, releaseGel } from '../../openapi/compliance.ts'
import { actorOf } from '../../src/audit.ts'
import { principalOf } from '../../src/auth.ts'
import { Errors } from '../../src/errors.ts'
import { type Binding, handle } from '../../src/routes.ts'
import { newestFirst } from '../../src/pagination.ts'
import { iso } from './listing.ts'

type Objet = { type: TreeType; id: string }

async function objectsOf(db: Kysely<DB>, gelIds: readonly string[]) {
  if (gelIds.length === 0) return new Map<string, GelDto['objets']>()
  const rows = await db.selectFrom('gels_objets').selectAll().where('gel_id', 'in', gelIds).orderBy('added_at').execute()
  const byHold = new Map<string, GelDto['objets']>()
  for (const r of rows) {
    byHold.set(r.gel_id, [...(byHold.get(r.gel_id) ?? []), { type: r.cible_type, id: r.cible_id, origine: r.origine, added_at: r.added_at.toISOString() }])
  }
  return byHold
}

const toGel = (r: GelRow, objets: GelDto['objets']): GelDto => ({
  id: r.id,
  nom: r.nom,
  motif: r.motif,
  reference: r.reference,
  objets,
  created_by: r.created_by,
  created_at: r.created_at.toISOString(),
  leve_at: iso(r.leve_at),
  leve_par: r.leve_par,
  motif_levee: r.motif_levee,
})

/** Adds objects to a hold: each must be an element of the organisation, live or in the trash. */
async function addObjects(trx: Transaction<DB>, organisationId: string, gelId: string, objets: readonly Objet[], userId: string) {
  const tables = { armoire: 'armoires', casier: 'casiers', dossier: 'dossiers', fichier: 'fichiers' } as const
  for (const o of objets) {
    const { rows } = await sql`select 1 from ${sql.table(tables[o.type])} where id = ${o.id} and organisation_id = ${organisationId}`.execute(trx)
    if (rows.length === 0) throw new Errors.NOT_FOUND(`${o.type[0]!.toUpperCase()}${o.type.slice(1)} ${o.id}`)
    await trx
      .insertInto('gels_objets')
      .values({ gel_id: gelId, organisation_id: organisationId, cible_type: o.type, cible_id: o.id, added_by: userId })
      .onConflict((oc) => oc.doNothing())
      .execute()
  }
}

export function holdBindings(app: FastifyInstance): Binding[] {
  const { db } = app

  const one = async (organisationId: string, id: string) => {
    const row = await db.selectFrom('gels').selectAll().where('id', '=', id).where('organisation_id', '=', organisationId).executeTakeFirst()
    if (!row) throw new Errors.NOT_FOUND('Gel juridique')
    return toGel(row, (await objectsOf(db, [row.id])).get(row.id) ?? [])
  }

  const lockHold = async (trx: Transaction<DB>, organisationId: string, id: string) => {
    const row = await trx.selectFrom('gels').selectAll().where('id', '=', id).where('organisation_id', '=', organisationId).forUpdate().executeTakeFirst()
    if (!row) throw new Errors.NOT_FOUND('Gel juridique')
    if (row.leve_at) throw new Errors.HOLD_RELEASED(row.nom)
    return row
  }

  return [
    handle(listGels, async (request) => {
      const { organisationId } = principalOf(request)
      let query = db.selectFrom('gels as g').selectAll('g').where('g.organisation_id', '=', organisationId)
      if (request.query.actif) query = query.where('g.leve_at', 'is', null)
      const result = await newestFirst(query, 'g', request.query, (r) => r)
      const objets = await objectsOf(db, result.items.map((r) => r.id))
      return { items: result.items.map((r) => toGel(r, objets.get(r.id) ?? [])), next_cursor: result.next_cursor }
    }),

    handle(createGel, async (request, reply) => {
      const { organisationId, userId } = principalOf(request)
      const { nom, motif, reference, objets } = request.body
      const id = await db.transaction().execute(async (trx) => {
        const created = await trx
          .insertInto('gels')
          .values({ organisation_id: organisationId, nom: nom.trim(), motif: motif.trim(), reference: reference?.trim() || null, created_by: userId })
          .returningAll()
          .executeTakeFirstOrThrow()
        await addObjects(trx, organisationId, created.id, objets, userId)
        await app.audit.record(trx, {
          ...actorOf(request),
          action: 'LEGAL_HOLD_PLACED',
          target: { type: 'gel', id: created.id, nom: created.nom },
          details: { motif: created.motif, reference: created.reference, objets },
        })
        return created.id
      })
      return reply.code(201).send(await one(organisationId, id))
    }),

    handle(getGel, async (request) => one(principalOf(request).organisationId, request.params.id)),

    handle(addGelObjets, async (request) => {
      const { organisationId, userId } = principalOf(request)
      await db.transaction().execute(async (trx) => {
        const hold = await lockHold(trx, organisationId, request.params.id)
        await addObjects(trx, organisationId, hold.id, request.body.objets, userId)
        await app.audit.record(trx, { ...actorOf(request), action: 'LEGAL_HOLD_EXTENDED', target: { type: 'gel', id: hold.id, nom: hold.nom }, details: { objets: request.body.objets } })
      })
      return one(organisationId, request.params.id)
    }),

    handle(releaseGel, async (request) => {
      const { organisationId, userId } = principalOf(request)
      const motif = request.body.motif.trim()
      await db.transaction().execute(async (trx) => {
        const hold = await lockHold(trx, organisationId, request.params.id)
        await trx.updateTable('gels').set({ leve_at: sql`now()`, leve_par: userId, motif_levee: motif }).where('id', '=', hold.id).execute()
        await app.audit.record(trx, { ...actorOf(request), action: 'LEGAL_HOLD_RELEASED', target: { type: 'gel', id: hold.id, nom: hold.nom }, details: { motif } })
      })
      return one(organisationId, request.params.id)
    }),
  ]
}
