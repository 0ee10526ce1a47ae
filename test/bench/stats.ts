/**
 * `npm run bench:stats`: the dashboards' latency does not grow with the data.
 * One organisation is seeded with 1 000 000 files (metadata rows: armoires, casiers, folders,
 * files, versions, keys; no blobs) and 10 000 000 journal entries over two years, by bulk SQL,
 * then its statistics are rebuilt from those sources (`rebuildOrganisation`, what
 * `npm run stats:rebuild` runs). A fresh organisation of 100 files is the baseline. Both
 * dashboards are measured for each (30 days by day; 12 months by month), JSON, with the cache
 * off (STATS_CACHE_SECONDS=0: every request computes), under 20 concurrent clients.
 * Targets: p95 < 50 ms, and p95(large) ≤ 2 × p95(fresh).
 *
 * Knobs: BENCH_DATABASE_URL, BENCH_STATS_FILES, BENCH_STATS_ENTRIES, BENCH_STATS_CLIENTS,
 * BENCH_DURATION (seconds per target), BENCH_WARMUP.
 *
 * BENCH_STATS_KEEP=1 (with BENCH_DATABASE_URL, e.g. postgres://postgres@127.0.0.1:5432/postgres)
 * keeps the seeded database, `armoire_bench_stats_<files>_<entries>`, and reuses it on the next
 * run when its seed was completed: the servers migrate it as they start, and the statistics are
 * rebuilt from the sources when the migrations or plugins/stats/counters.ts changed since. The
 * header says whether the seed was reused. Without it (the default) every run seeds afresh in a
 * throw-away database. Drop the kept one with `dropdb armoire_bench_stats_<files>_<entries>`.
 */
import { fork } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { readdirSync, readFileSync } from 'node:fs'
import { cpus, loadavg } from 'node:os'
import { sql } from 'kysely'
import { rebuildOrganisation } from '../../plugins/stats/counters.ts'
import { createDb } from '../../src/db.ts'
import { type BenchDatabase, describeMachine, fmt, keptBenchDatabase, machineLoadWarning, runBench, startBenchDatabase, table } from './lib.ts'

const FILES = Number(process.env.BENCH_STATS_FILES ?? 1_000_000)
const ENTRIES = Number(process.env.BENCH_STATS_ENTRIES ?? 10_000_000)
const CLIENTS = Number(process.env.BENCH_STATS_CLIENTS ?? 20)
const DURATION = Number(process.env.BENCH_DURATION ?? 10)
const WARMUP = Number(process.env.BENCH_WARMUP ?? 3)
const MEMBERS = 50
const KEEP = process.env.BENCH_STATS_KEEP === '1'
const TARGET_P95_MS = 50
const TARGET_RATIO = 2

/** What the journal is made of: the actions the dashboards count, and others. */
const ACTIONS = [
  ['LOGIN_SUCCEEDED', 'succes', 3],
  ['TOKEN_REFRESHED', 'succes', 3],
  ['FILE_DOWNLOADED', 'succes', 6],
  ['FILE_UPLOADED', 'succes', 2],
  ['FILE_VERSION_ADDED', 'succes', 1],
  ['DELETED', 'succes', 1],
  ['RESTORED_FROM_TRASH', 'succes', 1],
  ['LOGIN_FAILED', 'echec', 1],
  ['CREATED', 'succes', 1],
  ['RENAMED', 'succes', 1],
] as const
const ACTION_CYCLE = ACTIONS.flatMap(([action, resultat, weight]) => Array.from({ length: weight }, () => [action, resultat]))

type Db = ReturnType<typeof createDb>

/**
 * Bulk rows for an organisation, written with triggers off (session_replication_role): the
 * statistics are then rebuilt from them, as a database migrated with existing data would be.
 */
