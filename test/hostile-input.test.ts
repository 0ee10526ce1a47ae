/**
 * Issue 18's classes of hostile input, one by one: each answers a 4xx problem+json, in French,
 * with a stable code, whatever operation it reaches. The fuzz test (fuzz.test.ts) covers every
 * operation; these pin the cause of each class and the words of its answer.
 */
import { randomUUID } from 'node:crypto'
import { request as httpRequest } from 'node:http'
import { connect } from 'node:net'
import { sql } from 'kysely'
import t, { type Test } from 'tap'
import { signUp } from './helpers/auth.ts'
import { build, listen } from './helpers/build.ts'
import { logCapture } from './helpers/logs.ts'
import { withProbes } from './helpers/probe-domain.ts'
import { multipart, tree, uploadFile } from './documents/helpers.ts'

const PROBLEM = 'application/problem+json; charset=utf-8'
const ENGLISH = /\b(must|should|Bad Request|Not Found|Unsupported|Internal Server|is not|invalid|required)\b/

interface Answer {
  statusCode: number
  headers: Record<string, unknown>
  json: () => { code: string; title: string; detail: string; status: number; errors?: { field: string; message: string }[] }
}

/** A refusal as the issue asks: the status, problem+json, a stable code, French words. */
function refused(t: Test, res: Answer, status: number, code: string, detail?: RegExp) {
  t.equal(res.statusCode, status, `status ${status}`)
  t.equal(res.headers['content-type'], PROBLEM, 'problem+json')
  const body = res.json()
  t.equal(body.code, code)
  t.equal(body.status, status)
  t.notMatch(body.title, ENGLISH, `French title: ${body.title}`)
  t.notMatch(body.detail, ENGLISH, `French detail: ${body.detail}`)
  for (const e of body.errors ?? []) t.notMatch(e.message, /[\^$]|\\[dswpu]|\(\?/, `no pattern in « ${e.message} »`)
  if (detail) t.match(body.detail, detail)
  return body
}

t.test('hostile input answers a French 4xx problem, never a 500', async (t) => {
  const app = await build(t, { RATE_LIMIT_MAX: '100000' })
  const admin = await signUp(app)
  const h = admin.headers
  const { armoire, casier, dossier } = await tree(app, admin)
  const json = { ...h, 'content-type': 'application/json' }

  t.test('urn:uuid: ids are refused by the validator, in paths and queries', async (t) => {
    const urn = `urn:uuid:${randomUUID()}`
    refused(t, await app.inject({ method: 'GET', url: `/armoires/${urn}`, headers: h }), 400, 'VALIDATION_ERROR', /paramètre de chemin « id » doit être un identifiant UUID/)
    refused(t, await app.inject({ method: 'GET', url: `/journal?utilisateur_id=${urn}`, headers: h }), 400, 'VALIDATION_ERROR')
    refused(t, await app.inject({ method: 'GET', url: `/journal/export?utilisateur_id=${urn}`, headers: h }), 400, 'VALIDATION_ERROR')
    refused(t, await app.inject({ method: 'PATCH', url: `/casiers/${casier}`, headers: h, payload: { armoire_id: urn } }), 400, 'VALIDATION_ERROR')
    // What PostgreSQL prints is what the API takes: upper case, braces, missing hyphens are refused too.
    for (const other of [randomUUID().toUpperCase(), `{${randomUUID()}}`, randomUUID().replaceAll('-', '')]) {
      refused(t, await app.inject({ method: 'GET', url: `/armoires/${encodeURIComponent(other)}`, headers: h }), 400, 'VALIDATION_ERROR')
    }
  })

  t.test('NUL in a query filter, a cursor or a JSON string', async (t) => {
    refused(t, await app.inject({ method: 'GET', url: '/journal?action=a%00b', headers: h }), 400, 'VALIDATION_ERROR', /« action » contient un caractère nul/)
    refused(t, await app.inject({ method: 'GET', url: '/users?q=%00', headers: h }), 400, 'VALIDATION_ERROR')
    const cursor = Buffer.from(JSON.stringify(['nom', 'asc', 'a\u0000', randomUUID()])).toString('base64url')
    refused(t, await app.inject({ method: 'GET', url: `/armoires?cursor=${cursor}`, headers: h }), 400, 'INVALID_CURSOR')
    refused(t, await app.inject({ method: 'POST', url: '/armoires', headers: h, payload: { nom: 'a\u0000b' } }), 400, 'VALIDATION_ERROR')
    refused(
      t,
      await app.inject({ method: 'POST', url: `/fichiers/${randomUUID()}/versions/1/suppression-locale`, headers: h, payload: { appareil: 'pc\u0000', sha256: 'a'.repeat(64) } }),
      400,
      'VALIDATION_ERROR',
      /« appareil » contient un caractère nul/,
    )
  })

  t.test('a lone surrogate in a name on update', async (t) => {
    const res = await app.inject({ method: 'PATCH', url: `/armoires/${armoire}`, headers: json, payload: '{"nom":"a\\ud800b"}' })
    refused(t, res, 400, 'VALIDATION_ERROR', /demi-codet UTF-16 isolé \(U\+D800\)/)
    const user = await app.inject({ method: 'PUT', url: `/users/${admin.userId}`, headers: json, payload: '{"nom":"\\udfff"}' })
    refused(t, user, 400, 'VALIDATION_ERROR')
  })

  t.test('integers out of bounds, in paths and in decoded cursors', async (t) => {
    const file = (await uploadFile(app, admin, dossier, Buffer.from('v1'))).fichier.id
    refused(t, await app.inject({ method: 'GET', url: `/fichiers/${file}/versions/2147483648/contenu`, headers: h }), 400, 'VALIDATION_ERROR', /inférieur ou égal à 2147483647/)
    refused(t, await app.inject({ method: 'POST', url: `/fichiers/${file}/versions/99999999999/restaurer`, headers: h }), 400, 'VALIDATION_ERROR')
    for (const value of ['1.5', '1e308', '9223372036854775808', '-1e400', '"1"', 'null']) {
      const cursor = Buffer.from(`[${value}]`).toString('base64url')
      refused(t, await app.inject({ method: 'GET', url: `/journal?cursor=${cursor}`, headers: h }), 400, 'INVALID_CURSOR')
      refused(t, await app.inject({ method: 'GET', url: `/fichiers/${file}/versions?cursor=${cursor}`, headers: h }), 400, 'INVALID_CURSOR')
    }
    const big = Buffer.from(JSON.stringify(['taille', 'asc', '99999999999999999999', randomUUID()])).toString('base64url')
    refused(t, await app.inject({ method: 'GET', url: `/dossiers/${dossier}/fichiers?tri=taille&cursor=${big}`, headers: h }), 400, 'INVALID_CURSOR')
    const feb30 = Buffer.from(JSON.stringify(['created_at', 'asc', '2026-02-30 10:00:00+00', randomUUID()])).toString('base64url')
    refused(t, await app.inject({ method: 'GET', url: `/armoires?tri=created_at&cursor=${feb30}`, headers: h }), 400, 'INVALID_CURSOR')
    const hyphens = Buffer.from(JSON.stringify(['-'.repeat(36)])).toString('base64url')
    refused(t, await app.inject({ method: 'GET', url: `/users?cursor=${hyphens}`, headers: h }), 400, 'INVALID_CURSOR')
    refused(t, await app.inject({ method: 'GET', url: '/journal?depuis=2026-12-31T23:59:60Z', headers: h }), 400, 'VALIDATION_ERROR', /date et heure/)
  })

  // Coercing a query, ajv turns `Infinity` and `-1e400` into ±Infinity and lets them through
  // `type: integer` and `maximum` alike; the long fuzz run found them answering 500 from PostgreSQL's bigint.
  t.test('infinite and inexact numbers, in queries and JSON bodies', async (t) => {
    for (const limit of ['Infinity', '-Infinity', '1e400', '-1e400']) {
      for (const url of ['/corbeille', '/restaurations', '/paiements', '/armoires', '/journal']) {
        const body = refused(t, await app.inject({ method: 'GET', url: `${url}?limit=${limit}`, headers: h }), 400, 'VALIDATION_ERROR')
        t.match(body.errors, [{ field: 'limit', message: 'doit être un nombre fini' }], `${url}?limit=${limit}`)
      }
    }
    const huge = refused(t, await app.inject({ method: 'GET', url: `/corbeille?limit=1e300`, headers: h }), 400, 'VALIDATION_ERROR')
    t.match(huge.errors, [{ field: 'limit' }])
    const body = refused(
      t,
      await app.inject({ method: 'POST', url: '/sauvegardes/planifications', headers: json, payload: '{"type":"systeme","frequence":"0 2 * * *","conservation":{"derniers":1e400,"quotidiennes":7,"hebdomadaires":4,"mensuelles":12}}' }),
      400,
      'VALIDATION_ERROR',
    )
    t.match(body.errors, [{ field: 'body.conservation.derniers' }], 'a JSON 1e400 parses to Infinity: refused too')
  })

  t.test('multipart without a boundary, or without its closing boundary', async (t) => {
    const url = `/dossiers/${dossier}/fichiers`
    const noBoundary = await app.inject({ method: 'POST', url, headers: { ...h, 'content-type': 'multipart/form-data' }, payload: 'x' })
    refused(t, noBoundary, 400, 'MULTIPART_INVALID', /boundary/)
    const body = multipart([{ name: 'fichier', filename: 'a.txt', content: Buffer.from('abc') }])
    const cut = body.payload.subarray(0, body.payload.length - 12)
    refused(t, await app.inject({ method: 'POST', url, headers: { ...h, ...body.headers }, payload: cut }), 400, 'MULTIPART_INVALID', /boundary de fin/)
    const tooLong = await app.inject({ method: 'POST', url, headers: { ...h, 'content-type': `multipart/form-data; boundary=${'b'.repeat(300)}` }, payload: 'x' })
    refused(t, tooLong, 400, 'MULTIPART_INVALID')
    refused(t, await app.inject({ method: 'POST', url, headers: { ...h, 'content-type': 'application/json' }, payload: '{}' }), 415, 'UNSUPPORTED_MEDIA_TYPE')
  })

  t.test('Fastify’s own refusals are problems: bad URL, 404, 405, 413, 414, 415', async (t) => {
    refused(t, await app.inject({ method: 'GET', url: '/armoires/%zz', headers: h }), 400, 'URL_INVALID', /encodage invalide/)
    refused(t, await app.inject({ method: 'GET', url: `/armoires/${'a'.repeat(500)}`, headers: h }), 414, 'URI_TOO_LONG')
    refused(t, await app.inject({ method: 'GET', url: '/nulle-part' }), 404, 'ROUTE_NOT_FOUND')
    const wrongMethod = await app.inject({ method: 'PUT', url: '/armoires', headers: h })
    refused(t, wrongMethod, 405, 'METHOD_NOT_ALLOWED', /PUT/)
    t.equal(wrongMethod.headers.allow, 'GET, HEAD, POST')
    refused(t, await app.inject({ method: 'DELETE', url: `/armoires/${armoire}/casiers`, headers: h }), 405, 'METHOD_NOT_ALLOWED')
    refused(t, await app.inject({ method: 'POST', url: '/armoires', headers: json, payload: JSON.stringify({ nom: 'x'.repeat(2_000_000) }) }), 413, 'PAYLOAD_TOO_LARGE')
    refused(t, await app.inject({ method: 'POST', url: '/armoires', headers: { ...h, 'content-type': 'text/xml' }, payload: '<nom/>' }), 415, 'UNSUPPORTED_MEDIA_TYPE')
    refused(t, await app.inject({ method: 'POST', url: '/armoires', headers: json, payload: '{"nom":' }), 400, 'BAD_REQUEST', /JSON/)
    refused(t, await app.inject({ method: 'POST', url: '/armoires', headers: json, payload: '{"__proto__":{"x":1},"nom":"a"}' }), 400, 'BAD_REQUEST', /JSON/)
    refused(t, await app.inject({ method: 'POST', url: '/armoires', headers: json, payload: '' }), 400, 'BAD_REQUEST')
  })

  t.test('JSON sent without a content type is a French 415', async (t) => {
    const res = await app.inject({ method: 'POST', url: '/auth/login', body: JSON.stringify({ email: 'a@b.fr', mot_de_passe: 'x' }) })
    refused(t, res, 415, 'UNSUPPORTED_MEDIA_TYPE', /Content-Type: application\/json/)
  })

  t.test('JSON bodies are typed strictly; query strings are still coerced', async (t) => {
    const res = await app.inject({ method: 'PUT', url: '/organisation/2fa', headers: h, payload: { obligatoire: 'true' } })
    refused(t, res, 400, 'VALIDATION_ERROR', /« obligatoire » doit être un booléen/)
    const numeric = await app.inject({ method: 'POST', url: '/armoires', headers: h, payload: { nom: 12 } })
    refused(t, numeric, 400, 'VALIDATION_ERROR', /« nom » doit être un texte/)
    const listed = await app.inject({ method: 'GET', url: '/armoires?limit=2&ordre=desc', headers: h })
    t.equal(listed.statusCode, 200, 'limit=2 from a query string is the number 2')
    const flag = await app.inject({ method: 'GET', url: '/users?actif=true', headers: h })
    t.equal(flag.statusCode, 200, 'actif=true from a query string is the boolean true')
  })

  t.test('problems name the wrong field in words, and unknown fields', async (t) => {
    const login = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: admin.email, password: admin.password } })
    const body = refused(t, login, 400, 'VALIDATION_ERROR')
    t.same(
      body.errors?.map((e) => e.field).sort(),
      ['body.mot_de_passe', 'body.password'],
    )
    t.match(body.detail, /le champ « password » est inconnu \(champs acceptés : email, mot_de_passe\)/)
    t.match(body.detail, /le champ « mot_de_passe » est obligatoire/)
    const slash = refused(t, await app.inject({ method: 'POST', url: '/armoires', headers: h, payload: { nom: 'a/b' } }), 400, 'VALIDATION_ERROR')
    t.equal(slash.errors?.[0]?.message, 'contient « / », réservé comme séparateur de chemin')
    const code = refused(t, await app.inject({ method: 'POST', url: '/auth/2fa/verify', headers: h, payload: { code: 'abc' } }), 400, 'VALIDATION_ERROR')
    t.match(code.errors?.[0]?.message, /Code à 6 chiffres/, 'a pattern is explained by its description')
    const missing = refused(t, await app.inject({ method: 'PATCH', url: `/casiers/${casier}`, headers: h, payload: {} }), 400, 'VALIDATION_ERROR')
    t.match(missing.detail, /au moins 1 champ parmi : nom, armoire_id/)
  })

  t.test('bidirectional overrides and invisible characters are refused in names and upload file names', async (t) => {
    for (const nom of ['facture\u202Efdp.exe', 'a\u200Bb', '\u2066x\u2069', 'x\uFEFFy', 'soft\u00ADhyphen', '\u3164', 'tag\u{E0041}']) {
      const res = await app.inject({ method: 'POST', url: '/armoires', headers: h, payload: { nom } })
      refused(t, res, 400, 'VALIDATION_ERROR', /caractère de contrôle ou invisible \(U\+[0-9A-F]{4,5}\)/)
    }
    const upload = multipart([{ name: 'fichier', filename: 'facture\u202Efdp.exe', content: Buffer.from('MZ') }])
    const res = await app.inject({ method: 'POST', url: `/dossiers/${dossier}/fichiers`, headers: { ...h, ...upload.headers }, payload: upload.payload })
    const body = refused(t, res, 400, 'VALIDATION_ERROR', /U\+202E/)
    t.equal(body.errors?.[0]?.field, 'body.fichier')
    const member = await app.inject({ method: 'POST', url: '/users', headers: h, payload: { email: 'x@exemple.fr', nom: 'Admin\u202E', role: 'lecteur' } })
    refused(t, member, 400, 'VALIDATION_ERROR')
    // What UTS #39 keeps: joiners between letters (Persian), emoji sequences and their variation selectors.
    for (const nom of ['می\u200Cخواهم', 'famille 👨\u200D👩\u200D👧', 'cœur ❤\uFE0F', 'Ünïcödé — ok']) {
      const ok = await app.inject({ method: 'POST', url: '/armoires', headers: h, payload: { nom } })
      t.equal(ok.statusCode, 201, `${nom} is a name`)
    }
  })
})

