/**
 * A mixed workload against both instances of a cluster at once: sign-ins, listings (the
 * armoires, a folder's files), small multipart uploads, downloads and the global dashboard,
 * one autocannon run per operation, all at the same time, each spread over both instances.
 * Bounded by time (`seconds`) and by count (`maxOverallRequests` per operation). Answers and
 * prints, per operation, the count, p50/p99 and the status codes.
 *
 * `npm run bench:cluster` starts a cluster of its own (harness.ts) on a database of its own
 * (BENCH_DATABASE_URL, else an embedded PostgreSQL), runs 30 s and exits 1 on a 5xx or an error.
 * Knobs: BENCH_DURATION (s), BENCH_CONNECTIONS (per operation, a multiple of 2), REDIS_URL.
 * cluster.test.ts runs a 10 s version.
 */
import { randomBytes } from 'node:crypto'
import { pathToFileURL } from 'node:url'
import autocannon from 'autocannon'
import { type ArmoireClient, unwrap } from '../../openapi/sdk/index.ts'
import { strongPassword } from '../helpers/auth.ts'
import { describeMachine, runBench, startBenchDatabase, table } from '../bench/lib.ts'
import { type Cluster, startCluster } from './harness.ts'

export interface LoadSeed {
  email: string
  password: string
  token: string
  dossier: string
  fichier: string
}

export interface OperationResult {
  name: string
  requests: number
  p50: number
  p99: number
  statuses: Record<string, number>
  serverErrors: number
  rateLimited: number
  /** Connection errors and timeouts. */
  errors: number
}

/** An organisation with a folder and a 64 KiB file, through instance A; its admin's session. */
export async function seedLoad(cluster: Cluster): Promise<LoadSeed> {
  const client: ArmoireClient = cluster.client(0)
  const email = `charge-${randomBytes(5).toString('hex')}@exemple.fr`
  const password = strongPassword()
  const session = unwrap(await client.POST('/auth/register', { body: { email, mot_de_passe: password, nom: 'Charge Test', organisation: 'Cabinet Charge' } }))
  const armoire = unwrap(await client.POST('/armoires', { body: { nom: 'Charge' } }))
  const casier = unwrap(await client.POST('/armoires/{id}/casiers', { params: { path: { id: armoire.id } }, body: { nom: 'Casier' } }))
  const dossier = unwrap(await client.POST('/casiers/{id}/dossiers', { params: { path: { id: casier.id } }, body: { nom: 'Dossier' } }))
  const receipt = await client.upload({ dossier: dossier.id }, new Blob([randomBytes(64 * 1024)]), { nom: 'lu.bin' })
  return { email, password, token: session.access_token, dossier: dossier.id, fichier: receipt.fichier.id }
}

const BOUNDARY = 'armoire-charge-boundary'
let uploads = 0
function uploadBody(): string {
  const name = `depot-${process.pid}-${++uploads}-${randomBytes(3).toString('hex')}.txt`
  return [`--${BOUNDARY}`, `Content-Disposition: form-data; name="fichier"; filename="${name}"`, 'Content-Type: text/plain', '', 'x'.repeat(4096), `--${BOUNDARY}--`, ''].join('\r\n')
}

/** The operations of the mix. */
function operations(seed: LoadSeed): { name: string; request: autocannon.Request }[] {
  const auth = { authorization: `Bearer ${seed.token}` }
  return [
    {
      name: 'sign-in',
      request: { method: 'POST', path: '/auth/login', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: seed.email, mot_de_passe: seed.password }) },
    },
    { name: 'GET /armoires', request: { method: 'GET', path: '/armoires', headers: auth } },
    { name: 'GET folder files', request: { method: 'GET', path: `/dossiers/${seed.dossier}/fichiers`, headers: auth } },
    {
      name: 'upload 4 KiB',
      request: {
        method: 'POST',
        path: `/dossiers/${seed.dossier}/fichiers`,
        headers: { ...auth, 'content-type': `multipart/form-data; boundary=${BOUNDARY}` },
        // A new name each time: the same one would be a 409 NAME_CONFLICT.
        setupRequest: (req) => ({ ...req, body: uploadBody() }),
      },
    },
    { name: 'download 64 KiB', request: { method: 'GET', path: `/fichiers/${seed.fichier}/contenu`, headers: auth } },
    { name: 'GET /dashboard/global', request: { method: 'GET', path: '/dashboard/global', headers: auth } },
  ]
}

