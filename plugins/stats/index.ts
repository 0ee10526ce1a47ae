import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { sql } from 'kysely'
import { LruMap } from 'toad-cache'
import { getGlobalDashboard, getUserDashboard, putDashboardSettings } from '../../openapi/stats.ts'
import { actorOf } from '../../src/audit.ts'
import { principalOf } from '../../src/auth.ts'
import type { Config } from '../../src/config.ts'
import { prepared } from '../../src/db.ts'
import { Errors } from '../../src/errors.ts'
import { handle, registerOperations } from '../../src/routes.ts'
import { compact, type Drift, lockJournal, rebuildAll, rebuildRollups } from './counters.ts'
import { globalCsv, userCsv } from './csv.ts'
import { globalDashboard, userDashboard } from './dashboard.ts'
import { globalReport, userReport } from './report.ts'
import { organisationName } from '../security/public.ts'
import { attachment } from '../../src/attachment.ts'

const COMPACT_QUEUE = 'stats.compacter'
const REBUILD_QUEUE = 'stats.recompter'

declare module '../../src/jobs.ts' {
  interface JobPayloads {
    'stats.compacter': Record<string, never>
    'stats.recompter': Record<string, never>
  }
}

export type StatsConfig = Pick<Config, 'STORAGE_QUOTA_BYTES' | 'STATS_CACHE_SECONDS'>

type Format = 'json' | 'csv' | 'pdf'
const FORMATS: Record<string, Format> = { 'text/csv': 'csv', 'application/pdf': 'pdf', 'application/json': 'json', '*/*': 'json' }

/** The first format the Accept header names that the dashboards speak; JSON otherwise. */
export function negotiate(accept: string | undefined): Format {
  for (const part of (accept ?? '').split(',')) {
    const [type, ...params] = part.split(';').map((s) => s.trim().toLowerCase())
    if (params.some((p) => /^q=0(\.0*)?$/.test(p))) continue
    const format = type ? FORMATS[type] : undefined
    if (format) return format
  }
  return 'json'
}

function sendCsv(reply: FastifyReply, name: string, body: Buffer) {
  return reply
    .type('text/csv; charset=utf-8')
    .header('content-disposition', attachment(`${name}-${new Date().toISOString().slice(0, 10)}.csv`))
    .send(body)
}

export function logDrifts(app: FastifyInstance, drifts: Drift[]): void {
  if (drifts.length > 0) app.log.warn({ drifts: drifts.slice(0, 50), count: drifts.length }, 'statistics had drifted from their sources; repaired')
}

/**
 * The statistics domain: dashboards read counters and daily rollups that the database keeps
 * exact in the transactions changing their sources (triggers of migration
 * 2026-12-02T17.00.00), and the security and documents domains through their public faces.
 */
export async function statsDomain(app: FastifyInstance, opts: { config: StatsConfig }) {
  const { db } = app
  const { config } = opts
  // Reused only while the organisation's journal has not moved: every change a dashboard
  // shows is journalled in its transaction, so a cached answer is never older than a commit.
  const cache = new LruMap<{ sequence: number; body: unknown }>(1000, config.STATS_CACHE_SECONDS * 1000)
  const cached = async <T>(organisationId: string, key: string, compute: () => Promise<T>): Promise<T> => {
    if (config.STATS_CACHE_SECONDS === 0) return compute()
    const { rows } = await sql<{ s: number }>`${prepared}select coalesce(max(sequence), 0)::int8 as s from journal_activite
      where organisation_id = ${organisationId}`.execute(db)
    const sequence = rows[0]?.s ?? 0
    const k = `${organisationId} ${key}`
    const hit = cache.get(k)
    if (hit && hit.sequence === sequence) return hit.body as T
    const body = await compute()
    cache.set(k, { sequence, body })
    return body
  }

  registerOperations(app, [
    handle(getGlobalDashboard, async (request, reply) => {
      const { organisationId } = principalOf(request)
      const { du, au, granularite } = request.query
      const body = await cached(organisationId, `global ${du} ${au} ${granularite}`, () =>
        globalDashboard(db, organisationId, request.query, config.STORAGE_QUOTA_BYTES),
      )
      return answer(app, request, reply, body, 'tableau-de-bord', globalCsv, async (d) => globalReport(d, await organisationName(db, organisationId)))
    }),

    handle(getUserDashboard, async (request, reply) => {
      const principal = principalOf(request)
      const { du, au, granularite, limit, cursor } = request.query
      const body = await cached(principal.organisationId, `membre ${request.params.id} ${principal.userId} ${du} ${au} ${granularite} ${limit} ${cursor}`, () =>
        userDashboard(db, principal, request.params.id, request.query),
      )
      return answer(app, request, reply, body, 'activite-membre', userCsv, async (d) => userReport(d))
    }),

    handle(putDashboardSettings, async (request) => {
      const { organisationId } = principalOf(request)
      const zone = request.body.fuseau_horaire
      const known = await sql`select 1 from pg_timezone_names where name = ${zone}`.execute(db)
      if (known.rows.length === 0) {
        throw Object.assign(new Errors.VALIDATION_ERROR(), { fields: [{ field: 'body.fuseau_horaire', message: 'fuseau horaire IANA inconnu' }] })
      }
      await db.transaction().execute(async (trx) => {
        await lockJournal(trx, organisationId)
        await trx
          .updateTable('stats_organisations')
          .set({ fuseau_horaire: zone, updated_at: sql`now()` })
          .where('organisation_id', '=', organisationId)
          .execute()
        await rebuildRollups(trx, organisationId, [])
        await app.audit.record(trx, {
          ...actorOf(request),
          action: 'STATS_TIMEZONE_CHANGED',
          target: { type: 'organisation', id: organisationId },
          details: { fuseau_horaire: zone },
        })
      })
      return { fuseau_horaire: zone }
    }),
  ])

  await app.jobs.work(COMPACT_QUEUE, async () => {
    const folded = await compact(db)
    // Organisations that existed before the statistics did are counted once, here.
    const { drifts } = await rebuildAll(db, { onlyUncounted: true })
    logDrifts(app, drifts)
    return { folded }
  })
  await app.jobs.schedule(COMPACT_QUEUE, '* * * * *', {})
  await app.jobs.work(REBUILD_QUEUE, async () => {
    const { organisations, drifts } = await rebuildAll(db)
    logDrifts(app, drifts)
    return { organisations, drifts: drifts.length }
  })
  await app.jobs.schedule(REBUILD_QUEUE, '43 2 * * 0', {})
}

/** JSON, CSV or a one-page PDF report, as the Accept header asks. */
async function answer<T>(
  app: FastifyInstance,
  request: FastifyRequest,
  reply: FastifyReply,
  body: T,
  name: string,
  csv: (body: T) => Buffer,
  html: (body: T) => Promise<string>,
) {
  const format = negotiate(request.headers.accept)
  if (format === 'csv') return sendCsv(reply, name, csv(body))
  if (format === 'pdf') {
    const pdf = await app.pdf.render(await html(body), { format: 'A4' })
    return reply
      .type('application/pdf')
      .header('content-disposition', attachment(`${name}-${new Date().toISOString().slice(0, 10)}.pdf`))
      .send(pdf)
  }
  return body
}