t.test('oversized headers and malformed requests are problems on the raw socket', async (t) => {
  const app = await build(t, { MAX_HEADER_SIZE: '4096' })
  const base = await listen(app)
  const res = await fetch(`${base}/health/live`, { headers: { 'x-bloat': 'a'.repeat(8000) } })
  t.equal(res.status, 431)
  t.equal(res.headers.get('content-type'), PROBLEM)
  const body = (await res.json()) as { code: string; title: string }
  t.equal(body.code, 'HEADERS_TOO_LARGE')
  t.equal(body.title, 'En-têtes trop volumineux')
  const { port } = new URL(base)
  const raw = await new Promise<string>((resolve, reject) => {
    const req = httpRequest({ port, path: '/health/live', method: 'GET', headers: { 'content-length': 'abc' } }, (r) => {
      let text = ''
      r.on('data', (c: Buffer) => (text += c.toString()))
      r.on('end', () => resolve(`${r.statusCode} ${r.headers['content-type']} ${text}`))
    })
    req.on('error', reject)
    req.end()
  })
  t.match(raw, /^400 application\/problem\+json; charset=utf-8 .*"code":"BAD_REQUEST"/)
})

t.test('a client that stalls in its headers gets a 408 problem, and the server closes the connection', async (t) => {
  const app = await build(t, { HEADERS_TIMEOUT_MS: '400' })
  const { port } = new URL(await listen(app))
  const started = Date.now()
  const raw = await new Promise<string>((resolve, reject) => {
    const socket = connect(Number(port), '127.0.0.1', () => socket.write('GET /health/live HTTP/1.1\r\nHost: armoire\r\nX-Slow: '))
    let text = ''
    socket.on('data', (c: Buffer) => (text += c.toString()))
    socket.on('close', () => resolve(text))
    socket.on('error', reject)
    setTimeout(() => socket.destroy(new Error('no answer within 10 s')), 10_000).unref()
  })
  const elapsed = Date.now() - started
  t.match(raw, /^HTTP\/1\.1 408 /)
  t.match(raw, /content-type: application\/problem\+json; charset=utf-8/i)
  const body = JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4)) as { code: string; title: string; status: number }
  t.equal(body.code, 'REQUEST_TIMEOUT')
  t.equal(body.status, 408)
  t.equal(body.title, 'Délai de requête dépassé')
  t.ok(elapsed >= 350 && elapsed < 5_000, `cut after the header timeout (${elapsed} ms)`)
})

