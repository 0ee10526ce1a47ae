/**
 * Two real API processes on one PostgreSQL, one S3 bucket and one Redis (./harness.ts), driven
 * through the generated SDK: what one instance does, the other sees; limits are counted once;
 * every scheduled job runs once per slot, not once per instance; a short mixed load answers no 5xx.
 */
import { createHash, randomBytes } from 'node:crypto'
import { sql } from 'kysely'
import t from 'tap'
import { type ArmoireClient, ArmoireProblem, unwrap } from '../../openapi/sdk/index.ts'
import { until } from '../billing/helpers.ts'
import { invitationToken, strongPassword } from '../helpers/auth.ts'
import { type Cluster, startCluster } from './harness.ts'
import { printLoad, runClusterLoad, seedLoad } from './load.ts'

const sha256 = (data: Uint8Array) => createHash('sha256').update(data).digest('hex')

async function bytesOf(stream: ReadableStream<Uint8Array>): Promise<Buffer> {
  const chunks: Uint8Array[] = []
  for await (const chunk of stream as unknown as AsyncIterable<Uint8Array>) chunks.push(chunk)
  return Buffer.concat(chunks)
}

/** Registers an organisation through `client`, which keeps the session; answers its ids. */
async function register(client: ArmoireClient, organisation = 'Cabinet Dupont') {
  const email = `cluster-${randomBytes(5).toString('hex')}@exemple.fr`
  const password = strongPassword()
  const session = unwrap(await client.POST('/auth/register', { body: { email, mot_de_passe: password, nom: 'Claire Martin', organisation } }))
  return { email, password, userId: session.utilisateur.id, organisationId: session.utilisateur.organisation_id }
}

async function tree(client: ArmoireClient, nom = 'Contrats') {
  const armoire = unwrap(await client.POST('/armoires', { body: { nom: `Armoire ${randomBytes(3).toString('hex')}` } }))
  const casier = unwrap(await client.POST('/armoires/{id}/casiers', { params: { path: { id: armoire.id } }, body: { nom } }))
  const dossier = unwrap(await client.POST('/casiers/{id}/dossiers', { params: { path: { id: casier.id } }, body: { nom: '2026' } }))
  return { armoire: armoire.id, casier: casier.id, dossier: dossier.id }
}

async function problemOf(promise: Promise<unknown>): Promise<ArmoireProblem> {
  try {
    await promise
  } catch (error) {
    if (error instanceof ArmoireProblem) return error
    throw error
  }
  throw new Error('expected a problem')
}

const LOAD_SECONDS = Number(process.env.CLUSTER_LOAD_SECONDS ?? 10)

// About 2.5 minutes on an idle machine (the cron slots take two); far more when the machine is shared.
t.setTimeout(600_000)

// Limits high enough for the load below, except the password-reset counter (per e-mail), which
// the load never touches and the rate-limit test brings to its limit. One cluster: starting a
// second pair of processes doubles the file's start on a shared machine.
const RESET_LIMIT = 4
const cluster: Cluster = await startCluster(t, {
  feexpay: true,
  env: {
    JOBS_POLLING_INTERVAL_SECONDS: '0.5',
    FEEXPAY_POLL_SECONDS: '1',
    RATE_LIMIT_MAX: '1000000',
    AUTH_RATE_LIMIT_MAX: '1000000',
    LOGIN_EMAIL_RATE_LIMIT_MAX: '1000000',
    PASSWORD_RESET_RATE_LIMIT_MAX: String(RESET_LIMIT),
  },
})
const a = cluster.clients[0] as ArmoireClient

t.test('an upload through A downloads byte for byte through B, and a range of it', async (t) => {
  const owner = await register(a)
  const onB = cluster.client(1, a.tokens())
  const { dossier } = await tree(a)
  // Over 5 MiB: the S3 driver's multipart upload, and segments on both sides of a part.
  const content = randomBytes(6 * 1024 * 1024 + 321)
  const receipt = await a.upload({ dossier }, new File([content], 'contrat.pdf', { type: 'application/pdf' }), { sha256: sha256(content) })
  t.equal(receipt.sha256, sha256(content))
  t.equal((await cluster.s3.keys()).filter((k) => k.startsWith('blobs/')).length, 1, 'one object in the shared bucket')

  const whole = await onB.download(receipt.fichier.id)
  t.equal(whole.status, 200)
  t.equal(whole.type, 'application/pdf')
  t.ok((await bytesOf(whole.body)).equals(content), 'byte for byte through the other instance')

  const start = 5 * 1024 * 1024 - 11
  const slice = await onB.download(receipt.fichier.id, { range: `bytes=${start}-${start + 99_999}` })
  t.equal(slice.status, 206)
  t.equal(slice.contentRange, `bytes ${start}-${start + 99_999}/${content.length}`)
  t.ok((await bytesOf(slice.body)).equals(content.subarray(start, start + 100_000)), 'the range through the other instance')
  const listed = unwrap(await onB.GET('/dossiers/{id}/fichiers', { params: { path: { id: dossier } } }))
  t.same(listed.items.map((f) => f.id), [receipt.fichier.id])
  t.ok(owner.organisationId)
})

