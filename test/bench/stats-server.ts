/** The real app in a process of its own for bench:stats; servers of one run share their secrets, so one token serves both. */
import { runBench, startRealApp } from './lib.ts'

await runBench(async (cleanup) => {
  const databaseUrl = process.env.BENCH_APP_DATABASE_URL
  const secret = process.env.BENCH_JWT_SECRET
  if (!databaseUrl || !secret) throw new Error('BENCH_APP_DATABASE_URL and BENCH_JWT_SECRET are required')
  const real = await startRealApp(cleanup, { databaseUrl, env: { JWT_SECRET: secret, STATS_CACHE_SECONDS: process.env.STATS_CACHE_SECONDS ?? '0' } })
  process.send?.({ url: real.url })
  await new Promise((resolve) => process.once('disconnect', resolve))
})
