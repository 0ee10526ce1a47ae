import type { FastifyInstance, FastifyRequest } from 'fastify'
import { sql, type Transaction } from 'kysely'
import {
  createArmoire,
  createCasier,
  createDossier,
  createSousDossier,
  deleteArmoire,
  deleteCasier,
  deleteDossier,
  getArmoire,
  getCasier,
  getDossier,
  listArmoires,
  listCasiers,
  listDossiers,
  listSousDossiers,
  updateArmoire,
  updateCasier,
  updateDossier,
} from '../../openapi/documents.ts'
import type { DB } from '../../db/types.ts'
import { actorOf } from '../../src/audit.ts'
import { principalOf } from '../../src/auth.ts'
import { Errors } from '../../src/errors.ts'
import { requester } from '../../src/safeguards.ts'
import type { TargetType } from '../../src/journal-actions.ts'
import { type Binding, handle } from '../../src/routes.ts'
import { keyset } from './listing.ts'
import { cleanName, nameConflict } from './names.ts'
import { sendToTrash } from './trash.ts'
import {
  armoiresQuery,
  assertNameFreeInDossier,
  casiersQuery,
  type ContainerKind,
  type DossierPlace,
  dossiersQuery,
  findArmoire,
  findCasier,
  findDossier,
  hasLiveChildren,
  isSelfOrAncestor,
  type Kind,
  LABELS,
  type Locked,
  lockDossierMoves,
  lockLive,
  moveSubDossiersToCasier,
  TABLES,
  toArmoire,
  toCasier,
  toDossier,
  updateDossierRow,
} from './tree.ts'

/** Journals, last in the transaction, a rename and/or a move of one element. */
export async function journalChange(
  app: FastifyInstance,
  trx: Transaction<DB>,
  request: FastifyRequest,
  target: { type: TargetType; id: string },
  change: { from: string; to: string; movedFrom?: unknown; movedTo?: unknown },
): Promise<void> {
  const actor = actorOf(request)
  if (change.from !== change.to) {
    await app.audit.record(trx, {
      ...actor,
      action: 'RENAMED',
      target: { ...target, nom: change.to },
      details: { ancien_nom: change.from, nouveau_nom: change.to },
    })
  }
  if (change.movedTo !== undefined) {
    await app.audit.record(trx, {
      ...actor,
      action: 'MOVED',
      target: { ...target, nom: change.to },
      details: { depuis: change.movedFrom, vers: change.movedTo },
    })
  }
}

/** DELETE on a container or a file: to the trash, refused for a non-empty container without `recursif`. */
export async function trashElement(app: FastifyInstance, request: FastifyRequest, kind: Kind, id: string, recursive: boolean): Promise<void> {
  const { organisationId, userId } = principalOf(request)
  await app.db.transaction().execute(async (trx) => {
    const row = await lockLive(trx, kind, organisationId, id, 'exclusive')
    if (kind !== 'fichier' && !recursive && (await hasLiveChildren(trx, organisationId, kind as ContainerKind, id))) {
      throw new Errors.NOT_EMPTY(`${LABELS[kind]} « ${row.nom} »`)
    }
    await app.safeguards.assertMayChange(trx, { ...requester(request), object: { type: kind, id }, action: 'delete' })
    const hidden = await sendToTrash(trx, organisationId, kind, id, userId)
    await app.audit.record(trx, {
      ...actorOf(request),
      action: 'DELETED',
      target: { type: kind, id, nom: row.nom },
      details: { corbeille: true, recursif: recursive, elements: hidden },
    })
  })
}

async function assertLive(app: FastifyInstance, kind: ContainerKind, organisationId: string, id: string): Promise<void> {
  const { rows } = await sql`select 1 from ${sql.table(TABLES[kind])}
    where id = ${id} and organisation_id = ${organisationId} and deleted_at is null`.execute(app.db)
  if (rows.length === 0) throw new Errors.NOT_FOUND(LABELS[kind])
}

