import { sql } from 'kysely'
import t from 'tap'
import { addMember, signUp } from '../helpers/auth.ts'
import { build } from '../helpers/build.ts'
import { tree, uploadFile } from '../documents/helpers.ts'

const utcDay = (d: Date) => d.toISOString().slice(0, 10)

t.test('PUT /dashboard/parametres: the days are counted again in the new time zone, journaled, admins only', async (t) => {
  const app = await build(t)
  const a = await signUp(app, { organisation: 'Fuseaux' })
  const { dossier } = await tree(app, a)
  await uploadFile(app, a, dossier, Buffer.from('x'), { filename: 'f.txt' })
  // Everything the organisation did, moved to 23:30 UTC yesterday: 00:30 today in Porto-Novo
  // (UTC+1), 17:30 yesterday in Guatemala (UTC−6, no summer time).
  const midnight = new Date(`${utcDay(new Date())}T00:00:00Z`)
  const instant = new Date(midnight.getTime() - 30 * 60_000)
  const [today, yesterday] = [utcDay(midnight), utcDay(instant)]
  await app.db.transaction().execute(async (trx) => {
    await sql`set local session_replication_role = replica`.execute(trx)
    await sql`update journal_activite set created_at = ${instant} where organisation_id = ${a.organisationId}`.execute(trx)
  })
  const uploadsOn = async (day: string) => {
    const res = await app.inject({ method: 'GET', url: '/dashboard/global', headers: a.headers })
    t.equal(res.statusCode, 200)
    return res.json().activite.series.find((s: { debut: string }) => s.debut === day)?.depots ?? 0
  }
  const put = (fuseau: string, headers = a.headers) =>
    app.inject({ method: 'PUT', url: '/dashboard/parametres', headers, payload: { fuseau_horaire: fuseau } })

  const guatemala = await put('America/Guatemala')
  t.equal(guatemala.statusCode, 200, guatemala.body)
  t.same(guatemala.json(), { fuseau_horaire: 'America/Guatemala' })
  t.equal(await uploadsOn(yesterday), 1, 'in Guatemala the upload was yesterday')
  t.equal(await uploadsOn(today), 0)
  const shown = (await app.inject({ method: 'GET', url: '/dashboard/global', headers: a.headers })).json()
  t.equal(shown.periode.fuseau_horaire, 'America/Guatemala')

  t.equal((await put('Africa/Porto-Novo')).statusCode, 200)
  t.equal(await uploadsOn(today), 1, 'in Porto-Novo it was today, after midnight')
  t.equal(await uploadsOn(yesterday), 0)

  const unknown = await put('Mars/Olympus_Mons')
  t.equal(unknown.statusCode, 400)
  t.match(unknown.json(), { code: 'VALIDATION_ERROR', errors: [{ field: 'body.fuseau_horaire', message: 'fuseau horaire IANA inconnu' }] })

  const reader = await addMember(app, a, 'lecteur')
  const refused = await put('Europe/Paris', reader.headers)
  t.equal(refused.statusCode, 403)
  t.equal(refused.json().code, 'FORBIDDEN')

  const entries = await app.db
    .selectFrom('journal_activite')
    .select(['action', 'details'])
    .where('organisation_id', '=', a.organisationId)
    .where('action', '=', 'STATS_TIMEZONE_CHANGED')
    .orderBy('sequence')
    .execute()
  t.same(entries.map((e) => (e.details as { fuseau_horaire: string }).fuseau_horaire), ['America/Guatemala', 'Africa/Porto-Novo'], 'each change journaled, the refusal not')
})