t.test('the error log: a 500 logs once with its request id, a 4xx never at error level', async (t) => {
  const logs = logCapture()
  const app = await build(t, { LOG_LEVEL: 'info' }, { ...withProbes, logStream: logs.stream })
  const crash = await app.inject({ method: 'GET', url: '/probe/crash' })
  t.equal(crash.statusCode, 500)
  const id = crash.headers['x-request-id']
  const admin = await signUp(app)
  for (const url of ['/armoires/urn:uuid:x', '/armoires/%zz', '/nulle-part', `/armoires/${'a'.repeat(300)}`, '/journal?action=%00']) {
    const res = await app.inject({ method: 'GET', url, headers: admin.headers })
    t.ok(res.statusCode >= 400 && res.statusCode < 500, `${url}: ${res.statusCode}`)
  }
  await app.inject({ method: 'POST', url: '/armoires', headers: admin.headers, payload: { nom: 'a/b' } })
  await app.inject({ method: 'PUT', url: '/armoires', headers: admin.headers })
  await new Promise((r) => setTimeout(r, 50))
  const errors = logs.lines.filter((l) => Number(l.level) >= 50)
  t.equal(errors.length, 1, 'one error line in all')
  t.equal(errors[0]?.request_id, id, 'it carries the request id')
  t.match(errors[0], { msg: 'request failed', err: { message: 'secret database password in a stack trace' } })
  const refusals = logs.lines.filter((l) => l.msg === 'request refused')
  t.ok(refusals.length >= 5, 'refusals are logged, at info')
  t.ok(refusals.every((l) => Number(l.level) === 30))
  const keysTwice = logs.raw.filter((line) => (line.match(/"msg":/g) ?? []).length !== 1)
  t.same(keysTwice, [], 'every line carries `msg` once (refusals once carried it twice)')
})