t.test('a session ended on A is refused by B on its very next request', async (t) => {
  await t.test('logout', async (t) => {
    const session = await register(a)
    const tokens = a.tokens()
    const onB = cluster.client(1, tokens)
    t.equal(unwrap(await onB.GET('/me')).utilisateur.id, session.userId, 'B knows the session (and caches it)')
    unwrap(await a.POST('/auth/logout'))
    const refused = await onB.GET('/me')
    t.equal(refused.response.status, 401)
    t.equal(refused.response.headers.get('content-type'), 'application/problem+json; charset=utf-8')
    t.equal((refused.error as { code?: string } | undefined)?.code, 'SESSION_REVOKED')
  })

  await t.test('an admin deactivating the member', async (t) => {
    await register(a)
    const email = `membre-${randomBytes(5).toString('hex')}@exemple.fr`
    const invited = unwrap(await a.POST('/users', { body: { email, nom: 'Membre Lecteur', role: 'lecteur' } }))
    const member = cluster.client(1)
    unwrap(await member.POST('/auth/invitation/accepter', { body: { token: await invitationToken(cluster, email), mot_de_passe: strongPassword() } }))
    t.equal(unwrap(await member.GET('/me')).utilisateur.email, email, 'signed in through B')
    unwrap(await a.PUT('/users/{id}', { params: { path: { id: invited.utilisateur.id } }, body: { actif: false } }))
    const problem = await problemOf(member.GET('/armoires').then(unwrap))
    t.equal(problem.status, 401)
    t.equal(problem.code, 'SESSION_REVOKED')
  })
})

t.test('rate limits are shared: the 429 comes at the shared count, whichever instance is asked', async (t) => {
  // PASSWORD_RESET_RATE_LIMIT_MAX requests an hour per e-mail, asked alternately of A and B.
  const email = `oubli-${randomBytes(5).toString('hex')}@exemple.fr`
  const codes: number[] = []
  let last: { code?: string } | undefined
  for (let i = 0; i < RESET_LIMIT + 2; i++) {
    const res = await cluster.clients[i % 2]!.POST('/auth/password/forgot', { body: { email } })
    codes.push(res.response.status)
    last = res.error as { code?: string } | undefined
  }
  t.same(codes, [...Array(RESET_LIMIT).fill(202), 429, 429], `${RESET_LIMIT} over A and B together, then 429 on both (not ${2 * RESET_LIMIT})`)
  t.equal(last?.code, 'RATE_LIMITED')
  const other = await cluster.clients[1]!.POST('/auth/password/forgot', { body: { email: `autre-${email}` } })
  t.equal(other.response.status, 202, 'another e-mail has its own counter')
})

/** Jobs of `queue` created since `since`, live or archived, oldest first. */
async function jobsOf(db: Cluster['db'], queue: string, since: Date) {
  const { rows } = await sql<{ id: string; state: string; created_on: Date; data: Record<string, unknown> }>`
    select id, state, created_on, data from pgboss.job where name = ${queue} and created_on >= ${since}
    union all select id, state, created_on, data from pgboss.archive where name = ${queue} and created_on >= ${since}
    order by created_on`.execute(db)
  return rows
}

/** The cron slots pg-boss claimed for `queue` since `since`: one send-it job per slot (its singleton). */
async function slotsOf(db: Cluster['db'], queue: string, since: Date) {
  const { rows } = await sql<{ singleton_on: Date | null }>`
    select singleton_on from pgboss.job where name = '__pgboss__send-it' and data->>'name' = ${queue} and created_on >= ${since}
    union all select singleton_on from pgboss.archive where name = '__pgboss__send-it' and data->>'name' = ${queue} and created_on >= ${since}`.execute(db)
  return rows.map((r) => r.singleton_on?.toISOString() ?? 'none')
}

