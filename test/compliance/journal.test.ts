import { randomUUID } from 'node:crypto'
import { sql } from 'kysely'
import t from 'tap'
import { pruneJournal } from '../../plugins/compliance/journal-term.ts'
import { entryDigest, verifyChain } from '../../src/audit.ts'
import { signUp } from '../helpers/auth.ts'
import { build } from '../helpers/build.ts'
import { tamper } from '../helpers/tamper.ts'

t.test('the application cannot update, delete or truncate the journal', async (t) => {
  const app = await build(t)
  const admin = await signUp(app)
  for (const statement of [
    sql`update journal_activite set cible_nom = 'x' where organisation_id = ${admin.organisationId}`,
    sql`delete from journal_activite where organisation_id = ${admin.organisationId}`,
    sql`truncate journal_activite`,
  ]) {
    await t.rejects(statement.execute(app.db), { code: '42501', message: /ajout seul/ })
  }
  const ok = await app.inject({ method: 'GET', url: '/journal/verification', headers: admin.headers })
  t.match(ok.json(), { intact: true })
  t.ok(ok.json().nombre_entrees >= 1)
})

t.test('entries past the journal’s term are removed, the removal journaled with the hash the chain resumes from', async (t) => {
  const app = await build(t)
  const organisationId = randomUUID()
  await sql`insert into organisations (id, nom) values (${organisationId}, 'Ancienne')`.execute(app.db)
  const append = async (at: Date, n: number) => {
    const content = {
      organisation_id: organisationId, utilisateur_id: null, action: 'FILE_DOWNLOADED', cible_type: 'fichier', cible_id: String(n),
      cible_nom: 'a.pdf', resultat: 'succes' as const, severite: 'LOW' as const, ip: null, user_agent: null, details: { n }, created_at: at,
    }
    await sql`select journal_ajouter(${organisationId}::uuid, ${entryDigest(content)}::bytea, null::uuid, 'FILE_DOWNLOADED', 'fichier',
      ${String(n)}, 'a.pdf', 'succes', 'LOW', null::text, null::text, ${JSON.stringify({ n })}::jsonb, ${at}::timestamptz)`.execute(app.db)
  }
  for (let n = 1; n <= 3; n++) await append(new Date(Date.UTC(2010, 0, n)), n)
  for (let n = 4; n <= 5; n++) await append(new Date(), n)
  const third = await app.db.selectFrom('journal_activite').select('hash').where('organisation_id', '=', organisationId).where('sequence', '=', 3).executeTakeFirstOrThrow()

  t.equal(await pruneJournal(app, 0), 0, '0 keeps the journal for ever')
  t.equal(await pruneJournal(app, 3653), 3)
  const rows = await app.db.selectFrom('journal_activite').selectAll().where('organisation_id', '=', organisationId).orderBy('sequence').execute()
  t.same(rows.map((r) => r.sequence), [4, 5, 6])
  t.match(rows[2], { action: 'JOURNAL_PRUNED', severite: 'HIGH', details: { entrees: 3, jusqua_sequence: 3, hash_reprise: third.hash.toString('hex') } })
  t.same(await verifyChain(app.db, organisationId), { intact: true, count: 3 }, 'the chain resumes from the kept hash')
  t.equal(await pruneJournal(app, 3653), 0, 'nothing more to remove')

  await tamper(app.db, sql`delete from journal_activite where organisation_id = ${organisationId} and sequence = 4`)
  t.match(await verifyChain(app.db, organisationId), { intact: false, sequence: 5, reason: /manquante/ }, 'a removal by other means still shows')
})
