/**
 * The production shape on one machine: N (2) real API processes (`src/server.ts` through
 * `startInstance`) on one PostgreSQL database, blobs in one bucket of a local S3-compatible
 * server (s3rver), rate-limit counters in Redis under a prefix of the cluster's own, jobs on,
 * and one master key, as replicas behind a proxy share them. Each instance has its own
 * STORAGE_DIR: nothing may depend on a local disk shared between them.
 *
 * `startCluster(t, opts)` answers an SDK client per instance (`createArmoireClient`, the
 * generated types, as a front end talks to it), a Kysely handle on the database for
 * assertions, and, when asked, the SMTP sink and the fake FeexPay the instances use.
 * Everything is stopped at the test's teardown. Redis: `TEST_REDIS_URL`, else 127.0.0.1:6379.
 * The load bench (`load.ts`) passes its own database and a Cleanup as the test context.
 */
import { randomBytes } from 'node:crypto'
import type { Kysely } from 'kysely'
import type { DB } from '../../db/types.ts'
import { type ArmoireClient, type ArmoireTokens, createArmoireClient } from '../../openapi/sdk/index.ts'
import { createDb } from '../../src/db.ts'
import { type TestContext, testDatabase, testStorage } from '../helpers/build.ts'
import { type FakeFeexPay, feexpayEnv, startFakeFeexPay } from '../helpers/feexpay.ts'
import { type Instance, startInstance } from '../helpers/instance.ts'
import { type LocalS3, startS3rver } from '../helpers/s3rver.ts'
import { type SmtpSink, smtpSink } from '../helpers/smtp-sink.ts'

export const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'

export interface ClusterOptions {
  /** How many API processes; 2 by default. */
  instances?: number
  /** Variables for every instance, over the cluster's (rate limits, polling…). */
  env?: Record<string, string>
  /** A database to use as it is (migrated at start by the instances); a fresh clone of the template otherwise. */
  databaseUrl?: string
  /** Start an SMTP sink and point SMTP_URL at it. */
  smtp?: boolean
  /** Start a fake FeexPay and point FEEXPAY_* at it. */
  feexpay?: boolean
  /** How long an instance may take to listen; a shared, busy machine needs minutes. */
  startTimeoutMs?: number
}

export interface Cluster {
  instances: Instance[]
  /** One SDK client per instance, without a session. */
  clients: ArmoireClient[]
  /** A new client on instance `i`, with a session (say, one opened through another instance). */
  client(i: number, tokens?: ArmoireTokens | null): ArmoireClient
  db: Kysely<DB>
  databaseUrl: string
  s3: LocalS3
  redisPrefix: string
  smtp: SmtpSink | null
  feexpay: FakeFeexPay | null
}

export async function startCluster(t: TestContext, opts: ClusterOptions = {}): Promise<Cluster> {
  const databaseUrl = opts.databaseUrl ?? (await testDatabase(t))
  const s3 = await startS3rver(t, 'armoire-cluster')
  const smtp = opts.smtp ? await smtpSink(t) : null
  const feexpay = opts.feexpay ? await startFakeFeexPay(t) : null
  const redisPrefix = `armoire-cluster-${randomBytes(4).toString('hex')}:`
  const shared: Record<string, string> = {
    DATABASE_URL: databaseUrl,
    ...s3.env(),
    MASTER_KEY: randomBytes(32).toString('base64'),
    REDIS_URL,
    REDIS_PREFIX: redisPrefix,
    JOBS_ENABLED: 'true',
    ...(smtp ? { SMTP_URL: smtp.url } : {}),
    ...(feexpay ? feexpayEnv(feexpay) : {}),
    ...opts.env,
  }
  const count = opts.instances ?? 2
  const storages = await Promise.all(Array.from({ length: count }, () => testStorage(t)))
  // Started together, as replicas are: migrations and queue creation take their locks.
  const instances = await Promise.all(storages.map((dir) => startInstance(t, { ...shared, STORAGE_DIR: dir }, opts.startTimeoutMs ?? 240_000)))
  const db = createDb({ url: databaseUrl, poolMax: 3, applicationName: 'armoire-cluster-test' })
  t.teardown(() => db.destroy())
  const client = (i: number, tokens: ArmoireTokens | null = null) => {
    const instance = instances[i]
    if (!instance) throw new Error(`no instance ${i}`)
    return createArmoireClient({ baseUrl: instance.url, tokens })
  }
  return {
    instances,
    clients: instances.map((_, i) => client(i)),
    client,
    db,
    databaseUrl,
    s3,
    redisPrefix,
    smtp,
    feexpay,
  }
}
