import { randomBytes } from 'node:crypto'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import type { RestaurationDto } from '../../openapi/backup.ts'
import { localBlobRoot } from '../../src/blobs.ts'
import { HEADER_SIZE } from '../../src/crypto/segmented.ts'
import { addMember, type Member, signUp } from '../helpers/auth.ts'
import { build, testStorage } from '../helpers/build.ts'
import { filesUnder, journal, sha256, storedRows, upload, uploadFile } from '../documents/helpers.ts'
import { backup, settled } from './helpers.ts'
import type { FastifyInstance } from 'fastify'

async function post(app: FastifyInstance, member: Member, url: string, payload: Record<string, unknown> = {}) {
  const res = await app.inject({ method: 'POST', url, headers: member.headers, payload })
  if (res.statusCode !== 201) throw new Error(`POST ${url}: ${res.statusCode} ${res.body}`)
  return res.json().id as string
}

/** POST /sauvegardes/{id}/restaurer and, unless a simulation, waits for the job. */
async function restore(app: FastifyInstance, member: Member, backupId: string, body: Record<string, unknown> = {}): Promise<RestaurationDto> {
  const res = await app.inject({ method: 'POST', url: `/sauvegardes/${backupId}/restaurer`, headers: member.headers, payload: body })
  if (body.simulation) {
    if (res.statusCode !== 200) throw new Error(`simulation: ${res.statusCode} ${res.body}`)
    return res.json()
  }
  if (res.statusCode !== 202) throw new Error(`restore: ${res.statusCode} ${res.body}`)
  return settled<RestaurationDto>(app, member, `/restaurations/${res.json().id}`)
}

const actions = (r: RestaurationDto) => Object.fromEntries((r.rapport?.elements ?? []).map((e) => [e.chemin, e.action]))

