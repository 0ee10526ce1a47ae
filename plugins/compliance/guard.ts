import type { FastifyInstance } from 'fastify'
import { type Kysely, sql } from 'kysely'
import type { DB } from '../../db/types.ts'
import { Errors } from '../../src/errors.ts'
import type { GuardedAction, GuardRequest } from '../../src/safeguards.ts'
import { holdsCoveringBackup } from './public.ts'
import { activeTerms, ruleInterval, termsOf, termText } from './retention.ts'
import { amongTargets, ancestorsOf, describe, descendantsOf, key, type Target } from './scope.ts'

const LOCK_BLOCKS = new Set<GuardedAction>(['delete', 'purge', 'shred', 'rename', 'move', 'version', 'remove_version', 'restore_overwrite', 'add'])
const HOLD_BLOCKS = new Set<GuardedAction>(['delete', 'purge', 'shred', 'remove_version', 'restore_overwrite', 'dispose', 'erase', 'prune'])
const RETENTION_BLOCKS = new Set<GuardedAction>(['delete', 'purge', 'shred', 'remove_version', 'restore_overwrite'])
/** Actions that reach what is below the object, not only the object. */
const REACH_DOWN = new Set<GuardedAction>(['delete', 'purge', 'shred', 'dispose', 'erase', 'prune'])

const VERBS: Record<GuardedAction, string> = {
  delete: 'supprimer',
  purge: 'purger',
  shred: 'détruire',
  rename: 'renommer',
  move: 'déplacer',
  version: 'modifier',
  remove_version: 'retirer une version de',
  restore_overwrite: 'écraser',
  add: 'ajouter un élément dans',
  dispose: 'éliminer',
  erase: 'effacer',
  prune: 'élaguer une sauvegarde de',
}

async function activeLocks(db: Kysely<DB>, organisationId: string, targets: readonly Target[]) {
  return db
    .selectFrom('verrous as v')
    .selectAll()
    .where('v.organisation_id', '=', organisationId)
    .where('v.leve_at', 'is', null)
    .where(amongTargets(targets, 'v'))
    .execute()
}

export async function activeHolds(db: Kysely<DB>, organisationId: string, targets: readonly Target[]) {
  return db
    .selectFrom('gels_objets as o')
    .innerJoin('gels as g', 'g.id', 'o.gel_id')
    .select(['g.id', 'g.nom', 'o.cible_type', 'o.cible_id'])
    .where('o.organisation_id', '=', organisationId)
    .where('g.leve_at', 'is', null)
    .where(amongTargets(targets, 'o'))
    .execute()
}

/**
 * The compliance domain's answer to "may this object change?": locks, legal holds and
 * retention, in that order. Refusals are journaled in a transaction of their own (the
 * caller's rolls back). A move that takes an object out from under a rule or a hold makes
 * the object keep them.
 */
export function createGuard(app: FastifyInstance) {
  return async (db: Kysely<DB>, request: GuardRequest): Promise<void> => {
    const { organisationId, action } = request
    if (request.object.type === 'organisation') return guardWholeTree(app, db, request)
    const object = request.object as Target
    const destination = request.destination as Target | undefined
    const above = await ancestorsOf(db, object)
    const reach = REACH_DOWN.has(action) && object.type !== 'fichier' ? await descendantsOf(db, object) : [object]
    const scope = [...new Map([...above, ...reach].map((t) => [key(t), t])).values()]
    // Said only in a refusal: most changes are allowed, and this is a query.
    const what = () => describe(db, organisationId, object)

    const refuse = async (reason: string, details: Record<string, unknown>, error: Error): Promise<never> => {
      await app.audit.recordAlone({
        organisationId,
        userId: request.userId,
        ip: request.ip ?? null,
        userAgent: request.userAgent ?? null,
        action: 'CHANGE_REFUSED',
        target: { type: object.type, id: object.id },
        result: 'refus',
        severity: reason === 'gel' ? 'HIGH' : 'MEDIUM',
        details: { action, raison: reason, ...details },
      })
      throw error
    }

    if (LOCK_BLOCKS.has(action)) {
      const lockScope = action === 'move' && destination ? [...scope, ...(await ancestorsOf(db, destination))] : scope
      const [lock] = await activeLocks(db, organisationId, lockScope)
      if (lock) {
        const locked = await describe(db, organisationId, { type: lock.cible_type, id: lock.cible_id })
        const where = lock.cible_id === object.id ? '' : ` (verrou sur ${locked})`
        await refuse('verrou', { verrou_id: lock.id, cible: { type: lock.cible_type, id: lock.cible_id } },
          new Errors.LOCKED(`Impossible de ${VERBS[action]} ${await what()} : verrouillé${where}, motif « ${lock.motif} »`))
      }
    }

    if (HOLD_BLOCKS.has(action)) {
      const holds = await activeHolds(db, organisationId, scope)
      if (holds.length > 0) {
        const names = [...new Set(holds.map((h) => `« ${h.nom} »`))].join(', ')
        await refuse('gel', { gels: [...new Set(holds.map((h) => h.id))] },
          new Errors.LEGAL_HOLD(`Impossible de ${VERBS[action]} ${await what()} : sous gel juridique ${names}`))
      }
    }

    if (RETENTION_BLOCKS.has(action)) {
      const files = reach.filter((t) => t.type === 'fichier').map((t) => t.id)
      const active = activeTerms(await termsOf(db, organisationId, files))
      const [first] = [...active.values()].sort((a, b) => (b.jusqua?.getTime() ?? Infinity) - (a.jusqua?.getTime() ?? Infinity))
      if (first) {
        const rule = first.regle_nom ? `règle « ${first.regle_nom} »` : first.origine === 'conservation' ? 'conservation décidée en revue' : 'prolongation décidée en revue'
        const file = first.fichier_id === object.id ? '' : ` (${await describe(db, organisationId, { type: 'fichier', id: first.fichier_id })})`
        await refuse('conservation', { regle_id: first.regle_id, jusqua: first.jusqua?.toISOString() ?? null, fichier_id: first.fichier_id },
          new Errors.RETENTION_ACTIVE(`Impossible de ${VERBS[action]} ${await what()}${file} : sous conservation ${termText(first)} (${rule}, mode ${first.mode})`))
      }
    }

    if (action === 'move' && destination) await carryOnMove(db, request, above, await ancestorsOf(db, destination))
  }
}