t.test('every scheduled job runs once per slot across the two instances, with one effect', async (t) => {
  const { db, feexpay } = cluster
  if (!feexpay) throw new Error('no fake FeexPay')
  const DAY = 86_400_000

  // Trash purge: a file trashed through B, its deletion moved past TRASH_RETENTION_DAYS (30).
  const owner = await register(a)
  const { armoire, dossier } = await tree(a)
  const trashed = await a.upload({ dossier }, new Blob([randomBytes(2000)]), { nom: 'périmé.bin' })
  const onB = cluster.client(1, a.tokens())
  unwrap(await onB.DELETE('/fichiers/{id}', { params: { path: { id: trashed.fichier.id } } }))
  await db.updateTable('fichiers').set({ deleted_at: new Date(Date.now() - 31 * DAY) }).where('id', '=', trashed.fichier.id).execute()
  const { blob } = await db.selectFrom('versions_fichiers').select('blob').where('fichier_id', '=', trashed.fichier.id).executeTakeFirstOrThrow()
  t.ok((await cluster.s3.keys()).includes(`blobs/${blob}`), 'its blob is in the bucket')

  // Retention sweep: a rule whose term is long past on a folder holding a file.
  const kept = await tree(a, 'Échus')
  const due = await a.upload({ dossier: kept.dossier }, new Blob([randomBytes(100)]), { nom: 'échu.pdf' })
  unwrap(
    await a.POST('/conformite/regles', {
      body: { nom: 'Échue', cible: { type: 'dossier', id: kept.dossier }, duree: 1, unite: 'jours', evenement: 'date', date_depart: '2001-01-01T00:00:00Z', action_terme: 'revue', mode: 'gouvernance' },
    }),
  )

  // Scheduled backups: an armoire every minute.
  const schedule = unwrap(
    await a.POST('/sauvegardes/planifications', {
      body: { type: 'armoire', cible_id: armoire, frequence: '* * * * *', fuseau: 'UTC', conservation: { derniers: 50, quotidiennes: 0, hebdomadaires: 0, mensuelles: 0 } },
    }),
  )

  // Renewals: another organisation whose period ended an hour ago.
  const lapsedClient = cluster.client(1)
  const lapsed = await register(lapsedClient, 'Cabinet Échu')
  await db.updateTable('abonnements').set({ periode_debut: new Date(Date.now() - 31 * DAY), periode_fin: new Date(Date.now() - 3_600_000) }).where('organisation_id', '=', lapsed.organisationId).execute()

  // Payment polling: a third organisation pays; FeexPay answers pending and the webhook never comes.
  const payer = cluster.client(0)
  const paying = await register(payer, 'Cabinet Payeur')
  unwrap(await payer.POST('/abonnement/choisir', { body: { plan: 'essentiel', periodicite: 'mensuelle' } }))
  const payment = unwrap(await payer.POST('/abonnement/payer', { body: { moyen: 'mobile_money', reseau: 'mtn', telephone: '2290161000000' } }))
  t.equal(payment.statut, 'en_attente')
  const reference = payment.reference
  if (!reference) throw new Error('no reference')
  const polls = () => feexpay.requests.filter((r) => r.path.endsWith(`/status/${reference}`)).length
  await until('a first poll', async () => polls() >= 1, 60_000)
  feexpay.settle(reference, 'SUCCESSFUL')

  // The crons normally fire at night: every minute now, in pg-boss's own table, for both instances.
  const cronQueues = ['documents.corbeille.purge', 'conformite.eliminations', 'billing.cycle', 'backup.planifications']
  const { rows: now } = await sql<{ now: Date }>`select now()`.execute(db)
  const since = now[0]!.now
  await sql`update pgboss.schedule set cron = '* * * * *' where name in (${sql.join(cronQueues)})`.execute(db)

  // Two slots of each: the first slot is seen by at least two cron checks (each instance checks every 30 s).
  await until(
    'two slots of every cron queue',
    async () => {
      for (const q of cronQueues) if ((await jobsOf(db, q, since)).filter((j) => j.state === 'completed').length < 2) return false
      return true
    },
    170_000,
  )
  const elapsedSlots = Math.floor(Date.now() / 60_000) - Math.floor(since.getTime() / 60_000) + 1
  for (const q of cronQueues) {
    const jobs = await jobsOf(db, q, since)
    const slots = await slotsOf(db, q, since)
    t.equal(new Set(slots).size, slots.length, `${q}: one send per slot (${slots.join(', ')})`)
    t.equal(jobs.length, slots.length, `${q}: one job per slot, ${jobs.length} jobs`)
    t.ok(jobs.length <= elapsedSlots, `${q}: ${jobs.length} jobs in ${elapsedSlots} minutes`)
  }

  const journal = (action: string, cible: string) =>
    db.selectFrom('journal_activite').select(['details']).where('action', '=', action).where('cible_id', '=', cible).execute()
  const purged = await journal('PURGED', trashed.fichier.id)
  t.equal(purged.length, 1, 'the trashed file purged once, one journal entry')
  t.match(purged[0]?.details, { automatique: true })
  t.notOk((await cluster.s3.keys()).includes(`blobs/${blob}`), 'its blob removed from the bucket')

  t.equal((await db.selectFrom('eliminations').select('id').where('fichier_id', '=', due.fichier.id).execute()).length, 1, 'one disposal proposed')
  t.equal((await journal('DISPOSAL_PROPOSED', due.fichier.id)).length, 1, 'journalled once')

  const history = await db.selectFrom('abonnements_historique').select('evenement').where('organisation_id', '=', lapsed.organisationId).where('evenement', 'in', ['en_retard', 'expire']).execute()
  t.equal(history.length, 1, `the lapsed subscription changed once (${history.map((h) => h.evenement).join(', ')})`)

  const backups = await db.selectFrom('sauvegardes').select(['id', 'created_at', 'statut']).where('planification_id', '=', schedule.id).execute()
  const minutes = backups.map((s) => Math.floor(s.created_at.getTime() / 60_000))
  t.ok(backups.length >= 1, `${backups.length} scheduled backups`)
  t.equal(new Set(minutes).size, minutes.length, 'at most one scheduled backup per minute')
  await until('the scheduled backups to end', async () => {
    const rows = await db.selectFrom('sauvegardes').select('statut').where('planification_id', '=', schedule.id).execute()
    return rows.every((r) => r.statut === 'terminee')
  }, 60_000)

  // The poll chain: each poll job asked FeexPay once; the credit is made once.
  const row = await until('the poll to credit', async () => {
    const p = await db.selectFrom('paiements').select(['statut']).where('id', '=', payment.id).executeTakeFirstOrThrow()
    return p.statut === 'reussi' && p
  }, 60_000)
  t.equal(row.statut, 'reussi')
  const pollJobs = (await jobsOf(db, 'billing.paiement.verifier', new Date(0))).filter((j) => j.data.paiement_id === payment.id)
  await until('the poll jobs to end', async () => {
    const states = (await jobsOf(db, 'billing.paiement.verifier', new Date(0))).filter((j) => j.data.paiement_id === payment.id).map((j) => j.state)
    return states.every((s) => s === 'completed')
  }, 60_000)
  t.equal(polls(), pollJobs.length, `FeexPay polled once per poll job (${pollJobs.length})`)
  t.equal((await db.selectFrom('factures').select('id').where('organisation_id', '=', paying.organisationId).execute()).length, 1, 'one invoice')
  const credited = await db.selectFrom('abonnements_historique').select('evenement').where('organisation_id', '=', paying.organisationId).where('evenement', '=', 'paiement').execute()
  t.ok(credited.length <= 1, 'credited at most once in the history')
  t.equal(unwrap(await payer.GET('/abonnement')).statut, 'actif')
  t.ok(owner.organisationId)
})

t.test(`a mixed load on both instances for ${LOAD_SECONDS} s: no 5xx`, async (t) => {
  const seed = await seedLoad(cluster)
  const results = await runClusterLoad(cluster, seed, { seconds: LOAD_SECONDS, connections: 4 })
  printLoad(results, (line) => t.comment(line))
  for (const r of results) {
    t.ok(r.requests > 0, `${r.name}: ${r.requests} requests`)
    t.equal(r.serverErrors, 0, `${r.name}: no 5xx (${JSON.stringify(r.statuses)})`)
    t.equal(r.errors, 0, `${r.name}: no connection error or timeout`)
    t.equal(r.rateLimited, 0, `${r.name}: no 429 (limits set for the load)`)
  }
})
