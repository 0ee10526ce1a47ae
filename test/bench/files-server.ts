/** The real app in a process of its own, so that bench:files can read the server's memory alone. */
import { runBench, startRealApp } from './lib.ts'

await runBench(async (cleanup) => {
  const databaseUrl = process.env.BENCH_APP_DATABASE_URL
  if (!databaseUrl) throw new Error('BENCH_APP_DATABASE_URL is required')
  const real = await startRealApp(cleanup, { databaseUrl, env: { STORAGE_QUOTA_BYTES: '0', UPLOAD_MAX_BYTES: String(16 * 1024 ** 3) } })
  process.send?.({ url: real.url, storage: real.config.STORAGE_DIR })
  await new Promise((resolve) => process.once('disconnect', resolve))
})
