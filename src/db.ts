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
  /** How long a request waits for a connection (a new one, or a free one of the pool) before DATABASE_UNAVAILABLE. */
  connectTimeoutMs?: number
  /** PostgreSQL's statement_timeout for this pool's sessions; 0: none. */
  statementTimeoutMs?: number
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

// Errors raised by this pool's connections and checkouts. Only they can say "the database is
// gone": an ECONNREFUSED may as well come from S3, SMTP or FeexPay.
const fromPool = new WeakSet<object>()
const remember = (error: unknown): never => {
  if (error !== null && typeof error === 'object') fromPool.add(error)
  throw error
}
const thenable = (value: unknown): value is Promise<unknown> => typeof (value as { then?: unknown } | null)?.then === 'function'

/** SQLSTATE classes of a server that cannot serve: connection exception, insufficient resources, operator intervention (shutdown, starting up). */
const UNAVAILABLE_STATES = /^(08|53|57P0)/
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'ECONNABORTED'])
// node-postgres' and pg-pool's own words for a connection lost, never made, or waited for in vain.
const LOST = /^(Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|Client was closed)/

/**
 * Whether `error`, raised by the application's pool, means PostgreSQL cannot be reached or
 * cannot serve right now (restarting, shut down, out of connections), as opposed to refusing
 * the statement: the request may be retried as it is.
 */
export function isDatabaseUnavailable(error: unknown): boolean {
  if (error === null || typeof error !== 'object' || !fromPool.has(error)) return false
  const { code, message } = error as { code?: unknown; message?: unknown }
  if (error instanceof pg.DatabaseError) return typeof code === 'string' && UNAVAILABLE_STATES.test(code)
  return (typeof code === 'string' && NETWORK_CODES.has(code)) || (typeof message === 'string' && LOST.test(message))
}

/** node-postgres' client, sending the statements marked `prepared` as named statements. */
class Client extends pg.Client {
  constructor(...args: ConstructorParameters<typeof pg.Client>) {
    super(...args)
    // A connection lost while checked out (PostgreSQL restarting, 57P01) fails its query, and
    // pg-pool drops the client at release. node-postgres also emits 'error', and pg-pool
    // listens only while the client idles: unheard, it would kill the process.
    this.on('error', () => {})
  }

  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- node-postgres' overloads, passed through untouched
  override query(config: any, values?: any, callback?: any): any {
    let result: unknown
    if (typeof config === 'string' && config.startsWith(PREPARED_MARK)) {
      const name = statementName(config)
      if (name !== undefined) result = super.query({ name, text: config, values }, callback)
    }
    result ??= super.query(config, values, callback)
    return thenable(result) ? result.catch(remember) : result
  }
}

/** pg's pool, its checkout failures (refused, timed out) remembered as the database's. */
class Pool extends pg.Pool {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- pg-pool's overloads, passed through untouched
  override connect(callback?: any): any {
    if (callback) return super.connect(callback)
    return super.connect().catch(remember)
  }
}

export function createDb({ url, poolMax = 10, applicationName = 'armoire', connectTimeoutMs = 5_000, statementTimeoutMs = 0 }: DbOptions): Kysely<DB> {
  const pool = new Pool({
    connectionString: url,
    Client,
    max: poolMax,
    types,
    application_name: applicationName,
    connectionTimeoutMillis: connectTimeoutMs,
    idleTimeoutMillis: 30_000,
    ...(statementTimeoutMs > 0 ? { statement_timeout: statementTimeoutMs } : {}),
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