t.test('restore', async (t) => {
  const storage = await testStorage(t)
  const app = await build(t, { STORAGE_DIR: storage })
  const admin = await signUp(app)
  const headers = admin.headers
  const armoire = await post(app, admin, '/armoires', { nom: 'Paie' })
  const casier = await post(app, admin, `/armoires/${armoire}/casiers`, { nom: '2026' })
  const janvier = await post(app, admin, `/casiers/${casier}/dossiers`, { nom: 'Janvier' })
  const notes = await post(app, admin, `/dossiers/${janvier}/dossiers`, { nom: 'Notes' })
  const a1 = randomBytes(150_000)
  const b = Buffer.from('bulletin de janvier\n'.repeat(300))
  const c = Buffer.from('une note')
  const a = await uploadFile(app, admin, janvier, a1, { filename: 'a.pdf', type: 'application/pdf' })
  const bFile = await uploadFile(app, admin, janvier, b, { filename: 'b.txt', type: 'text/plain' })
  const cFile = await uploadFile(app, admin, notes, c, { filename: 'c.txt', type: 'text/plain' })
  const saved = await backup(app, admin, { type: 'armoire', cible_id: armoire })
  t.equal(saved.statut, 'terminee')
  const content = async (id: string) => (await app.inject({ method: 'GET', url: `/fichiers/${id}/contenu`, headers })).rawPayload
  const root = 'Paie/2026/Janvier'

  t.test('a simulation answers the plan and changes nothing', async (t) => {
    const before = await storedRows(app, admin.organisationId)
    const entries = (await journal(app, admin.organisationId)).length
    const plan = await restore(app, admin, saved.id, { simulation: true })
    t.match(plan, { simulation: true, statut: 'terminee', rapport: { crees: 0, nouvelles_versions: 0, identiques: 3, echecs: 0 } })
    t.same(actions(plan), { Paie: 'existant', 'Paie/2026': 'existant', [root]: 'existant', [`${root}/Notes`]: 'existant', [`${root}/a.pdf`]: 'identique', [`${root}/b.txt`]: 'identique', [`${root}/Notes/c.txt`]: 'identique' })
    t.same(await storedRows(app, admin.organisationId), before)
    t.equal((await journal(app, admin.organisationId)).length, entries, 'not even journaled')
  })

  t.test('a file changed since gets a new version with the archived content; identical ones are skipped', async (t) => {
    await upload(app, admin, `/fichiers/${a.fichier.id}/version`, randomBytes(1000), { filename: 'a.pdf', type: 'application/pdf' })
    const done = await restore(app, admin, saved.id)
    t.match(done, { statut: 'terminee', rapport: { nouvelles_versions: 1, identiques: 2, crees: 0, echecs: 0 } })
    t.match(done.rapport?.elements.find((e) => e.chemin === `${root}/a.pdf`), { action: 'nouvelle_version', id: a.fichier.id, version_number: 3 })
    t.same(await content(a.fichier.id), a1)
    const versions = (await app.inject({ method: 'GET', url: `/fichiers/${a.fichier.id}/versions`, headers })).json().items
    t.match(versions[0], { version_number: 3, courante: true, sha256: sha256(a1), restauree_depuis: 1, restauree_de_sauvegarde: saved.id })
    t.equal(versions.length, 3, 'nothing overwritten')
    const log = await journal(app, admin.organisationId)
    t.match(log.filter((e) => e.action === 'BACKUP_ITEM_RESTORED'), [{ cible_type: 'fichier', cible_id: a.fichier.id, details: { action: 'nouvelle_version', sauvegarde_id: saved.id, restauration_id: done.id } }])
    t.match(log.filter((e) => e.action === 'BACKUP_RESTORED').at(-1), { action: 'BACKUP_RESTORED', cible_id: saved.id, details: { restauration_id: done.id, nouvelles_versions: 1, identiques: 2 } })
    const again = await restore(app, admin, saved.id)
    t.match(again.rapport, { nouvelles_versions: 0, identiques: 3 }, 'a re-run finds everything identical')
  })

  t.test('a trashed armoire comes back from the trash', async (t) => {
    t.equal((await app.inject({ method: 'DELETE', url: `/armoires/${armoire}?recursif=true`, headers })).statusCode, 204)
    const done = await restore(app, admin, saved.id)
    t.match(done.rapport, { restaures_corbeille: 1, identiques: 3, crees: 0 })
    t.equal(actions(done).Paie, 'restaure_corbeille')
    t.equal((await app.inject({ method: 'GET', url: `/fichiers/${cFile.fichier.id}`, headers })).statusCode, 200)
  })

  t.test('a purged armoire is recreated as it was, under its ids, byte for byte', async (t) => {
    t.equal((await app.inject({ method: 'DELETE', url: `/armoires/${armoire}?recursif=true`, headers })).statusCode, 204)
    t.equal((await app.inject({ method: 'DELETE', url: `/corbeille/armoire/${armoire}`, headers })).statusCode, 204)
    t.equal((await app.inject({ method: 'GET', url: `/armoires/${armoire}`, headers })).statusCode, 404)
    const done = await restore(app, admin, saved.id)
    t.match(done, { statut: 'terminee', rapport: { crees: 7, echecs: 0 } })
    for (const [id, expected] of [[a.fichier.id, a1], [bFile.fichier.id, b], [cFile.fichier.id, c]] as const) t.same(await content(id), expected)
    t.match((await app.inject({ method: 'GET', url: `/dossiers/${notes}`, headers })).json(), { id: notes, nom: 'Notes', parent_id: janvier, casier_id: casier })
    t.match((await app.inject({ method: 'GET', url: `/fichiers/${a.fichier.id}/versions`, headers })).json().items, [{ version_number: 1, restauree_de_sauvegarde: saved.id }])
    const again = await restore(app, admin, saved.id)
    t.match(again.rapport, { crees: 0, identiques: 3 }, 'idempotent: a re-run restores nothing twice')
  })

  t.test('elements limit the restore to some paths or ids', async (t) => {
    t.equal((await app.inject({ method: 'DELETE', url: `/dossiers/${notes}?recursif=true`, headers })).statusCode, 204)
    t.equal((await app.inject({ method: 'DELETE', url: `/corbeille/dossier/${notes}`, headers })).statusCode, 204)
    t.equal((await app.inject({ method: 'DELETE', url: `/fichiers/${bFile.fichier.id}`, headers })).statusCode, 204)
    const done = await restore(app, admin, saved.id, { elements: [`${root}/Notes`] })
    t.match(done.rapport, { crees: 2, restaures_corbeille: 0 })
    t.same(await content(cFile.fichier.id), c)
    t.equal((await app.inject({ method: 'GET', url: `/fichiers/${bFile.fichier.id}`, headers })).statusCode, 404, 'b.txt was not asked for')
    const byId = await restore(app, admin, saved.id, { elements: [bFile.fichier.id] })
    t.match(byId.rapport, { restaures_corbeille: 1 })
    const unknown = await app.inject({ method: 'POST', url: `/sauvegardes/${saved.id}/restaurer`, headers, payload: { elements: ['Paie/nulle-part'] } })
    t.equal(unknown.statusCode, 202)
    t.match(await settled<RestaurationDto>(app, admin, `/restaurations/${unknown.json().id}`), { statut: 'echec', erreur: { code: 'INVALID_TARGET' } })
  })

  t.test('into another target: a casier placed in another armoire, then merged; names kept unique', async (t) => {
    const casierBackup = await backup(app, admin, { type: 'casier', cible_id: casier })
    const other = await post(app, admin, '/armoires', { nom: 'Copie' })
    const done = await restore(app, admin, casierBackup.id, { cible_id: other })
    t.match(done, { statut: 'terminee', cible_type: 'armoire', cible_id: other, rapport: { crees: 6, echecs: 0 } })
    const casiers = (await app.inject({ method: 'GET', url: `/armoires/${other}/casiers`, headers })).json().items
    t.match(casiers, [{ nom: '2026' }])
    t.not(casiers[0].id, casier, 'a copy, under new ids')
    const again = await restore(app, admin, casierBackup.id, { cible_id: other })
    t.match(again.rapport, { crees: 0, identiques: 3 }, 'the re-run merges into what the first one made')
    const merged = await restore(app, admin, casierBackup.id, { cible_id: casiers[0].id })
    t.match(merged, { cible_type: 'casier', rapport: { crees: 0, identiques: 3 } })

    const fileBackup = await backup(app, admin, { type: 'fichier', cible_id: a.fichier.id })
    const target = await post(app, admin, `/casiers/${casier}/dossiers`, { nom: 'Cible' })
    for (const nom of ['a.pdf', 'a (2).pdf', 'A (3).PDF', 'a_ (4).pdf', 'b (4).pdf']) await post(app, admin, `/dossiers/${target}/dossiers`, { nom })
    const renamed = await restore(app, admin, fileBackup.id, { cible_id: target })
    t.match(renamed.rapport, { crees: 1, renommes: 1, elements: [{ action: 'cree', nom: 'a (4).pdf' }] }, 'the first number no sibling takes, whatever its case')

    const wrong = await app.inject({ method: 'POST', url: `/sauvegardes/${casierBackup.id}/restaurer`, headers, payload: { cible_id: target } })
    t.equal(wrong.statusCode, 422)
    t.equal(wrong.json().code, 'INVALID_TARGET')
  })

  t.test('organisations and roles', async (t) => {
    const stranger = await signUp(app, { organisation: 'Ailleurs' })
    const theirs = await post(app, stranger, '/armoires', { nom: 'Paie' })
    t.equal((await app.inject({ method: 'POST', url: `/sauvegardes/${saved.id}/restaurer`, headers: stranger.headers, payload: {} })).statusCode, 404)
    const foreign = await app.inject({ method: 'POST', url: `/sauvegardes/${saved.id}/restaurer`, headers, payload: { cible_id: theirs } })
    t.equal(foreign.statusCode, 404)
    t.equal(foreign.json().code, 'NOT_FOUND')
    const mine = (await app.inject({ method: 'GET', url: '/restaurations?limit=100', headers })).json().items
    t.ok(mine.length > 5)
    t.same((await app.inject({ method: 'GET', url: '/restaurations', headers: stranger.headers })).json().items, [])
    t.equal((await app.inject({ method: 'GET', url: `/restaurations/${mine[0].id}`, headers: stranger.headers })).statusCode, 404)
    const contributeur = await addMember(app, admin, 'contributeur')
    t.equal((await app.inject({ method: 'POST', url: `/sauvegardes/${saved.id}/restaurer`, headers: contributeur.headers, payload: {} })).statusCode, 403)
    t.equal((await app.inject({ method: 'GET', url: '/restaurations', headers: contributeur.headers })).statusCode, 403)
  })

  t.test('a tampered archive is never restored from', async (t) => {
    const row = await app.db.selectFrom('sauvegardes').select('chemin').where('id', '=', saved.id).executeTakeFirstOrThrow()
    const blobRoot = localBlobRoot({ STORAGE_DIR: storage })
    const path = join(blobRoot, row.chemin!.slice(0, 2), row.chemin!.slice(2, 4), row.chemin!)
    const bytes = await readFile(path)
    bytes[HEADER_SIZE + 500]! ^= 1
    await writeFile(path, bytes)
    t.equal((await app.inject({ method: 'DELETE', url: `/fichiers/${a.fichier.id}`, headers })).statusCode, 204)
    t.equal((await app.inject({ method: 'DELETE', url: `/corbeille/fichier/${a.fichier.id}`, headers })).statusCode, 204)
    const before = await storedRows(app, admin.organisationId)
    const failed = await restore(app, admin, saved.id, { elements: [a.fichier.id] })
    t.match(failed, { statut: 'echec', erreur: { code: /INTEGRITY_ERROR|BACKUP_TAMPERED/ } })
    t.same(await storedRows(app, admin.organisationId), before, 'nothing restored from it')
    t.match((await journal(app, admin.organisationId)).at(-1), { action: 'RESTORE_FAILED', resultat: 'echec' })
    t.match((await app.inject({ method: 'POST', url: `/sauvegardes/${saved.id}/verifier`, headers })).json(), { valide: false })
    const refused = await app.inject({ method: 'POST', url: `/sauvegardes/${saved.id}/restaurer`, headers, payload: {} })
    t.equal(refused.statusCode, 422)
    t.equal(refused.json().code, 'BACKUP_TAMPERED')
  })
})

