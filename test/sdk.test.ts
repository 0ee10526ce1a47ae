import { execFile } from 'node:child_process'
import { createHash, randomBytes, randomUUID } from 'node:crypto'
import { copyFile, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import t from 'tap'
import { ArmoireProblem, type ArmoireTokens, createArmoireClient, createClient, dispositionFilename, unwrap } from '../openapi/sdk/index.ts'
import { invitationToken, strongPassword } from './helpers/auth.ts'
import { build, listen } from './helpers/build.ts'

const sha256 = (data: Uint8Array) => createHash('sha256').update(data).digest('hex')
async function bytesOf(stream: ReadableStream<Uint8Array>): Promise<Buffer> {
  const chunks: Uint8Array[] = []
  for await (const chunk of stream as unknown as AsyncIterable<Uint8Array>) chunks.push(chunk)
  return Buffer.concat(chunks)
}
const registration = () => ({
  email: `sdk-${randomBytes(5).toString('hex')}@exemple.fr`,
  mot_de_passe: strongPassword(),
  nom: 'Claire Martin',
  organisation: 'Cabinet Dupont',
})
/** A stream that hands its content over in small chunks, as a file read from disk or the network would. */
const chunked = (content: Buffer, size = 1000) =>
  new ReadableStream<Uint8Array>({
    start(controller) {
      for (let i = 0; i < content.length; i += size) controller.enqueue(content.subarray(i, i + size))
      controller.close()
    },
  })
/** A fetch that records what went over the wire: method, path and status. */
function recordingFetch() {
  const seen: string[] = []
  const fetchAndRecord = async (request: Request) => {
    const response = await fetch(request)
    seen.push(`${request.method} ${new URL(request.url).pathname} ${response.status}`)
    return response
  }
  return { seen, fetch: fetchAndRecord }
}

t.test('the generated SDK talks to a real server', async (t) => {
  const app = await build(t)
  const client = createArmoireClient({ baseUrl: await listen(app) })

  const live = await client.GET('/health/live')
  t.equal(live.response.status, 200)
  t.equal(live.data?.status, 'ok')

  const ready = await client.GET('/health/ready')
  t.equal(ready.response.status, 200)
  t.equal(ready.data?.checks.database.status, 'ok')
  t.equal(ready.response.headers.get('x-request-id')?.length, 36)
})

t.test('a front end’s day with the SDK, over a real socket', async (t) => {
  const app = await build(t)
  const baseUrl = await listen(app)
  const account = registration()

  const registered: (ArmoireTokens | null)[] = []
  const first = createArmoireClient({ baseUrl, onTokens: (tokens) => void registered.push(tokens) })
  const created = unwrap(await first.POST('/auth/register', { body: account }))
  t.equal(created.organisation.nom, 'Cabinet Dupont')
  t.equal(first.tokens()?.access_token, created.access_token, 'registering signs the client in')
  t.equal(registered.length, 1)

  // A second device signs in with the same account.
  const armoire = createArmoireClient({ baseUrl })
  t.equal(armoire.tokens(), null)
  const signedIn = unwrap(await armoire.POST('/auth/login', { body: { email: account.email, mot_de_passe: account.mot_de_passe } }))
  t.ok('access_token' in signedIn && armoire.tokens()?.access_token === signedIn.access_token, 'the sign-in’s tokens are kept')
  const me = unwrap(await armoire.GET('/me'))
  t.equal(me.utilisateur.email, account.email)

  const cabinet = unwrap(await armoire.POST('/armoires', { body: { nom: 'Ressources humaines' } }))
  const casier = unwrap(await armoire.POST('/armoires/{id}/casiers', { params: { path: { id: cabinet.id } }, body: { nom: 'Contrats' } }))
  const dossier = unwrap(await armoire.POST('/casiers/{id}/dossiers', { params: { path: { id: casier.id } }, body: { nom: '2026' } }))

  t.test('uploads from a File and from a stream; downloads byte for byte', async (t) => {
    const content = randomBytes(200_000)
    const nom = 'Été 2026 — « contrat » (signé).pdf'
    const fromFile = await armoire.upload({ dossier: dossier.id }, new File([content], nom, { type: 'application/pdf' }), { sha256: sha256(content) })
    t.equal(fromFile.fichier.nom, nom)
    t.equal(fromFile.sha256, sha256(content))
    t.equal(fromFile.taille, content.length)
    t.equal(fromFile.fichier.type_mime, 'application/pdf')

    const streamed = randomBytes(150_001)
    const fromStream = await armoire.upload({ dossier: dossier.id }, chunked(streamed), { nom: 'flux.bin' })
    t.equal(fromStream.fichier.nom, 'flux.bin')
    t.equal(fromStream.sha256, sha256(streamed), 'the server hashed what was streamed')

    const down = await armoire.download(fromFile.fichier.id)
    t.equal(down.status, 200)
    t.equal(down.filename, nom, 'the UTF-8 name comes back from Content-Disposition')
    t.equal(down.type, 'application/pdf')
    t.equal(down.size, content.length)
    t.equal(down.etag, `"${sha256(content)}"`)
    t.ok((await bytesOf(down.body)).equals(content), 'the content comes back byte for byte')
    t.ok((await bytesOf((await armoire.download(fromStream.fichier.id)).body)).equals(streamed))

    const slice = await armoire.download(fromFile.fichier.id, { range: 'bytes=70000-70099' })
    t.equal(slice.status, 206)
    t.equal(slice.contentRange, `bytes 70000-70099/${content.length}`)
    t.ok((await bytesOf(slice.body)).equals(content.subarray(70000, 70100)))

    const second = randomBytes(1234)
    const version = await armoire.upload({ fichier: fromFile.fichier.id }, new Blob([second]), { sha256: sha256(second) })
    t.equal(version.version.version_number, 2)
    t.ok((await bytesOf((await armoire.download(fromFile.fichier.id)).body)).equals(second), 'the current version is the new one')
    t.ok((await bytesOf((await armoire.download(fromFile.fichier.id, { version: 1 })).body)).equals(content), 'and version 1 is kept')
    const versions = unwrap(await armoire.GET('/fichiers/{id}/versions', { params: { path: { id: fromFile.fichier.id } } }))
    t.same(versions.items.map((v) => v.version_number), [2, 1])

    const empty = await armoire.upload({ dossier: dossier.id }, new Blob([]), { nom: 'vide.txt', type: 'text/plain' })
    const none = await armoire.download(empty.fichier.id)
    t.equal((await bytesOf(none.body)).length, 0, 'an empty file downloads as an empty body')
  })

  t.test('pages: the iterator follows next_cursor to the last page', async (t) => {
    const folder = unwrap(await armoire.POST('/dossiers/{id}/dossiers', { params: { path: { id: dossier.id } }, body: { nom: 'Pages' } }))
    const names = ['a.txt', 'b.txt', 'c.txt', 'd.txt', 'e.txt']
    for (const nom of names) await armoire.upload({ dossier: folder.id }, new Blob([nom]), { nom })

    const pages = []
    for await (const page of armoire.pages('/dossiers/{id}/fichiers', { params: { path: { id: folder.id }, query: { limit: 2 } } })) {
      pages.push(page.items.map((f) => f.nom))
    }
    t.same(pages, [['a.txt', 'b.txt'], ['c.txt', 'd.txt'], ['e.txt']], 'three pages of two, in name order')

    const descending = []
    const query = { limit: 3, tri: 'nom', ordre: 'desc' } as const
    for await (const fichier of armoire.items('/dossiers/{id}/fichiers', { params: { path: { id: folder.id }, query } })) descending.push(fichier.nom)
    t.same(descending, [...names].reverse(), 'items flattens the pages, with the list’s own sort')

    const lone = []
    for await (const item of armoire.items('/armoires')) lone.push(item.nom)
    t.same(lone, ['Ressources humaines'], 'a single page ends the iteration')
  })

  t.test('problems are typed errors with their code', async (t) => {
    const conflict = await armoire.POST('/armoires', { body: { nom: 'ressources HUMAINES' } })
    t.equal(conflict.error?.code, 'NAME_CONFLICT', 'the error of the answer is typed as a problem')
    const thrown = (() => {
      try {
        return unwrap(conflict)
      } catch (error) {
        return error
      }
    })()
    t.ok(thrown instanceof ArmoireProblem)
    t.match(thrown, { name: 'ArmoireProblem', status: 409, code: 'NAME_CONFLICT', body: { request_id: String } })
    t.match((thrown as ArmoireProblem).detail, /\S/)

    await t.rejects(async () => unwrap(await armoire.POST('/armoires', { body: { nom: '' } })), {
      status: 400,
      code: 'VALIDATION_ERROR',
      errors: [{ field: 'body.nom' }],
    })

    await t.rejects(armoire.download(randomUUID()), { name: 'ArmoireProblem', status: 404, code: 'NOT_FOUND' })
    await t.rejects(armoire.upload({ dossier: dossier.id }, new Blob(['x']), { nom: 'faux.txt', sha256: '0'.repeat(64) }), {
      name: 'ArmoireProblem',
      code: 'CHECKSUM_MISMATCH',
    })
    await t.rejects(
      (async () => {
        for await (const page of armoire.pages('/armoires', { params: { query: { cursor: 'pas-un-curseur' } } })) t.fail(`no page: ${page.items.length}`)
      })(),
      { code: 'INVALID_CURSOR' },
    )
  })

  t.test('an invited member accepts, and is signed in with the role given', async (t) => {
    const email = `lecteur-${randomBytes(4).toString('hex')}@exemple.fr`
    unwrap(await armoire.POST('/users', { body: { email, nom: 'Léa Lecteur', role: 'lecteur' } }))
    const member = createArmoireClient({ baseUrl })
    const body = { token: await invitationToken(app, email), mot_de_passe: strongPassword() }
    unwrap(await member.POST('/auth/invitation/accepter', { body }))
    t.ok(member.tokens()?.refresh_token, 'the acceptance opened the session')
    t.equal(unwrap(await member.GET('/me')).utilisateur.role, 'lecteur')
    const names = []
    for await (const item of member.items('/armoires')) names.push(item.nom)
    t.same(names, ['Ressources humaines'], 'a lecteur reads the organisation’s armoires')
    await t.rejects(async () => unwrap(await member.POST('/armoires', { body: { nom: 'Interdit' } })), { status: 403, code: 'FORBIDDEN' })
  })

  t.test('logout forgets the session', async (t) => {
    const ended: (ArmoireTokens | null)[] = []
    const device = createArmoireClient({ baseUrl, onTokens: (tokens) => void ended.push(tokens) })
    unwrap(await device.POST('/auth/login', { body: { email: account.email, mot_de_passe: account.mot_de_passe } }))
    const loggedOut = await device.POST('/auth/logout')
    t.equal(loggedOut.response.status, 204)
    t.equal(device.tokens(), null)
    t.equal(ended.at(-1), null, 'onTokens hears the end of the session')
    t.match((await device.GET('/me')).error, { code: 'UNAUTHENTICATED' })
  })

  t.test('getToken: a front end that keeps the session itself gives the token for each request', async (t) => {
    const session = unwrap(await createArmoireClient({ baseUrl }).POST('/auth/login', { body: { email: account.email, mot_de_passe: account.mot_de_passe } }))
    let current: string | null = 'access_token' in session ? session.access_token : null
    let asked = 0
    const app = createClient({ baseUrl, getToken: async () => (asked++, current) })
    const me = unwrap(await app.GET('/me'))
    t.equal(me.utilisateur.email, account.email)
    t.equal(asked, 1, 'asked once per request')
    current = null
    t.match((await app.GET('/me')).error, { code: 'UNAUTHENTICATED' }, 'no token given, none sent')
    t.equal(app.tokens(), null, 'and none kept by the client')
  })
})

t.test('an expired access token is renewed with the refresh token, transparently', async (t) => {
  // Two seconds, not one: a JWT's iat is whole seconds, so a one-second token may last a millisecond.
  const app = await build(t, { ACCESS_TOKEN_TTL_SECONDS: '2' })
  const baseUrl = await listen(app)
  const wire = recordingFetch()
  const renewed: (ArmoireTokens | null)[] = []
  const armoire = createArmoireClient({ baseUrl, fetch: wire.fetch, onTokens: (tokens) => void renewed.push(tokens) })
  const session = unwrap(await armoire.POST('/auth/register', { body: registration() }))
  t.equal(session.expires_in, 2, 'the configured lifetime is the one announced')

  t.test('known to have expired: renewed before the request is sent', async (t) => {
    const before = armoire.tokens()
    const exp = JSON.parse(Buffer.from(before?.access_token.split('.')[1] ?? '', 'base64url').toString()).exp as number
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, exp * 1000 - Date.now()) + 50))
    wire.seen.length = 0
    renewed.length = 0
    // The server does refuse the old token now.
    const raw = await fetch(`${baseUrl}/me`, { headers: { authorization: `Bearer ${before?.access_token}` } })
    t.equal(raw.status, 401)
    t.equal(((await raw.json()) as { code: string }).code, 'TOKEN_INVALID')

    const me = unwrap(await armoire.GET('/me'))
    t.equal(me.utilisateur.id, session.utilisateur.id)
    t.same(wire.seen, ['POST /auth/refresh 200', 'GET /me 200'])
    t.equal(renewed.length, 1, 'onTokens hears of the new pair')
    t.not(renewed[0]?.refresh_token, before?.refresh_token, 'the refresh token was rotated')
    t.equal(armoire.tokens()?.access_token, renewed[0]?.access_token)
  })

  t.test('refused by the server: renewed once, and the request (body included) sent again', async (t) => {
    const current = armoire.tokens()
    if (!current) throw new Error('signed in')
    // A token the client believes valid for an hour and the server refuses (another secret, a skewed clock).
    const [header, payload, signature] = current.access_token.split('.')
    const claims = JSON.parse(Buffer.from(payload ?? '', 'base64url').toString()) as Record<string, unknown>
    const later = Buffer.from(JSON.stringify({ ...claims, exp: Math.floor(Date.now() / 1000) + 3600 })).toString('base64url')
    await armoire.setTokens({ ...current, access_token: [header, later, signature].join('.') })
    wire.seen.length = 0
    renewed.length = 0
    const results = await Promise.all([
      armoire.POST('/armoires', { body: { nom: 'Après renouvellement' } }),
      armoire.GET('/me'),
      armoire.GET('/armoires'),
    ])
    t.same(results.map((r) => r.response.status), [201, 200, 200])
    t.equal(unwrap(results[0]).nom, 'Après renouvellement', 'the JSON body was sent again intact')
    t.equal(wire.seen.filter((line) => line === 'POST /auth/refresh 200').length, 1, 'one refresh for three refused requests')
    t.equal(wire.seen.filter((line) => line.endsWith(' 401')).length, 3)
    t.equal(renewed.length, 1, 'onTokens hears of the renewed pair')
  })

  t.test('a refresh token the server refuses ends the session', async (t) => {
    await armoire.setTokens({ access_token: 'pas.un.jeton', refresh_token: 'inconnu' })
    renewed.length = 0
    const answer = await armoire.GET('/me')
    t.match(answer.error, { code: 'TOKEN_INVALID' }, 'the request’s own problem is answered')
    t.equal(armoire.tokens(), null)
    t.same(renewed, [null])
  })
})

