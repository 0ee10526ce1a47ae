import { randomUUID } from 'node:crypto'
import { sql } from 'kysely'
import t from 'tap'
import { chainHash, entryDigest, entryDigestJcs, entryHash, entryMessage, verifyChain } from '../../src/audit.ts'
import { addMember, signUp } from '../helpers/auth.ts'
import { build } from '../helpers/build.ts'
import { tamper } from '../helpers/tamper.ts'

t.test('each entry reads as a French sentence like the brief’s', async (t) => {
  const message = entryMessage({
    created_at: new Date('2025-06-01T15:22:09Z'),
    utilisateur_id: '3',
    action: 'DELETED',
    cible_type: 'fichier',
    cible_id: '67',
    cible_nom: 'ContratRH.pdf',
    resultat: 'succes',
  })
  t.equal(message, '[2025-06-01 15:22] – user_id=3 a supprimé le fichier ID=67 “ContratRH.pdf”')
  t.equal(
    entryMessage({ created_at: new Date('2025-06-01T15:22:00Z'), utilisateur_id: null, action: 'LOGIN_FAILED', cible_type: null, cible_id: null, cible_nom: null, resultat: 'echec' }),
    '[2025-06-01 15:22] – le système a échoué à se connecter à (échec)',
  )
})

t.test('the journal: filters, newest first, cursor pagination, admins only', async (t) => {
  const app = await build(t)
  const admin = await signUp(app)
  const reader = await addMember(app, admin, 'lecteur')
  await app.inject({ method: 'GET', url: '/users', headers: reader.headers }) // denied, journaled

  const res = await app.inject({ method: 'GET', url: '/journal?limit=100', headers: admin.headers })
  t.equal(res.statusCode, 200)
  const items = res.json().items
  const actions = items.map((e: { action: string }) => e.action)
  t.same(actions, ['ACCESS_DENIED', 'INVITATION_ACCEPTED', 'USER_INVITED', 'USER_REGISTERED'], 'newest first')
  const denied = items[0]
  t.match(denied, { resultat: 'refus', severite: 'MEDIUM', utilisateur_id: reader.userId, cible_type: 'operation', cible_id: 'listUsers' })
  t.match(denied.message, new RegExp(`^\\[\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d\\] – user_id=${reader.userId} s’est vu refuser l’accès à l’opération ID=listUsers \\(refusé\\)$`))

  const filtered = await app.inject({ method: 'GET', url: `/journal?resultat=refus&utilisateur_id=${reader.userId}`, headers: admin.headers })
  t.same(filtered.json().items.map((e: { action: string }) => e.action), ['ACCESS_DENIED'])
  const bySeverity = await app.inject({ method: 'GET', url: '/journal?severite=HIGH', headers: admin.headers })
  t.same(bySeverity.json().items, [])
  const future = await app.inject({ method: 'GET', url: '/journal?depuis=2999-01-01T00:00:00Z', headers: admin.headers })
  t.same(future.json().items, [])

  const first = await app.inject({ method: 'GET', url: '/journal?limit=3', headers: admin.headers })
  t.equal(first.json().items.length, 3)
  const rest = await app.inject({ method: 'GET', url: `/journal?limit=3&cursor=${first.json().next_cursor}`, headers: admin.headers })
  t.same(rest.json().items.map((e: { action: string }) => e.action), ['USER_REGISTERED'])
  t.equal(rest.json().next_cursor, null)

  t.equal((await app.inject({ method: 'GET', url: '/journal', headers: reader.headers })).statusCode, 403)
  const other = await signUp(app)
  const theirs = await app.inject({ method: 'GET', url: '/journal', headers: other.headers })
  t.same(theirs.json().items.map((e: { action: string }) => e.action), ['USER_REGISTERED'], 'each organisation sees its own journal')
})

