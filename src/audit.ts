import { createHash } from 'node:crypto'
import canonicalize from 'canonicalize'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { type Kysely, type RawBuilder, sql, type Transaction } from 'kysely'
import type { JournalEntry, Resultat, Severite } from '../db/tables/journal.ts'
import type { DB } from '../db/types.ts'
import { ACTIONS, type Action, TARGETS, type TargetType } from './journal-actions.ts'

export interface AuditEntry {
  organisationId: string | null
  userId: string | null
  action: Action
  target?: { type: TargetType; id: string | null; nom?: string | null }
  result?: Resultat
  /** Defaults to the action's severity in the catalogue. */
  severity?: Severite
  ip?: string | null
  userAgent?: string | null
  details?: Record<string, unknown>
}

/** Who did it, from where: the part of an entry every request-driven action shares. */
export function actorOf(request: FastifyRequest): Pick<AuditEntry, 'organisationId' | 'userId' | 'ip' | 'userAgent'> {
  return {
    organisationId: request.principal?.organisationId ?? null,
    userId: request.principal?.userId ?? null,
    ip: request.ip,
    userAgent: request.headers['user-agent']?.slice(0, 512) ?? null,
  }
}

/** The request's actor as `user`: what a sign-in, a registration or a reset does before the request has a principal. */
export function actorAs(request: FastifyRequest, user: { id: string; organisation_id: string }): Pick<AuditEntry, 'organisationId' | 'userId' | 'ip' | 'userAgent'> {
  return { ...actorOf(request), organisationId: user.organisation_id, userId: user.id }
}

/**
 * Schemes 1 and 2's canonical JSON (sorted keys), kept to verify the entries written with
 * them. It writes an object with `toJSON`, a Date say, as `{}`, where PostgreSQL stores its
 * ISO string: scheme 3 uses RFC 8785 instead.
 */
