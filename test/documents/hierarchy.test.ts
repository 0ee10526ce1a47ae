import { randomUUID } from 'node:crypto'
import t from 'tap'
import { addMember, signUp } from '../helpers/auth.ts'
import { build } from '../helpers/build.ts'
import { journal, tree, uploadFile } from './helpers.ts'

t.test('armoires, casiers and dossiers', async (t) => {
  const app = await build(t)
  const admin = await signUp(app)
  const headers = admin.headers

  t.test('creation answers 201 with the object, names trimmed and unique among siblings', async (t) => {
    const res = await app.inject({ method: 'POST', url: '/armoires', headers, payload: { nom: '  Ressources humaines  ' } })
    t.equal(res.statusCode, 201)
    const armoire = res.json()
    t.match(armoire, { nom: 'Ressources humaines', nombre_elements: 0, created_by: admin.userId })
    t.match(armoire.id, /^[0-9a-f-]{36}$/)

    const again = await app.inject({ method: 'POST', url: '/armoires', headers, payload: { nom: 'RESSOURCES HUMAINES' } })
    t.equal(again.statusCode, 409, 'case-insensitive')
    t.equal(again.json().code, 'NAME_CONFLICT')

    const casier = await app.inject({ method: 'POST', url: `/armoires/${armoire.id}/casiers`, headers, payload: { nom: 'Contrats' } })
    t.equal(casier.statusCode, 201)
    t.match(casier.json(), { armoire_id: armoire.id, nom: 'Contrats' })
    const got = await app.inject({ method: 'GET', url: `/armoires/${armoire.id}`, headers })
    t.equal(got.json().nombre_elements, 1)
  })

  t.test('names are refused when empty, too long, with "/" or control characters', async (t) => {
    for (const nom of ['', '   ', 'a/b', 'tab\there', 'x'.repeat(256), '.', '..']) {
      const res = await app.inject({ method: 'POST', url: '/armoires', headers, payload: { nom } })
      t.equal(res.statusCode, 400, JSON.stringify(nom))
      t.equal(res.json().code, 'VALIDATION_ERROR')
      t.same([...new Set(res.json().errors.map((e: { field: string }) => e.field))], ['body.nom'])
    }
    const ok = await app.inject({ method: 'POST', url: '/armoires', headers, payload: { nom: `é${'x'.repeat(254)}` } })
    t.equal(ok.statusCode, 201, '255 characters, counted as characters')
  })

  t.test('nested folders, and files and folders share one namespace', async (t) => {
    const { dossier } = await tree(app, admin)
    const sub = await app.inject({ method: 'POST', url: `/dossiers/${dossier}/dossiers`, headers, payload: { nom: 'Factures' } })
    t.equal(sub.statusCode, 201)
    t.equal(sub.json().parent_id, dossier)
    const subsub = await app.inject({ method: 'POST', url: `/dossiers/${sub.json().id}/dossiers`, headers, payload: { nom: '2025' } })
    t.equal(subsub.json().casier_id, sub.json().casier_id)
    const list = await app.inject({ method: 'GET', url: `/dossiers/${dossier}/dossiers`, headers })
    t.same(list.json().items.map((d: { nom: string }) => d.nom), ['Factures'])
    t.equal(list.json().items[0].nombre_elements, 1)

    await uploadFile(app, admin, dossier, Buffer.from('x'), { filename: 'Rapport' })
    const clash = await app.inject({ method: 'POST', url: `/dossiers/${dossier}/dossiers`, headers, payload: { nom: 'rapport' } })
    t.equal(clash.statusCode, 409)
    t.equal(clash.json().code, 'NAME_CONFLICT')
    const parent = await app.inject({ method: 'GET', url: `/dossiers/${dossier}`, headers })
    t.equal(parent.json().nombre_elements, 2, 'one sub-folder and one file')
  })

  t.test('lists are paginated with cursors and sortable', async (t) => {
    const { armoire } = await tree(app, admin)
    const casier = (await app.inject({ method: 'POST', url: `/armoires/${armoire}/casiers`, headers, payload: { nom: 'Tri' } })).json().id
    const names = ['delta', 'Alpha', 'charlie', 'Bravo', 'echo']
    for (const nom of names) {
      const res = await app.inject({ method: 'POST', url: `/casiers/${casier}/dossiers`, headers, payload: { nom } })
      t.equal(res.statusCode, 201)
    }
    const collect = async (query: string) => {
      const seen: string[] = []
      let cursor: string | null = null
      let pages = 0
      do {
        const url: string = `/casiers/${casier}/dossiers?limit=2&${query}${cursor ? `&cursor=${cursor}` : ''}`
        const res = await app.inject({ method: 'GET', url, headers })
        t.equal(res.statusCode, 200, url)
        const body = res.json()
        seen.push(...body.items.map((d: { nom: string }) => d.nom))
        cursor = body.next_cursor
        pages++
      } while (cursor)
      t.equal(pages, 3)
      return seen
    }
    t.same(await collect('tri=nom'), ['Alpha', 'Bravo', 'charlie', 'delta', 'echo'], 'by name, case-insensitive')
    t.same(await collect('tri=nom&ordre=desc'), ['echo', 'delta', 'charlie', 'Bravo', 'Alpha'])
    t.same(await collect('tri=created_at'), names, 'by creation')
    t.same(await collect('tri=created_at&ordre=desc'), [...names].reverse())

    const first = await app.inject({ method: 'GET', url: `/casiers/${casier}/dossiers?limit=2&tri=nom`, headers })
    const mixed = await app.inject({ method: 'GET', url: `/casiers/${casier}/dossiers?limit=2&tri=created_at&cursor=${first.json().next_cursor}`, headers })
    t.equal(mixed.statusCode, 400, 'a cursor belongs to its sort')
    t.equal(mixed.json().code, 'INVALID_CURSOR')
    const forged = Buffer.from(JSON.stringify(['nom', 'asc', 'x', "1'; drop table dossiers; --"])).toString('base64url')
    const bad = await app.inject({ method: 'GET', url: `/casiers/${casier}/dossiers?cursor=${forged}`, headers })
    t.equal(bad.statusCode, 400)
  })

  t.test('PATCH renames and moves, within the organisation, without cycles', async (t) => {
    const a = await tree(app, admin)
    const b = await tree(app, admin)
    const child = (await app.inject({ method: 'POST', url: `/dossiers/${a.dossier}/dossiers`, headers, payload: { nom: 'Enfant' } })).json()
    const grandchild = (await app.inject({ method: 'POST', url: `/dossiers/${child.id}/dossiers`, headers, payload: { nom: 'Petit' } })).json()

    const renamed = await app.inject({ method: 'PATCH', url: `/dossiers/${a.dossier}`, headers, payload: { nom: 'Renommé' } })
    t.equal(renamed.statusCode, 200)
    t.equal(renamed.json().nom, 'Renommé')

    const cycle = await app.inject({ method: 'PATCH', url: `/dossiers/${a.dossier}`, headers, payload: { parent_id: grandchild.id } })
    t.equal(cycle.statusCode, 409)
    t.equal(cycle.json().code, 'INVALID_MOVE')
    const self = await app.inject({ method: 'PATCH', url: `/dossiers/${a.dossier}`, headers, payload: { parent_id: a.dossier } })
    t.equal(self.json().code, 'INVALID_MOVE')

    // The whole subtree follows into the other drawer.
    const moved = await app.inject({ method: 'PATCH', url: `/dossiers/${a.dossier}`, headers, payload: { parent_id: b.dossier } })
    t.equal(moved.statusCode, 200)
    t.match(moved.json(), { parent_id: b.dossier, casier_id: b.casier })
    const deep = await app.inject({ method: 'GET', url: `/dossiers/${grandchild.id}`, headers })
    t.equal(deep.json().casier_id, b.casier)

    const toRoot = await app.inject({ method: 'PATCH', url: `/dossiers/${a.dossier}`, headers, payload: { parent_id: null, casier_id: a.casier } })
    t.match(toRoot.json(), { parent_id: null, casier_id: a.casier })
    const back = await app.inject({ method: 'GET', url: `/dossiers/${grandchild.id}`, headers })
    t.equal(back.json().casier_id, a.casier)

    const casierMove = await app.inject({ method: 'PATCH', url: `/casiers/${a.casier}`, headers, payload: { armoire_id: b.armoire } })
    t.equal(casierMove.json().armoire_id, b.armoire)

    const file = await uploadFile(app, admin, a.dossier, Buffer.from('data'), { filename: 'note.txt' })
    const fileMove = await app.inject({ method: 'PATCH', url: `/fichiers/${file.fichier.id}`, headers, payload: { dossier_id: b.dossier, nom: 'Note.txt' } })
    t.equal(fileMove.statusCode, 200)
    t.match(fileMove.json(), { dossier_id: b.dossier, nom: 'Note.txt' })

    const empty = await app.inject({ method: 'PATCH', url: `/casiers/${a.casier}`, headers, payload: {} })
    t.equal(empty.statusCode, 400)

    const entries = await journal(app, admin.organisationId)
    const actions = entries.filter((e) => e.cible_id === a.dossier).map((e) => e.action)
    t.same(actions, ['CREATED', 'RENAMED', 'MOVED', 'MOVED'])
    const move = entries.find((e) => e.cible_id === a.dossier && e.action === 'MOVED')
    t.same(move?.details, { depuis: { casier_id: a.casier, parent_id: null }, vers: { casier_id: b.casier, parent_id: b.dossier } })
  })

  t.test('deleting a non-empty container needs the explicit flag', async (t) => {
    const { armoire, casier } = await tree(app, admin)
    const refused = await app.inject({ method: 'DELETE', url: `/armoires/${armoire}`, headers })
    t.equal(refused.statusCode, 409)
    t.equal(refused.json().code, 'NOT_EMPTY')
    const deleted = await app.inject({ method: 'DELETE', url: `/armoires/${armoire}?recursif=true`, headers })
    t.equal(deleted.statusCode, 204)
    t.equal((await app.inject({ method: 'GET', url: `/armoires/${armoire}`, headers })).statusCode, 404)
    t.equal((await app.inject({ method: 'GET', url: `/casiers/${casier}`, headers })).statusCode, 404, 'its content went with it')
    const empty = (await app.inject({ method: 'POST', url: '/armoires', headers, payload: { nom: `Vide ${randomUUID()}` } })).json()
    t.equal((await app.inject({ method: 'DELETE', url: `/armoires/${empty.id}`, headers })).statusCode, 204, 'empty: no flag needed')
  })

  t.test('roles: a lecteur reads but cannot write', async (t) => {
    const lecteur = await addMember(app, admin, 'lecteur')
    const contributeur = await addMember(app, admin, 'contributeur')
    const { armoire, dossier } = await tree(app, contributeur)
    t.equal((await app.inject({ method: 'GET', url: `/armoires/${armoire}`, headers: lecteur.headers })).statusCode, 200)
    t.equal((await app.inject({ method: 'GET', url: `/dossiers/${dossier}/fichiers`, headers: lecteur.headers })).statusCode, 200)
    for (const [method, url, payload] of [
      ['POST', '/armoires', { nom: 'Non' }],
      ['PATCH', `/armoires/${armoire}`, { nom: 'Non' }],
      ['DELETE', `/armoires/${armoire}?recursif=true`, undefined],
      ['POST', `/dossiers/${dossier}/dossiers`, { nom: 'Non' }],
    ] as const) {
      const res = await app.inject({ method, url, headers: lecteur.headers, ...(payload ? { payload } : {}) })
      t.equal(res.statusCode, 403, `${method} ${url}`)
      t.equal(res.json().code, 'FORBIDDEN')
    }
  })

  t.test('another organisation’s ids answer 404, never their data', async (t) => {
    const mine = await tree(app, admin)
    const file = await uploadFile(app, admin, mine.dossier, Buffer.from('secret'), { filename: 'secret.txt' })
    const other = await signUp(app, { organisation: 'Autre' })
    const h = other.headers
    const theirs = await tree(app, other)
    const attempts: [string, string, unknown?][] = [
      ['GET', `/armoires/${mine.armoire}`],
      ['PATCH', `/armoires/${mine.armoire}`, { nom: 'pris' }],
      ['DELETE', `/armoires/${mine.armoire}?recursif=true`],
      ['GET', `/armoires/${mine.armoire}/casiers`],
      ['POST', `/armoires/${mine.armoire}/casiers`, { nom: 'intrus' }],
      ['GET', `/casiers/${mine.casier}`],
      ['GET', `/casiers/${mine.casier}/dossiers`],
      ['POST', `/casiers/${mine.casier}/dossiers`, { nom: 'intrus' }],
      ['GET', `/dossiers/${mine.dossier}`],
      ['GET', `/dossiers/${mine.dossier}/fichiers`],
      ['GET', `/dossiers/${mine.dossier}/dossiers`],
      ['GET', `/fichiers/${file.fichier.id}`],
      ['GET', `/fichiers/${file.fichier.id}/contenu`],
      ['GET', `/fichiers/${file.fichier.id}/versions`],
      ['GET', `/fichiers/${file.fichier.id}/versions/1/contenu`],
      ['POST', `/fichiers/${file.fichier.id}/versions/1/restaurer`],
      ['DELETE', `/fichiers/${file.fichier.id}`],
      // Moving one's own element into a foreign container
      ['PATCH', `/casiers/${theirs.casier}`, { armoire_id: mine.armoire }],
      ['PATCH', `/dossiers/${theirs.dossier}`, { parent_id: mine.dossier }],
      ['PATCH', `/dossiers/${theirs.dossier}`, { casier_id: mine.casier }],
      ['PATCH', `/fichiers/${file.fichier.id}`, { dossier_id: theirs.dossier }],
      ['POST', `/corbeille/armoire/${mine.armoire}/restaurer`],
      ['DELETE', `/corbeille/fichier/${file.fichier.id}`],
    ]
    for (const [method, url, payload] of attempts) {
      const res = await app.inject({ method: method as 'GET', url, headers: h, ...(payload ? { payload: payload as object } : {}) })
      t.equal(res.statusCode, 404, `${method} ${url}`)
      t.notMatch(res.body, /secret/)
    }
    const list = await app.inject({ method: 'GET', url: '/armoires', headers: h })
    t.same(list.json().items.map((a: { id: string }) => a.id), [theirs.armoire], 'lists are scoped too')
    t.equal((await app.inject({ method: 'GET', url: `/fichiers/${file.fichier.id}`, headers })).statusCode, 200, 'still there for its owner')
  })
})
