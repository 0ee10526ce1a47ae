import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import canonicalize from 'canonicalize'
import type { Kysely } from 'kysely'
import type { JournalCheckpoint } from '../db/tables/journal.ts'
import type { DB } from '../db/types.ts'
import { type ChainVerification, verifyChain } from './audit.ts'
import type { KeySource } from './crypto/keys.ts'
import { registerWrappedColumn } from './keys.ts'

/** One signing key for every chain; the id names it in each checkpoint, for a later key. */
const KEY_ID = 'points-controle-1'
const keyAad = (id: string) => `armoire:journal:${id}`

registerWrappedColumn({
  kind: 'journal_signature',
  table: 'cles_journal',
  id: 'id',
  organisation: 'organisation_id',
  wrapped: 'cle_enveloppee',
  version: 'version_cle_maitre',
  aad: keyAad,
})

const keys = new WeakMap<KeySource, Promise<Buffer>>()

/** The HMAC key, created (wrapped by the master key) at the first checkpoint; cached per key source. */
function signingKey(db: Kysely<DB>, source: KeySource): Promise<Buffer> {
  let key = keys.get(source)
  if (!key) {
    key = (async () => {
      const fresh = randomBytes(32)
      const wrapped = await source.wrap(fresh, keyAad(KEY_ID))
      await db
        .insertInto('cles_journal')
        .values({ id: KEY_ID, organisation_id: null, cle_enveloppee: wrapped.wrapped, version_cle_maitre: wrapped.masterKeyVersion })
        .onConflict((oc) => oc.column('id').doNothing())
        .execute()
      const row = await db.selectFrom('cles_journal').selectAll().where('id', '=', KEY_ID).executeTakeFirstOrThrow()
      return source.unwrap(row.cle_enveloppee, row.version_cle_maitre, keyAad(KEY_ID))
    })()
    key.catch(() => keys.delete(source))
    keys.set(source, key)
  }
  return key
}

type Signed = Pick<JournalCheckpoint, 'organisation_id' | 'sequence' | 'hash' | 'created_at'>

/** What a checkpoint signs, in RFC 8785 form: the chain, its end and when. */
function signedText(cp: Signed): string {
  return canonicalize({ v: 1, organisation_id: cp.organisation_id, sequence: cp.sequence, hash: cp.hash.toString('hex'), created_at: cp.created_at.toISOString() })!
}

async function sign(db: Kysely<DB>, source: KeySource, cp: Signed): Promise<Buffer> {
  return createHmac('sha256', await signingKey(db, source)).update(signedText(cp)).digest()
}

/** The newest checkpoint of a chain (organisation_id null: the platform's), or undefined. */
export function latestCheckpoint(db: Kysely<DB>, organisationId: string | null): Promise<JournalCheckpoint | undefined> {
  return db
    .selectFrom('journal_points_controle')
    .selectAll()
    .where('organisation_id', 'is not distinct from', organisationId)
    .orderBy('sequence', 'desc')
    .orderBy('id', 'desc')
    .limit(1)
    .executeTakeFirst()
}

/** Signs and stores the chain's end now; answers the newest checkpoint (null for an empty chain). */
export async function createCheckpoint(db: Kysely<DB>, source: KeySource, organisationId: string | null): Promise<JournalCheckpoint | null> {
  const head = await db
    .selectFrom('journal_activite')
    .select(['sequence', 'hash'])
    .where('organisation_id', 'is not distinct from', organisationId)
    .orderBy('sequence', 'desc')
    .limit(1)
    .executeTakeFirst()
  if (!head) return null
  const latest = await latestCheckpoint(db, organisationId)
  if (latest && latest.sequence >= head.sequence) return latest
  const cp = { organisation_id: organisationId, sequence: head.sequence, hash: head.hash, created_at: new Date() }
  return db
    .insertInto('journal_points_controle')
    .values({ ...cp, cle_id: KEY_ID, signature: await sign(db, source, cp) })
    .returningAll()
    .executeTakeFirstOrThrow()
}

/** A checkpoint for every chain that grew since its last one (the periodic job). */
export async function checkpointAll(db: Kysely<DB>, source: KeySource): Promise<number> {
  const chains = await db.selectFrom('journal_activite').select('organisation_id').distinct().execute()
  let made = 0
  for (const { organisation_id } of chains) {
    const before = await latestCheckpoint(db, organisation_id)
    const after = await createCheckpoint(db, source, organisation_id)
    if (after && after.id !== before?.id) made++
  }
  return made
}

export type CheckedChain = ChainVerification & { checkpoint: JournalCheckpoint | null }

/**
 * The chain recomputed (`verifyChain`), then held against its newest checkpoint: a forged
 * signature, an end cut off after it (the newest entries deleted) or a chain recomputed
 * (its hash at the checkpoint's sequence differs) are breaks too.
 */
export async function verifyChainWithCheckpoint(db: Kysely<DB>, source: KeySource, organisationId: string): Promise<CheckedChain> {
  const chain = await verifyChain(db, organisationId)
  const checkpoint = (await latestCheckpoint(db, organisationId)) ?? null
  if (!chain.intact || !checkpoint) return { ...chain, checkpoint }
  const when = checkpoint.created_at.toISOString()
  const broken = (entry_id: number, reason: string): CheckedChain => ({ intact: false, count: chain.count, entry_id, sequence: checkpoint.sequence, reason, checkpoint })
  const expected = await sign(db, source, checkpoint)
  if (expected.length !== checkpoint.signature.length || !timingSafeEqual(expected, checkpoint.signature)) {
    return broken(0, `la signature du point de contrôle du ${when} est fausse`)
  }
  const entry = await db
    .selectFrom('journal_activite')
    .select(['id', 'hash'])
    .where('organisation_id', '=', organisationId)
    .where('sequence', '=', checkpoint.sequence)
    .executeTakeFirst()
  if (!entry) {
    const pruned = await db.selectFrom('journal_elagages').select('jusqua_sequence').where('organisation_id', '=', organisationId).orderBy('jusqua_sequence', 'desc').executeTakeFirst()
    // Removed at the journal's term (journaled, and verification resumes from there): nothing to hold it against.
    if (pruned && pruned.jusqua_sequence >= checkpoint.sequence) return { ...chain, checkpoint }
    return broken(0, `entrées supprimées : la chaîne s’arrête avant la séquence ${checkpoint.sequence} signée le ${when}`)
  }
  if (!entry.hash.equals(checkpoint.hash)) return broken(entry.id, `chaîne recalculée : l’entrée ne correspond pas au point de contrôle signé le ${when}`)
  return { ...chain, checkpoint }
}