t.test('an export that fails after its head ends so the client sees it fail', async (t) => {
  const app = await build(t)
  const admin = await signUp(app)
  const base = await listen(app)
  // Six export batches of entries, appended as the journal appends them.
  await sql`select journal_ajouter(${admin.organisationId}::uuid, '\\x00'::bytea, null, 'TEST_ENTRY', 'fichier', g::text, repeat('n', 200),
      'succes', 'LOW', null, null, '{}'::jsonb, now()) from generate_series(1, 6000) g`.execute(app.db)
  const res = await fetch(`${base}/journal/export?format=json&action=TEST_ENTRY`, { headers: admin.headers })
  t.equal(res.status, 200, 'the first batch was read: the head is sent')
  const reader = (res.body as ReadableStream<Uint8Array>).getReader()
  const first = await reader.read()
  t.ok(first.value && first.value.length > 0)
  // The next batch's query waits on a lock and is cancelled, as a failing database would fail it.
  const locker = await app.db.connection().execute(async (conn) => {
    await sql`begin`.execute(conn)
    await sql`lock table journal_activite in access exclusive mode`.execute(conn)
    const reading = (async () => {
      let bytes = first.value?.length ?? 0
      for (;;) {
        const { done, value } = await reader.read()
        if (done) return { ended: true, bytes }
        bytes += value.length
      }
    })().catch((error: unknown) => ({ ended: false, bytes: 0, error }))
    for (let i = 0; i < 200; i++) {
      const waiting = await sql<{ pid: number }>`select pid from pg_stat_activity
          where datname = current_database() and wait_event_type = 'Lock' and query like '%journal_activite%'`.execute(app.db)
      if (waiting.rows.length > 0) {
        for (const { pid } of waiting.rows) await sql`select pg_cancel_backend(${pid})`.execute(app.db)
        break
      }
      await new Promise((r) => setTimeout(r, 25))
    }
    await sql`rollback`.execute(conn)
    return reading
  })
  t.match(locker, { ended: false }, 'the body does not end as if complete: the client sees an error')
})
