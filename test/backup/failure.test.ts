import { randomBytes } from 'node:crypto'
import t, { type Test } from 'tap'
import { localBlobRoot } from '../../src/blobs.ts'
import { signUp } from '../helpers/auth.ts'
import { build, testDatabase, testStorage } from '../helpers/build.ts'
import { startInstance } from '../helpers/instance.ts'
import { filesUnder, journal, tree, uploadFile } from '../documents/helpers.ts'
import type { RestaurationDto } from '../../openapi/backup.ts'
import { backup as backupOf, settled } from './helpers.ts'

// Real servers started, killed and restarted: on a busy machine each start takes tens of seconds.
t.setTimeout(600_000)

/** A fresh database and storage, an organisation and `count` random files of `size` bytes in one folder. */
async function seeded(t: Test, count: number, size: number) {
  const databaseUrl = await testDatabase(t)
  const storage = await testStorage(t)
  const env = { DATABASE_URL: databaseUrl, STORAGE_DIR: storage }
  const setup = await build(t, env)
  const admin = await signUp(setup)
  const { armoire, dossier } = await tree(setup, admin)
  const contents = new Map<string, Buffer>()
  for (let i = 0; i < count; i++) {
    const content = randomBytes(size)
    const uploaded = await uploadFile(setup, admin, dossier, content, { filename: `piece-${i}.bin` })
    contents.set(uploaded.fichier.id, content)
  }
  return { env, storage, setup, admin, armoire, contents }
}

t.test('a backup killed mid-way never shows terminee; the restart fails it and removes its partial blob', async (t) => {
  const { env, storage, setup, admin, armoire } = await seeded(t, 40, 2 * 1024 * 1024)
  await setup.close()

  const server = await startInstance(t, { ...env, BACKUP_STALE_SECONDS: '2' })
  const res = await fetch(`${server.url}/sauvegardes`, {
    method: 'POST',
    headers: { ...admin.headers, 'content-type': 'application/json' },
    body: JSON.stringify({ type: 'armoire', cible_id: armoire }),
  })
  t.equal(res.status, 202)
  const { id } = (await res.json()) as { id: string }

  // A second app on the same database, without jobs, to watch.
  const watcher = await build(t, { ...env, JOBS_ENABLED: 'false' })
  const row = () => watcher.db.selectFrom('sauvegardes').selectAll().where('id', '=', id).executeTakeFirstOrThrow()
  let seen = await row()
  for (let i = 0; i < 2000 && seen.chemin === null && seen.statut !== 'terminee'; i++) {
    await new Promise((r) => setTimeout(r, 5))
    seen = await row()
  }
  t.equal(seen.statut, 'en_cours', 'caught while the archive is being written')
  await server.kill()
  const killed = await row()
  t.equal(killed.statut, 'en_cours', 'killed: never terminee')
  t.ok(killed.chemin)
  const blobRoot = localBlobRoot({ STORAGE_DIR: storage })
  t.ok((await filesUnder(blobRoot)).some((f) => f.endsWith(killed.chemin!)), 'a partial blob is left by the kill')
  await watcher.close()

  // The next start notices the stale heartbeat.
  await new Promise((r) => setTimeout(r, 2_500))
  const restarted = await build(t, { ...env, BACKUP_STALE_SECONDS: '2' })
  const failed = await settled(restarted, admin, `/sauvegardes/${id}`)
  t.match(failed, { statut: 'echec', erreur: { code: 'BACKUP_INTERRUPTED', detail: /interrompue/ }, taille: null, sha256: null })
  t.notOk((await filesUnder(blobRoot)).some((f) => f.endsWith(killed.chemin!)), 'the partial blob is removed')
  const key = await restarted.db.selectFrom('cles_chiffrement').selectAll().where('id', '=', killed.cle_id!).executeTakeFirstOrThrow()
  t.equal(key.cle_enveloppee, null, 'its key is shredded')
  t.match((await journal(restarted, admin.organisationId)).filter((e) => e.cible_id === id).map((e) => e.action), [
    'BACKUP_REQUESTED',
    'BACKUP_STARTED',
    'BACKUP_FAILED',
  ])
  const archive = await restarted.inject({ method: 'GET', url: `/sauvegardes/${id}/archive`, headers: admin.headers })
  t.equal(archive.statusCode, 409)
  t.equal(archive.json().code, 'BACKUP_NOT_READY')
  t.comment(`backup killed (kill -9) with its archive ${killed.chemin} being written; restart: echec BACKUP_INTERRUPTED, partial archive removed, key shredded`)

  // The row named the archive before a byte of it was written: the recovery removed it, and the
  // collector (grace 0 h, as a day later) finds nothing more.
  const collector = await build(t, { ...env, JOBS_ENABLED: 'false', BLOB_ORPHAN_GRACE_HOURS: '0' })
  const swept = await collector.blobCollector.collect()
  t.comment(`collector after the backup's recovery: ${JSON.stringify(swept)}`)
  t.match(swept, { supprimes: 0, examines: 40 }, 'no orphan: the 40 files’ blobs only')
})