async function seed(db: Db, organisationId: string, adminId: string, files: number, entries: number, log: (line: string) => void) {
  const armoires = Math.max(1, Math.min(20, Math.ceil(files / 50_000)))
  const casiers = armoires * 5
  const dossiers = Math.max(1, Math.ceil(files / 100))
  await db.connection().execute(async (conn) => {
    await sql`set session_replication_role = replica`.execute(conn)
    await sql`set synchronous_commit = off`.execute(conn)
    let started = performance.now()
    const step = (what: string) => {
      log(`#   ${what} in ${fmt((performance.now() - started) / 1000, 1)} s`)
      started = performance.now()
    }
    await sql`insert into utilisateurs (organisation_id, email, nom, role)
      select ${organisationId}, 'membre-' || i || '-' || ${organisationId} || '@exemple.fr', 'Membre ' || i,
        (array['contributeur', 'lecteur'])[1 + i % 2]
      from generate_series(2, ${MEMBERS}) i`.execute(conn)
    const { rows: users } = await sql<{ id: string }>`select id from utilisateurs where organisation_id = ${organisationId} order by created_at, id`.execute(conn)
    const userIds = users.map((u) => u.id)
    await sql`create temporary table seed_armoires as select i, gen_random_uuid() as id from generate_series(1, ${armoires}::int) i`.execute(conn)
    await sql`create temporary table seed_casiers as select i, gen_random_uuid() as id, 1 + (i - 1) % ${armoires} as armoire from generate_series(1, ${casiers}::int) i`.execute(conn)
    await sql`create temporary table seed_dossiers as select i, gen_random_uuid() as id, 1 + (i - 1) % ${casiers} as casier from generate_series(1, ${dossiers}::int) i`.execute(conn)
    await sql`insert into armoires (id, organisation_id, nom, created_by) select id, ${organisationId}, 'Armoire ' || i, ${adminId} from seed_armoires`.execute(conn)
    await sql`insert into casiers (id, organisation_id, armoire_id, nom, created_by)
      select c.id, ${organisationId}, a.id, 'Casier ' || c.i, ${adminId} from seed_casiers c join seed_armoires a on a.i = c.armoire`.execute(conn)
    await sql`insert into dossiers (id, organisation_id, casier_id, nom, created_by)
      select d.id, ${organisationId}, c.id, 'Dossier ' || d.i, ${adminId} from seed_dossiers d join seed_casiers c on c.i = d.casier`.execute(conn)
    step(`${armoires} armoires, ${casiers} casiers, ${dossiers} dossiers`)
    await sql`create temporary table seed_fichiers as
      select i, gen_random_uuid() as id, gen_random_uuid() as version_id, gen_random_uuid() as cle_id,
        1 + (i - 1) % ${dossiers} as dossier, 1000 + (i::int8 * 7919) % 5000000 as taille,
        md5(i::text) || md5((i + 1)::text) as sha256, (${userIds}::uuid[])[1 + i % ${userIds.length}] as auteur
      from generate_series(1, ${files}::int) i`.execute(conn)
    await sql`insert into fichiers (id, organisation_id, dossier_id, nom, type_mime, taille, sha256, version_courante, created_by)
      select f.id, ${organisationId}, d.id, 'document-' || f.i || '.pdf', 'application/pdf', f.taille, f.sha256, 1, f.auteur
      from seed_fichiers f join seed_dossiers d on d.i = f.dossier`.execute(conn)
    step(`${files} fichiers`)
    await sql`insert into cles_chiffrement (id, organisation_id, fichier_id, version_id, algorithme, cle_enveloppee, version_cle_maitre)
      select cle_id, ${organisationId}, id, version_id, 'AES-256-GCM', '\\x00'::bytea, 1 from seed_fichiers`.execute(conn)
    await sql`insert into versions_fichiers (id, organisation_id, fichier_id, version_number, nom, type_mime, taille, sha256, blob,
        taille_chiffree, format, nonce_prefixe, cle_id, created_by)
      select version_id, ${organisationId}, id, 1, 'document-' || i || '.pdf', 'application/pdf', taille, sha256, 'banc/' || version_id,
        taille + 16, 'aes-256-gcm-segments', '\\x00'::bytea, cle_id, auteur from seed_fichiers`.execute(conn)
    step(`${files} versions and keys`)
    const { rows: last } = await sql<{ s: number }>`select coalesce(max(sequence), 0)::int8 as s from journal_activite where organisation_id = ${organisationId}`.execute(conn)
    const first = (last[0]?.s ?? 0) + 1
    const batch = 1_000_000
    for (let from = 0; from < entries; from += batch) {
      const to = Math.min(entries, from + batch)
      await sql`insert into journal_activite (organisation_id, sequence, utilisateur_id, action, cible_type, cible_id, resultat, severite,
          details, created_at, hash, version_hash)
        select ${organisationId}, ${first}::int8 + i, (${userIds}::uuid[])[1 + (i * 31)::int8 % ${userIds.length}], a.action, 'fichier', i::text, a.resultat, 'LOW',
          case when a.action in ('FILE_UPLOADED', 'FILE_VERSION_ADDED') then jsonb_build_object('taille', 1000 + i % 100000) else '{}'::jsonb end,
          now() - interval '730 days' + (i::float8 / ${entries}::float8) * interval '730 days', '\\x00'::bytea, 2
        from generate_series(${from}::int8, ${to - 1}::int8) i
        cross join lateral (select (${ACTION_CYCLE.map((a) => a[0])}::text[])[1 + i % ${ACTION_CYCLE.length}] as action,
          (${ACTION_CYCLE.map((a) => a[1])}::text[])[1 + i % ${ACTION_CYCLE.length}] as resultat) a`.execute(conn)
      step(`journal entries ${from + 1}–${to}`)
    }
    await sql`drop table seed_armoires, seed_casiers, seed_dossiers, seed_fichiers`.execute(conn)
    await sql`set session_replication_role = origin`.execute(conn)
    await sql`analyze`.execute(conn)
    step('analyze')
  })
  const started = performance.now()
  const drifts = await rebuildOrganisation(db, organisationId)
  log(`#   statistics rebuilt from the sources in ${fmt((performance.now() - started) / 1000, 1)} s (${drifts.length} counters set)`)
  await sql`analyze`.execute(db)
}

