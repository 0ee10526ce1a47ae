/** What other domains may ask of the compliance domain. */
import type { Kysely } from 'kysely'
import type { DB } from '../../db/types.ts'
import type { GuardedObject } from '../../src/safeguards.ts'
import { activeHolds } from './guard.ts'
import { ancestorsOf, descendantsOf, key } from './scope.ts'

export interface CoveringHold {
  id: string
  nom: string
}

/**
 * The active legal holds on anything a backup of `object` covers: the object, what is above it
 * (a hold there reaches it) and everything below it, trashed or not; for `organisation` (a
 * system backup), every active hold of the organisation. A backup these name is never pruned.
 */
export async function holdsCoveringBackup(db: Kysely<DB>, organisationId: string, object: GuardedObject): Promise<CoveringHold[]> {
  if (object.type === 'organisation') {
    return db.selectFrom('gels').select(['id', 'nom']).where('organisation_id', '=', organisationId).where('leve_at', 'is', null).orderBy('nom').execute()
  }
  const target = { type: object.type, id: object.id }
  const scope = new Map([...(await ancestorsOf(db, target)), ...(await descendantsOf(db, target))].map((t) => [key(t), t]))
  const holds = await activeHolds(db, organisationId, [...scope.values()])
  return [...new Map(holds.map((h) => [h.id, { id: h.id, nom: h.nom }])).values()]
}
