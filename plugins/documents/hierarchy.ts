import type { FastifyInstance, FastifyRequest } from 'fastify'
import { type Insertable, type Kysely, sql, type Transaction } from 'kysely'
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
  type ArmoireDto,
  type CasierDto,
  type DossierDto,
} from '../../openapi/documents.ts'
import type { ArmoiresTable, CasiersTable, DossiersTable } from '../../db/tables/documents.ts'
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

/** Refuses, as not found, a container that is not live in the organisation. */
export async function assertLive(db: Kysely<DB>, kind: ContainerKind, organisationId: string, id: string): Promise<void> {
  const { rows } = await sql`select 1 from ${sql.table(TABLES[kind])}
    where id = ${id} and organisation_id = ${organisationId} and deleted_at is null`.execute(db)
  if (rows.length === 0) throw new Errors.NOT_FOUND(LABELS[kind])
}

const insertArmoire = (trx: Transaction<DB>, values: Insertable<ArmoiresTable>) =>
  trx.insertInto('armoires').values(values).returningAll().executeTakeFirstOrThrow().catch((error: unknown) => nameConflict(error, values.nom))

const insertCasier = (trx: Transaction<DB>, values: Insertable<CasiersTable>) =>
  trx.insertInto('casiers').values(values).returningAll().executeTakeFirstOrThrow().catch((error: unknown) => nameConflict(error, values.nom))

const insertDossier = (trx: Transaction<DB>, values: Insertable<DossiersTable>) =>
  trx.insertInto('dossiers').values(values).returningAll().executeTakeFirstOrThrow().catch((error: unknown) => nameConflict(error, values.nom))

async function updateArmoireRow(trx: Transaction<DB>, id: string, nom: string): Promise<void> {
  await trx
    .updateTable('armoires')
    .set({ nom, updated_at: sql`now()` })
    .where('id', '=', id)
    .execute()
    .catch((error: unknown) => nameConflict(error, nom))
}

async function updateCasierRow(trx: Transaction<DB>, id: string, place: { nom: string; armoireId: string }): Promise<void> {
  await trx
    .updateTable('casiers')
    .set({ nom: place.nom, armoire_id: place.armoireId, updated_at: sql`now()` })
    .where('id', '=', id)
    .execute()
    .catch((error: unknown) => nameConflict(error, place.nom))
}

/** Journals the creation of a container, last in its transaction. */
async function journalCreated(
  app: FastifyInstance,
  trx: Transaction<DB>,
  request: FastifyRequest,
  target: { type: ContainerKind; id: string; nom: string },
  details?: Record<string, unknown>,
): Promise<void> {
  await app.audit.record(trx, { ...actorOf(request), action: 'CREATED', target, ...(details ? { details } : {}) })
}

/** A new armoire, counted against the plan. */
async function addArmoire(app: FastifyInstance, request: FastifyRequest, nom: string): Promise<ArmoireDto> {
  const { organisationId, userId } = principalOf(request)
  const row = await app.db.transaction().execute(async (trx) => {
    await app.entitlements.assertMayAdd(trx, organisationId, 'armoire')
    const created = await insertArmoire(trx, { organisation_id: organisationId, nom, created_by: userId })
    await journalCreated(app, trx, request, { type: 'armoire', id: created.id, nom })
    return created
  })
  return toArmoire({ ...row, nombre_elements: 0 })
}

async function renameArmoire(app: FastifyInstance, request: FastifyRequest, id: string, nom: string): Promise<void> {
  const { organisationId } = principalOf(request)
  await app.db.transaction().execute(async (trx) => {
    const current = await lockLive(trx, 'armoire', organisationId, id)
    if (nom !== current.nom) await app.safeguards.assertMayChange(trx, { ...requester(request), object: { type: 'armoire', id }, action: 'rename' })
    await updateArmoireRow(trx, id, nom)
    await journalChange(app, trx, request, { type: 'armoire', id }, { from: current.nom, to: nom })
  })
}

/** A new casier in a live armoire, counted against the plan. */
async function addCasier(app: FastifyInstance, request: FastifyRequest, armoireId: string, nom: string): Promise<CasierDto> {
  const { organisationId, userId } = principalOf(request)
  const row = await app.db.transaction().execute(async (trx) => {
    await lockLive(trx, 'armoire', organisationId, armoireId)
    await app.entitlements.assertMayAdd(trx, organisationId, 'casier')
    const created = await insertCasier(trx, { organisation_id: organisationId, armoire_id: armoireId, nom, created_by: userId })
    await journalCreated(app, trx, request, { type: 'casier', id: created.id, nom }, { armoire_id: armoireId })
    return created
  })
  return toCasier({ ...row, nombre_elements: 0 })
}

/** Renames and/or moves a casier to another armoire, journaled last. */
async function changeCasier(app: FastifyInstance, request: FastifyRequest, id: string, change: { nom?: string; armoire_id?: string }): Promise<void> {
  const { organisationId } = principalOf(request)
  await app.db.transaction().execute(async (trx) => {
    const current = await lockLive(trx, 'casier', organisationId, id)
    const nom = change.nom === undefined ? current.nom : cleanName(change.nom)
    const from = current.armoire_id!
    const to = change.armoire_id ?? from
    if (to !== from) await lockLive(trx, 'armoire', organisationId, to)
    const guarded = { ...requester(request), object: { type: 'casier' as const, id } }
    if (nom !== current.nom) await app.safeguards.assertMayChange(trx, { ...guarded, action: 'rename' })
    if (to !== from) await app.safeguards.assertMayChange(trx, { ...guarded, action: 'move', destination: { type: 'armoire', id: to } })
    await updateCasierRow(trx, id, { nom, armoireId: to })
    await journalChange(app, trx, request, { type: 'casier', id }, {
      from: current.nom,
      to: nom,
      ...(to !== from ? { movedFrom: { armoire_id: from }, movedTo: { armoire_id: to } } : {}),
    })
  })
}