/** What the kept seed's statistics were built by: the migrations and the rebuild. */
function statsFingerprint(): string {
  const hash = createHash('sha256')
  const migrations = new URL('../../db/migrations/', import.meta.url)
  for (const name of readdirSync(migrations).sort()) hash.update(name).update(readFileSync(new URL(name, migrations)))
  hash.update(readFileSync(new URL('../../plugins/stats/counters.ts', import.meta.url)))
  return hash.digest('hex').slice(0, 16)
}

interface Measure {
  name: string
  /** Answers other than 200 during the measured seconds. */
  errors: number
  p50: number
  p95: number
  p99: number
  requests: number
  rps: number
}

const load = () => `load average ${loadavg().map((l) => l.toFixed(2)).join(' ')} (${cpus().length} cores)`
const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!

/** CLIENTS loops, each sending its next request when the previous answer is read; exact percentiles. */
async function measure(name: string, url: string, headers: Record<string, string>): Promise<Measure> {
  let errors = 0
  const run = async (seconds: number) => {
    const latencies: number[] = []
    const until = performance.now() + seconds * 1000
    await Promise.all(
      Array.from({ length: CLIENTS }, async () => {
        while (performance.now() < until) {
          const started = performance.now()
          const res = await fetch(url, { headers })
          await res.arrayBuffer()
          // A failure is counted and fails the target, but the other targets are still measured.
          if (res.status !== 200) errors++
          else latencies.push(performance.now() - started)
        }
      }),
    )
    return latencies
  }
  await run(WARMUP)
  errors = 0
  const latencies = (await run(DURATION)).sort((a, b) => a - b)
  if (latencies.length === 0) latencies.push(Number.NaN)
  return {
    name,
    errors,
    p50: percentile(latencies, 50),
    p95: percentile(latencies, 95),
    p99: percentile(latencies, 99),
    requests: latencies.length,
    rps: latencies.length / DURATION,
  }
}