t.test('Content-Disposition names', async (t) => {
  t.equal(dispositionFilename(`attachment; filename="Ete.pdf"; filename*=UTF-8''%C3%89t%C3%A9.pdf`), 'Été.pdf')
  t.equal(dispositionFilename('attachment; filename="a \\"b\\".txt"'), 'a "b".txt')
  t.equal(dispositionFilename('attachment; filename=plain.txt'), 'plain.txt')
  t.equal(dispositionFilename(`attachment; filename="repli.txt"; filename*=UTF-8''%E9`), 'repli.txt', 'a malformed escape falls back')
  t.equal(dispositionFilename('inline'), null)
  t.equal(dispositionFilename(null), null)
})

t.test('the package, built and installed, from plain JavaScript', async (t) => {
  const root = fileURLToPath(new URL('..', import.meta.url))
  const run = promisify(execFile)
  const dir = await mkdtemp(join(tmpdir(), 'armoire-front-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  // A front end's node_modules: @armoire/sdk as `npm run sdk` builds it, and its peer dependency.
  const installed = join(dir, 'node_modules/@armoire/sdk')
  await mkdir(installed, { recursive: true })
  await copyFile(join(root, 'openapi/sdk/package.json'), join(installed, 'package.json'))
  await symlink(join(root, 'node_modules/openapi-fetch'), join(dir, 'node_modules/openapi-fetch'))
  const tsc = join(root, 'node_modules/typescript/bin/tsc')
  await run(process.execPath, [tsc, '-p', join(root, 'openapi/sdk/tsconfig.json'), '--outDir', join(installed, 'dist')])

  const app = await build(t)
  const baseUrl = await listen(app)
  // Type-checked against the package's declarations, then run by node alone (no tsx).
  await writeFile(
    join(dir, 'front.mts'),
    `import { ArmoireProblem, createArmoireClient, unwrap } from '@armoire/sdk'
const armoire = createArmoireClient({ baseUrl: '${baseUrl}' })
unwrap(await armoire.POST('/auth/register', { body: ${JSON.stringify(registration())} }))
const cabinet = unwrap(await armoire.POST('/armoires', { body: { nom: 'Archives' } }))
const casier = unwrap(await armoire.POST('/armoires/{id}/casiers', { params: { path: { id: cabinet.id } }, body: { nom: 'Boîte' } }))
const dossier = unwrap(await armoire.POST('/casiers/{id}/dossiers', { params: { path: { id: casier.id } }, body: { nom: '1999' } }))
const recu = await armoire.upload({ dossier: dossier.id }, new Blob(['contenu']), { nom: 'note.txt' })
const down = await armoire.download(recu.fichier.id)
const conflict = await armoire.POST('/armoires', { body: { nom: 'Archives' } }).then(unwrap).catch((e: unknown) => e)
console.log(down.filename, await new Response(down.body).text(), conflict instanceof ArmoireProblem ? conflict.code : 'none')
`,
  )
  // As a browser front end sees it: the DOM's fetch, no Node types.
  const flags = ['--strict', '--target', 'es2022', '--module', 'nodenext', '--skipLibCheck', '--lib', 'es2023,dom']
  await run(process.execPath, [tsc, ...flags, join(dir, 'front.mts')], { cwd: dir }).catch((error: { stdout?: string }) => {
    throw new Error(`the front end does not type-check against the package:\n${error.stdout ?? String(error)}`)
  })
  const { stdout } = await run(process.execPath, [join(dir, 'front.mjs')], { cwd: dir })
  t.equal(stdout.trim(), 'note.txt contenu NAME_CONFLICT')
})
