import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { type Kysely, sql } from 'kysely'
import type { DB } from '../db/types.ts'
import type { BlobStore } from './blob/store.ts'

/**
 * A column holding blob names. A blob whose writer was killed before its row committed is
 * named by no row: the collector removes it. It cannot know the domains' tables, so each
 * domain registers, where it writes blobs, every column that names one.
 */
export interface BlobColumn {
  /** Names the column in reports: `versions`, `archives`… */
  kind: string
  table: string
  column: string
}

const blobColumns = new Map<string, BlobColumn>()

/** Adds a column the collector consults; the same kind twice must describe the same column. */
export function registerBlobColumn(column: BlobColumn): void {
  const known = blobColumns.get(column.kind)
  if (known && (known.table !== column.table || known.column !== column.column)) {
    throw new Error(`blob column kind ${column.kind} is already registered for ${known.table}.${known.column}`)
  }
  blobColumns.set(column.kind, column)
}

export function registeredBlobColumns(): BlobColumn[] {
  return [...blobColumns.values()]
}

// Names checked per query: one round trip per thousand blobs, never the whole listing in memory.
const BATCH = 1000

/** Which of `names` a registered column holds, in one query over every column. */
async function referenced(db: Kysely<DB>, columns: BlobColumn[], names: string[]): Promise<Set<string>> {
  const parts = columns.map((c) => sql<{ nom: string }>`select ${sql.ref(c.column)} as nom from ${sql.table(c.table)} where ${sql.ref(c.column)} = any(${names}::text[])`)
  const { rows } = await sql<{ nom: string }>`${sql.join(parts, sql` union all `)}`.execute(db)
  return new Set(rows.map((r) => r.nom))
}

export interface Collected {
  /** Blobs listed. */
  examines: number
  /** Younger than the grace period: possibly an upload in flight, left alone. */
  recents: number
  supprimes: number
}

/**
 * Removes every blob of `stores` older than `graceHours` that no registered column names.
 * Names are random: a name found in any column, whichever store that column's blobs live in,
 * keeps the blob.
 */
export async function collectOrphanBlobs(db: Kysely<DB>, stores: BlobStore[], graceHours: number, now = Date.now()): Promise<Collected> {
  const columns = registeredBlobColumns()
  if (columns.length === 0) throw new Error('no blob column registered: every blob would look orphaned')
  const cutoff = now - graceHours * 3_600_000
  const result: Collected = { examines: 0, recents: 0, supprimes: 0 }
  for (const store of stores) {
    const sweep = async (batch: string[]) => {
      const kept = await referenced(db, columns, batch)
      for (const name of batch) {
        if (kept.has(name)) continue
        await store.delete(name)
        result.supprimes++
      }
    }
    let batch: string[] = []
    for await (const entry of store.list()) {
      result.examines++
      if (entry.lastModified.getTime() > cutoff) {
        result.recents++
        continue
      }
      batch.push(entry.name)
      if (batch.length === BATCH) {
        await sweep(batch)
        batch = []
      }
    }
    if (batch.length > 0) await sweep(batch)
  }
  return result
}

export interface BlobCollector {
  /** Another store to collect in (backup archives kept elsewhere). */
  addStore(store: BlobStore): void
  /** One pass now, journaled when it removed anything; what the hourly job runs. */
  collect(): Promise<Collected>
}

declare module 'fastify' {
  interface FastifyInstance {
    blobCollector: BlobCollector
  }
}

declare module './jobs.ts' {
  interface JobPayloads {
    'blobs.orphelins': Record<string, never>
  }
}

const COLLECT_QUEUE = 'blobs.orphelins'

/** The orphan-blob collector: hourly, once across instances (pg-boss). */
export const blobCollectorPlugin = fp(
  async (app: FastifyInstance, opts: { graceHours: number }) => {
    const stores: BlobStore[] = [app.blobs]
    const collector: BlobCollector = {
      addStore: (store) => void stores.push(store),
      async collect() {
        const result = await collectOrphanBlobs(app.db, stores, opts.graceHours)
        if (result.supprimes > 0) {
          await app.audit.recordAlone({
            organisationId: null,
            userId: null,
            action: 'ORPHAN_BLOBS_REMOVED',
            details: { ...result, delai_grace_heures: opts.graceHours, magasins: stores.length },
          })
        }
        app.log.info({ ...result, graceHours: opts.graceHours }, 'orphan blobs collected')
        return result
      },
    }
    app.decorate('blobCollector', collector)
    await app.jobs.work(COLLECT_QUEUE, () => collector.collect(), { retryLimit: 0, expireInSeconds: 3600 })
    await app.jobs.schedule(COLLECT_QUEUE, '29 * * * *', {})
  },
  { name: 'blob-collector', fastify: '5.x', dependencies: ['blobs', 'jobs', 'audit', 'db'] },
)
