import type { Static } from '@sinclair/typebox'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { type Insertable, type Kysely, sql, type Transaction } from 'kysely'
import type { RegleRow, ReglesConservationTable } from '../../db/tables/compliance.ts'
import type { DB } from '../../db/types.ts'
import {
  closeDossier,
  createRegle,
  deleteRegle,
  getConservation,
  getRegle,
  listRegles,
  type NewRegleSchema,
  type RegleDto,
  type RegleUpdateSchema,
  updateRegle,
} from '../../openapi/compliance.ts'
import { actorOf } from '../../src/audit.ts'
import { principalOf } from '../../src/auth.ts'
import { Errors } from '../../src/errors.ts'
import { type Binding, handle } from '../../src/routes.ts'
import { activeHolds } from './guard.ts'
import { newestFirst } from '../../src/pagination.ts'
import { iso } from './listing.ts'
import { lockLiveElement, toVerrou } from './locks.ts'
import { activeTerms, governing, termsOf } from './retention.ts'
import { amongTargets, ancestorsOf } from './scope.ts'

export const toRegle = (r: RegleRow): RegleDto => ({
  id: r.id,
  nom: r.nom,
  cible: { type: r.cible_type, id: r.cible_id },
  duree: r.duree,
  unite: r.unite,
  evenement: r.evenement,
  date_depart: iso(r.date_depart),
  action_terme: r.action_terme,
  mode: r.mode,
  created_by: r.created_by,
  created_at: r.created_at.toISOString(),
  updated_at: r.updated_at.toISOString(),
  retiree_at: iso(r.retiree_at),
  motif_retrait: r.motif_retrait,
})

// Bounds of a unit in days, for comparing lengths across units: a change is an extension
// only when the new length is longer whatever the calendar.
const MIN_DAYS = { jours: 1, mois: 28, annees: 365 } as const
const MAX_DAYS = { jours: 1, mois: 31, annees: 366 } as const

type Change = Static<typeof RegleUpdateSchema>

/** How a change would let files go sooner than the rule promised; empty for an extension. */
export function weakenings(old: RegleRow, next: RegleRow): string[] {
  const found: string[] = []
  const shorter =
    old.unite === next.unite ? next.duree < old.duree : next.duree * MIN_DAYS[next.unite] < old.duree * MAX_DAYS[old.unite]
  if (shorter) found.push('durée plus courte')
  if (next.evenement !== old.evenement) found.push('autre point de départ')
  else if (old.date_depart && next.date_depart && next.date_depart < old.date_depart) found.push('date de départ avancée')
  if (old.action_terme === 'revue' && next.action_terme === 'destruction') found.push('destruction au lieu de revue')
  if (old.mode === 'conformite' && next.mode === 'gouvernance') found.push('passage en gouvernance')
  return found
}

// Repository: the rows of retention rules and closures, in the caller's executor.

async function findRule(db: Kysely<DB>, organisationId: string, id: string): Promise<RegleRow> {
  const row = await db.selectFrom('regles_conservation').selectAll().where('id', '=', id).where('organisation_id', '=', organisationId).executeTakeFirst()
  if (!row) throw new Errors.NOT_FOUND('Règle de conservation')
  return row
}

/** The rule, locked for a change; a retired rule is not found. */
async function lockRule(trx: Transaction<DB>, organisationId: string, id: string): Promise<RegleRow> {
  const old = await trx.selectFrom('regles_conservation').selectAll().where('id', '=', id)
    .where('organisation_id', '=', organisationId).forUpdate().executeTakeFirst()
  if (!old || old.retiree_at) throw new Errors.NOT_FOUND('Règle de conservation')
  return old
}

function insertRule(trx: Transaction<DB>, values: Insertable<ReglesConservationTable>): Promise<RegleRow> {
  return trx.insertInto('regles_conservation').values(values).returningAll().executeTakeFirstOrThrow()
}

function updateRuleRow(trx: Transaction<DB>, next: RegleRow): Promise<RegleRow> {
  return trx
    .updateTable('regles_conservation')
    .set({
      nom: next.nom,
      duree: next.duree,
      unite: next.unite,
      evenement: next.evenement,
      date_depart: next.date_depart,
      action_terme: next.action_terme,
      mode: next.mode,
      updated_at: sql`now()`,
    })
    .where('id', '=', next.id)
    .returningAll()
    .executeTakeFirstOrThrow()
}

async function retireRuleRow(trx: Transaction<DB>, id: string, userId: string, motif: string): Promise<void> {
  await trx.updateTable('regles_conservation').set({ retiree_at: sql`now()`, retiree_par: userId, motif_retrait: motif }).where('id', '=', id).execute()
}

