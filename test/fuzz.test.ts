/**
 * The fuzz test: every operation of the served document, present and future, valid requests
 * mutated part by part (see helpers/fuzz.ts). In CI: seed 18, 25 mutations per operation.
 * `npm run fuzz`: 400 per operation and a random seed, printed so a failure can be replayed
 * (FUZZ_SEED=… FUZZ_RUNS=… npm run fuzz).
 */
import { randomBytes } from 'node:crypto'
import t from 'tap'
import { ConfigSchema } from '../src/config.ts'
import { addMember, type Member, signUp } from './helpers/auth.ts'
import { build } from './helpers/build.ts'
import { fuzz, recordKey, type Spec, type World } from './helpers/fuzz.ts'
import { tree, upload, uploadFile } from './documents/helpers.ts'

const LONG = process.env.FUZZ_LONG === '1'
const SEED = Number(process.env.FUZZ_SEED ?? (LONG ? Math.floor(Math.random() * 2 ** 31) : 18))
const RUNS = Number(process.env.FUZZ_RUNS ?? (LONG ? 400 : 25))
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

function uuidsIn(value: unknown, into: Set<string>): void {
  if (typeof value === 'string' && UUID.test(value)) into.add(value)
  else if (value && typeof value === 'object') for (const v of Object.values(value)) uuidsIn(v, into)
}

t.test(`fuzzing every operation of the served document (seed ${SEED}, ${RUNS} mutations each)`, async (t) => {
  // Rate limits would only turn mutations into 429s: every configurable one is lifted.
  const unlimited = Object.fromEntries(Object.keys(ConfigSchema.properties).filter((k) => k.endsWith('RATE_LIMIT_MAX')).map((k) => [k, '1000000']))
  const app = await build(t, unlimited)
  const spec = app.swagger() as unknown as Spec
  const marker = `SECRET-B-${randomBytes(4).toString('hex')}`

  // Organisation B: a tree, a file with two versions, a member, something in the trash; its ids are what A must never reach.
  let b: Member = await signUp(app, { organisation: `Organisation ${marker}`, email: `${marker.toLowerCase()}@exemple.fr` })
  const foreignIds = new Set<string>()
  const bTree = await tree(app, b, marker)
  const bFile = await uploadFile(app, b, bTree.dossier, Buffer.from(`contenu ${marker}`), { filename: `${marker}.txt` })
  await upload(app, b, `/fichiers/${bFile.fichier.id}/version`, Buffer.from(`v2 ${marker}`))
  await addMember(app, b, 'lecteur')
  const bTrash = (await app.inject({ method: 'POST', url: `/armoires/${bTree.armoire}/casiers`, headers: b.headers, payload: { nom: `Corbeille ${marker}` } })).json()
  await app.inject({ method: 'DELETE', url: `/casiers/${bTrash.id}`, headers: b.headers })
  for (const url of ['/armoires', '/users', '/corbeille', '/auth/sessions', `/fichiers/${bFile.fichier.id}/versions`, '/me']) {
    uuidsIn((await app.inject({ method: 'GET', url, headers: b.headers })).json(), foreignIds)
  }
  uuidsIn([bTree, bFile, b.userId, b.organisationId], foreignIds)

  // Organisation A, the caller: the same, so valid requests name real objects.
  let a: Member = await signUp(app)
  const aTree = await tree(app, a)
  const aFile = await uploadFile(app, a, aTree.dossier, Buffer.from('contenu A'))
  await upload(app, a, `/fichiers/${aFile.fichier.id}/version`, Buffer.from('v2 A'))
  await addMember(app, a, 'contributeur')
  const aTrash = (await app.inject({ method: 'POST', url: `/armoires/${aTree.armoire}/casiers`, headers: a.headers, payload: { nom: 'Corbeille A' } })).json()
  await app.inject({ method: 'DELETE', url: `/casiers/${aTrash.id}`, headers: a.headers })
  for (const id of [a.userId, a.organisationId]) foreignIds.delete(id)

  const records = new Map<string, Array<Record<string, unknown>>>()
  const remember = (key: string, value: Record<string, unknown>) => {
    if (typeof value.id !== 'string' || foreignIds.has(value.id)) return
    const list = records.get(key) ?? []
    if (!list.some((r) => r.id === value.id)) list.push(value)
    records.set(key, list)
  }
  const learn = (path: string, body: unknown) => {
    const key = recordKey(path)
    const visit = (value: unknown, name: string) => {
      if (Array.isArray(value)) return value.forEach((v) => visit(v, name))
      if (!value || typeof value !== 'object') return
      const object = value as Record<string, unknown>
      remember(name, object)
      for (const [k, v] of Object.entries(object)) if (v && typeof v === 'object') visit(v, k === 'items' ? name : `${k}s`)
    }
    visit(body, key)
  }
  learn('/armoires', { id: aTree.armoire })
  learn('/casiers', { id: aTree.casier })
  learn('/dossiers', { id: aTree.dossier })
  learn('/fichiers', { id: aFile.fichier.id })
  learn('/users', { id: a.userId })
  // What every listing without parameters shows A, new domains' included.
  for (const [path, item] of Object.entries(spec.paths)) {
    if (item.get && !path.includes('{')) {
      const res = await app.inject({ method: 'GET', url: path, headers: a.headers })
      if (res.statusCode === 200 && String(res.headers['content-type']).includes('json')) learn(path, res.json())
    }
  }

  const relogin = async (m: Member): Promise<Member> => {
    const res = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: m.email, mot_de_passe: m.password } })
    if (res.statusCode !== 200) throw new Error(`re-login failed: ${res.statusCode} ${res.body}`)
    const body = res.json()
    return { ...m, token: body.access_token, refreshToken: body.refresh_token, headers: { authorization: `Bearer ${body.access_token}` } }
  }
  const world: World = {
    headers: () => a.headers,
    records,
    fallbackIds: [a.userId, aTree.armoire],
    ownIds: () => new Set([...records.values()].flat().map((r) => r.id as string)),
    foreignIds,
    foreignMarker: marker,
    get foreignHeaders() {
      return b.headers
    },
    learn,
    async heal() {
      // What a mutation may legitimately have changed on the callers: put back.
      await app.db.updateTable('organisations').set({ mfa_obligatoire: false }).where('id', 'in', [a.organisationId, b.organisationId]).execute()
      await app.db
        .updateTable('utilisateurs')
        .set({ actif: true, role: 'admin', echecs_connexion: 0, bloque_jusqua: null })
        .where('id', 'in', [a.userId, b.userId])
        .execute()
      for (const who of ['a', 'b'] as const) {
        const m = who === 'a' ? a : b
        const me = await app.inject({ method: 'GET', url: '/me', headers: m.headers })
        if (me.statusCode !== 200 || me.json().role !== 'admin') {
          if (who === 'a') a = await relogin(a)
          else b = await relogin(b)
        }
      }
    },
  }

  const report = await fuzz(app, spec, world, { seed: SEED, runs: RUNS })
  const seconds = (report.ms / 1000).toFixed(1)
  t.comment(`fuzz: ${report.requests} requests over ${report.operations} operations in ${seconds} s (seed ${SEED}, ${report.skipped} not sendable)`)
  console.log(`# fuzz: ${report.requests} requests over ${report.operations} operations in ${seconds} s (seed ${SEED})`)
  t.ok(report.operations >= Object.values(spec.paths).reduce((n, item) => n + Object.keys(item).length, 0) - 1, `${report.operations} operations fuzzed`)
  t.same(report.failures, [], `every answer is below 500, a French problem on 4xx, and shows nothing of B (${report.failures.length} failures)`)
})