/** A new dossier at the top of a live casier, counted against the plan. */
async function addDossier(app: FastifyInstance, request: FastifyRequest, casierId: string, nom: string): Promise<DossierDto> {
  const { organisationId, userId } = principalOf(request)
  const row = await app.db.transaction().execute(async (trx) => {
    await lockLive(trx, 'casier', organisationId, casierId)
    await app.entitlements.assertMayAdd(trx, organisationId, 'dossier')
    const created = await insertDossier(trx, { organisation_id: organisationId, casier_id: casierId, parent_id: null, nom, created_by: userId })
    await journalCreated(app, trx, request, { type: 'dossier', id: created.id, nom }, { casier_id: casierId })
    return created
  })
  return toDossier({ ...row, nombre_elements: 0 })
}

/** A new dossier inside a live dossier, whose name it must not share with a file there. */
async function addSousDossier(app: FastifyInstance, request: FastifyRequest, parentId: string, nom: string): Promise<DossierDto> {
  const { organisationId, userId } = principalOf(request)
  const row = await app.db.transaction().execute(async (trx) => {
    const parent = await lockLive(trx, 'dossier', organisationId, parentId)
    await app.safeguards.assertMayChange(trx, { ...requester(request), object: { type: 'dossier', id: parentId }, action: 'add' })
    await assertNameFreeInDossier(trx, organisationId, parentId, nom, 'fichiers')
    await app.entitlements.assertMayAdd(trx, organisationId, 'dossier')
    const created = await insertDossier(trx, { organisation_id: organisationId, casier_id: parent.casier_id!, parent_id: parentId, nom, created_by: userId })
    await journalCreated(app, trx, request, { type: 'dossier', id: created.id, nom }, { parent_id: parentId, casier_id: parent.casier_id })
    return created
  })
  return toDossier({ ...row, nombre_elements: 0 })
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
  const organisationOf = (request: FastifyRequest) => principalOf(request).organisationId

  return [
    // Armoires

    handle(createArmoire, async (request, reply) => reply.code(201).send(await addArmoire(app, request, cleanName(request.body.nom)))),

    handle(listArmoires, async (request) => keyset('a', request.query).page(armoiresQuery(db, organisationOf(request)), toArmoire)),

    handle(getArmoire, async (request) => findArmoire(db, organisationOf(request), request.params.id)),

    handle(updateArmoire, async (request) => {
      await renameArmoire(app, request, request.params.id, cleanName(request.body.nom))
      return findArmoire(db, organisationOf(request), request.params.id)
    }),

    handle(deleteArmoire, async (request, reply) => {
      await trashElement(app, request, 'armoire', request.params.id, request.query.recursif)
      return reply.code(204).send(null)
    }),

    // Casiers

    handle(createCasier, async (request, reply) => reply.code(201).send(await addCasier(app, request, request.params.id, cleanName(request.body.nom)))),

    handle(listCasiers, async (request) => {
      const organisationId = organisationOf(request)
      await assertLive(db, 'armoire', organisationId, request.params.id)
      return keyset('c', request.query).page(casiersQuery(db, organisationId).where('c.armoire_id', '=', request.params.id), toCasier)
    }),

    handle(getCasier, async (request) => findCasier(db, organisationOf(request), request.params.id)),

    handle(updateCasier, async (request) => {
      await changeCasier(app, request, request.params.id, request.body)
      return findCasier(db, organisationOf(request), request.params.id)
    }),

    handle(deleteCasier, async (request, reply) => {
      await trashElement(app, request, 'casier', request.params.id, request.query.recursif)
      return reply.code(204).send(null)
    }),

    // Dossiers

    handle(createDossier, async (request, reply) => reply.code(201).send(await addDossier(app, request, request.params.id, cleanName(request.body.nom)))),

    handle(listDossiers, async (request) => {
      const organisationId = organisationOf(request)
      await assertLive(db, 'casier', organisationId, request.params.id)
      const query = dossiersQuery(db, organisationId).where('d.casier_id', '=', request.params.id).where('d.parent_id', 'is', null)
      return keyset('d', request.query).page(query, toDossier)
    }),

    handle(createSousDossier, async (request, reply) =>
      reply.code(201).send(await addSousDossier(app, request, request.params.id, cleanName(request.body.nom))),
    ),

    handle(listSousDossiers, async (request) => {
      const organisationId = organisationOf(request)
      await assertLive(db, 'dossier', organisationId, request.params.id)
      return keyset('d', request.query).page(dossiersQuery(db, organisationId).where('d.parent_id', '=', request.params.id), toDossier)
    }),

    handle(getDossier, async (request) => findDossier(db, organisationOf(request), request.params.id)),

    handle(updateDossier, async (request) => {
      await db.transaction().execute((trx) => changeDossier(app, trx, request, request.params.id, request.body))
      return findDossier(db, organisationOf(request), request.params.id)
    }),

    handle(deleteDossier, async (request, reply) => {
      await trashElement(app, request, 'dossier', request.params.id, request.query.recursif)
      return reply.code(204).send(null)
    }),
  ]
}