/** The closure of a dossier, or none when it was closed already. */
function insertClosure(trx: Transaction<DB>, values: { dossierId: string; organisationId: string; userId: string; motif: string | null }) {
  return trx
    .insertInto('clotures_dossiers')
    .values({ dossier_id: values.dossierId, organisation_id: values.organisationId, cloture_par: values.userId, motif: values.motif })
    .onConflict((oc) => oc.doNothing())
    .returningAll()
    .executeTakeFirst()
}

async function findLiveFileId(db: Kysely<DB>, organisationId: string, id: string): Promise<string> {
  const file = await db.selectFrom('fichiers').select('id').where('id', '=', id)
    .where('organisation_id', '=', organisationId).where('deleted_at', 'is', null).executeTakeFirst()
  if (!file) throw new Errors.NOT_FOUND('Fichier')
  return file.id
}

function liveLocksOn(db: Kysely<DB>, organisationId: string, targets: Awaited<ReturnType<typeof ancestorsOf>>) {
  return db.selectFrom('verrous as v').selectAll().where('v.organisation_id', '=', organisationId)
    .where('v.leve_at', 'is', null).where(amongTargets(targets, 'v')).execute()
}

/** The rule `old` once `change` applies; refused when the start date its event needs is missing. */
function changedRule(old: RegleRow, change: Omit<Change, 'motif'>): RegleRow {
  const next: RegleRow = {
    ...old,
    ...(change.nom !== undefined ? { nom: change.nom.trim() } : {}),
    ...(change.duree !== undefined ? { duree: change.duree } : {}),
    ...(change.unite !== undefined ? { unite: change.unite } : {}),
    ...(change.evenement !== undefined ? { evenement: change.evenement } : {}),
    ...(change.action_terme !== undefined ? { action_terme: change.action_terme } : {}),
    ...(change.mode !== undefined ? { mode: change.mode } : {}),
    ...(change.date_depart !== undefined ? { date_depart: new Date(change.date_depart) } : {}),
  }
  if (next.evenement !== 'date') next.date_depart = null
  if (next.evenement === 'date' && !next.date_depart) throw new Errors.BAD_REQUEST('date_depart est requis avec evenement « date »')
  return next
}

// Services: one per operation.

/** A retention rule on a live element, journaled on its target. */
async function addRule(app: FastifyInstance, request: FastifyRequest, body: Static<typeof NewRegleSchema>): Promise<RegleRow> {
  const { organisationId, userId } = principalOf(request)
  if ((body.evenement === 'date') !== (body.date_depart !== undefined)) {
    throw new Errors.BAD_REQUEST('date_depart est requis avec evenement « date », et seulement avec lui')
  }
  return app.db.transaction().execute(async (trx) => {
    const target = await lockLiveElement(trx, organisationId, body.cible.type, body.cible.id)
    const created = await insertRule(trx, {
      organisation_id: organisationId,
      nom: body.nom.trim(),
      cible_type: body.cible.type,
      cible_id: body.cible.id,
      duree: body.duree,
      unite: body.unite,
      evenement: body.evenement,
      date_depart: body.date_depart ? new Date(body.date_depart) : null,
      action_terme: body.action_terme,
      mode: body.mode,
      created_by: userId,
    })
    await app.audit.record(trx, {
      ...actorOf(request),
      action: 'RETENTION_SET',
      target: { type: body.cible.type, id: body.cible.id, nom: target.nom },
      details: { regle_id: created.id, regle: toRegle(created) },
    })
    return created
  })
}

/** Changes a rule: an extension freely; a shortening never in compliance mode, and only with a reason. */
async function changeRule(app: FastifyInstance, request: FastifyRequest, id: string, { motif, ...change }: Change): Promise<RegleRow> {
  const { organisationId } = principalOf(request)
  return app.db.transaction().execute(async (trx) => {
    const old = await lockRule(trx, organisationId, id)
    const next = changedRule(old, change)
    const weaker = weakenings(old, next)
    if (weaker.length > 0 && old.mode === 'conformite') throw new Errors.RETENTION_COMPLIANCE_MODE(old.nom)
    if (weaker.length > 0 && !motif) throw new Errors.REASON_REQUIRED(`raccourcir une règle (${weaker.join(', ')})`)
    const updated = await updateRuleRow(trx, next)
    await app.audit.record(trx, {
      ...actorOf(request),
      action: weaker.length > 0 ? 'RETENTION_SHORTENED' : 'RETENTION_EXTENDED',
      target: { type: old.cible_type, id: old.cible_id, nom: old.nom },
      details: { regle_id: old.id, avant: toRegle(old), apres: toRegle(updated), ...(weaker.length ? { raccourcissements: weaker, motif } : {}) },
    })
    return updated
  })
}

