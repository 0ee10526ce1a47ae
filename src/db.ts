import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { Kysely, PostgresDialect, type RawBuilder, sql } from 'kysely'
import { type Migration, type MigrationResultSet, Migrator } from 'kysely/migration'
import pg from 'pg'
import { migrations } from '../db/migrations/index.ts'
import type { DB } from '../db/types.ts'

declare module 'fastify' {
  interface FastifyInstance {
    db: Kysely<DB>
  }
}

const INT8_OID = 20
// An arbitrary constant naming Armoire's migration lock among the cluster's advisory locks.
const MIGRATION_LOCK_KEY = 7_240_451_103

export interface DbOptions {
  url: string
  poolMax?: number
  applicationName?: string
}

/** Counts and sizes fit in a double far beyond any realistic vault, so int8 is a number. */
const types = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8_OID ? Number : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
}

const PREPARED_MARK = '/* prepared */ '
/** Beyond this many distinct marked texts, a mark is ignored: a statement built with a varying text would otherwise fill every connection. */
const MAX_PREPARED = 64
const preparedNames = new Map<string, string>()

/**
 * Put first in a statement run on a hot path (sql`${prepared}select …`): it is then sent as a
 * named statement, which PostgreSQL parses and plans once per connection instead of at every
 * run (for a sign-in, that was two fifths of the database's work). The statement must name the
 * columns it returns: with `*`, a migration adding a column while this instance runs would
 * change its result type, and PostgreSQL refuses to run the cached plan then.
 */
export const prepared: RawBuilder<unknown> = sql.raw(PREPARED_MARK)

function statementName(text: string): string | undefined {
  const known = preparedNames.get(text)
  if (known !== undefined || preparedNames.size >= MAX_PREPARED) return known
  const name = `armoire_${preparedNames.size + 1}`
  preparedNames.set(text, name)
  return name
}

/** node-postgres' client, sending the statements marked `prepared` as named statements. */
class Client extends pg.Client {
  constructor(config?: string | pg.ClientConfig) {
    super(config)
    // A connection lost while checked out of the pool (a transaction between statements, the
    // server restarting) emits 'error' with nobody listening, which would end the process. Its
    // pending and next statements fail on their own, and the pool drops it once released.
    this.on('error', () => {})
  }

  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- node-postgres' overloads, passed through untouched
  override query(config: any, values?: any, callback?: any): any {
    if (typeof config === 'string' && config.startsWith(PREPARED_MARK)) {
      const name = statementName(config)
      if (name !== undefined) return super.query({ name, text: config, values }, callback)
    }
    return super.query(config, values, callback)
  }
}

export function createDb({ url, poolMax = 10, applicationName = 'armoire' }: DbOptions): Kysely<DB> {
  const pool = new pg.Pool({
    connectionString: url,
    Client,
    max: poolMax,
    types,
    application_name: applicationName,
    connectionTimeoutMillis: 5_000,
    idleTimeoutMillis: 30_000,
  })
  // A connection dropped by the server while idle must not crash the process.
  pool.on('error', () => {})
  return new Kysely<DB>({ dialect: new PostgresDialect({ pool }) })
}

/** Whether `error` is PostgreSQL refusing a duplicate key (23505), of `constraint` when one is named. */
export function isUniqueViolation(error: unknown, constraint?: string): boolean {
  const e = error as { code?: unknown; constraint?: unknown } | null
  return e?.code === '23505' && (constraint === undefined || e.constraint === constraint)
}

function migratorFor(db: Kysely<unknown>): Migrator {
  return new Migrator({
    db,
    provider: { getMigrations: async () => migrations as Record<string, Migration> },
  })
}

/**
 * Brings the schema to the newest migration. A session-level advisory lock serialises
 * instances starting together, including the creation of Kysely's own bookkeeping tables.
 */
export async function migrateToLatest(db: Kysely<DB>): Promise<MigrationResultSet> {
  return db.connection().execute(async (conn) => {
    await sql`select pg_advisory_lock(${MIGRATION_LOCK_KEY})`.execute(conn)
    try {
      return await migratorFor(conn as Kysely<unknown>).migrateToLatest()
    } finally {
      await sql`select pg_advisory_unlock(${MIGRATION_LOCK_KEY})`.execute(conn)
    }
  })
}

/** Names of the migrations the database has not run yet. */
export async function pendingMigrations(db: Kysely<DB>): Promise<string[]> {
  const known = await migratorFor(db as Kysely<unknown>).getMigrations()
  return known.filter((m) => !m.executedAt).map((m) => m.name)
}

export const dbPlugin = fp(
  async (app: FastifyInstance, opts: DbOptions & { migrate: boolean }) => {
    const db = createDb(opts)
    app.decorate('db', db)
    app.addHook('onClose', async () => {
      await db.destroy()
    })
    if (opts.migrate) {
      const { error, results } = await migrateToLatest(db)
      for (const r of results ?? []) app.log.info({ migration: r.migrationName, status: r.status }, 'migration')
      if (error) throw error
    }
  },
  { name: 'db', fastify: '5.x' },
)
