import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { sql } from 'kysely'
import t from 'tap'
import { compact, largestArmoires, memberStorage, organisationCounters, rebuildOrganisation } from '../../plugins/stats/counters.ts'
import { addMember, signUp } from '../helpers/auth.ts'
import { build, testDatabase, testStorage } from '../helpers/build.ts'
import { runJob } from '../helpers/jobs.ts'
import { tree, upload, uploadFile } from '../documents/helpers.ts'

const run = promisify(execFile)

t.test('every kind of change keeps the counters equal to a full recount', async (t) => {
  const DATABASE_URL = await testDatabase(t)
  const STORAGE_DIR = await testStorage(t)
  const app = await build(t, { DATABASE_URL, STORAGE_DIR })
  const admin = await signUp(app)
  const member = await addMember(app, admin, 'contributeur')
  const org = admin.organisationId
  const headers = admin.headers
  const call = async (method: 'POST' | 'PATCH' | 'DELETE', url: string, payload?: object, expected = [200, 201, 204]) => {
    const res = await app.inject({ method, url, headers, ...(payload ? { payload } : {}) })
    if (!expected.includes(res.statusCode)) throw new Error(`${method} ${url}: ${res.statusCode} ${res.body}`)
    return res.statusCode === 204 ? null : res.json()
  }
  /** After each step: no drift between the incremental counters and a recount from the sources. */
  const check = async (step: string) => {
    t.same(await rebuildOrganisation(app.db, org), [], `no drift after: ${step}`)
  }

  const one = await tree(app, admin, 'un')
  const two = await tree(app, admin, 'deux')
  const nested = (await call('POST', `/dossiers/${one.dossier}/dossiers`, { nom: 'Sous-dossier' })).id as string
  const f1 = await uploadFile(app, admin, one.dossier, Buffer.alloc(1000), { filename: 'a.bin' })
  const f2 = await uploadFile(app, member, nested, Buffer.alloc(300), { filename: 'b.bin' })
  const f3 = await uploadFile(app, admin, one.dossier, Buffer.alloc(70), { filename: 'c.bin' })
  await check('uploads into nested folders, by two members')
  await upload(app, member, `/fichiers/${f1.fichier.id}/version`, Buffer.alloc(1500))
  await call('POST', `/fichiers/${f1.fichier.id}/versions/1/restaurer`)
  await check('a new version and a version restored')
  t.match(await organisationCounters(app.db, org), { fichiers: 3, versions: 5, octets_courants: 1000 + 300 + 70, octets_vivants: 1000 + 1500 + 1000 + 300 + 70 })
  t.same(await memberStorage(app.db, org, member.userId), { versions: 2, octets: 1800 })

  await call('PATCH', `/fichiers/${f3.fichier.id}`, { dossier_id: two.dossier })
  await check('a file moved to another armoire')
  await call('PATCH', `/dossiers/${nested}`, { casier_id: two.casier })
  await check('a folder moved to a drawer of another armoire')
  t.same((await largestArmoires(app.db, org, 5)).map((a) => [a.nom, a.fichiers, a.octets]), [
    ['Armoire un', 1, 3500],
    ['Armoire deux', 2, 370],
  ])
  await call('PATCH', `/casiers/${two.casier}`, { armoire_id: one.armoire })
  await check('a drawer moved to another armoire')
  t.same((await largestArmoires(app.db, org, 5)).map((a) => [a.nom, a.fichiers, a.octets]), [['Armoire un', 3, 3870]])
  await call('PATCH', `/armoires/${one.armoire}`, { nom: 'Armoire renommée' })
  await compact(app.db)
  await check('a rename, then the deltas folded into the base rows')

  await call('DELETE', `/fichiers/${f2.fichier.id}`)
  await check('a file sent to the trash')
  await call('DELETE', `/dossiers/${one.dossier}?recursif=true`)
  await check('a folder and its content sent to the trash')
  await call('POST', `/corbeille/dossier/${one.dossier}/restaurer`)
  await check('the folder restored')
  await call('DELETE', `/armoires/${one.armoire}?recursif=true`)
  await check('an armoire and everything in it sent to the trash')
  t.match(await organisationCounters(app.db, org), { armoires: 1, fichiers: 0, fichiers_corbeille: 3, elements_corbeille: 2, octets_vivants: 0 })
  await call('POST', `/corbeille/armoire/${one.armoire}/restaurer`)
  await check('the armoire restored')
  await call('DELETE', `/corbeille/fichier/${f2.fichier.id}`)
  await check('a file purged')
  await call('DELETE', `/dossiers/${one.dossier}?recursif=true`)
  await call('DELETE', `/corbeille/dossier/${one.dossier}`)
  await check('a folder purged with its files')
  await call('DELETE', `/armoires/${two.armoire}?recursif=true`)
  await call('DELETE', `/corbeille/armoire/${two.armoire}`)
  await check('an empty armoire purged')
  t.match(await organisationCounters(app.db, org), { armoires: 1, casiers: 2, fichiers: 1, versions: 1, elements_corbeille: 0, octets_vivants: 70, octets_corbeille: 0 })
  t.same(await memberStorage(app.db, org, member.userId), { versions: 0, octets: 0 })

  t.test('drift is reported and repaired', async (t) => {
    await sql`update stats_organisations set fichiers = fichiers + 5 where organisation_id = ${org}`.execute(app.db)
    await sql`delete from stats_activite_jour where organisation_id = ${org} and action = 'FILE_UPLOADED'`.execute(app.db)
    const drifts = await rebuildOrganisation(app.db, org)
    t.same(drifts, [
      { organisation_id: org, compteur: 'fichiers', attendu: 1, trouve: 6 },
      { organisation_id: org, compteur: 'stats_activite_jour (1 lignes)', attendu: 3, trouve: 0 },
    ])
    t.match(await organisationCounters(app.db, org), { fichiers: 1 })
    t.same(await rebuildOrganisation(app.db, org), [], 'repaired')
  })

  t.test('npm run stats:rebuild', async (t) => {
    await sql`update stats_organisations set versions = 40 where organisation_id = ${org}`.execute(app.db)
    const failed = await run(process.execPath, ['--import', 'tsx', 'scripts/stats-rebuild.ts'], { env: { ...process.env, DATABASE_URL, STORAGE_DIR } }).catch(
      (error: { stdout: string; code: number }) => error,
    )
    t.equal((failed as { code?: number }).code, 1, 'exit code 1: something had drifted')
    t.match(failed.stdout, `drift ${org} versions: counted 40, recounted 1`)
    t.match(failed.stdout, /done: 1 organisations recounted, 1 counters had drifted \(repaired\)/)
    const { stdout } = await run(process.execPath, ['--import', 'tsx', 'scripts/stats-rebuild.ts'], { env: { ...process.env, DATABASE_URL, STORAGE_DIR } })
    t.match(stdout, /done: 1 organisations recounted, 0 counters had drifted/)
  })

  t.test('the weekly repair job: scheduled on Sunday night, it recounts every organisation and repairs drift', async (t) => {
    const schedules = await app.jobs.boss!.getSchedules()
    t.match(schedules.find((s) => s.name === 'stats.recompter'), { cron: '43 2 * * 0' })
    await sql`update stats_organisations set casiers = casiers + 3 where organisation_id = ${org}`.execute(app.db)
    const job = await runJob(app, 'stats.recompter')
    t.equal(job?.state, 'completed')
    t.match(job?.output, { drifts: 1 }, 'the drift it found')
    t.match(await organisationCounters(app.db, org), { casiers: 2 }, 'and repaired')
  })
})
