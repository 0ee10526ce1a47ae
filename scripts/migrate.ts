/** `npm run db:migrate`: brings DATABASE_URL (or the embedded database) to the newest migration. */
import { loadConfig } from '../src/config.ts'
import { createDb, migrateToLatest } from '../src/db.ts'
import { withDevDefaults } from '../src/dev-defaults.ts'

const runtime = await withDevDefaults(loadConfig(), () => {})
const db = createDb({ url: runtime.config.DATABASE_URL, poolMax: 1 })
try {
  const { error, results } = await migrateToLatest(db)
  for (const r of results ?? []) console.log(`${r.status.padEnd(8)} ${r.migrationName}`)
  if (error) throw error
  if ((results ?? []).length === 0) console.log('already up to date')
} finally {
  await db.destroy()
  await runtime.embedded?.stop()
}
