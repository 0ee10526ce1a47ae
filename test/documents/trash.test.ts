import { sql } from 'kysely'
import t from 'tap'
import { purgeExpiredTrash } from '../../plugins/documents/trash.ts'
import { addMember, signUp } from '../helpers/auth.ts'
import { build } from '../helpers/build.ts'
import { journal, storedRows, tree, uploadFile } from './helpers.ts'

t.test('the trash', async (t) => {
  const app = await build(t, { TRASH_RETENTION_DAYS: '7' })
  const admin = await signUp(app)
  const headers = admin.headers
  const get = (url: string) => app.inject({ method: 'GET', url, headers })

  t.test('deleting sends to the trash; restoring brings back exactly what that deletion hid', async (t) => {
    const { armoire, casier, dossier } = await tree(app, admin)
    const kept = await uploadFile(app, admin, dossier, Buffer.from('gardé'), { filename: 'garde.txt' })
    const early = await uploadFile(app, admin, dossier, Buffer.from('supprimé avant'), { filename: 'avant.txt' })
    t.equal((await app.inject({ method: 'DELETE', url: `/fichiers/${early.fichier.id}`, headers })).statusCode, 204)
    t.equal((await app.inject({ method: 'DELETE', url: `/casiers/${casier}?recursif=true`, headers })).statusCode, 204)

    t.equal((await get(`/fichiers/${kept.fichier.id}`)).statusCode, 404, 'hidden with its drawer')
    t.equal((await get(`/armoires/${armoire}`)).json().nombre_elements, 0)
    const trash = (await get('/corbeille')).json()
    t.same(trash.items.map((i: { type: string; id: string }) => [i.type, i.id]), [['casier', casier], ['fichier', early.fichier.id]])
    const [entry] = trash.items
    t.match(entry, { nom: /^Casier/, parent: { type: 'armoire', id: armoire }, deleted_by: admin.userId, taille: null })
    t.equal(Date.parse(entry.purge_le) - Date.parse(entry.deleted_at), 7 * 86_400_000, 'purged after TRASH_RETENTION_DAYS')
    t.same((await get('/corbeille?type=fichier')).json().items.map((i: { id: string }) => i.id), [early.fichier.id])
    const paged = (await get('/corbeille?limit=1')).json()
    t.equal(paged.items.length, 1)
    t.same((await get(`/corbeille?limit=1&cursor=${paged.next_cursor}`)).json().items.map((i: { id: string }) => i.id), [early.fichier.id])

    const parentGone = await app.inject({ method: 'POST', url: `/corbeille/fichier/${early.fichier.id}/restaurer`, headers })
    t.equal(parentGone.statusCode, 409, 'its folder is in the trash')
    t.equal(parentGone.json().code, 'PARENT_IN_TRASH')
    const nested = await app.inject({ method: 'POST', url: `/corbeille/dossier/${dossier}/restaurer`, headers })
    t.equal(nested.statusCode, 404, 'not a trash entry of its own: it went with its drawer')

    t.equal((await app.inject({ method: 'POST', url: `/corbeille/casier/${casier}/restaurer`, headers })).statusCode, 204)
    t.equal((await get(`/fichiers/${kept.fichier.id}`)).statusCode, 200)
    t.equal((await get(`/fichiers/${early.fichier.id}`)).statusCode, 404, 'deleted on its own: still in the trash')
    t.equal((await app.inject({ method: 'POST', url: `/corbeille/fichier/${early.fichier.id}/restaurer`, headers })).statusCode, 204)
    t.equal((await get(`/dossiers/${dossier}`)).json().nombre_elements, 2)
    t.same((await get('/corbeille')).json().items, [])

    const actions = (await journal(app, admin.organisationId)).map((e) => `${e.action}:${e.cible_type}`)
    t.ok(actions.includes('DELETED:casier') && actions.includes('RESTORED_FROM_TRASH:casier') && actions.includes('RESTORED_FROM_TRASH:fichier'))
  })

  t.test('a restore that would duplicate a name is refused', async (t) => {
    const { dossier } = await tree(app, admin)
    const first = await uploadFile(app, admin, dossier, Buffer.from('1'), { filename: 'Contrat.pdf' })
    await app.inject({ method: 'DELETE', url: `/fichiers/${first.fichier.id}`, headers })
    await uploadFile(app, admin, dossier, Buffer.from('2'), { filename: 'contrat.pdf' })
    const res = await app.inject({ method: 'POST', url: `/corbeille/fichier/${first.fichier.id}/restaurer`, headers })
    t.equal(res.statusCode, 409)
    t.equal(res.json().code, 'NAME_CONFLICT')
  })

  t.test('purging is for admins, and destroys the entry and all it holds', async (t) => {
    const contributeur = await addMember(app, admin, 'contributeur')
    const { armoire, dossier } = await tree(app, admin)
    await uploadFile(app, admin, dossier, Buffer.from('a'.repeat(1000)), { filename: 'a.txt' })
    const sub = (await app.inject({ method: 'POST', url: `/dossiers/${dossier}/dossiers`, headers, payload: { nom: 'Sous' } })).json()
    const inner = await uploadFile(app, admin, sub.id, Buffer.from('b'.repeat(500)), { filename: 'b.txt' })
    await app.inject({ method: 'DELETE', url: `/fichiers/${inner.fichier.id}`, headers })
    const before = await storedRows(app, admin.organisationId)
    await app.inject({ method: 'DELETE', url: `/armoires/${armoire}?recursif=true`, headers })

    const denied = await app.inject({ method: 'DELETE', url: `/corbeille/armoire/${armoire}`, headers: contributeur.headers })
    t.equal(denied.statusCode, 403)
    t.equal((await app.inject({ method: 'DELETE', url: `/corbeille/armoire/${armoire}`, headers })).statusCode, 204)
    const after = await storedRows(app, admin.organisationId)
    t.equal(before.fichiers - after.fichiers, 2, 'both files, the one trashed on its own included')
    t.equal(before.stockage - after.stockage, 1500, 'storage released')
    t.same((await get('/corbeille')).json().items.filter((i: { id: string }) => [armoire, inner.fichier.id].includes(i.id)), [])
    const count = await sql<{ n: number }>`select count(*)::int as n from dossiers where id = ${sub.id}`.execute(app.db)
    t.equal(count.rows[0]?.n, 0)
    t.equal((await app.inject({ method: 'DELETE', url: `/corbeille/armoire/${armoire}`, headers })).statusCode, 404, 'gone')
  })

  t.test('entries older than the retention period purge themselves', async (t) => {
    const { dossier } = await tree(app, admin)
    const old = await uploadFile(app, admin, dossier, Buffer.from('vieux'), { filename: 'vieux.txt' })
    const recent = await uploadFile(app, admin, dossier, Buffer.from('récent'), { filename: 'recent.txt' })
    await app.inject({ method: 'DELETE', url: `/fichiers/${old.fichier.id}`, headers })
    await app.inject({ method: 'DELETE', url: `/fichiers/${recent.fichier.id}`, headers })
    await app.db
      .updateTable('fichiers')
      .set({ deleted_at: new Date(Date.now() - 8 * 86_400_000) })
      .where('id', '=', old.fichier.id)
      .execute()
    t.equal(await purgeExpiredTrash(app, 7), 1)
    const ids = (await get('/corbeille')).json().items.map((i: { id: string }) => i.id)
    t.notOk(ids.includes(old.fichier.id), 'the old one is purged')
    t.ok(ids.includes(recent.fichier.id), 'the recent one stays')
    const purged = (await journal(app, admin.organisationId)).find((e) => e.action === 'PURGED' && e.cible_id === old.fichier.id)
    t.match(purged, { utilisateur_id: null, details: { automatique: true } })
  })

  t.test('the purge runs as a scheduled job', async (t) => {
    const schedules = await app.jobs.boss!.getSchedules()
    t.ok(schedules.some((s) => s.name === 'documents.corbeille.purge'), 'scheduled daily')
    const { dossier } = await tree(app, admin)
    const old = await uploadFile(app, admin, dossier, Buffer.from('oublié'), { filename: 'oublie.txt' })
    await app.inject({ method: 'DELETE', url: `/fichiers/${old.fichier.id}`, headers })
    await app.db.updateTable('fichiers').set({ deleted_at: new Date(Date.now() - 30 * 86_400_000) }).where('id', '=', old.fichier.id).execute()
    await app.jobs.send('documents.corbeille.purge', {})
    app.jobs.wake('documents.corbeille.purge')
    for (let i = 0; i < 200; i++) {
      if (!(await app.db.selectFrom('fichiers').select('id').where('id', '=', old.fichier.id).executeTakeFirst())) break
      await new Promise((r) => setTimeout(r, 50))
    }
    t.notOk(await app.db.selectFrom('fichiers').select('id').where('id', '=', old.fichier.id).executeTakeFirst(), 'purged by the job')
  })
})