/** Retires a rule, with a reason; a rule in compliance mode cannot be. */
async function retireRule(app: FastifyInstance, request: FastifyRequest, id: string, motif: string): Promise<void> {
  const { organisationId, userId } = principalOf(request)
  await app.db.transaction().execute(async (trx) => {
    const old = await lockRule(trx, organisationId, id)
    if (old.mode === 'conformite') throw new Errors.RETENTION_COMPLIANCE_MODE(old.nom)
    await retireRuleRow(trx, old.id, userId, motif)
    await app.audit.record(trx, {
      ...actorOf(request),
      action: 'RETENTION_REMOVED',
      target: { type: old.cible_type, id: old.cible_id, nom: old.nom },
      details: { regle_id: old.id, regle: toRegle(old), motif },
    })
  })
}

/** Closes a live dossier once (the event rules « cloture » count from). */
async function markDossierClosed(app: FastifyInstance, request: FastifyRequest, id: string, motif: string | null) {
  const { organisationId, userId } = principalOf(request)
  return app.db.transaction().execute(async (trx) => {
    const dossier = await lockLiveElement(trx, organisationId, 'dossier', id)
    const closed = await insertClosure(trx, { dossierId: dossier.id, organisationId, userId, motif })
    if (!closed) throw new Errors.ALREADY_CLOSED(dossier.nom)
    await app.audit.record(trx, { ...actorOf(request), action: 'FOLDER_CLOSED', target: { type: 'dossier', id: dossier.id, nom: dossier.nom }, details: { motif } })
    return closed
  })
}

/** What keeps a live file: its retention terms, the one that governs, and the locks and holds above it. */
async function conservationOf(db: Kysely<DB>, organisationId: string, id: string) {
  const fileId = await findLiveFileId(db, organisationId, id)
  const terms = await termsOf(db, organisationId, [fileId])
  const g = governing(terms)
  const active = activeTerms(terms).get(fileId)
  const above = await ancestorsOf(db, { type: 'fichier', id: fileId })
  const locks = await liveLocksOn(db, organisationId, above)
  const holds = await activeHolds(db, organisationId, above)
  return {
    fichier_id: fileId,
    sous_conservation: active !== undefined,
    jusqua: g ? iso(g.jusqua) : null,
    regle_determinante: g?.regle_id && g.regle_nom ? { id: g.regle_id, nom: g.regle_nom } : null,
    action_terme: g?.action_terme ?? null,
    termes: terms.map((t) => ({
      origine: t.origine,
      regle: t.regle_id && t.regle_nom ? { id: t.regle_id, nom: t.regle_nom, mode: t.mode } : null,
      depuis: t.source_type && t.source_id ? { type: t.source_type, id: t.source_id } : null,
      depart: iso(t.depart),
      jusqua: iso(t.jusqua),
      action_terme: t.action_terme,
      mode: t.mode,
    })),
    verrous: locks.map(toVerrou),
    gels: holds.map((h) => ({ id: h.id, nom: h.nom, depuis: { type: h.cible_type, id: h.cible_id } })),
  }
}

export function ruleBindings(app: FastifyInstance): Binding[] {
  const { db } = app
  const organisationOf = (request: FastifyRequest) => principalOf(request).organisationId

  return [
    handle(listRegles, async (request) => {
      let query = db.selectFrom('regles_conservation as r').selectAll('r').where('r.organisation_id', '=', organisationOf(request))
      if (request.query.actif) query = query.where('r.retiree_at', 'is', null)
      return newestFirst(query, 'r', request.query, toRegle)
    }),

    handle(createRegle, async (request, reply) => reply.code(201).send(toRegle(await addRule(app, request, request.body)))),

    handle(getRegle, async (request) => toRegle(await findRule(db, organisationOf(request), request.params.id))),

    handle(updateRegle, async (request) => toRegle(await changeRule(app, request, request.params.id, request.body))),

    handle(deleteRegle, async (request, reply) => {
      await retireRule(app, request, request.params.id, request.body.motif.trim())
      return reply.code(204).send(null)
    }),

    handle(closeDossier, async (request, reply) => {
      const row = await markDossierClosed(app, request, request.params.id, request.body.motif?.trim() ?? null)
      return reply.code(201).send({ dossier_id: row.dossier_id, cloture_at: row.cloture_at.toISOString(), cloture_par: row.cloture_par, motif: row.motif })
    }),

    handle(getConservation, async (request) => conservationOf(db, organisationOf(request), request.params.id)),
  ]
}
