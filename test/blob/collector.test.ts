import { randomBytes } from 'node:crypto'
import { mkdir, utimes, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { sql } from 'kysely'
import t from 'tap'
import { registeredBlobColumns } from '../../src/blob-collector.ts'
import { createLocalBlobStore } from '../../src/blob/local.ts'
import { randomBlobName } from '../../src/blob/store.ts'
import { localBlobRoot } from '../../src/blobs.ts'
import { signUp } from '../helpers/auth.ts'
import { build, testDatabase, testStorage } from '../helpers/build.ts'
import { backup as backupOf } from '../backup/helpers.ts'
import { tree, uploadFile } from '../documents/helpers.ts'

const HOUR = 3_600_000

t.test('every column that names a blob is registered with the collector', async (t) => {
  await import('../../src/app.ts')
  const registered = registeredBlobColumns().map((c) => `${c.table}.${c.column}`).sort()
  t.same(registered, ['exports_rgpd.blob', 'factures_pdf.blob', 'sauvegardes.chemin', 'versions_fichiers.blob'])
  // A new table naming blobs the way every one does today (`blob`, `chemin`) and not registered
  // would have its blobs removed as orphans: the schema is the judge.
  const app = await build(t, { JOBS_ENABLED: 'false' })
  const { rows } = await sql<{ name: string }>`
    select table_name || '.' || column_name as name from information_schema.columns
    where table_schema = 'public' and (column_name ~ 'blob' or column_name = 'chemin') order by 1`.execute(app.db)
  t.same(rows.map((r) => r.name), registered, 'the schema’s blob columns, no more, no fewer')
})

/** A blob file of no row, as a killed writer leaves it, `ageMs` old. */
async function orphan(root: string, ageMs: number, where: 'tmp' | 'final'): Promise<string> {
  const name = randomBlobName()
  const dir = where === 'tmp' ? join(root, 'tmp') : join(root, name.slice(0, 2), name.slice(2, 4))
  await mkdir(dir, { recursive: true })
  await writeFile(join(dir, name), randomBytes(64))
  const when = new Date(Date.now() - ageMs)
  await utimes(join(dir, name), when, when)
  return name
}

async function age(root: string, name: string, ageMs: number) {
  const when = new Date(Date.now() - ageMs)
  await utimes(join(root, name.slice(0, 2), name.slice(2, 4), name), when, when)
}

t.test('the collector removes old unreferenced blobs from both stores, in batches, and journals the count', async (t) => {
  const archives = await testStorage(t)
  const env = {
    DATABASE_URL: await testDatabase(t),
    STORAGE_DIR: await testStorage(t),
    BACKUP_BLOB_DRIVER: 'local',
    BACKUP_BLOB_DIR: archives,
    BLOB_ORPHAN_GRACE_HOURS: '2',
  }
  const app = await build(t, env)
  const admin = await signUp(app)
  const { armoire, dossier } = await tree(app, admin)
  const content = randomBytes(100_000)
  const file = await uploadFile(app, admin, dossier, content)
  const saved = await backupOf(app, admin, { type: 'armoire', cible_id: armoire })
  t.equal(saved.statut, 'terminee')

  const root = localBlobRoot(env)
  const archiveRoot = localBlobRoot({ STORAGE_DIR: archives })
  const version = await app.db.selectFrom('versions_fichiers').select('blob').where('id', '=', file.version.id).executeTakeFirstOrThrow()
  const row = await app.db.selectFrom('sauvegardes').select('chemin').where('id', '=', saved.id).executeTakeFirstOrThrow()
  // Referenced blobs as old as the orphans: only their rows keep them.
  await age(root, version.blob, 3 * HOUR)
  await age(archiveRoot, row.chemin!, 3 * HOUR)
  // More than two batches of killed uploads' temp files, one orphan under a final name in each
  // store, and a young one: possibly an upload in flight.
  for (let i = 0; i < 2100; i++) await orphan(root, 3 * HOUR, 'tmp')
  const old = await orphan(root, 3 * HOUR, 'final')
  const oldArchive = await orphan(archiveRoot, 3 * HOUR, 'final')
  const young = await orphan(root, HOUR, 'tmp')

  const result = await app.blobCollector.collect()
  t.comment(`collector: ${JSON.stringify(result)}`)
  t.match(result, { supprimes: 2102, recents: 1, examines: 2105 })
  const main = createLocalBlobStore(root)
  const other = createLocalBlobStore(archiveRoot)
  t.notOk(await main.exists(old), 'an old orphan is removed')
  t.notOk(await other.exists(oldArchive), 'in the archive store too')
  const left: string[] = []
  for await (const entry of main.list()) left.push(entry.name)
  t.same(left.sort(), [version.blob, young].sort(), 'the main store keeps the version’s blob and the young orphan')
  t.ok(await other.exists(row.chemin!), 'the archive is kept')
  const download = await app.inject({ method: 'GET', url: `/fichiers/${file.fichier.id}/contenu`, headers: admin.headers })
  t.ok(download.rawPayload.equals(content), 'the file still downloads')
  t.equal((await app.inject({ method: 'GET', url: `/sauvegardes/${saved.id}/archive`, headers: admin.headers })).statusCode, 200, 'the archive still downloads')

  const entries = await app.db.selectFrom('journal_activite').selectAll().where('action', '=', 'ORPHAN_BLOBS_REMOVED').execute()
  t.match(entries, [{ organisation_id: null, utilisateur_id: null, details: { supprimes: 2102, recents: 1, delai_grace_heures: 2, magasins: 2 } }], 'one system entry with the count')
  t.match(await app.blobCollector.collect(), { supprimes: 0 }, 'a second pass finds nothing')
  t.equal((await app.db.selectFrom('journal_activite').select('id').where('action', '=', 'ORPHAN_BLOBS_REMOVED').execute()).length, 1, 'and journals nothing')
  const schedule = await sql<{ cron: string }>`select cron from pgboss.schedule where name = 'blobs.orphelins'`.execute(app.db)
  t.same(schedule.rows, [{ cron: '29 * * * *' }], 'scheduled hourly, once across instances (pg-boss)')
})