interface DossierChange {
  nom?: string
  parent_id?: string | null
  casier_id?: string
}

/**
 * Where a dossier goes: under `parent_id` (whose casier it takes), to the top of `casier_id`,
 * or where it is. Locks the destination; refuses a parent in another casier or below the dossier.
 */
async function resolveDossierPlace(
  trx: Transaction<DB>,
  organisationId: string,
  id: string,
  current: Locked,
  change: DossierChange,
): Promise<DossierPlace> {
  const nom = change.nom === undefined ? current.nom : cleanName(change.nom)
  if (change.parent_id) {
    const parent = await lockLive(trx, 'dossier', organisationId, change.parent_id)
    if (change.casier_id && change.casier_id !== parent.casier_id) {
      throw new Errors.INVALID_MOVE('le dossier parent n’est pas dans ce casier')
    }
    if (await isSelfOrAncestor(trx, organisationId, id, parent.id)) {
      throw new Errors.INVALID_MOVE('un dossier ne peut pas aller dans lui-même ni dans l’un de ses sous-dossiers')
    }
    return { nom, parentId: parent.id, casierId: parent.casier_id! }
  }
  if (change.parent_id === null || change.casier_id) {
    const casierId = change.casier_id ?? current.casier_id!
    if (casierId !== current.casier_id) await lockLive(trx, 'casier', organisationId, casierId)
    return { nom, parentId: null, casierId }
  }
  return { nom, parentId: current.parent_id ?? null, casierId: current.casier_id! }
}

/** Renames and/or moves a dossier (its sub-dossiers follow it to another casier), journaled last. */
async function changeDossier(
  app: FastifyInstance,
  trx: Transaction<DB>,
  request: FastifyRequest,
  id: string,
  change: DossierChange,
): Promise<void> {
  const { organisationId } = principalOf(request)
  if (change.parent_id !== undefined || change.casier_id !== undefined) await lockDossierMoves(trx, organisationId)
  const current = await lockLive(trx, 'dossier', organisationId, id)
  const to = await resolveDossierPlace(trx, organisationId, id, current, change)
  if (to.parentId) await assertNameFreeInDossier(trx, organisationId, to.parentId, to.nom, 'fichiers')
  const guarded = { ...requester(request), object: { type: 'dossier' as const, id } }
  if (to.nom !== current.nom) await app.safeguards.assertMayChange(trx, { ...guarded, action: 'rename' })
  const moved = to.parentId !== (current.parent_id ?? null) || to.casierId !== current.casier_id
  if (moved) {
    const destination = to.parentId ? { type: 'dossier' as const, id: to.parentId } : { type: 'casier' as const, id: to.casierId }
    await app.safeguards.assertMayChange(trx, { ...guarded, action: 'move', destination })
  }
  await updateDossierRow(trx, id, to)
  if (to.casierId !== current.casier_id) await moveSubDossiersToCasier(trx, organisationId, id, to.casierId)
  await journalChange(app, trx, request, { type: 'dossier', id }, {
    from: current.nom,
    to: to.nom,
    ...(moved
      ? {
          movedFrom: { casier_id: current.casier_id, parent_id: current.parent_id ?? null },
          movedTo: { casier_id: to.casierId, parent_id: to.parentId },
        }
      : {}),
  })
}

