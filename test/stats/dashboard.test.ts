import { execFile } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { rebuildOrganisation } from '../../plugins/stats/counters.ts'
import { today, addDays } from '../../plugins/stats/dashboard.ts'
import { addMember, signUp } from '../helpers/auth.ts'
import { build } from '../helpers/build.ts'
import { tree, upload, uploadFile } from '../documents/helpers.ts'
import { login, shiftOneDayBack } from './helpers.ts'

const bytes = (n: number, fill = 'a') => Buffer.alloc(n, fill)
const run = promisify(execFile)

t.test('dashboards after a scripted sequence over two days and two organisations', async (t) => {
  const app = await build(t)
  const a = await signUp(app, { organisation: 'Cabinet A' })
  const c = await addMember(app, a, 'contributeur')
  const lecteur = await addMember(app, a, 'lecteur')
  const b = await signUp(app, { organisation: 'Cabinet B' })
  const as = (m: typeof a) => ({ authorization: m.headers.authorization })
  const get = (url: string, m = a, headers: Record<string, string> = {}) => app.inject({ method: 'GET', url, headers: { ...as(m), ...headers } })
  const del = (url: string, m = a) => app.inject({ method: 'DELETE', url, headers: as(m) })
  const post = (url: string, m = a) => app.inject({ method: 'POST', url, headers: as(m) })

  // Day 1 (moved one day back below).
  const t1 = await tree(app, a, 'un')
  const f1 = await uploadFile(app, a, t1.dossier, bytes(100), { filename: 'f1.txt' })
  const f2 = await uploadFile(app, a, t1.dossier, bytes(50), { filename: 'f2.txt' })
  t.equal((await login(app, c, 'mauvais-mot-de-passe')).statusCode, 401)
  t.equal((await login(app, c, 'mauvais-mot-de-passe')).statusCode, 401)
  t.equal((await login(app, c)).statusCode, 200)
  const f3 = await uploadFile(app, c, t1.dossier, bytes(30), { filename: 'f3.txt' })
  t.equal((await upload(app, a, `/fichiers/${f1.fichier.id}/version`, bytes(120, 'b'))).statusCode, 201)
  const tb = await tree(app, b, 'b')
  await uploadFile(app, b, tb.dossier, bytes(10), { filename: 'g1.txt' })
  await shiftOneDayBack(app, a.organisationId)
  await shiftOneDayBack(app, b.organisationId)

  // Day 2.
  t.equal((await del(`/fichiers/${f2.fichier.id}`)).statusCode, 204)
  t.equal((await post(`/corbeille/fichier/${f2.fichier.id}/restaurer`)).statusCode, 204)
  t.equal((await del(`/fichiers/${f3.fichier.id}`)).statusCode, 204)
  const t2 = await tree(app, a, 'deux')
  await uploadFile(app, a, t2.dossier, bytes(500), { filename: 'f4.txt' })
  t.equal((await get(`/fichiers/${f1.fichier.id}/contenu`)).statusCode, 200)
  t.equal((await login(app, c)).statusCode, 200)
  for (let i = 0; i < 5; i++) t.equal((await login(app, c, 'mauvais-mot-de-passe')).statusCode, 401, 'the fifth locks the account')
  t.equal((await login(app, b, 'mauvais-mot-de-passe')).statusCode, 401)

  const day2 = today('Africa/Porto-Novo')
  const day1 = addDays(day2, -1)

  t.test('global dashboard of organisation A', async (t) => {
    const res = await get('/dashboard/global')
    t.equal(res.statusCode, 200, res.body)
    const d = res.json()
    t.equal(d.periode.du, addDays(day2, -29))
    t.equal(d.periode.au, day2)
    t.equal(d.periode.fuseau_horaire, 'Africa/Porto-Novo')
    t.same(d.comptes, { armoires: 2, casiers: 2, dossiers: 2, fichiers: 3, versions: 5, elements_corbeille: 1, fichiers_corbeille: 1 })
    t.same(d.membres, { total: 3, par_role: { admin: 1, contributeur: 1, lecteur: 1 }, par_statut: { actifs_30_jours: 3, inactifs: 0, invites: 0, desactives: 0 } })
    const plan = await app.db
      .selectFrom('abonnements as a')
      .innerJoin('plans as p', 'p.code', 'a.plan_code')
      .select(['p.code', 'p.quota_stockage_octets'])
      .where('a.organisation_id', '=', a.organisationId)
      .executeTakeFirstOrThrow()
    t.match(d.stockage, { versions_courantes: 670, versions_anciennes: 100, corbeille: 30, sauvegardes: 0, total: 800, quota: plan.quota_stockage_octets })
    t.equal(d.stockage.pourcentage_quota, Math.round((800 / plan.quota_stockage_octets) * 1000) / 10)
    t.same(d.sauvegardes, { octets: 0, echecs_30_jours: 0, cibles: [] }, 'the backup domain is there: its section too')
    t.match(d.abonnement, { plan: plan.code, statut: 'essai' })
    t.ok(d.abonnement.jours_restants > 0)
    t.same(d.stockage.plus_grandes_armoires.map((x: { nom: string; fichiers: number; octets: number }) => [x.nom, x.fichiers, x.octets]), [
      ['Armoire deux', 1, 500],
      ['Armoire un', 2, 270],
    ])
    const points = d.activite.series.filter((s: { debut: string }) => s.debut === day1 || s.debut === day2)
    t.equal(d.activite.series.length, 30)
    t.same(points, [
      { debut: day1, fin: day1, depots: 3, nouvelles_versions: 1, telechargements: 0, suppressions: 0, restaurations: 0, connexions: 1, connexions_echouees: 2 },
      { debut: day2, fin: day2, depots: 1, nouvelles_versions: 0, telechargements: 1, suppressions: 2, restaurations: 1, connexions: 1, connexions_echouees: 5 },
    ])
    t.same(d.activite.totaux, { depots: 4, nouvelles_versions: 1, telechargements: 1, suppressions: 2, restaurations: 1, connexions: 2, connexions_echouees: 7 })
    t.same(d.activite.periode_precedente, { depots: 0, nouvelles_versions: 0, telechargements: 0, suppressions: 0, restaurations: 0, connexions: 0, connexions_echouees: 0 })
    t.equal(d.activite.croissance.depots, null, 'nothing to grow from')
    t.equal(d.activite.membres_les_plus_actifs[0].id, a.userId)
    t.same(d.activite.membres_les_plus_actifs.map((m: { id: string }) => m.id).sort(), [a.userId, c.userId, lecteur.userId].sort())
    t.match(d.securite, {
      membres_avec_2fa: 0,
      part_2fa: 0,
      connexions_echouees_7_jours: 7,
      comptes_bloques_7_jours: 1,
      comptes_bloques: 1,
      derniere_verification_journal: null,
    })
    t.ok(d.securite.sessions_actives >= 4, 'a, c twice, the reader')
    t.ok(Date.now() - Date.parse(d.genere_le) < 5000)
  })

  t.test('weekly and monthly series, growth against the previous period', async (t) => {
    const d = (await get(`/dashboard/global?du=${day2}&au=${day2}`)).json()
    t.same(d.periode.precedente, { du: day1, au: day1 })
    t.same(d.activite.totaux, { depots: 1, nouvelles_versions: 0, telechargements: 1, suppressions: 2, restaurations: 1, connexions: 1, connexions_echouees: 5 })
    t.same(d.activite.periode_precedente, { depots: 3, nouvelles_versions: 1, telechargements: 0, suppressions: 0, restaurations: 0, connexions: 1, connexions_echouees: 2 })
    t.equal(d.activite.croissance.depots, -66.7)
    t.equal(d.activite.croissance.connexions, 0)
    t.equal(d.activite.croissance.connexions_echouees, 150)
    const month = (await get(`/dashboard/global?du=${day1}&au=${day2}&granularite=mois`)).json()
    const sum = (key: string) => month.activite.series.reduce((n: number, s: Record<string, number>) => n + s[key]!, 0)
    t.equal(sum('depots'), 4)
    t.equal(month.activite.series[0].debut, day1)
    t.equal(month.activite.series.at(-1).fin, day2)
    const week = (await get(`/dashboard/global?du=2026-11-01&au=2026-11-30&granularite=semaine`)).json()
    t.same(week.activite.series.map((s: { debut: string; fin: string }) => [s.debut, s.fin]), [
      ['2026-11-01', '2026-11-01'],
      ['2026-11-02', '2026-11-08'],
      ['2026-11-09', '2026-11-15'],
      ['2026-11-16', '2026-11-22'],
      ['2026-11-23', '2026-11-29'],
      ['2026-11-30', '2026-11-30'],
    ])
    t.equal((await get(`/dashboard/global?du=${day2}&au=${day1}`)).statusCode, 400)
    t.equal((await get('/dashboard/global?du=2026-02-30')).statusCode, 400)
    t.equal((await get('/dashboard/global?granularite=annee')).statusCode, 400)
  })

  t.test('whole months are read from the monthly rollups, the days around them from the daily ones', async (t) => {
    const [year, month] = day2.split('-').map(Number) as [number, number]
    // Date.UTC's months count from 0: this is the first of the month after day 2's.
    const endOfMonth = addDays(new Date(Date.UTC(year, month, 1)).toISOString().slice(0, 10), -1)
    // Three days of the month before day 1's, then whole months up to day 2's: both kinds are read.
    const du = addDays(`${day1.slice(0, 7)}-01`, -3)
    const byDay = (await get('/dashboard/global')).json()
    const byMonth = (await get(`/dashboard/global?du=${du}&au=${endOfMonth}&granularite=mois`)).json()
    t.same(byMonth.activite.totaux, byDay.activite.totaux, 'each entry counted once')
    t.equal(byMonth.activite.totaux.depots, 4)
    t.same(byMonth.activite.membres_les_plus_actifs, byDay.activite.membres_les_plus_actifs)
    const series = byMonth.activite.series as { debut: string; depots: number }[]
    t.same(series.slice(0, 2).map((s) => s.debut), [du, `${day1.slice(0, 7)}-01`])
    t.equal(series.reduce((n, s) => n + s.depots, 0), 4)
    t.equal(series[1]!.depots, day1.slice(0, 7) === day2.slice(0, 7) ? 4 : 3, "day 1's month")
    // The previous period ends three days into a month: days, then whole months.
    t.same(Object.values(byMonth.activite.periode_precedente), [0, 0, 0, 0, 0, 0, 0])

    const member = (await get(`/dashboard/utilisateur/${c.userId}`)).json()
    const memberByMonth = (await get(`/dashboard/utilisateur/${c.userId}?du=${du}&au=${endOfMonth}&granularite=mois`)).json()
    t.same(memberByMonth.actions, member.actions)
    t.same(memberByMonth.depots, member.depots)
    t.equal(member.depots.fichiers, 1)
  })

  t.test('organisation B sees only its own', async (t) => {
    const d = (await get('/dashboard/global', b)).json()
    t.same(d.comptes, { armoires: 1, casiers: 1, dossiers: 1, fichiers: 1, versions: 1, elements_corbeille: 0, fichiers_corbeille: 0 })
    t.equal(d.stockage.total, 10)
    t.same(d.activite.totaux, { depots: 1, nouvelles_versions: 0, telechargements: 0, suppressions: 0, restaurations: 0, connexions: 0, connexions_echouees: 1 })
    t.equal(d.securite.connexions_echouees_7_jours, 1)
  })

  t.test('a member’s dashboard: the admin or the member, 404 across organisations', async (t) => {
    const res = await get(`/dashboard/utilisateur/${c.userId}?limit=5`)
    t.equal(res.statusCode, 200, res.body)
    const d = res.json()
    t.match(d.membre, { id: c.userId, role: 'contributeur', actif: true })
    const actions = Object.fromEntries(d.actions.map((x: { action: string; nombre: number }) => [x.action, x.nombre]))
    t.match(actions, { LOGIN_FAILED: 7, LOGIN_SUCCEEDED: 2, FILE_UPLOADED: 1, ACCOUNT_LOCKED: 1 })
    t.same(d.depots, { fichiers: 1, versions: 0, octets: 30 })
    t.same(d.stockage_contribue, { versions: 1, octets: 30 })
    t.equal(d.double_authentification, false)
    t.ok(d.sessions_actives >= 2)
    t.ok(d.derniere_connexion)
    const points = d.series.filter((s: { debut: string }) => s.debut === day1 || s.debut === day2)
    t.match(points[0].actions, { LOGIN_FAILED: 2, LOGIN_SUCCEEDED: 1, FILE_UPLOADED: 1 })
    t.match(points[1].actions, { LOGIN_FAILED: 5, LOGIN_SUCCEEDED: 1, ACCOUNT_LOCKED: 1 })
    t.equal(d.journal.items.length, 5)
    t.equal(d.journal.items[0].utilisateur_id, c.userId)
    t.equal(d.journal.lien, `/journal?utilisateur_id=${c.userId}`)
    const next = (await get(`/dashboard/utilisateur/${c.userId}?limit=5&cursor=${d.journal.next_cursor}`)).json()
    t.ok(next.journal.items[0].id < d.journal.items[4].id, 'the next page goes on')

    t.equal((await get(`/dashboard/utilisateur/${lecteur.userId}`, lecteur)).statusCode, 200, 'the member themself')
    t.equal((await get(`/dashboard/utilisateur/${c.userId}`, lecteur)).statusCode, 403, 'another member')
    t.equal((await get(`/dashboard/utilisateur/${c.userId}`, b)).statusCode, 404, 'another organisation’s member')
    t.equal((await get('/dashboard/global', lecteur)).statusCode, 403)
  })

  t.test('CSV export: a series a row, French headers, `;`', async (t) => {
    const res = await get(`/dashboard/global?du=${day1}&au=${day2}`, a, { accept: 'text/csv' })
    t.equal(res.statusCode, 200)
    t.match(res.headers['content-disposition'], /^attachment; filename=tableau-de-bord-\d{4}-\d\d-\d\d\.csv$/)
    t.match(res.headers['content-type'], /^text\/csv/)
    const lines = res.body.replace(/^\ufeff/, '').trim().split('\r\n')
    t.same(lines, [
      `Série;${day1};${day2};Total`,
      'Dépôts;3;1;4',
      'Nouvelles versions;1;0;1',
      'Téléchargements;0;1;1',
      'Suppressions;0;2;2',
      'Restaurations;0;1;1',
      'Connexions;1;1;2',
      'Connexions échouées;2;5;7',
    ])
    const user = await get(`/dashboard/utilisateur/${c.userId}?du=${day1}&au=${day2}`, a, { accept: 'text/csv' })
    t.match(user.body, `Action;${day1};${day2};Total`)
    t.match(user.body, 'LOGIN_FAILED;2;5;7')
  })

  t.test('PDF export: a one-page report through the kernel PDF service', async (t) => {
    const res = await get('/dashboard/global', a, { accept: 'application/pdf' })
    t.equal(res.statusCode, 200)
    t.equal(res.headers['content-type'], 'application/pdf')
    t.equal(res.rawPayload.subarray(0, 5).toString(), '%PDF-')
    const dir = await mkdtemp(join(tmpdir(), 'armoire-stats-'))
    t.teardown(() => rm(dir, { recursive: true, force: true }))
    await writeFile(join(dir, 'global.pdf'), res.rawPayload)
    t.match((await run('pdfinfo', [join(dir, 'global.pdf')])).stdout, /Pages:\s+1\n/)
    const text = (await run('pdftotext', ['-layout', join(dir, 'global.pdf'), '-'])).stdout
    t.match(text, 'Tableau de bord — Cabinet A')
    t.match(text, /Dépôts\s+4\s+0/)
    t.match(text, 'Armoire deux')
    const user = await get(`/dashboard/utilisateur/${c.userId}`, c, { accept: 'application/pdf' })
    t.equal(user.statusCode, 200)
    await writeFile(join(dir, 'membre.pdf'), user.rawPayload)
    t.match((await run('pdfinfo', [join(dir, 'membre.pdf')])).stdout, /Pages:\s+1\n/)
    t.match((await run('pdftotext', [join(dir, 'membre.pdf'), '-'])).stdout, 'LOGIN_FAILED')
  })

  t.test('exact right after a commit, and the counters equal a full recount', async (t) => {
    t.equal((await del(`/corbeille/fichier/${f3.fichier.id}`)).statusCode, 204)
    const d = (await get('/dashboard/global')).json()
    t.same(d.comptes, { armoires: 2, casiers: 2, dossiers: 2, fichiers: 3, versions: 4, elements_corbeille: 0, fichiers_corbeille: 0 })
    t.match(d.stockage, { versions_courantes: 670, versions_anciennes: 100, corbeille: 0, total: 770 })
    const mine = (await get(`/dashboard/utilisateur/${c.userId}`, c)).json()
    t.same(mine.stockage_contribue, { versions: 0, octets: 0 })
    t.same(await rebuildOrganisation(app.db, a.organisationId), [], 'no drift')
    t.same(await rebuildOrganisation(app.db, b.organisationId), [], 'no drift')
  })
})
