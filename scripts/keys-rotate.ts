/**
 * `npm run keys:rotate`: re-wraps every secret wrapped by the master key (each column
 * registered with `registerWrappedColumn`: data keys, TOTP secrets, …) under the newest
 * master key of MASTER_KEYS, or of KMS_KEY_IDS through KMS. Blobs are not touched. Each batch
 * commits on its own, so an interrupted run is resumed by running it again. Only when nothing,
 * of any kind, is left under an older version does it say that those versions can be removed.
 */
import { type Kysely, sql } from 'kysely'
import type { DB } from '../db/types.ts'
// The app's modules, domains included, register their wrapped columns as they load.
import '../src/app.ts'
import { recordEntry } from '../src/audit.ts'
import { loadConfig } from '../src/config.ts'
import { type KeySource, KeyUnwrapError, rewrap } from '../src/crypto/keys.ts'
import { createDb } from '../src/db.ts'
import { withDevDefaults } from '../src/dev-defaults.ts'
import { keysOptions, loadKeySource, registeredWrappedColumns, type WrappedColumn } from '../src/keys.ts'

export interface RotationOptions {
  batchSize?: number
  /** Stops after this many batches of a kind (tests simulate an interrupted run with it). */
  maxBatches?: number
  log?: (line: string) => void
}

export interface KindReport {
  kind: string
  rewrapped: number
  /** Secrets whose master key version this key source does not hold: they cannot be read. */
  unreadable: number
  /** Secrets still under an older version, by version, once the run is over. */
  remainingByVersion: Record<string, number>
}

export interface RotationResult {
  currentVersion: number
  kinds: KindReport[]
  rewrapped: number
  /** Secrets of any kind still under an older master key; 0 when the rotation is complete. */
  remaining: number
  /** Older versions of the key source that nothing depends on any more. */
  removable: number[]
}

interface WrappedRow {
  id: string
  organisation_id: string | null
  wrapped: Buffer
  version: number
}

/** Re-wraps one column's secrets in committed batches, by id, skipping rows locked elsewhere. */
async function rotateColumn(
  db: Kysely<DB>,
  keys: KeySource,
  column: WrappedColumn,
  opts: Required<RotationOptions>,
  perOrganisation: Map<string, Record<string, number>>,
): Promise<Omit<KindReport, 'remainingByVersion'>> {
  const current = keys.currentVersion
  const report = { kind: column.kind, rewrapped: 0, unreadable: 0 }
  let after: string | null = null
  for (let batch = 0; batch < opts.maxBatches; batch++) {
    const done = await db.transaction().execute(async (trx) => {
      // Locked, so whatever destroys one of these secrets (a purge shredding a key) waits, and never sees it come back.
      const { rows } = await sql<WrappedRow>`
        select ${sql.ref(column.id)}::text as id, ${sql.ref(column.organisation)} as organisation_id,
          ${sql.ref(column.wrapped)} as wrapped, ${sql.ref(column.version)} as version
        from ${sql.table(column.table)}
        where ${sql.ref(column.wrapped)} is not null and ${sql.ref(column.version)} <> ${current}
          ${after === null ? sql`` : sql`and ${sql.ref(column.id)}::text > ${after}`}
        order by ${sql.ref(column.id)}::text
        limit ${opts.batchSize}
        for update skip locked`.execute(trx)
      for (const row of rows) {
        let next
        try {
          next = await rewrap(keys, { wrapped: row.wrapped, masterKeyVersion: row.version }, column.aad(row.id))
        } catch (error) {
          if (!(error instanceof KeyUnwrapError)) throw error
          report.unreadable++
          continue
        }
        await sql`update ${sql.table(column.table)} set ${sql.ref(column.wrapped)} = ${next.wrapped},
            ${sql.ref(column.version)} = ${next.masterKeyVersion}
            ${column.rewrappedAt ? sql`, ${sql.ref(column.rewrappedAt)} = now()` : sql``}
          where ${sql.ref(column.id)}::text = ${row.id}`.execute(trx)
        report.rewrapped++
        if (row.organisation_id) {
          const counts = perOrganisation.get(row.organisation_id) ?? {}
          counts[column.kind] = (counts[column.kind] ?? 0) + 1
          perOrganisation.set(row.organisation_id, counts)
        }
      }
      after = rows.at(-1)?.id ?? after
      if (rows.length > 0) opts.log(`${column.kind}: ${report.rewrapped} re-wrapped under master key version ${current}`)
      return rows.length < opts.batchSize
    })
    if (done) break
  }
  return report
}