export function hierarchyBindings(app: FastifyInstance): Binding[] {
  const { db } = app

  return [
    // Armoires

    handle(createArmoire, async (request, reply) => {
      const { organisationId, userId } = principalOf(request)
      const nom = cleanName(request.body.nom)
      const row = await db.transaction().execute(async (trx) => {
        await app.entitlements.assertMayAdd(trx, organisationId, 'armoire')
        const created = await trx
          .insertInto('armoires')
          .values({ organisation_id: organisationId, nom, created_by: userId })
          .returningAll()
          .executeTakeFirstOrThrow()
          .catch((error: unknown) => nameConflict(error, nom))
        await app.audit.record(trx, { ...actorOf(request), action: 'CREATED', target: { type: 'armoire', id: created.id, nom } })
        return created
      })
      return reply.code(201).send(toArmoire({ ...row, nombre_elements: 0 }))
    }),

    handle(listArmoires, async (request) => {
      const { organisationId } = principalOf(request)
      const k = keyset('a', request.query)
      return k.page(armoiresQuery(db, organisationId), toArmoire)
    }),

    handle(getArmoire, async (request) => findArmoire(db, principalOf(request).organisationId, request.params.id)),

    handle(updateArmoire, async (request) => {
      const { organisationId } = principalOf(request)
      const { id } = request.params
      const nom = cleanName(request.body.nom)
      await db.transaction().execute(async (trx) => {
        const current = await lockLive(trx, 'armoire', organisationId, id)
        if (nom !== current.nom) await app.safeguards.assertMayChange(trx, { ...requester(request), object: { type: 'armoire', id }, action: 'rename' })
        await trx
          .updateTable('armoires')
          .set({ nom, updated_at: sql`now()` })
          .where('id', '=', id)
          .execute()
          .catch((error: unknown) => nameConflict(error, nom))
        await journalChange(app, trx, request, { type: 'armoire', id }, { from: current.nom, to: nom })
      })
      return findArmoire(db, organisationId, id)
    }),

    handle(deleteArmoire, async (request, reply) => {
      await trashElement(app, request, 'armoire', request.params.id, request.query.recursif)
      return reply.code(204).send(null)
    }),

    // Casiers

    handle(createCasier, async (request, reply) => {
      const { organisationId, userId } = principalOf(request)
      const armoireId = request.params.id
      const nom = cleanName(request.body.nom)
      const row = await db.transaction().execute(async (trx) => {
        await lockLive(trx, 'armoire', organisationId, armoireId)
        await app.entitlements.assertMayAdd(trx, organisationId, 'casier')
        const created = await trx
          .insertInto('casiers')
          .values({ organisation_id: organisationId, armoire_id: armoireId, nom, created_by: userId })
          .returningAll()
          .executeTakeFirstOrThrow()
          .catch((error: unknown) => nameConflict(error, nom))
        await app.audit.record(trx, {
          ...actorOf(request),
          action: 'CREATED',
          target: { type: 'casier', id: created.id, nom },
          details: { armoire_id: armoireId },
        })
        return created
      })
      return reply.code(201).send(toCasier({ ...row, nombre_elements: 0 }))
    }),

    handle(listCasiers, async (request) => {
      const { organisationId } = principalOf(request)
      await assertLive(app, 'armoire', organisationId, request.params.id)
      const k = keyset('c', request.query)
      return k.page(casiersQuery(db, organisationId).where('c.armoire_id', '=', request.params.id), toCasier)
    }),

    handle(getCasier, async (request) => findCasier(db, principalOf(request).organisationId, request.params.id)),

    handle(updateCasier, async (request) => {
      const { organisationId } = principalOf(request)
      const { id } = request.params
      const body = request.body
      await db.transaction().execute(async (trx) => {
        const current = await lockLive(trx, 'casier', organisationId, id)
        const nom = body.nom === undefined ? current.nom : cleanName(body.nom)
        const from = current.armoire_id!
        const to = body.armoire_id ?? from
        if (to !== from) await lockLive(trx, 'armoire', organisationId, to)
        const guarded = { ...requester(request), object: { type: 'casier' as const, id } }
        if (nom !== current.nom) await app.safeguards.assertMayChange(trx, { ...guarded, action: 'rename' })
        if (to !== from) await app.safeguards.assertMayChange(trx, { ...guarded, action: 'move', destination: { type: 'armoire', id: to } })
        await trx
          .updateTable('casiers')
          .set({ nom, armoire_id: to, updated_at: sql`now()` })
          .where('id', '=', id)
          .execute()
          .catch((error: unknown) => nameConflict(error, nom))
        await journalChange(app, trx, request, { type: 'casier', id }, {
          from: current.nom,
          to: nom,
          ...(to !== from ? { movedFrom: { armoire_id: from }, movedTo: { armoire_id: to } } : {}),
        })
      })
      return findCasier(db, organisationId, id)
    }),

    handle(deleteCasier, async (request, reply) => {
      await trashElement(app, request, 'casier', request.params.id, request.query.recursif)
      return reply.code(204).send(null)
    }),

    // Dossiers

    handle(createDossier, async (request, reply) => {
      const { organisationId, userId } = principalOf(request)
      const casierId = request.params.id
      const nom = cleanName(request.body.nom)
      const row = await db.transaction().execute(async (trx) => {
        await lockLive(trx, 'casier', organisationId, casierId)
        await app.entitlements.assertMayAdd(trx, organisationId, 'dossier')
        const created = await trx
          .insertInto('dossiers')
          .values({ organisation_id: organisationId, casier_id: casierId, parent_id: null, nom, created_by: userId })
          .returningAll()
          .executeTakeFirstOrThrow()
          .catch((error: unknown) => nameConflict(error, nom))
        await app.audit.record(trx, {
          ...actorOf(request),
          action: 'CREATED',
          target: { type: 'dossier', id: created.id, nom },
          details: { casier_id: casierId },
        })
        return created
      })
      return reply.code(201).send(toDossier({ ...row, nombre_elements: 0 }))
    }),

    handle(listDossiers, async (request) => {
      const { organisationId } = principalOf(request)
      await assertLive(app, 'casier', organisationId, request.params.id)
      const k = keyset('d', request.query)
      return k.page(dossiersQuery(db, organisationId).where('d.casier_id', '=', request.params.id).where('d.parent_id', 'is', null), toDossier)
    }),

    handle(createSousDossier, async (request, reply) => {
      const { organisationId, userId } = principalOf(request)
      const parentId = request.params.id
      const nom = cleanName(request.body.nom)
      const row = await db.transaction().execute(async (trx) => {
        const parent = await lockLive(trx, 'dossier', organisationId, parentId)
        await app.safeguards.assertMayChange(trx, { ...requester(request), object: { type: 'dossier', id: parentId }, action: 'add' })
        await assertNameFreeInDossier(trx, organisationId, parentId, nom, 'fichiers')
        await app.entitlements.assertMayAdd(trx, organisationId, 'dossier')
        const created = await trx
          .insertInto('dossiers')
          .values({ organisation_id: organisationId, casier_id: parent.casier_id!, parent_id: parentId, nom, created_by: userId })
          .returningAll()
          .executeTakeFirstOrThrow()
          .catch((error: unknown) => nameConflict(error, nom))
        await app.audit.record(trx, {
          ...actorOf(request),
          action: 'CREATED',
          target: { type: 'dossier', id: created.id, nom },
          details: { parent_id: parentId, casier_id: parent.casier_id },
        })
        return created
      })
      return reply.code(201).send(toDossier({ ...row, nombre_elements: 0 }))
    }),

    handle(listSousDossiers, async (request) => {
      const { organisationId } = principalOf(request)
      await assertLive(app, 'dossier', organisationId, request.params.id)
      const k = keyset('d', request.query)
      return k.page(dossiersQuery(db, organisationId).where('d.parent_id', '=', request.params.id), toDossier)
    }),

    handle(getDossier, async (request) => findDossier(db, principalOf(request).organisationId, request.params.id)),

    handle(updateDossier, async (request) => {
      const { organisationId } = principalOf(request)
      const { id } = request.params
      await db.transaction().execute((trx) => changeDossier(app, trx, request, id, request.body))
      return findDossier(db, organisationId, id)
    }),

    handle(deleteDossier, async (request, reply) => {
      await trashElement(app, request, 'dossier', request.params.id, request.query.recursif)
      return reply.code(204).send(null)
    }),
  ]
}
