/**
 * `npm run stats:rebuild`: recomputes every organisation's statistics (counters, armoires,
 * members, daily activity) from the source tables and the journal, replaces them, and
 * reports what had drifted. Exit code 1 when something had. The weekly `stats.recompter`
 * job does the same in the background.
 */
import { rebuildAll } from '../plugins/stats/public.ts'
import { loadConfig } from '../src/config.ts'
import { createDb } from '../src/db.ts'
import { withDevDefaults } from '../src/dev-defaults.ts'

const runtime = await withDevDefaults(loadConfig(), (line) => console.log(line))
let drifted = false
const db = createDb({ url: runtime.config.DATABASE_URL, poolMax: 2, applicationName: 'armoire-stats-rebuild' })
try {
  const { organisations, drifts } = await rebuildAll(db)
  for (const d of drifts) console.log(`drift ${d.organisation_id} ${d.compteur}: counted ${d.trouve}, recounted ${d.attendu}`)
  console.log(`done: ${organisations} organisations recounted, ${drifts.length} counters had drifted${drifts.length ? ' (repaired)' : ''}`)
  drifted = drifts.length > 0
} finally {
  await db.destroy()
  await runtime.embedded?.stop()
}
// Set after cleanup: the embedded server's stop handlers would otherwise reset it.
process.exit(drifted ? 1 : 0)