/** What still depends on each master key version, for one column. */
async function versionsInUse(db: Kysely<DB>, column: WrappedColumn): Promise<Map<number, number>> {
  const { rows } = await sql<{ version: number; n: string }>`
    select ${sql.ref(column.version)} as version, count(*) as n from ${sql.table(column.table)}
    where ${sql.ref(column.wrapped)} is not null group by 1`.execute(db)
  return new Map(rows.map((r) => [Number(r.version), Number(r.n)]))
}

export async function rotateMasterKeys(db: Kysely<DB>, keys: KeySource, options: RotationOptions = {}): Promise<RotationResult> {
  const opts: Required<RotationOptions> = { batchSize: 500, maxBatches: Number.POSITIVE_INFINITY, log: () => {}, ...options }
  const current = keys.currentVersion
  const perOrganisation = new Map<string, Record<string, number>>()
  const kinds: KindReport[] = []
  const inUse = new Set<number>()
  for (const column of registeredWrappedColumns()) {
    const report = await rotateColumn(db, keys, column, opts, perOrganisation)
    const remainingByVersion: Record<string, number> = {}
    for (const [version, n] of await versionsInUse(db, column)) {
      inUse.add(version)
      if (version !== current) remainingByVersion[version] = n
    }
    kinds.push({ ...report, remainingByVersion })
  }
  for (const [organisationId, counts] of perOrganisation) {
    await db.transaction().execute((trx) =>
      recordEntry(trx, {
        organisationId,
        userId: null,
        action: 'MASTER_KEY_ROTATED',
        target: { type: 'organisation', id: organisationId },
        details: { reenveloppes: counts, cles_reenveloppees: counts.cles_chiffrement ?? 0, version_cle_maitre: current },
      }),
    )
  }
  const remaining = kinds.reduce((sum, k) => sum + Object.values(k.remainingByVersion).reduce((a, b) => a + b, 0), 0)
  const older = keys.versions ?? Array.from({ length: current - 1 }, (_, i) => i + 1)
  return {
    currentVersion: current,
    kinds,
    rewrapped: kinds.reduce((sum, k) => sum + k.rewrapped, 0),
    remaining,
    removable: older.filter((v) => v !== current && !inUse.has(v)),
  }
}

/** The report the script prints: one line per kind, then what may be removed from `setting`, or why not. */
export function describeRotation(result: RotationResult, setting: 'MASTER_KEYS' | 'KMS_KEY_IDS' = 'MASTER_KEYS'): { lines: string[]; complete: boolean } {
  const lines = result.kinds.map((k) => {
    const left = Object.entries(k.remainingByVersion).map(([v, n]) => `${n} under version ${v}`)
    const unreadable = k.unreadable > 0 ? `, ${k.unreadable} unreadable (their master key version is not in ${setting})` : ''
    return `${k.kind}: ${k.rewrapped} re-wrapped${unreadable}; ${left.length > 0 ? `still ${left.join(', ')}` : `all under version ${result.currentVersion}`}`
  })
  if (result.remaining > 0) {
    const versions = [...new Set(result.kinds.flatMap((k) => Object.keys(k.remainingByVersion)))].join(', ')
    lines.push(
      `not done: ${result.remaining} secrets still depend on master key version(s) ${versions}; keep them in ${setting} ` +
        '(rows locked by a running transaction: run again; unreadable ones: restore their key, then run again)',
    )
  } else {
    lines.push(
      `done: ${result.rewrapped} secrets re-wrapped; every wrapped secret is under master key version ${result.currentVersion}` +
        (result.removable.length > 0 ? `, versions ${result.removable.join(', ')} can be removed from ${setting}` : ''),
    )
  }
  return { lines, complete: result.remaining === 0 }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const runtime = await withDevDefaults(loadConfig(), (line) => console.log(line))
  const { config } = runtime
  const keys = await loadKeySource(keysOptions(config), { warn: (_details, message) => console.warn(message) })
  const db = createDb({ url: config.DATABASE_URL, poolMax: 2, applicationName: 'armoire-keys-rotate' })
  try {
    const result = await rotateMasterKeys(db, keys, { log: (line) => console.log(line) })
    const { lines, complete } = describeRotation(result, config.MASTER_KEY_PROVIDER === 'kms' ? 'KMS_KEY_IDS' : 'MASTER_KEYS')
    for (const line of lines) (complete ? console.log : console.error)(line)
    if (!complete) process.exitCode = 1
  } finally {
    await db.destroy()
    await runtime.embedded?.stop()
  }
}