t.test('new files are inserted in batches: one that may not be created fails alone, and leaves no blob; each is journaled in order', async (t) => {
  const storage = await testStorage(t)
  const app = await build(t, { STORAGE_DIR: storage })
  const admin = await signUp(app)
  const armoire = await post(app, admin, '/armoires', { nom: 'Ventes' })
  const casier = await post(app, admin, `/armoires/${armoire}/casiers`, { nom: '2026' })
  const lotA = await post(app, admin, `/casiers/${casier}/dossiers`, { nom: 'Lot A' })
  const lotB = await post(app, admin, `/casiers/${casier}/dossiers`, { nom: 'Lot B' })
  for (const nom of ['a.txt', 'b.txt']) await uploadFile(app, admin, lotA, Buffer.from(`contenu de ${nom}`), { filename: nom, type: 'text/plain' })
  await uploadFile(app, admin, lotB, Buffer.from('contenu de c.txt'), { filename: 'c.txt', type: 'text/plain' })
  const saved = await backup(app, admin, { type: 'casier', cible_id: casier })

  // Merged into a casier whose "Lot B" is locked: c.txt may not go in, a.txt and b.txt may.
  const copie = await post(app, admin, `/armoires/${armoire}/casiers`, { nom: 'Copie' })
  const copieA = await post(app, admin, `/casiers/${copie}/dossiers`, { nom: 'Lot A' })
  const copieB = await post(app, admin, `/casiers/${copie}/dossiers`, { nom: 'Lot B' })
  t.equal((await app.inject({ method: 'POST', url: `/dossiers/${copieB}/verrou`, headers: admin.headers, payload: { motif: 'Clôture' } })).statusCode, 201)
  const blobs = async () => (await filesUnder(localBlobRoot({ STORAGE_DIR: storage }))).length
  const before = await blobs()

  const done = await restore(app, admin, saved.id, { cible_id: copie })
  t.match(done, { statut: 'terminee', rapport: { crees: 2, echecs: 1 } })
  t.match(
    done.rapport!.elements.find((e) => e.action === 'echec'),
    { type: 'fichier', chemin: 'Ventes/2026/Lot B/c.txt', code: 'LOCKED' },
  )
  const listed = async (dossier: string) =>
    (await app.inject({ method: 'GET', url: `/dossiers/${dossier}/fichiers`, headers: admin.headers })).json().items.map((f: { nom: string }) => f.nom).sort()
  t.same(await listed(copieA), ['a.txt', 'b.txt'])
  t.same(await listed(copieB), [])
  t.equal(await blobs(), before + 2, 'the refused file’s sealed blob was removed')

  // One batch whole: a name taken in the target is numbered after the rest of the batch is
  // in, and the journal still takes the files in the archive's order, in one chain.
  const autre = await post(app, admin, `/armoires/${armoire}/casiers`, { nom: 'Autre' })
  const autreA = await post(app, admin, `/casiers/${autre}/dossiers`, { nom: 'Lot A' })
  await post(app, admin, `/dossiers/${autreA}/dossiers`, { nom: 'A.TXT' })
  const whole = await restore(app, admin, saved.id, { cible_id: autre })
  t.match(whole, { statut: 'terminee', rapport: { crees: 4, renommes: 1, echecs: 0 } })
  t.same(await listed(autreA), ['a (2).txt', 'b.txt'])
  const created = whole.rapport!.elements.filter((e) => e.type === 'fichier')
  t.match([...created].sort((x, y) => x.chemin.localeCompare(y.chemin)), [
    { chemin: 'Ventes/2026/Lot A/a.txt', action: 'cree', nom: 'a (2).txt', version_number: 1 },
    { chemin: 'Ventes/2026/Lot A/b.txt', action: 'cree', version_number: 1 },
    { chemin: 'Ventes/2026/Lot B/c.txt', action: 'cree', version_number: 1 },
  ])
  const journaled = (await journal(app, admin.organisationId)).filter((e) => e.action === 'BACKUP_ITEM_RESTORED' && e.cible_type === 'fichier').slice(-3)
  t.same(journaled.map((e) => [e.cible_id, e.cible_nom]), created.map((e) => [e.id, e.nom ?? e.chemin.split('/').at(-1)]))
  t.same(journaled.map((e) => e.sequence - journaled[0]!.sequence), [0, 1, 2], 'journaled in one statement, in order')
  const verified = await app.inject({ method: 'GET', url: '/journal/verification', headers: admin.headers })
  t.match(verified.json(), { intact: true, premiere_rupture: null })
})
