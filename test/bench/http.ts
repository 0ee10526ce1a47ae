/**
 * `npm run bench:http`: what the kernel (helmet, CORS, request id, access log, contract
 * routing, error handling, response serialisation) costs per request. GET /health/live on
 * the real app, built and configured as in production with logs at `info`, is compared
 * with the same answer from a bare Fastify app. Target: real ≥ 0.7 × bare. Exits 1 on FAIL.
 *
 * Knobs: BENCH_DATABASE_URL, REDIS_URL (rate-limit counters in Redis, as in production),
 * BENCH_CONNECTIONS, BENCH_PIPELINING, BENCH_DURATION, BENCH_WARMUP, BENCH_ROUNDS (see lib.ts).
 */
import {
  compare,
  describeMachine,
  describeSettings,
  fmt,
  loadSettings,
  machineLoadWarning,
  pairedRatios,
  runBench,
  type Sample,
  startBareApp,
  startBenchDatabase,
  startRealApp,
  summarise,
  table,
} from './lib.ts'

const TARGET_RATIO = 0.7
const PATH = '/health/live'

/** Both servers must give the answer being measured, and the real one through the whole kernel. */
async function check(name: string, url: string, kernel: boolean): Promise<void> {
  const response = await fetch(url)
  const body = await response.text()
  if (response.status !== 200 || body !== '{"status":"ok"}') throw new Error(`${name}: ${response.status} ${body}`)
  if (kernel && !(response.headers.get('x-request-id') && response.headers.get('content-security-policy'))) {
    throw new Error(`${name}: the answer lacks the kernel's headers (x-request-id, helmet)`)
  }
}

await runBench(async (cleanup) => {
  const settings = loadSettings({ connections: 50, pipelining: 1, duration: 10, warmup: 5, rounds: 3 })
  const database = await startBenchDatabase(cleanup)
  const real = await startRealApp(cleanup, { databaseUrl: database.url })
  const bare = await startBareApp(cleanup, (app) => {
    app.get(PATH, async () => ({ status: 'ok' }))
  })
  await check('real', real.url + PATH, true)
  await check('bare', bare.url + PATH, false)

  console.log(`# bench:http — GET ${PATH}, real app (production build, log level info → /dev/null) vs bare Fastify`)
  console.log(`# ${describeMachine()}`)
  console.log(`# ${database.description}`)
  const redis = real.config.REDIS_URL ? new URL(real.config.REDIS_URL) : undefined
  console.log(`# rate-limit counters: ${redis ? `Redis at ${redis.hostname}:${redis.port || 6379} (REDIS_URL)` : 'in memory (REDIS_URL unset)'}`)
  console.log(`# ${describeSettings(settings)}`)
  const busy = machineLoadWarning()
  if (busy) console.log(`# ${busy}`)

  const targets = [
    { name: 'real', url: real.url + PATH },
    { name: 'bare', url: bare.url + PATH },
  ]
  const cpu = (us: number | undefined) => (us === undefined ? 'n/a' : fmt(us, 1))
  const row = (s: Sample) => [s.target, s.round, fmt(s.rps), fmt(s.p50), fmt(s.p99), fmt(s.requests), cpu(s.cpuPerRequest)]
  const headers = ['target', 'round', 'req/s', 'p50 ms', 'p99 ms', 'requests', 'server CPU µs/req']
  const samples = await compare(targets, settings, (s) => console.log(`#   round ${s.round} ${s.target}: ${fmt(s.rps)} req/s`))

  console.log()
  console.log(table(headers, samples.map(row)))
  console.log()
  const realSummary = summarise(samples, 'real')
  const bareSummary = summarise(samples, 'bare')
  console.log(
    table(
      ['target', 'req/s (mean)', '± stddev', 'p50 ms (median)', 'p99 ms (median)', 'server CPU µs/req (median)'],
      [realSummary, bareSummary].map((s) => [s.target, fmt(s.rps), fmt(s.rpsStddev), fmt(s.p50, 1), fmt(s.p99, 1), cpu(s.cpuPerRequest)]),
    ),
  )
  const ratio = realSummary.rps / bareSummary.rps
  const paired = pairedRatios(samples, 'real', 'bare')
  const pass = ratio >= TARGET_RATIO
  console.log()
  console.log(
    `ratio real/bare = ${fmt(ratio, 3)} (per round ${paired.map((r) => fmt(r, 3)).join(', ')}); target ≥ ${TARGET_RATIO} → ${pass ? 'PASS' : 'FAIL'}`,
  )
  if (realSummary.cpuPerRequest !== undefined && bareSummary.cpuPerRequest !== undefined) {
    // Informative only: on two cores the load generator may cap the bare app, which req/s hides.
    const cpuRatio = bareSummary.cpuPerRequest / realSummary.cpuPerRequest
    console.log(`server CPU per request, bare/real = ${fmt(cpuRatio, 3)} (the ratio if the server alone were the bottleneck)`)
  }
  if (!pass) process.exitCode = 1
})