await runBench(async (cleanup) => {
  const kept = KEEP ? await keptBenchDatabase(`armoire_bench_stats_${FILES}_${ENTRIES}`) : null
  const database: BenchDatabase = kept ?? (await startBenchDatabase(cleanup))
  const secret = randomBytes(48).toString('base64url')
  const server = async (cacheSeconds: string) => {
    const child = fork(new URL('./stats-server.ts', import.meta.url), [], {
      execArgv: ['--import', 'tsx'],
      env: { ...process.env, BENCH_APP_DATABASE_URL: database.url, BENCH_JWT_SECRET: secret, STATS_CACHE_SECONDS: cacheSeconds },
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    })
    cleanup.defer('stop a server process', () => new Promise<void>((resolve) => (child.connected ? (child.once('exit', () => resolve()), child.disconnect()) : resolve())))
    const { url } = await new Promise<{ url: string }>((resolve, reject) => {
      child.once('message', (m) => resolve(m as { url: string }))
      child.once('exit', (code) => reject(new Error(`server exited with ${code}`)))
    })
    return url
  }
  // Every request computes; the second server reuses an answer while the journal has not moved.
  const base = await server('0')
  const cachedBase = await server('5')
  console.log('# bench:stats')
  console.log(`# ${describeMachine()}`)
  console.log(`# ${database.description}`)
  const warning = machineLoadWarning()
  if (warning) console.log(`# ${warning}`)

  const register = async (organisation: string, signIn = false) => {
    const email = `banc-${organisation.toLowerCase()}@exemple.fr`
    const mot_de_passe = 'Mesure-latence-2026-longue'
    const res = await fetch(`${base}/auth/${signIn ? 'login' : 'register'}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(signIn ? { email, mot_de_passe } : { email, mot_de_passe, nom: 'Banc', organisation }),
    })
    if (res.status !== (signIn ? 200 : 201)) throw new Error(`register: ${res.status} ${await res.text()}`)
    const body = (await res.json()) as { access_token: string; utilisateur: { id: string; organisation_id: string } }
    return { headers: { authorization: `Bearer ${body.access_token}` }, userId: body.utilisateur.id, organisationId: body.utilisateur.organisation_id }
  }
  const db = createDb({ url: database.url, poolMax: 2 })
  cleanup.defer('close the seeding pool', () => db.destroy())
  const fingerprint = statsFingerprint()
  let large, fresh
  if (kept?.reused) {
    large = await register('Grande', true)
    fresh = await register('Petite', true)
    if (kept.fingerprint === fingerprint) console.log(`# seed reused as is (${FILES} files, ${ENTRIES} journal entries; statistics built by ${fingerprint})`)
    else {
      console.log(`# seed reused (${FILES} files, ${ENTRIES} journal entries); migrations or the rebuild changed (${kept.fingerprint} -> ${fingerprint}): statistics rebuilt`)
      const started = performance.now()
      for (const org of [large, fresh]) await rebuildOrganisation(db, org.organisationId)
      await sql`analyze`.execute(db)
      console.log(`#   rebuilt in ${fmt((performance.now() - started) / 1000, 1)} s`)
      await kept.complete(fingerprint)
    }
  } else {
    large = await register('Grande')
    fresh = await register('Petite')
    console.log(`# seeding ${FILES} files and ${ENTRIES} journal entries over two years, ${MEMBERS} members${kept ? ' (kept for the next runs)' : ''}`)
    const started = performance.now()
    await seed(db, large.organisationId, large.userId, FILES, ENTRIES, (line) => console.log(line))
    console.log(`# seeded in ${fmt((performance.now() - started) / 1000, 0)} s`)
    await seed(db, fresh.organisationId, fresh.userId, 100, 100, () => {})
    await kept?.complete(fingerprint)
    // Seeding outlasts an access token.
    large = await register('Grande', true)
    fresh = await register('Petite', true)
  }
  const { rows: member } = await sql<{ id: string }>`select id from utilisateurs where organisation_id = ${large.organisationId} and role = 'contributeur' limit 1`.execute(db)
  const { rows: freshMember } = await sql<{ id: string }>`select id from utilisateurs where organisation_id = ${fresh.organisationId} and role = 'contributeur' limit 1`.execute(db)

  const check = async (headers: Record<string, string>, files: number) => {
    const res = await fetch(`${base}/dashboard/global`, { headers })
    const body = (await res.json()) as { comptes?: { fichiers: number } }
    if (res.status !== 200 || body.comptes?.fichiers !== files) throw new Error(`the dashboard answers ${res.status}, ${JSON.stringify(body).slice(0, 300)}, not ${files} files`)
  }
  await check(large.headers, FILES)
  await check(fresh.headers, 100)

  const au = new Date().toISOString().slice(0, 10)
  const year = `du=${new Date(Date.now() - 364 * 86_400_000).toISOString().slice(0, 10)}&au=${au}&granularite=mois`
  const cases = [
    ['reference: GET /me', '/me'],
    ['global, 30 days', '/dashboard/global'],
    ['global, 12 months by month', `/dashboard/global?${year}`],
    ['member, 30 days', (id: string) => `/dashboard/utilisateur/${id}`],
    ['member, 12 months by month', (id: string) => `/dashboard/utilisateur/${id}?${year}`],
  ] as const
  /** Every case on one server, large then fresh; answers whether every dashboard met the targets. */
  const measureAll = async (server: string, what: string) => {
    const rows: (string | number)[][] = []
    let pass = true
    for (const [label, path] of cases) {
      const big = await measure(`${label}, large`, `${server}${typeof path === 'string' ? path : path(member[0]!.id)}`, large.headers)
      const small = await measure(`${label}, fresh`, `${server}${typeof path === 'string' ? path : path(freshMember[0]!.id)}`, fresh.headers)
      const ratio = big.p95 / small.p95
      const reference = label.startsWith('reference')
      const ok = big.p95 < TARGET_P95_MS && ratio <= TARGET_RATIO && big.errors + small.errors === 0
      if (!reference) pass &&= ok
      for (const m of [big, small]) {
        rows.push([m.name, fmt(m.p50, 1), fmt(m.p95, 1), fmt(m.p99, 1), fmt(m.rps, 0), m.requests, m.errors, m === big ? fmt(ratio, 2) : '', m === big && !reference ? (ok ? 'PASS' : 'FAIL') : ''])
      }
    }
    console.log(table(['target', 'p50 ms', 'p95 ms', 'p99 ms', 'req/s', 'requests', 'errors', 'p95 ratio', `p95 < ${TARGET_P95_MS} ms, ratio ≤ ${TARGET_RATIO}`], rows))
    console.log(`${pass ? 'PASS' : 'FAIL'} (${what})`)
    return pass
  }
  console.log(`# ${CLIENTS} concurrent clients, ${WARMUP} s warm-up then ${DURATION} s per target; cache off (every request computes)`)
  // The target is judged here: with the cache on, 20 clients reading one organisation that
  // nothing writes to measure the cache's hits, not the dashboards.
  const pass = await measureAll(base, 'cache off')
  console.log(`# ${load()}`)
  console.log('# the same, cache on (STATS_CACHE_SECONDS=5; each request still checks the journal has not moved)')
  await measureAll(cachedBase, 'cache on')
  console.log(`# ${load()}`)
  if (!pass) process.exitCode = 1
})