t.test('export streams CSV and JSON, in batches', async (t) => {
  const app = await build(t)
  const admin = await signUp(app)
  const { organisationId, userId } = admin
  // Enough entries to cross several export batches.
  await app.db.transaction().execute(async (trx) => {
    for (let i = 0; i < 2100; i++) {
      await app.audit.record(trx, { organisationId, userId, action: 'FILE_DOWNLOADED', target: { type: 'fichier', id: String(i), nom: i === 7 ? '=cmd|"calc"!A1' : `doc-${i}.pdf` } })
    }
  })
  const json = await app.inject({ method: 'GET', url: '/journal/export?format=json&action=FILE_DOWNLOADED', headers: admin.headers })
  t.equal(json.statusCode, 200)
  t.match(json.headers['content-disposition'], /^attachment; filename=journal-\d{4}-\d\d-\d\d\.json$/)
  const rows = json.json()
  t.equal(rows.length, 2100)
  t.same(rows.slice(0, 2).map((r: { cible_id: string }) => r.cible_id), ['0', '1'], 'oldest first')

  const csv = await app.inject({ method: 'GET', url: '/journal/export?format=csv', headers: admin.headers })
  t.equal(csv.headers['content-type'], 'text/csv; charset=utf-8')
  const lines = csv.body.trimEnd().split('\r\n')
  t.equal(lines[0], 'id,created_at,utilisateur_id,action,cible_type,cible_id,cible_nom,resultat,severite,ip,message')
  t.equal(lines.length, 1 + 1 + 2100 + 2, 'header, registration, downloads, both exports (each journaled before it streams)')
  t.ok(lines.some((l) => l.includes(`"'=cmd|""calc""!A1"`)), 'a formula-looking cell is neutralised and quotes doubled')
  const exported = await app.db.selectFrom('journal_activite').select('action').where('action', '=', 'JOURNAL_EXPORTED').execute()
  t.equal(exported.length, 2, 'exports are journaled')
})

t.test('the chain: intact, then a tampered row is named', async (t) => {
  const app = await build(t)
  const admin = await signUp(app)
  for (let i = 0; i < 4; i++) await app.inject({ method: 'GET', url: '/auth/sessions', headers: admin.headers })
  await addMember(app, admin, 'contributeur')

  const ok = await app.inject({ method: 'GET', url: '/journal/verification', headers: admin.headers })
  t.equal(ok.statusCode, 200)
  t.match(ok.json(), { intact: true, premiere_rupture: null })
  const count = ok.json().nombre_entrees
  t.ok(count >= 3)

  const victim = await app.db.selectFrom('journal_activite').select(['id', 'sequence']).where('organisation_id', '=', admin.organisationId).where('action', '=', 'USER_INVITED').executeTakeFirstOrThrow()
  await tamper(app.db, sql`update journal_activite set cible_nom = 'quelqu-un-d-autre@exemple.fr' where id = ${victim.id}`)
  const broken = await app.inject({ method: 'GET', url: '/journal/verification', headers: admin.headers })
  t.match(broken.json(), { intact: false, premiere_rupture: { id: victim.id, sequence: victim.sequence, raison: /modifié/ } })

  const other = await signUp(app)
  const theirs = await app.inject({ method: 'GET', url: '/journal/verification', headers: other.headers })
  t.equal(theirs.json().intact, true, 'chains are per organisation')
  const alarm = await app.db.selectFrom('journal_activite').select('severite').where('action', '=', 'JOURNAL_VERIFIED').where('resultat', '=', 'echec').executeTakeFirstOrThrow()
  t.equal(alarm.severite, 'CRITICAL')
})

