import { randomBytes } from 'node:crypto'
import { open, readFile, rename, writeFile } from 'node:fs/promises'
import { get as httpGet } from 'node:http'
import { join } from 'node:path'
import t from 'tap'
import { localBlobRoot } from '../../src/blobs.ts'
import { HEADER_SIZE, SEALED_SEGMENT_SIZE, SEGMENT_SIZE } from '../../src/crypto/segmented.ts'
import { addMember, signUp } from '../helpers/auth.ts'
import { build, listen, testStorage } from '../helpers/build.ts'
import { journal, sha256, tree, upload, uploadFile } from './helpers.ts'

t.test('downloads', async (t) => {
  const storage = await testStorage(t)
  const app = await build(t, { STORAGE_DIR: storage })
  const blobRoot = localBlobRoot({ STORAGE_DIR: storage })
  const base = await listen(app)
  const admin = await signUp(app)
  const headers = admin.headers
  const { dossier } = await tree(app, admin)
  const content = randomBytes(3 * SEGMENT_SIZE + 1234)
  const nom = 'Été 2025 — « rapport » (final)*.pdf'
  const file = await uploadFile(app, admin, dossier, content, { filename: nom, type: 'application/pdf' })
  const url = `/fichiers/${file.fichier.id}/contenu`
  const etag = `"${sha256(content)}"`

  const blobPath = async (fileId: string, n = 1) => {
    const v = await app.db.selectFrom('versions_fichiers').select('blob').where('fichier_id', '=', fileId).where('version_number', '=', n).executeTakeFirstOrThrow()
    return join(blobRoot, v.blob.slice(0, 2), v.blob.slice(2, 4), v.blob)
  }

  t.test('the whole content, with its type, name and ETag', async (t) => {
    const res = await app.inject({ method: 'GET', url, headers })
    t.equal(res.statusCode, 200)
    t.same(res.rawPayload, content)
    t.equal(res.headers['content-type'], 'application/pdf')
    t.equal(res.headers['content-length'], String(content.length))
    t.equal(res.headers.etag, etag)
    t.equal(res.headers['accept-ranges'], 'bytes')
    t.equal(res.headers['x-content-type-options'], 'nosniff')
    t.match(res.headers['content-security-policy'], /sandbox/)
    const disposition = String(res.headers['content-disposition'])
    t.equal(
      disposition,
      `attachment; filename="Ete 2025 _ _ rapport _ (final)*.pdf"; filename*=UTF-8''${encodeURIComponent(nom).replace('(', '%28').replace(')', '%29').replace('*', '%2A')}`,
    )
    const star = /filename\*=UTF-8''(.+)$/.exec(disposition)?.[1] ?? ''
    t.equal(decodeURIComponent(star), nom, 'the UTF-8 name round-trips')

    const entry = (await journal(app, admin.organisationId)).at(-1)
    t.match(entry, { action: 'FILE_DOWNLOADED', cible_id: file.fichier.id, details: { version_number: 1 } })
  })

  t.test('If-None-Match answers 304', async (t) => {
    for (const tag of [etag, `W/${etag}`, `"autre", ${etag}`, '*']) {
      const res = await app.inject({ method: 'GET', url, headers: { ...headers, 'if-none-match': tag } })
      t.equal(res.statusCode, 304, tag)
      t.equal(res.rawPayload.length, 0)
      t.equal(res.headers.etag, etag)
    }
    const other = await app.inject({ method: 'GET', url, headers: { ...headers, 'if-none-match': '"autre"' } })
    t.equal(other.statusCode, 200)
  })

  t.test('Range: 206 for one range, decrypting only the segments it spans', async (t) => {
    const size = content.length
    const cases: [string, number, number][] = [
      ['bytes=0-99', 0, 99],
      [`bytes=${SEGMENT_SIZE - 10}-${SEGMENT_SIZE + 10}`, SEGMENT_SIZE - 10, SEGMENT_SIZE + 10],
      ['bytes=-100', size - 100, size - 1],
      [`bytes=${size - 5}-`, size - 5, size - 1],
      [`bytes=${2 * SEGMENT_SIZE}-${size + 1000}`, 2 * SEGMENT_SIZE, size - 1],
    ]
    for (const [range, start, end] of cases) {
      const res = await app.inject({ method: 'GET', url, headers: { ...headers, range } })
      t.equal(res.statusCode, 206, range)
      t.equal(res.headers['content-range'], `bytes ${start}-${end}/${size}`)
      t.equal(res.headers['content-length'], String(end - start + 1))
      t.same(res.rawPayload, content.subarray(start, end + 1))
    }
    const whole = await app.inject({ method: 'GET', url, headers: { ...headers, range: `bytes=0-${size - 1}` } })
    t.equal(whole.statusCode, 200, 'a range covering everything is the whole content')

    const beyond = await app.inject({ method: 'GET', url, headers: { ...headers, range: `bytes=${size}-` } })
    t.equal(beyond.statusCode, 416)
    t.equal(beyond.headers['content-range'], `bytes */${size}`)
    t.equal(beyond.json().code, 'RANGE_NOT_SATISFIABLE')

    for (const ignored of ['bytes=0-1,5-6', 'octets=0-1', 'bytes=9-2']) {
      const res = await app.inject({ method: 'GET', url, headers: { ...headers, range: ignored } })
      t.equal(res.statusCode, 200, `${ignored} is ignored`)
      t.equal(res.rawPayload.length, size)
    }
    const stale = await app.inject({ method: 'GET', url, headers: { ...headers, range: 'bytes=0-9', 'if-range': '"perime"' } })
    t.equal(stale.statusCode, 200, 'If-Range with another ETag: the whole content')
    const fresh = await app.inject({ method: 'GET', url, headers: { ...headers, range: 'bytes=0-9', 'if-range': etag } })
    t.equal(fresh.statusCode, 206)

    const downloads = (await journal(app, admin.organisationId)).filter((e) => e.action === 'FILE_DOWNLOADED' && e.cible_id === file.fichier.id)
    t.equal(downloads.length, 1, 'the session read this version inside its window: journaled once, at the first read')
  })

  t.test('downloads are journaled once per session, version and address within the window', async (t) => {
    const fresh = await uploadFile(app, admin, dossier, randomBytes(2 * SEGMENT_SIZE), { filename: 'lecteur-video.bin' })
    const at = `/fichiers/${fresh.fichier.id}/contenu`
    const entries = async () =>
      (await journal(app, admin.organisationId)).filter((e) => e.action === 'FILE_DOWNLOADED' && e.cible_id === fresh.fichier.id)
    // A player: a first range, then thirty at once.
    t.equal((await app.inject({ method: 'GET', url: at, headers: { ...headers, range: 'bytes=0-1023' } })).statusCode, 206)
    const ranges = await Promise.all(
      Array.from({ length: 30 }, (_, i) => app.inject({ method: 'GET', url: at, headers: { ...headers, range: `bytes=${i * 1000}-${i * 1000 + 999}` } })),
    )
    t.same(ranges.map((r) => r.statusCode), ranges.map(() => 206))
    const once = await entries()
    t.equal(once.length, 1)
    t.match(once[0], { utilisateur_id: admin.userId, ip: '127.0.0.1', details: { version_number: 1, plage: '0-1023', fenetre_s: 600 } })
    const window = await app.db.selectFrom('lectures_journalisees').selectAll().where('version_id', '=', fresh.version.id).execute()
    t.match(window, [{ lectures: 31, organisation_id: admin.organisationId }], 'the folded reads are counted')

    // Who read what is kept: another session of the same member, another address, another member.
    const again = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: admin.email, mot_de_passe: admin.password } })
    const second = { authorization: `Bearer ${again.json().access_token}` }
    t.equal((await app.inject({ method: 'GET', url: at, headers: second })).statusCode, 200)
    t.equal((await app.inject({ method: 'GET', url: at, headers, remoteAddress: '203.0.113.9' })).statusCode, 200)
    const lecteur = await addMember(app, admin, 'lecteur')
    t.equal((await app.inject({ method: 'GET', url: at, headers: lecteur.headers })).statusCode, 200)
    t.equal((await app.inject({ method: 'GET', url: at, headers: lecteur.headers })).statusCode, 200)
    const four = await entries()
    t.equal(four.length, 4)
    t.same(four.map((e) => e.ip), ['127.0.0.1', '127.0.0.1', '203.0.113.9', '127.0.0.1'])
    t.same(four.map((e) => e.utilisateur_id), [admin.userId, admin.userId, admin.userId, lecteur.userId])

    // Another version of the file is another read.
    const v2 = await upload(app, admin, `/fichiers/${fresh.fichier.id}/version`, randomBytes(100), { filename: 'x.bin' })
    t.equal((await app.inject({ method: 'GET', url: at, headers })).statusCode, 200)
    t.equal((await app.inject({ method: 'GET', url: `${at.replace('/contenu', '')}/versions/1/contenu`, headers })).statusCode, 200)
    t.match((await entries()).slice(4).map((e) => e.details), [{ version_number: 2, version_id: v2.json().version.id }])

    // Once the window has passed, the next read opens another one.
    await app.db.updateTable('lectures_journalisees').set({ journalise_at: new Date(Date.now() - 601_000) }).where('version_id', '=', fresh.version.id).execute()
    t.equal((await app.inject({ method: 'GET', url: at.replace('/contenu', '/versions/1/contenu'), headers })).statusCode, 200)
    t.equal((await entries()).length, 6)
  })

  t.test('each version, and a lecteur can read', async (t) => {
    const next = randomBytes(1000)
    const res = await upload(app, admin, `/fichiers/${file.fichier.id}/version`, next, { filename: 'ignored.bin', type: 'application/octet-stream' })
    t.equal(res.statusCode, 201)
    t.equal(res.json().version.version_number, 2)
    const lecteur = await addMember(app, admin, 'lecteur')
    t.same((await app.inject({ method: 'GET', url, headers: lecteur.headers })).rawPayload, next)
    const v1 = await app.inject({ method: 'GET', url: `/fichiers/${file.fichier.id}/versions/1/contenu`, headers: lecteur.headers })
    t.same(v1.rawPayload, content)
    t.equal(v1.headers['content-type'], 'application/pdf')
    t.equal((await app.inject({ method: 'GET', url: `/fichiers/${file.fichier.id}/versions/3/contenu`, headers })).statusCode, 404)
  })

  t.test('a tampered blob: INTEGRITY_ERROR before anything is sent, journaled CRITICAL', async (t) => {
    const victim = randomBytes(2 * SEGMENT_SIZE + 10)
    const up = await uploadFile(app, admin, dossier, victim, { filename: 'altéré.bin' })
    const path = await blobPath(up.fichier.id)
    const original = await readFile(path)
    const flip = async (offset: number) => {
      const tampered = Buffer.from(original)
      tampered[offset]! ^= 0x01
      await writeFile(path, tampered)
    }
    const get = (range?: string) =>
      app.inject({ method: 'GET', url: `/fichiers/${up.fichier.id}/contenu`, headers: { ...headers, ...(range ? { range } : {}) } })

    await flip(HEADER_SIZE + 5)
    const res = await get()
    t.equal(res.statusCode, 500)
    t.equal(res.headers['content-type'], 'application/problem+json; charset=utf-8')
    t.equal(res.json().code, 'INTEGRITY_ERROR')
    t.notOk(res.headers['content-disposition'], 'a problem, not an attachment')
    t.notMatch(res.body, /blob|segment|authentication/i, 'no internals')
    const critical = (await journal(app, admin.organisationId)).at(-1)
    t.match(critical, { action: 'FILE_INTEGRITY_FAILED', severite: 'CRITICAL', resultat: 'echec', cible_id: up.fichier.id })

    t.equal((await get(`bytes=${SEGMENT_SIZE}-${SEGMENT_SIZE + 10}`)).statusCode, 206, 'an intact segment still serves its range')
    await flip(HEADER_SIZE + SEALED_SEGMENT_SIZE + 3)
    t.equal((await get(`bytes=${SEGMENT_SIZE}-${SEGMENT_SIZE + 10}`)).json().code, 'INTEGRITY_ERROR', 'a range over a bad segment')

    await writeFile(path, original.subarray(0, original.length - 20))
    t.equal((await get('bytes=-5')).json().code, 'INTEGRITY_ERROR', 'truncated: the last segment is missing')
    await t.rejects(get(), { code: 'LIGHT_ECONNRESET' }, 'truncated: the whole content breaks off after the intact segments')

    // Swapping two blobs: each is authenticated under its own key and version id.
    const other = await uploadFile(app, admin, dossier, randomBytes(100), { filename: 'autre.bin' })
    const otherPath = await blobPath(other.fichier.id)
    await writeFile(path, original)
    await rename(otherPath, `${otherPath}.x`)
    await rename(path, otherPath)
    await rename(`${otherPath}.x`, path)
    t.equal((await get()).json().code, 'INTEGRITY_ERROR', 'swapped blobs')
    await rename(path, `${path}.gone`)
    t.equal((await get()).json().code, 'INTEGRITY_ERROR', 'a missing blob')
    await rename(`${path}.gone`, path)
    const criticals = (await journal(app, admin.organisationId)).filter((e) => e.action === 'FILE_INTEGRITY_FAILED')
    t.ok(criticals.length >= 5)
  })

  t.test('a blob damaged further in aborts the response already started', async (t) => {
    const victim = randomBytes(40 * SEGMENT_SIZE)
    const up = await uploadFile(app, admin, dossier, victim, { filename: 'long.bin' })
    const path = await blobPath(up.fichier.id)
    const handle = await open(path, 'r+')
    const offset = HEADER_SIZE + 30 * SEALED_SEGMENT_SIZE + 7
    const byte = Buffer.alloc(1)
    await handle.read(byte, 0, 1, offset)
    byte[0]! ^= 0x80
    await handle.write(byte, 0, 1, offset)
    await handle.close()
    const res = await fetch(`${base}/fichiers/${up.fichier.id}/contenu`, { headers })
    t.equal(res.status, 200, 'headers went out with the first segments')
    await t.rejects(res.arrayBuffer(), 'the body never completes')
    let critical
    for (let i = 0; i < 100 && !critical; i++) {
      critical = (await journal(app, admin.organisationId)).find((e) => e.action === 'FILE_INTEGRITY_FAILED' && e.cible_id === up.fichier.id)
      await new Promise((r) => setTimeout(r, 20))
    }
    t.match(critical, { severite: 'CRITICAL' })
  })

  t.test('HEAD answers the headers alone, and is not a download', async (t) => {
    const downloads = async () => (await journal(app, admin.organisationId)).filter((e) => e.action === 'FILE_DOWNLOADED').length
    const before = await downloads()
    const res = await app.inject({ method: 'HEAD', url, headers })
    t.equal(res.statusCode, 200)
    const current = await app.db.selectFrom('fichiers').select(['sha256', 'taille']).where('id', '=', file.fichier.id).executeTakeFirstOrThrow()
    t.equal(res.headers.etag, `"${current.sha256}"`)
    t.equal(res.rawPayload.length, 0)
    t.equal(await downloads(), before)
  })

  t.test('a client that goes away mid-download is no integrity failure', async (t) => {
    const big = await uploadFile(app, admin, dossier, randomBytes(64 * SEGMENT_SIZE), { filename: 'abandon.bin' })
    await new Promise<void>((resolve) => {
      const req = httpGet(`${base}/fichiers/${big.fichier.id}/contenu`, { headers }, (res) => {
        res.once('data', () => {
          req.destroy()
          resolve()
        })
      })
    })
    await new Promise((r) => setTimeout(r, 200))
    const failures = (await journal(app, admin.organisationId)).filter((e) => e.action === 'FILE_INTEGRITY_FAILED' && e.cible_id === big.fichier.id)
    t.same(failures, [])
    t.equal((await app.inject({ method: 'GET', url: `/fichiers/${big.fichier.id}/contenu`, headers })).statusCode, 200, 'and the server serves on')
  })

  t.test('an empty file', async (t) => {
    const empty = await uploadFile(app, admin, dossier, Buffer.alloc(0), { filename: 'vide.txt', type: 'text/plain' })
    const res = await app.inject({ method: 'GET', url: `/fichiers/${empty.fichier.id}/contenu`, headers })
    t.equal(res.statusCode, 200)
    t.equal(res.rawPayload.length, 0)
    t.equal(res.headers.etag, `"${sha256('')}"`)
    t.equal((await app.inject({ method: 'GET', url: `/fichiers/${empty.fichier.id}/contenu`, headers: { ...headers, range: 'bytes=0-0' } })).statusCode, 416)
  })
})