export async function runClusterLoad(cluster: Cluster, seed: LoadSeed, opts: { seconds: number; connections: number; maxPerOperation?: number }): Promise<OperationResult[]> {
  const urls = cluster.instances.map((i) => i.url)
  const runs = operations(seed).map(async ({ name, request }) => {
    // A multiple of the URLs: autocannon spreads the connections over them.
    const connections = Math.max(urls.length, Math.round(opts.connections / urls.length) * urls.length)
    const result = await autocannon({
      // autocannon takes several URLs (its types say one) and spreads the connections over them.
      url: urls as unknown as string,
      connections,
      duration: opts.seconds,
      maxOverallRequests: opts.maxPerOperation ?? 200 * opts.seconds,
      timeout: 30,
      requests: [request],
    })
    const statuses: Record<string, number> = {}
    for (const [code, stat] of Object.entries(result.statusCodeStats ?? {})) statuses[code] = stat.count ?? 0
    return {
      name,
      requests: result.requests.total,
      p50: result.latency.p50,
      p99: result.latency.p99,
      statuses,
      serverErrors: Object.entries(statuses).reduce((n, [code, count]) => n + (Number(code) >= 500 ? count : 0), 0),
      rateLimited: statuses['429'] ?? 0,
      errors: result.errors + result.timeouts,
    } satisfies OperationResult
  })
  return Promise.all(runs)
}

export function printLoad(results: readonly OperationResult[], log: (line: string) => void): void {
  const rows = results.map((r) => [r.name, r.requests, `${r.p50} ms`, `${r.p99} ms`, Object.entries(r.statuses).map(([c, n]) => `${c}×${n}`).join(' '), r.errors])
  for (const line of table(['operation', 'requests', 'p50', 'p99', 'statuses', 'errors'], rows).split('\n')) log(line)
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await runBench(async (cleanup) => {
    const seconds = Number(process.env.BENCH_DURATION ?? 30)
    const connections = Number(process.env.BENCH_CONNECTIONS ?? 4)
    const database = await startBenchDatabase(cleanup)
    const context = { teardown: (fn: () => unknown) => cleanup.defer('cluster', fn) }
    const cluster = await startCluster(context, {
      databaseUrl: database.url,
      env: { RATE_LIMIT_MAX: '1000000', AUTH_RATE_LIMIT_MAX: '1000000', LOGIN_EMAIL_RATE_LIMIT_MAX: '1000000' },
    })
    console.log(`# bench:cluster — ${cluster.instances.length} instances (${cluster.instances.map((i) => i.url).join(', ')}), S3 (s3rver), Redis, one database`)
    console.log(`# ${describeMachine()}`)
    console.log(`# ${database.description}`)
    console.log(`# ${seconds} s, ${connections} connections per operation over both instances, all operations at once`)
    const results = await runClusterLoad(cluster, await seedLoad(cluster), { seconds, connections })
    printLoad(results, (line) => console.log(line))
    const bad = results.filter((r) => r.serverErrors > 0 || r.errors > 0 || r.requests === 0)
    console.log(bad.length === 0 ? '# PASS: no 5xx, no connection error' : `# FAIL: ${bad.map((r) => r.name).join(', ')}`)
    if (bad.length > 0) {
      process.exitCode = 1
      // What the instances logged at level error (50) and above: the cause of a 5xx.
      for (const [i, instance] of cluster.instances.entries()) {
        for (const line of instance.output().split('\n').filter((l) => /"level":(50|60)/.test(l)).slice(0, 5)) console.log(`# instance ${i}: ${line.slice(0, 600)}`)
      }
    }
  })
}
