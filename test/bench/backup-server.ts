/** The real app in a process of its own, for bench:backup, under the master key the bench gives it. */
import { runBench, startRealApp } from './lib.ts'

await runBench(async (cleanup) => {
  const databaseUrl = process.env.BENCH_APP_DATABASE_URL
  const masterKey = process.env.BENCH_MASTER_KEY
  if (!databaseUrl || !masterKey) throw new Error('BENCH_APP_DATABASE_URL and BENCH_MASTER_KEY are required')
  const real = await startRealApp(cleanup, { databaseUrl, env: { STORAGE_QUOTA_BYTES: '0', MASTER_KEY: masterKey, JOBS_POLLING_INTERVAL_SECONDS: '0.5' } })
  process.send?.({ url: real.url, storage: real.config.STORAGE_DIR })
  await new Promise((resolve) => process.once('disconnect', resolve))
})
