import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { PassThrough } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { localBlobRoot } from '../../src/blobs.ts'
import { signUp } from '../helpers/auth.ts'
import { build, testDatabase, testStorage } from '../helpers/build.ts'
import { testEnv, withAdmin } from '../helpers/database.ts'
import { filesUnder, tree } from './helpers.ts'

/** Polls until `check` holds. */
async function eventually(check: () => Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if (await check()) return
    await sleep(25)
  }
  throw new Error(`never: ${what}`)
}

/** Refuses new connections to the database and ends those open (the test's app's pool included), or lets them in again. */
async function setConnections(url: string, allowed: boolean): Promise<void> {
  const name = new URL(url).pathname.slice(1)
  await withAdmin(testEnv().adminUrl, async (c) => {
    await c.query(`alter database "${name}" allow_connections ${allowed}`)
    if (!allowed) await c.query('select pg_terminate_backend(pid) from pg_stat_activity where datname = $1', [name])
  })
}

t.test('an upload whose transaction cannot begin leaves no blob behind', async (t) => {
  const url = await testDatabase(t)
  const storage = await testStorage(t)
  const app = await build(t, { DATABASE_URL: url, STORAGE_DIR: storage })
  t.teardown(() => setConnections(url, true))
  const blobRoot = localBlobRoot({ STORAGE_DIR: storage })
  const admin = await signUp(app)
  const { dossier } = await tree(app, admin)
  t.same(await filesUnder(blobRoot), [], 'no blob yet')

  const boundary = 'armoire-unbegun'
  const body = new PassThrough()
  const answer = app.inject({
    method: 'POST',
    url: `/dossiers/${dossier}/fichiers`,
    headers: { ...admin.headers, 'content-type': `multipart/form-data; boundary=${boundary}` },
    payload: body,
  })
  body.write(`--${boundary}\r\nContent-Disposition: form-data; name="fichier"; filename="sans-transaction.bin"\r\n\r\n`)
  body.write(randomBytes(400_000))
  // The checks before the content are done and the encrypted blob is being written ahead of the transaction.
  await eventually(async () => (await filesUnder(join(blobRoot, 'tmp'))).length > 0, 'the upload started')
  await setConnections(url, false)
  body.end(Buffer.concat([randomBytes(100_000), Buffer.from(`\r\n--${boundary}--\r\n`)]))
  const res = await answer
  t.ok(res.statusCode >= 500, `the upload fails (${res.statusCode} ${res.body})`)

  await eventually(async () => (await filesUnder(blobRoot)).length === 0, 'no blob left')
  t.same(await filesUnder(blobRoot), [], 'neither the blob written ahead nor a temp file is left')
  await setConnections(url, true)
  const rows = await app.db.selectFrom('versions_fichiers').select('id').execute()
  t.same(rows, [], 'and no version names it')
})