t.test('a restore killed mid-way is failed on restart; re-run, it completes and skips what was already restored, nothing twice', async (t) => {
  const { env, setup, admin, armoire, contents } = await seeded(t, 40, 1024 * 1024)
  const saved = await backupOf(setup, admin, { type: 'armoire', cible_id: armoire })
  t.equal(saved.statut, 'terminee')
  // The armoire is gone for good: the restore recreates every file.
  t.equal((await setup.inject({ method: 'DELETE', url: `/armoires/${armoire}?recursif=true`, headers: admin.headers })).statusCode, 204)
  t.equal((await setup.inject({ method: 'DELETE', url: `/corbeille/armoire/${armoire}`, headers: admin.headers })).statusCode, 204)
  await setup.close()

  const server = await startInstance(t, { ...env, BACKUP_STALE_SECONDS: '2' })
  const requestRestore = () =>
    fetch(`${server.url}/sauvegardes/${saved.id}/restaurer`, {
      method: 'POST',
      headers: { ...admin.headers, 'content-type': 'application/json' },
      body: JSON.stringify({}),
    })
  const res = await requestRestore()
  t.equal(res.status, 202)
  const { id } = (await res.json()) as { id: string }

  const watcher = await build(t, { ...env, JOBS_ENABLED: 'false' })
  const files = () => watcher.db.selectFrom('fichiers').select(['id', 'nom']).where('organisation_id', '=', admin.organisationId).execute()
  let restored = await files()
  for (let i = 0; i < 4000 && restored.length < 3; i++) {
    await new Promise((r) => setTimeout(r, 5))
    restored = await files()
  }
  await server.kill()
  const killed = await watcher.db.selectFrom('restaurations').selectAll().where('id', '=', id).executeTakeFirstOrThrow()
  const before = await files()
  t.equal(killed.statut, 'en_cours', 'killed mid-way: never terminee')
  t.ok(before.length >= 3 && before.length < 40, `killed with ${before.length} of 40 files restored`)
  await watcher.close()

  await new Promise((r) => setTimeout(r, 2_500))
  const restarted = await build(t, { ...env, BACKUP_STALE_SECONDS: '2' })
  const failed = await settled<RestaurationDto>(restarted, admin, `/restaurations/${id}`)
  t.match(failed, { statut: 'echec', erreur: { code: 'RESTORE_INTERRUPTED', detail: /interrompue/ } })
  const again = await restarted.inject({ method: 'POST', url: `/sauvegardes/${saved.id}/restaurer`, headers: admin.headers, payload: {} })
  t.equal(again.statusCode, 202)
  const done = await settled<RestaurationDto>(restarted, admin, `/restaurations/${again.json().id}`)
  const after = await restarted.db.selectFrom('fichiers').select(['id', 'nom']).where('organisation_id', '=', admin.organisationId).execute()
  t.match(done, { statut: 'terminee', rapport: { echecs: 0, renommes: 0, nouvelles_versions: 0 } })
  t.equal(done.rapport!.identiques, before.length, 'what the killed run restored is skipped as identical')
  t.equal(done.rapport!.crees, 40 - before.length, 'the rest is created')
  t.match(done.rapport!.elements.filter((e) => e.type !== 'fichier').map((e) => e.action), ['existant', 'existant', 'existant'], 'the containers the killed run made are kept')
  t.equal(after.length, 40, 'every file once')
  t.same(new Set(after.map((f) => f.id)), new Set(contents.keys()), 'under their original ids, none duplicated')
  t.equal(new Set(after.map((f) => f.nom)).size, 40, 'no renamed copy')
  const versions = await restarted.db.selectFrom('versions_fichiers').select(['fichier_id']).where('organisation_id', '=', admin.organisationId).execute()
  t.equal(versions.length, 40, 'one version each: nothing restored twice')
  for (const [fileId, content] of contents) {
    const body = (await restarted.inject({ method: 'GET', url: `/fichiers/${fileId}/contenu`, headers: admin.headers })).rawPayload
    if (!body.equals(content)) t.fail(`${fileId} differs`)
  }
  t.pass('every file byte-identical')
  t.match((await journal(restarted, admin.organisationId)).filter((e) => e.action === 'RESTORE_FAILED'), [{ cible_id: id, details: { erreur: 'RESTORE_INTERRUPTED' } }])
  t.comment(`restore killed (kill -9) at ${before.length}/40 files; restart: echec RESTORE_INTERRUPTED; re-run: terminee, ${done.rapport!.crees} created, ${done.rapport!.identiques} identical, 40 files once`)

  // A blob the killed run wrote ahead of its rows is named by none: the collector (grace 0 h, as
  // a day later) removes it, and leaves exactly the versions' blobs and the archive.
  const collector = await build(t, { ...env, JOBS_ENABLED: 'false', BLOB_ORPHAN_GRACE_HOURS: '0' })
  const swept = await collector.blobCollector.collect()
  t.comment(`collector after the re-run: ${JSON.stringify(swept)}`)
  const listed: string[] = []
  for await (const entry of collector.blobs.list()) listed.push(entry.name)
  const named = (await collector.db.selectFrom('versions_fichiers').select('blob').where('organisation_id', '=', admin.organisationId).execute()).map((v) => v.blob)
  const archiveBlob = (await collector.db.selectFrom('sauvegardes').select('chemin').where('id', '=', saved.id).executeTakeFirstOrThrow()).chemin!
  t.same(listed.sort(), [...named, archiveBlob].sort(), 'no orphan left: the 40 versions’ blobs and the archive')
})
