/**
 * `npm run keys:rotate`: re-wraps every live data key under the newest master key of
 * MASTER_KEYS. Blobs are not touched. Each batch commits on its own, so an interrupted run
 * is resumed by running it again. Once it reports nothing left, older master key versions
 * can be removed from MASTER_KEYS.
 */
import { type Kysely, sql } from 'kysely'
import type { DB } from '../db/types.ts'
import { keyAad } from '../plugins/documents/public.ts'
import { recordEntry } from '../src/audit.ts'
import { loadConfig } from '../src/config.ts'
import { type KeySource, rewrap } from '../src/crypto/keys.ts'
import { createDb } from '../src/db.ts'
import { withDevDefaults } from '../src/dev-defaults.ts'
import { loadKeySource } from '../src/keys.ts'

export interface RotationOptions {
  batchSize?: number
  /** Stops after this many batches (tests simulate an interrupted run with it). */
  maxBatches?: number
  log?: (line: string) => void
}

export interface RotationResult {
  rewrapped: number
  /** Live keys still under an older master key; 0 when the rotation is complete. */
  remaining: number
  currentVersion: number
}

export async function rotateMasterKeys(db: Kysely<DB>, keys: KeySource, opts: RotationOptions = {}): Promise<RotationResult> {
  const { batchSize = 500, maxBatches = Number.POSITIVE_INFINITY, log = () => {} } = opts
  const current = keys.currentVersion
  const perOrganisation = new Map<string, number>()
  let rewrapped = 0
  for (let batch = 0; batch < maxBatches; batch++) {
    const done = await db.transaction().execute(async (trx) => {
      // Locked, so a purge shredding one of these keys waits, and never sees it come back.
      const rows = await trx
        .selectFrom('cles_chiffrement')
        .select(['id', 'organisation_id', 'cle_enveloppee', 'version_cle_maitre'])
        .where('cle_enveloppee', 'is not', null)
        .where('version_cle_maitre', '<>', current)
        .orderBy('id')
        .limit(batchSize)
        .forUpdate()
        .skipLocked()
        .execute()
      for (const row of rows) {
        const next = await rewrap(keys, { wrapped: row.cle_enveloppee!, masterKeyVersion: row.version_cle_maitre }, keyAad(row.id))
        await trx
          .updateTable('cles_chiffrement')
          .set({ cle_enveloppee: next.wrapped, version_cle_maitre: next.masterKeyVersion, reenveloppee_at: sql`now()` })
          .where('id', '=', row.id)
          .execute()
        perOrganisation.set(row.organisation_id, (perOrganisation.get(row.organisation_id) ?? 0) + 1)
      }
      rewrapped += rows.length
      if (rows.length > 0) log(`re-wrapped ${rewrapped} data keys under master key version ${current}`)
      return rows.length < batchSize
    })
    if (done) break
  }
  for (const [organisationId, count] of perOrganisation) {
    await db.transaction().execute((trx) =>
      recordEntry(trx, {
        organisationId,
        userId: null,
        action: 'MASTER_KEY_ROTATED',
        target: { type: 'organisation', id: organisationId },
        details: { cles_reenveloppees: count, version_cle_maitre: current },
      }),
    )
  }
  const { n } = await db
    .selectFrom('cles_chiffrement')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('cle_enveloppee', 'is not', null)
    .where('version_cle_maitre', '<>', current)
    .executeTakeFirstOrThrow()
  return { rewrapped, remaining: Number(n), currentVersion: current }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const runtime = await withDevDefaults(loadConfig(), (line) => console.log(line))
  const { config } = runtime
  const keys = await loadKeySource(
    { masterKey: config.MASTER_KEY, masterKeys: config.MASTER_KEYS, storageDir: config.STORAGE_DIR, production: config.NODE_ENV === 'production' },
    { warn: (_details, message) => console.warn(message) },
  )
  const db = createDb({ url: config.DATABASE_URL, poolMax: 2, applicationName: 'armoire-keys-rotate' })
  try {
    const result = await rotateMasterKeys(db, keys, { log: (line) => console.log(line) })
    if (result.remaining > 0) {
      console.error(`${result.remaining} data keys are still under an older master key (locked by a running transaction?): run again`)
      process.exitCode = 1
    } else {
      console.log(
        `done: ${result.rewrapped} data keys re-wrapped; every live key is under master key version ${result.currentVersion}, ` +
          'older versions can be removed from MASTER_KEYS',
      )
    }
  } finally {
    await db.destroy()
    await runtime.embedded?.stop()
  }
}