/** A change to the whole tree (pruning a system backup): any hold of the organisation forbids it. */
async function guardWholeTree(app: FastifyInstance, db: Kysely<DB>, request: GuardRequest): Promise<void> {
  if (!HOLD_BLOCKS.has(request.action)) return
  const holds = await holdsCoveringBackup(db, request.organisationId, request.object)
  if (holds.length === 0) return
  await app.audit.recordAlone({
    organisationId: request.organisationId,
    userId: request.userId,
    ip: request.ip ?? null,
    userAgent: request.userAgent ?? null,
    action: 'CHANGE_REFUSED',
    target: { type: 'organisation', id: request.organisationId },
    result: 'refus',
    severity: 'HIGH',
    details: { action: request.action, raison: 'gel', gels: holds.map((h) => h.id) },
  })
  throw new Errors.LEGAL_HOLD(`Impossible de ${VERBS[request.action]} l’organisation : sous gel juridique ${holds.map((h) => `« ${h.nom} »`).join(', ')}`)
}

/** What the object leaves behind by moving: rules and holds of the elements above it that the destination lacks. */
async function carryOnMove(db: Kysely<DB>, request: GuardRequest, above: Target[], destination: Target[]): Promise<void> {
  const { organisationId } = request
  const object = request.object as Target
  const kept = new Set(destination.map(key))
  const left = above.filter((t) => key(t) !== key(object) && !kept.has(key(t)))
  if (left.length === 0) return
  const files = object.type === 'fichier' ? [object.id] : (await descendantsOf(db, object)).filter((t) => t.type === 'fichier').map((t) => t.id)
  if (files.length > 0) {
    // The term the rule gives the file now; a start event still to come (a closure) starts at the move.
    const rules = await db.selectFrom('regles_conservation as r').select('id').where('r.organisation_id', '=', organisationId)
      .where('r.retiree_at', 'is', null).where(amongTargets(left, 'r')).execute()
    const terms = (await termsOf(db, organisationId, files)).filter((t) => t.origine === 'heritee' && rules.some((r) => r.id === t.regle_id))
    for (const t of terms) {
      await sql`insert into conservations_fichiers (organisation_id, fichier_id, regle_id, origine, jusqua, action_terme, mode, created_by)
        select ${organisationId}, ${t.fichier_id}, r.id, 'deplacement',
          coalesce(${t.depart}::timestamptz, now()) + ${ruleInterval(sql.ref('r.duree'), sql.ref('r.unite'))}, r.action_terme, r.mode, ${request.userId}
        from regles_conservation r where r.id = ${t.regle_id}`.execute(db)
    }
  }
  const holds = await activeHolds(db, organisationId, left)
  for (const gelId of new Set(holds.map((h) => h.id))) {
    await db.insertInto('gels_objets')
      .values({ gel_id: gelId, organisation_id: organisationId, cible_type: object.type, cible_id: object.id, origine: 'deplacement', added_by: request.userId })
      .onConflict((oc) => oc.doNothing())
      .execute()
  }
}