t.test('a chain begun under the first hashing scheme goes on under the second and the third (RFC 8785), and every part is checked', async (t) => {
  const app = await build(t)
  const organisationId = randomUUID()
  // Two entries as the app wrote them before `journal_ajouter`: hashed whole, here.
  let previous: Buffer | null = null
  for (const sequence of [1, 2]) {
    const row = {
      organisation_id: organisationId, sequence, utilisateur_id: null, action: 'FILE_DOWNLOADED', cible_type: 'fichier', cible_id: String(sequence),
      cible_nom: 'ancien.pdf', resultat: 'succes' as const, severite: 'LOW' as const, ip: '192.0.2.1', user_agent: null,
      details: { n: sequence }, created_at: new Date(Date.UTC(2026, 0, sequence)), hash_precedent: previous,
    }
    const hash = entryHash(row)
    await app.db.insertInto('journal_activite').values({ ...row, details: JSON.stringify(row.details), hash, version_hash: 1 }).execute()
    previous = hash
  }
  // One entry as an instance still running scheme 2 writes it (no scheme argument).
  const old = {
    organisation_id: organisationId, utilisateur_id: null, action: 'FILE_DOWNLOADED', cible_type: 'fichier', cible_id: '3', cible_nom: 'nouveau.pdf',
    resultat: 'succes' as const, severite: 'LOW' as const, ip: null, user_agent: null, details: { n: 3 }, created_at: new Date(),
  }
  await sql`select journal_ajouter(${organisationId}::uuid, ${entryDigest(old)}::bytea, null::uuid, 'FILE_DOWNLOADED', 'fichier', '3', 'nouveau.pdf',
    'succes', 'LOW', null::text, null::text, ${JSON.stringify(old.details)}::jsonb, ${old.created_at}::timestamptz)`.execute(app.db)
  await app.audit.recordAlone({ organisationId, userId: null, action: 'FILE_DOWNLOADED', target: { type: 'fichier', id: '4', nom: 'nouveau.pdf' }, details: { n: 4 } })
  // RFC 8785: a detail holding a Date hashes as the ISO string PostgreSQL stores (scheme 2 hashed it as {}).
  const at = new Date(Date.UTC(2026, 5, 1, 12))
  await app.audit.recordAlone({ organisationId, userId: null, action: 'FILE_DOWNLOADED', target: { type: 'fichier', id: '5', nom: 'daté.pdf' }, details: { le: at, é: 'ü', z: [1, 2.5, null] } })
  const rows = await app.db.selectFrom('journal_activite').selectAll().where('organisation_id', '=', organisationId).orderBy('sequence').execute()
  t.same(rows.map((r) => r.version_hash), [1, 1, 2, 3, 3])
  t.same(rows[4]?.details, { le: at.toISOString(), é: 'ü', z: [1, 2.5, null] })
  const third = rows[2]
  t.ok(third && third.hash_precedent?.equals(previous as Buffer), 'the first new entry links to the last old one')
  t.ok(third && third.hash.equals(chainHash(third.hash_precedent, entryDigest(third), 3)), 'PostgreSQL links as the app checks')
  const fourth = rows[3]
  t.ok(fourth && fourth.hash.equals(chainHash(fourth.hash_precedent, entryDigestJcs(fourth), 4)), 'scheme 3 links the same way')
  t.same(await verifyChain(app.db, organisationId), { intact: true, count: 5 }, 'every scheme checked, the Date detail included')

  await tamper(app.db, sql`update journal_activite set cible_nom = 'autre.pdf' where organisation_id = ${organisationId} and sequence = 1`)
  t.match(await verifyChain(app.db, organisationId), { intact: false, sequence: 1, reason: /modifié/ })
  await tamper(app.db, sql`update journal_activite set cible_nom = 'ancien.pdf' where organisation_id = ${organisationId} and sequence = 1`)
  await tamper(app.db, sql`update journal_activite set details = '{"n": 5}' where organisation_id = ${organisationId} and sequence = 4`)
  t.match(await verifyChain(app.db, organisationId), { intact: false, count: 3, sequence: 4, reason: /modifié/ })
})

t.test('a deleted entry breaks the chain too', async (t) => {
  const app = await build(t)
  const admin = await signUp(app)
  await addMember(app, admin, 'lecteur')
  const second = await app.db.selectFrom('journal_activite').select(['id']).where('organisation_id', '=', admin.organisationId).where('sequence', '=', 2).executeTakeFirstOrThrow()
  await tamper(app.db, sql`delete from journal_activite where id = ${second.id}`)
  const res = await app.inject({ method: 'GET', url: '/journal/verification', headers: admin.headers })
  t.match(res.json(), { intact: false, nombre_entrees: 1, premiere_rupture: { sequence: 3, raison: /manquante/ } })
})

t.test('concurrent writers keep one valid chain; a rolled-back action leaves no entry', async (t) => {
  const app = await build(t, { DATABASE_POOL_MAX: '20' })
  const admin = await signUp(app)
  const { organisationId, userId } = admin
  await Promise.all(
    Array.from({ length: 50 }, (_, i) => app.audit.recordAlone({ organisationId, userId, action: 'FILE_DOWNLOADED', target: { type: 'fichier', id: String(i) } })),
  )
  const seqs = (await app.db.selectFrom('journal_activite').select('sequence').where('organisation_id', '=', organisationId).orderBy('sequence').execute()).map((r) => r.sequence)
  t.same(seqs, Array.from({ length: 51 }, (_, i) => i + 1), 'contiguous sequences')
  const res = await app.inject({ method: 'GET', url: '/journal/verification', headers: admin.headers })
  t.match(res.json(), { intact: true, nombre_entrees: 51 })

  await t.rejects(
    app.db.transaction().execute(async (trx) => {
      await app.audit.record(trx, { organisationId, userId, action: 'DELETED', target: { type: 'fichier', id: 'x' } })
      throw new Error('the action failed')
    }),
  )
  const ghost = await app.db.selectFrom('journal_activite').select('id').where('action', '=', 'DELETED').execute()
  t.same(ghost, [])
})

t.test('entries outlive the users they mention', async (t) => {
  const app = await build(t)
  const admin = await signUp(app)
  const member = await addMember(app, admin, 'lecteur')
  await app.db.deleteFrom('utilisateurs').where('id', '=', member.userId).execute()
  const kept = await app.db.selectFrom('journal_activite').select('id').where('utilisateur_id', '=', member.userId).execute()
  t.ok(kept.length > 0)
  const res = await app.inject({ method: 'GET', url: '/journal/verification', headers: admin.headers })
  t.equal(res.json().intact, true)
})
