import type { Migration } from 'kysely/migration'
import * as m001 from './2026-11-21T08.00.00-create-organisations-users-sessions.ts'

/** Every migration, in order. Names are frozen once released. */
export const migrations: Record<string, Migration> = {
  '2026-11-21T08.00.00-create-organisations-users-sessions': m001,
}
