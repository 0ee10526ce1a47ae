/**
 * Fault (issue 16): the local blob store's disk full. STORAGE_DIR is a small tmpfs, filled
 * to the brim once a file is stored; an upload then answers 507 and leaves nothing behind,
 * while what is stored still downloads.
 */
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtemp, open, rm, rmdir } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { signUp } from '../helpers/auth.ts'
import { build } from '../helpers/build.ts'
import { filesUnder, journal, sha256, storedRows, tree, upload, uploadFile } from '../documents/helpers.ts'

t.test('storage full: 507 STORAGE_FULL, no row, usage unchanged, what is stored still downloads', async (t) => {
  if (process.getuid?.() !== 0) {
    t.fail('this fault mounts a tmpfs as STORAGE_DIR: run it as root (CI and the dev machine do)')
    return
  }
  const dir = await mkdtemp(join(tmpdir(), 'armoire-fault-full-'))
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m,mode=0700', 'tmpfs', dir])
  t.comment(`tmpfs of 4 MiB mounted on ${dir} as STORAGE_DIR`)
  const app = await build(t, { STORAGE_DIR: dir })
  // Registered after build's: the app closes first, then the tmpfs goes.
  t.teardown(async () => {
    await app.close()
    execFileSync('umount', ['--lazy', dir])
    await rmdir(dir)
  })
  const admin = await signUp(app)
  const { dossier } = await tree(app, admin)
  const kept = randomBytes(300_000)
  const stored = await uploadFile(app, admin, dossier, kept, { filename: 'avant.bin' })

  // Fill what is left, in 64 KiB writes, until the disk refuses.
  const filler = join(dir, 'remplissage')
  const file = await open(filler, 'w')
  let filled = 0
  try {
    for (;;) {
      await file.write(Buffer.alloc(65_536, 1))
      filled += 65_536
    }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error
  } finally {
    await file.close().catch(() => {})
  }
  const free = Number(execFileSync('df', ['--output=avail', '-B1', dir]).toString().split('\n')[1])
  t.comment(`filled ${filled} bytes; ${free} bytes left`)

  const before = await storedRows(app, admin.organisationId)
  const entries = (await journal(app, admin.organisationId)).length
  const res = await upload(app, admin, `/dossiers/${dossier}/fichiers`, randomBytes(1_000_000), { filename: 'plein.bin' })
  t.comment(`upload of 1 MB on the full disk: ${res.statusCode} ${res.json().code}`)
  t.equal(res.statusCode, 507)
  t.match(res.headers['content-type'], /^application\/problem\+json/)
  t.match(res.json(), { status: 507, code: 'STORAGE_FULL', title: 'Stockage insuffisant' })
  t.same(await storedRows(app, admin.organisationId), before, 'no file, version or key row; usage unchanged')
  t.same((await filesUnder(join(dir, 'blobs'))).filter((f) => f.includes(`${join(dir, 'blobs', 'tmp')}/`)), [], 'the partial blob is removed')
  const added = (await journal(app, admin.organisationId)).slice(entries)
  t.notOk(added.some((e) => e.action === 'FILE_UPLOADED' && e.resultat !== 'echec'), 'no journal entry claims an upload')

  const download = await app.inject({ method: 'GET', url: `/fichiers/${stored.fichier.id}/contenu`, headers: admin.headers })
  t.equal(download.statusCode, 200, 'the stored file still downloads on the full disk')
  t.equal(sha256(download.rawPayload), sha256(kept), 'byte for byte')

  await rm(filler)
  const again = await upload(app, admin, `/dossiers/${dossier}/fichiers`, randomBytes(1_000_000), { filename: 'apres.bin' })
  t.equal(again.statusCode, 201, 'space freed: the upload goes through')
  t.comment(`after freeing the space: ${again.statusCode}`)
})
