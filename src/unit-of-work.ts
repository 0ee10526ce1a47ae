import type { FastifyBaseLogger, FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type { Kysely, Transaction } from 'kysely'
import type { DB } from '../db/types.ts'
import { isDatabaseUnavailable } from './db.ts'

type Hook = () => unknown

/** What must happen once the unit of work is settled, and only then. */
export interface After {
  /** Runs once the transaction has committed (wake workers, forget cached sessions, remove a replaced blob). */
  commit(fn: Hook): void
  /** Runs once the transaction has rolled back, whatever made it (remove a blob written ahead). */
  rollback(fn: Hook): void
}

export type Work<T> = (trx: Transaction<DB>, after: After) => Promise<T>

/** Registers the hooks of what was done ahead of the transaction (a blob written before it). */
export type Ahead = (after: After) => void

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * Runs `work` in one transaction. Hooks registered on `after`, by the caller or by the
     * kernel services it calls with `trx` (mail, jobs, sessions, blobs), run once it is
     * settled: a failing hook is logged and never changes the outcome. Hooks registered by
     * `ahead`, before BEGIN, follow whatever ends the unit of work: their rollback hooks run
     * also when no connection was had or BEGIN failed, and `work` never ran.
     */
    unitOfWork<T>(work: Work<T>, ahead?: Ahead): Promise<T>
  }
}

class Hooks implements After {
  readonly onCommit: Hook[] = []
  readonly onRollback: Hook[] = []
  // The same function registered twice runs once: a service may register its wake-up per call.
  commit(fn: Hook): void {
    if (!this.onCommit.includes(fn)) this.onCommit.push(fn)
  }
  rollback(fn: Hook): void {
    if (!this.onRollback.includes(fn)) this.onRollback.push(fn)
  }
}

const open = new WeakMap<Transaction<DB>, Hooks>()

/**
 * The hooks of the unit of work `on` belongs to (or those given to `ahead`), for a kernel service
 * to register on. Throws when `on` was not opened by `app.unitOfWork`: what must follow the
 * outcome would be lost.
 */
export function afterOf(on: Transaction<DB> | After): After {
  if (on instanceof Hooks) return on
  const hooks = open.get(on as Transaction<DB>)
  if (!hooks) throw new Error('this transaction was not opened by app.unitOfWork: what must follow its outcome would be lost')
  return hooks
}

/** The same, or none for a transaction opened otherwise, whose caller settles what follows by hand. */
export function optionalAfterOf(trx: Transaction<DB>): After | undefined {
  return open.get(trx)
}

async function settle(hooks: readonly Hook[], log: FastifyBaseLogger, when: 'commit' | 'rollback'): Promise<void> {
  for (const hook of hooks) {
    try {
      await hook()
    } catch (err) {
      log.error({ err }, `a unit of work's ${when} hook failed`)
    }
  }
}

export function createUnitOfWork(db: Kysely<DB>, log: FastifyBaseLogger) {
  return async function unitOfWork<T>(work: Work<T>, ahead?: Ahead): Promise<T> {
    const hooks = new Hooks()
    ahead?.(hooks)
    let result: T
    let committing = false
    try {
      result = await db.transaction().execute(async (trx) => {
        open.set(trx, hooks)
        try {
          const done = await work(trx, hooks)
          committing = true
          return done
        } finally {
          open.delete(trx)
        }
      })
    } catch (error) {
      // The connection lost during COMMIT: PostgreSQL may have committed. Removing the blobs
      // written ahead could then leave committed rows naming nothing; kept, they are at worst
      // orphans, which cost only space.
      if (committing && isDatabaseUnavailable(error)) {
        log.warn({ err: error, kept: hooks.onRollback.length }, 'commit outcome unknown (database lost): rollback hooks not run')
      } else {
        await settle(hooks.onRollback, log, 'rollback')
      }
      throw error
    }
    await settle(hooks.onCommit, log, 'commit')
    return result
  }
}

/** `app.unitOfWork`: one transaction per change, and what must follow its outcome. */
export const unitOfWorkPlugin = fp(
  async (app: FastifyInstance) => {
    app.decorate('unitOfWork', createUnitOfWork(app.db, app.log))
  },
  { name: 'unit-of-work', fastify: '5.x', dependencies: ['db'] },
)