function canonical(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null'
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`
}

type Hashed = Omit<JournalEntry, 'id' | 'hash' | 'version_hash'>
type Content = Omit<Hashed, 'sequence' | 'hash_precedent'>

/** What an entry says, in the order every scheme hashes it; `details` as each scheme writes it. */
function described(row: Content, details: unknown = canonical(row.details)): unknown[] {
  return [
    row.utilisateur_id,
    row.action,
    row.cible_type,
    row.cible_id,
    row.cible_nom,
    row.resultat,
    row.severite,
    row.ip,
    row.user_agent,
    details,
    row.created_at.toISOString(),
  ]
}

/** Scheme 1 (entries written before `journal_ajouter`): one SHA-256 over content, place and link. */
export function entryHash(row: Hashed): Buffer {
  const fields = [row.organisation_id, row.sequence, ...described(row), row.hash_precedent?.toString('hex') ?? null]
  return createHash('sha256').update(JSON.stringify(fields)).digest()
}

/** Scheme 2: the digest of an entry's content, computed here; PostgreSQL chains it. */
export function entryDigest(row: Content): Buffer {
  return createHash('sha256').update(JSON.stringify([row.organisation_id, ...described(row)])).digest()
}

/**
 * Scheme 3: the digest of an entry's content in RFC 8785's canonical form (the `canonicalize`
 * package), details included as a value; chained like scheme 2. A detail holding a Date (any
 * `toJSON` object) hashes as the string PostgreSQL stores.
 */
export function entryDigestJcs(row: Content): Buffer {
  return createHash('sha256')
    .update(canonicalize([row.organisation_id, ...described(row, row.details)]) ?? '')
    .digest()
}

/** Scheme 2's link, as `journal_ajouter` computes it: SHA-256(previous ‖ digest ‖ sequence, 8 bytes big-endian). */
export function chainHash(previous: Buffer | null, digest: Buffer, sequence: number): Buffer {
  const place = Buffer.alloc(8)
  place.writeBigInt64BE(BigInt(sequence))
  return createHash('sha256').update(previous ?? Buffer.alloc(0)).update(digest).update(place).digest()
}

function expectedHash(row: JournalEntry): Buffer {
  if (row.version_hash === 1) return entryHash(row)
  return chainHash(row.hash_precedent, row.version_hash === 2 ? entryDigest(row) : entryDigestJcs(row), row.sequence)
}

/** The scheme new entries are written with. */
export const HASH_SCHEME = 3

const pad = (n: number) => String(n).padStart(2, '0')

/** The French sentence of an entry: `[2025-06-01 15:22] – user_id=3 a supprimé le fichier ID=67 “ContratRH.pdf”`. */
export function entryMessage(row: Pick<JournalEntry, 'created_at' | 'utilisateur_id' | 'action' | 'cible_type' | 'cible_id' | 'cible_nom' | 'resultat'>): string {
  const d = row.created_at
  const when = `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}`
  const who = row.utilisateur_id ? `user_id=${row.utilisateur_id}` : 'le système'
  const verb = ACTIONS[row.action as Action]?.verbe ?? row.action
  const what = row.cible_type ? (TARGETS[row.cible_type as TargetType] ?? row.cible_type) : ''
  const id = row.cible_id ? ` ID=${row.cible_id}` : ''
  const name = row.cible_nom ? ` “${row.cible_nom}”` : ''
  const outcome = row.resultat === 'succes' ? '' : row.resultat === 'refus' ? ' (refusé)' : ' (échec)'
  return `[${when}] – ${who} ${verb}${what ? ` ${what}` : ''}${id}${name}${outcome}`.replace(/\s+/g, ' ').trim()
}

/** What a caller may need of the entry it wrote, known without reading it back. */
export type RecordedEntry = Pick<JournalEntry, 'sequence' | 'created_at'>

/**
 * An entry as one SQL expression, `journal_ajouter(…)`, whose value is its sequence: for a
 * statement that does something and journals it at once. Evaluating it locks the chain
 * until the transaction ends.
 */
export function journalAppend(entry: AuditEntry): { expression: RawBuilder<number>; created_at: Date } {
  const c: Content = {
    organisation_id: entry.organisationId,
    utilisateur_id: entry.userId,
    action: entry.action,
    cible_type: entry.target?.type ?? null,
    cible_id: entry.target?.id ?? null,
    cible_nom: entry.target?.nom ?? null,
    resultat: entry.result ?? 'succes',
    severite: entry.severity ?? ACTIONS[entry.action].severite,
    ip: entry.ip ?? null,
    user_agent: entry.userAgent ?? null,
    details: entry.details ?? {},
    created_at: new Date(),
  }
  const expression = sql<number>`journal_ajouter(${c.organisation_id}::uuid, ${entryDigestJcs(c)}::bytea, ${c.utilisateur_id}::uuid,
    ${c.action}::text, ${c.cible_type}::text, ${c.cible_id}::text, ${c.cible_nom}::text, ${c.resultat}::text, ${c.severite}::text,
    ${c.ip}::text, ${c.user_agent}::text, ${JSON.stringify(c.details)}::jsonb, ${c.created_at}::timestamptz, ${HASH_SCHEME}::smallint)`
  return { expression, created_at: c.created_at }
}

/**
 * Appends an entry to its organisation's chain, inside the caller's transaction, in one
 * round trip: the entry commits with the action or not at all. The chain lock is held
 * until that transaction ends, so record last, just before committing.
 */
export async function recordEntry(trx: Transaction<DB>, entry: AuditEntry): Promise<RecordedEntry> {
  const { expression, created_at } = journalAppend(entry)
  const { rows } = await sql<{ sequence: number }>`select ${expression} as sequence`.execute(trx)
  return { sequence: Number(rows[0]?.sequence), created_at }
}

/** Appends entries in order, in one round trip: for a batch that journals each of its elements. */
export async function recordEntries(trx: Transaction<DB>, entries: AuditEntry[]): Promise<void> {
  if (entries.length === 0) return
  // An array's elements are evaluated in order, so the chain takes the entries as listed.
  await sql`select array[${sql.join(entries.map((entry) => journalAppend(entry).expression))}] as sequences`.execute(trx)
}

export type ChainVerification =
  | { intact: true; count: number }
  | { intact: false; count: number; entry_id: number; sequence: number; reason: string }

/**
 * Recomputes an organisation's chain in batches (constant memory), stopping at the first break.
 * Entries removed at the journal's term are not there to check: the chain resumes from the
 * hash of the last one removed, kept by the removal.
 */
export async function verifyChain(db: Kysely<DB>, organisationId: string): Promise<ChainVerification> {
  const pruned = await db
    .selectFrom('journal_elagages')
    .select(['jusqua_sequence', 'hash_reprise'])
    .where('organisation_id', '=', organisationId)
    .orderBy('jusqua_sequence', 'desc')
    .limit(1)
    .executeTakeFirst()
  let previous: Buffer | null = pruned?.hash_reprise ?? null
  let expected = (pruned?.jusqua_sequence ?? 0) + 1
  let count = 0
  for (;;) {
    const batch = await db
      .selectFrom('journal_activite')
      .selectAll()
      .where('organisation_id', '=', organisationId)
      .where('sequence', '>=', expected)
      .orderBy('sequence')
      .limit(1000)
      .execute()
    for (const row of batch) {
      const broken = (reason: string): ChainVerification => ({ intact: false, count, entry_id: row.id, sequence: row.sequence, reason })
      if (row.sequence !== expected) return broken(`entrée manquante avant la séquence ${row.sequence}`)
      if (!bufEq(row.hash_precedent, previous)) return broken('le lien vers l’entrée précédente ne correspond pas')
      if (!row.hash.equals(expectedHash(row))) return broken('le contenu de l’entrée a été modifié')
      previous = row.hash
      expected++
      count++
    }
    if (batch.length < 1000) return { intact: true, count }
  }
}

function bufEq(a: Buffer | null, b: Buffer | null): boolean {
  return a === null || b === null ? a === b : a.equals(b)
}

declare module 'fastify' {
  interface FastifyInstance {
    audit: {
      /** Journals inside the caller's transaction. */
      record(trx: Transaction<DB>, entry: AuditEntry): Promise<RecordedEntry>
      /** Journals many, in order, inside the caller's transaction. */
      recordAll(trx: Transaction<DB>, entries: AuditEntry[]): Promise<void>
      /** Journals in a transaction of its own: refusals and failures, whose action rolled back or never ran. */
      recordAlone(entry: AuditEntry): Promise<RecordedEntry>
    }
  }
}

export const auditPlugin = fp(
  async (app: FastifyInstance) => {
    app.decorate('audit', {
      record: recordEntry,
      recordAll: recordEntries,
      recordAlone: (entry: AuditEntry) => app.db.transaction().execute((trx) => recordEntry(trx, entry)),
    })
  },
  { name: 'audit', fastify: '5.x', dependencies: ['db'] },
)
