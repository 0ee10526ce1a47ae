import type { FastifyBaseLogger } from 'fastify'
import { type Kysely, sql, type Transaction } from 'kysely'
import pg from 'pg'
import type { Role } from '../openapi/common.ts'
import type { MethodeMfa } from '../db/tables/security.ts'
import type { DB } from '../db/types.ts'
import type { AccessClaims, Principal } from './auth.ts'
import { optionalAfterOf } from './unit-of-work.ts'

const CHANNEL = 'armoire_sessions'
/** A cached session is re-read at least this often, even if a notification was lost. */
const CACHE_TTL_MS = 30_000
/** `last_used_at` is written at most this often per session. */
const TOUCH_EVERY_MS = 60_000

interface Cached {
  principal: Principal
  readAt: number
  touchedAt: number
}

/**
 * Live sessions, checked on every request. A revocation, or any change to a user (role,
 * activation, name, factors…) or to an organisation's settings, is announced with NOTIFY in the transaction that makes it, so every instance forgets
 * the session when it commits; the instance that made it forgets at once. While the
 * LISTEN connection is down nothing is cached: every request reads the database.
 */
export function createSessionRegistry(db: Kysely<DB>, listenUrl: string, log: FastifyBaseLogger) {
  const cache = new Map<string, Cached>()
  let listener: pg.Client | null = null
  let listening = false
  let closed = false
  let retry: NodeJS.Timeout | undefined
  // Bumped by every forget: a read that overlapped one may be stale and is not cached.
  let generation = 0

  function forget(kind: 'session' | 'user' | 'organisation', id: string): void {
    generation++
    for (const [sid, entry] of cache) {
      const { principal } = entry
      if (kind === 'session' ? sid === id : kind === 'user' ? principal.userId === id : principal.organisationId === id) cache.delete(sid)
    }
  }

  async function listen(): Promise<void> {
    if (closed) return
    // Bounded and kept alive: a database that vanishes without a word must still be noticed.
    const client = new pg.Client({ connectionString: listenUrl, application_name: 'armoire-sessions', connectionTimeoutMillis: 5_000, keepAlive: true })
    const lost = (error?: Error) => {
      if (listener !== client) return
      listening = false
      listener = null
      generation++
      cache.clear()
      client.end().catch(() => {})
      if (!closed) {
        log.warn({ err: error }, 'session notifications lost; reconnecting')
        retry = setTimeout(() => void listen().catch(() => {}), 1_000)
      }
    }
    client.on('error', lost)
    client.on('end', () => lost())
    client.on('notification', (msg) => {
      const [kind, id] = (msg.payload ?? '').split(':')
      if ((kind === 'session' || kind === 'user' || kind === 'organisation') && id) forget(kind, id)
    })
    listener = client
    try {
      await client.connect()
      await client.query(`listen ${CHANNEL}`)
      // A session read while nobody listened may have been revoked before LISTEN took effect,
      // its notification never heard: such a read must not be cached now that caching resumes.
      generation++
      listening = true
    } catch (error) {
      lost(error as Error)
    }
  }

  async function read(claims: AccessClaims): Promise<Principal | null> {
    const row = await db
      .selectFrom('sessions as s')
      .innerJoin('utilisateurs as u', 'u.id', 's.utilisateur_id')
      .innerJoin('organisations as o', 'o.id', 's.organisation_id')
      .select([
        's.id',
        's.organisation_id',
        'u.id as user_id',
        'u.role',
        'u.actif',
        'u.email',
        'u.nom',
        'u.created_at',
        'u.updated_at',
        'o.nom as organisation_nom',
        'o.created_at as organisation_created_at',
        's.enrolement_mfa',
        'u.email_verifie_at',
        'o.mfa_obligatoire',
        // GET /me shows the factors from here: one round trip, cached with the session.
        (eb) =>
          eb
            .selectFrom('facteurs_mfa as f')
            .select(sql<Array<{ methode: MethodeMfa; active_at: string }>>`coalesce(json_agg(json_build_object('methode', f.methode, 'active_at', f.active_at) order by f.active_at), '[]')`.as('list'))
            .whereRef('f.utilisateur_id', '=', 'u.id')
            .where('f.active_at', 'is not', null)
            .as('facteurs'),
        (eb) =>
          eb
            .selectFrom('codes_secours as c')
            .select((e) => e.fn.countAll<number>().as('n'))
            .whereRef('c.utilisateur_id', '=', 'u.id')
            .where('c.used_at', 'is', null)
            .as('codes_secours_restants'),
      ])
      .where('s.id', '=', claims.sid)
      .where('s.utilisateur_id', '=', claims.sub)
      .where('s.revoked_at', 'is', null)
      .where('s.expires_at', '>', sql<Date>`now()`)
      .executeTakeFirst()
    if (!row || !row.actif) return null
    return {
      userId: row.user_id,
      organisationId: row.organisation_id,
      role: row.role as Role,
      sessionId: row.id,
      mfaEnrolmentOnly: row.enrolement_mfa,
      account: {
        email: row.email,
        nom: row.nom,
        createdAt: row.created_at,
        updatedAt: row.updated_at,
        emailVerifiedAt: row.email_verifie_at,
        factors: (row.facteurs ?? []).map((f) => ({ methode: f.methode, activeAt: new Date(f.active_at) })),
        backupCodesLeft: Number(row.codes_secours_restants ?? 0),
        organisation: { nom: row.organisation_nom, createdAt: row.organisation_created_at, mfaRequired: row.mfa_obligatoire },
      },
    }
  }

  function touch(sessionId: string): void {
    db.updateTable('sessions')
      .set({ last_used_at: sql`now()` })
      .where('id', '=', sessionId)
      .execute()
      .catch((err) => log.warn({ err }, 'could not record session use'))
  }

  return {
    async start(): Promise<void> {
      await listen()
    },
    async close(): Promise<void> {
      closed = true
      clearTimeout(retry)
      cache.clear()
      await listener?.end().catch(() => {})
    },
    /** The live principal of a verified token, or null when its session is over. */
    async resolve(claims: AccessClaims): Promise<Principal | null> {
      const now = Date.now()
      const hit = cache.get(claims.sid)
      if (hit && listening && now - hit.readAt < CACHE_TTL_MS && hit.principal.userId === claims.sub) {
        if (now - hit.touchedAt > TOUCH_EVERY_MS) {
          hit.touchedAt = now
          touch(claims.sid)
        }
        return hit.principal
      }
      const readGeneration = generation
      const principal = await read(claims)
      if (!principal) {
        cache.delete(claims.sid)
        return null
      }
      const touchedAt = hit?.touchedAt ?? 0
      const due = now - touchedAt > TOUCH_EVERY_MS
      if (due) touch(claims.sid)
      if (listening && readGeneration === generation) cache.set(claims.sid, { principal, readAt: now, touchedAt: due ? now : touchedAt })
      return principal
    },
    /**
     * Announces, inside the transaction that makes it, that a session, a user's sessions or an
     * organisation's changed: every instance forgets them when it commits, this one at once.
     */
    async announce(trx: Transaction<DB>, kind: 'session' | 'user' | 'organisation', id: string): Promise<void> {
      await sql`select pg_notify(${CHANNEL}, ${`${kind}:${id}`})`.execute(trx)
      optionalAfterOf(trx)?.commit(() => forget(kind, id))
    },
    forget,
  }
}

export type SessionRegistry = ReturnType<typeof createSessionRegistry>
