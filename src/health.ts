import { randomBytes } from 'node:crypto'
import { unlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Static } from '@sinclair/typebox'
import type { FastifyInstance } from 'fastify'
import { sql } from 'kysely'
import { live, type ReadinessSchema, ready } from '../openapi/health.ts'
import { pendingMigrations } from './db.ts'
import { handle, registerOperations } from './routes.ts'

type Check = Static<typeof ReadinessSchema>['checks']['database']
const CHECK_TIMEOUT_MS = 2_000

async function timed(fn: () => Promise<string | undefined>): Promise<Check> {
  const start = performance.now()
  let timer: NodeJS.Timeout | undefined
  try {
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${CHECK_TIMEOUT_MS} ms`)), CHECK_TIMEOUT_MS)
    })
    const problem = await Promise.race([fn(), timeout])
    const duration_ms = Math.round(performance.now() - start)
    return problem ? { status: 'fail', duration_ms, error: problem } : { status: 'ok', duration_ms }
  } catch (error) {
    return { status: 'fail', duration_ms: Math.round(performance.now() - start), error: (error as Error).message }
  } finally {
    clearTimeout(timer)
  }
}

export async function healthRoutes(app: FastifyInstance, opts: { storageDir: string }) {
  registerOperations(app, [
    handle(live, async () => ({ status: 'ok' as const })),
    handle(ready, async (_request, reply) => {
      const [database, storage, migrations] = await Promise.all([
        timed(async () => {
          await sql`select 1`.execute(app.db)
          return undefined
        }),
        timed(async () => {
          const probe = join(opts.storageDir, `.ready-${randomBytes(6).toString('hex')}`)
          await writeFile(probe, 'ok')
          await unlink(probe)
          return undefined
        }),
        timed(async () => {
          const pending = await pendingMigrations(app.db)
          return pending.length > 0 ? `pending: ${pending.join(', ')}` : undefined
        }),
      ])
      const checks = { database, storage, migrations }
      const ok = Object.values(checks).every((c) => c.status === 'ok')
      return reply.code(ok ? 200 : 503).send({ status: ok ? 'ok' : 'fail', checks })
    }),
  ])
}
