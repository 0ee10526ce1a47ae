import { sql } from 'kysely'
import t from 'tap'
import { addMember, signUp } from '../helpers/auth.ts'
import { build } from '../helpers/build.ts'
import { caller } from './helpers.ts'

/** The journal's columns that its hash chain covers: rewriting one would break the chain. */
const HASHED = new Set(['organisation_id', 'sequence', 'utilisateur_id', 'action', 'cible_type', 'cible_id', 'cible_nom', 'resultat', 'severite', 'ip', 'user_agent', 'details', 'created_at', 'hash_precedent', 'hash'])

t.test('GDPR erasure: the outbox forgets the address; only the journal’s hashed entries still hold it', async (t) => {
  const app = await build(t, { GDPR_EXPORT_JOB_THRESHOLD: '0' })
  const admin = await signUp(app)
  const bob = await addMember(app, admin, 'contributeur')
  t.equal((await app.inject({ method: 'POST', url: '/auth/password/forgot', payload: { email: bob.email } })).statusCode < 300, true)
  const outbox = (values: { destinataire: string; sujet: string; texte: string; statut: 'en_attente' | 'envoye' }) =>
    app.db.insertInto('courriels').values({ organisation_id: admin.organisationId, kind: 'test', html: `<p>${values.texte}</p>`, ...values }).returning('id').executeTakeFirstOrThrow()
  const pending = await outbox({ destinataire: admin.email, sujet: `Accès de ${bob.email.toUpperCase()}`, texte: `${bob.email} a demandé un accès.`, statut: 'en_attente' })
  const settled = await outbox({ destinataire: admin.email, sujet: 'Rapport', texte: `Nouveau membre : ${bob.email}`, statut: 'envoye' })
  const unrelated = await outbox({ destinataire: admin.email, sujet: 'Bienvenue', texte: 'Rien sur personne.', statut: 'envoye' })
  const toBob = await app.db.selectFrom('courriels').select('id').where('destinataire', '=', bob.email).execute()
  t.ok(toBob.length >= 1, `the outbox held ${toBob.length} mails to the member`)

  const requested = await caller(app, bob).get('/me/export')
  t.equal(requested.statusCode, 202)
  let built
  for (let i = 0; i < 400 && (built = (await caller(app, bob).get(`/conformite/exports/${requested.json().id}`)).json()).statut !== 'terminee'; i++) await new Promise((r) => setTimeout(r, 50))
  t.equal(built.statut, 'terminee', 'the member had an export of their data stored')
  const exportBlob = (await app.db.selectFrom('exports_rgpd').select('blob').where('id', '=', built.id).executeTakeFirstOrThrow()).blob!

  const res = await caller(app, admin).post(`/users/${bob.userId}/effacement`, { motif: 'Demande d’effacement' })
  t.equal(res.statusCode, 200)
  const erased = await app.db.selectFrom('utilisateurs').select('email').where('id', '=', bob.userId).executeTakeFirstOrThrow()

  const left = await app.db.selectFrom('courriels').selectAll().execute()
  t.equal(left.filter((m) => toBob.some((b) => b.id === m.id)).length, 0, 'every mail to the address is gone')
  t.notOk(left.some((m) => m.id === settled.id), 'a mail already settled that names it is gone')
  t.ok(left.some((m) => m.id === unrelated.id), 'a mail about someone else stays')
  const rewritten = left.find((m) => m.id === pending.id)!
  t.match(rewritten, { statut: 'en_attente', sujet: `Accès de ${erased.email}`, texte: `${erased.email} a demandé un accès.`, html: `<p>${erased.email} a demandé un accès.</p>` }, 'a mail still to send to someone else names the pseudonym')
  t.match((await app.db.selectFrom('journal_activite').select('details').where('action', '=', 'USER_ERASED').executeTakeFirstOrThrow()).details, { courriels: { supprimes: toBob.length + 1, reecrits: 1 }, exports_detruits: 1 })
  t.match(await app.db.selectFrom('exports_rgpd').selectAll().where('id', '=', built.id).executeTakeFirstOrThrow(), { statut: 'expiree', cle_enveloppee: null, blob: null }, 'their stored export is shredded')
  t.equal(await app.blobs.exists(exportBlob), false, 'and its blob removed')

  // Every text and JSON column of the database, the job queue's included.
  const { rows: columns } = await sql<{ schema: string; table: string; column: string }>`select c.table_schema as schema, c.table_name as table, c.column_name as column
    from information_schema.columns c join information_schema.tables tb on tb.table_schema = c.table_schema and tb.table_name = c.table_name and tb.table_type = 'BASE TABLE'
    where c.table_schema in ('public', 'pgboss') and c.data_type in ('text', 'character varying', 'jsonb', 'json', 'ARRAY')`.execute(app.db)
  t.ok(columns.length > 50, `${columns.length} columns searched`)
  const holding: string[] = []
  for (const c of columns) {
    const { rows } = await sql<{ n: number }>`select count(*)::int as n from ${sql.table(`${c.schema}.${c.table}`)} where strpos(lower(${sql.ref(c.column)}::text), ${bob.email.toLowerCase()}) > 0`.execute(app.db)
    if (rows[0]!.n > 0) holding.push(`${c.schema}.${c.table}.${c.column}`)
  }
  const unhashed = holding.filter((h) => !(h.startsWith('public.journal_activite.') && HASHED.has(h.split('.').at(-1)!)))
  t.same(unhashed, [], `no column outside the journal’s hashed entries holds the address (the journal: ${holding.join(', ') || 'none'})`)
  t.equal((await caller(app, admin).get('/journal/verification')).json().intact, true, 'the chain is intact')
})
