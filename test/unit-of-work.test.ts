import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { sql } from 'kysely'
import t from 'tap'
import { invitationMail } from '../plugins/security/mails.ts'
import { signUp } from './helpers/auth.ts'
import { build, testDatabase } from './helpers/build.ts'
import { testEnv, withAdmin } from './helpers/database.ts'
import { logCapture } from './helpers/logs.ts'
import { smtpSink } from './helpers/smtp-sink.ts'

const organisation = (nom: string) => ({ nom })

t.test('commit hooks run once the transaction committed, in order; rollback hooks do not', async (t) => {
  const app = await build(t)
  const seen: string[] = []
  const id = await app.unitOfWork(async (trx, after) => {
    const row = await trx.insertInto('organisations').values(organisation('Cabinet Commit')).returning('id').executeTakeFirstOrThrow()
    after.commit(async () => {
      // Another connection sees the row: the hook runs after the commit, not before it.
      const found = await app.db.selectFrom('organisations').select('nom').where('id', '=', row.id).executeTakeFirst()
      seen.push(`first:${found?.nom}`)
    })
    after.commit(() => void seen.push('second'))
    after.rollback(() => void seen.push('rollback'))
    return row.id
  })
  t.same(seen, ['first:Cabinet Commit', 'second'])
  t.ok(await app.db.selectFrom('organisations').select('id').where('id', '=', id).executeTakeFirst())
})

t.test('when the work fails, rollback hooks run, commit hooks do not, and the error is the work’s', async (t) => {
  const app = await build(t)
  const seen: string[] = []
  await t.rejects(
    app.unitOfWork(async (trx, after) => {
      await trx.insertInto('organisations').values(organisation('Cabinet Rollback')).execute()
      after.commit(() => void seen.push('commit'))
      after.rollback(() => void seen.push('rollback'))
      throw new Error('action abandonnée')
    }),
    /action abandonnée/,
  )
  t.same(seen, ['rollback'])
  t.notOk(await app.db.selectFrom('organisations').select('id').where('nom', '=', 'Cabinet Rollback').executeTakeFirst())
})

t.test('a failing hook is logged and changes neither the outcome nor the hooks after it', async (t) => {
  const logs = logCapture()
  const app = await build(t, { LOG_LEVEL: 'info' }, { logStream: logs.stream })
  const seen: string[] = []
  const result = await app.unitOfWork(async (_trx, after) => {
    after.commit(() => {
      throw new Error('hook en panne')
    })
    after.commit(() => void seen.push('after the failing one'))
    return 'fait'
  })
  t.equal(result, 'fait')
  t.same(seen, ['after the failing one'])
  t.ok(logs.lines.some((l) => l.msg === "a unit of work's commit hook failed" && (l.err as { message?: string } | undefined)?.message === 'hook en panne'))
})

t.test('a mail queued in a unit of work leaves at its commit, without waiting for the next poll', async (t) => {
  const sink = await smtpSink(t)
  const app = await build(t, { SMTP_URL: sink.url, JOBS_POLLING_INTERVAL_SECONDS: '60' })
  const start = Date.now()
  const id = await app.unitOfWork((trx) =>
    app.mailer.queue(trx, { to: 'ines@example.org', kind: 'invitation', ...invitationMail({ nom: 'Inès', organisation: 'Cabinet', lien: 'https://armoire.example/i' }) }),
  )
  await sink.waitFor((m) => m.to.includes('ines@example.org'), 5_000)
  t.ok(Date.now() - start < 5_000, 'the worker was woken by the commit')
  t.equal((await app.mailer.settled(id)).statut, 'envoye')

  await t.rejects(
    app.unitOfWork(async (trx) => {
      await app.mailer.queue(trx, { to: 'jean@example.org', kind: 'test', subject: 'Jamais', text: 'Jamais envoyé' })
      throw new Error('abandon')
    }),
  )
  t.notOk(await app.db.selectFrom('courriels').select('id').where('destinataire', '=', 'jean@example.org').executeTakeFirst())
})

t.test('a change announced in a unit of work is seen by the next request of this instance', async (t) => {
  const app = await build(t)
  const owner = await signUp(app)
  const me = async () => (await app.inject({ method: 'GET', url: '/me', headers: owner.headers })).json()
  t.not((await me()).utilisateur.nom, 'Nom changé', 'the session is now cached')
  await app.unitOfWork(async (trx) => {
    await trx.updateTable('utilisateurs').set({ nom: 'Nom changé' }).where('id', '=', owner.userId).execute()
    await app.sessions.announce(trx, 'user', owner.userId)
  })
  t.equal((await me()).utilisateur.nom, 'Nom changé')
})

t.test('blobs: removed on rollback when written ahead, on commit when no longer referenced', async (t) => {
  const app = await build(t)
  const write = async () => {
    const writer = app.blobs.createWriter()
    await pipeline(Readable.from([Buffer.from('contenu chiffré')]), writer.stream)
    await writer.commit()
    return writer.name
  }
  const ahead = await write()
  await t.rejects(
    app.unitOfWork(async (trx) => {
      app.blobs.deleteOnRollback(trx, ahead)
      throw new Error('échec après l’écriture')
    }),
  )
  t.notOk(await app.blobs.exists(ahead), 'the orphan is gone')

  const kept = await write()
  await app.unitOfWork(async (trx) => app.blobs.deleteOnRollback(trx, kept))
  t.ok(await app.blobs.exists(kept), 'a committed unit of work keeps what it wrote')

  const replaced = await write()
  await t.rejects(
    app.unitOfWork(async (trx) => {
      app.blobs.deleteOnCommit(trx, replaced)
      throw new Error('finalement non')
    }),
  )
  t.ok(await app.blobs.exists(replaced), 'still referenced after a rollback')
  await app.unitOfWork(async (trx) => app.blobs.deleteOnCommit(trx, replaced))
  t.notOk(await app.blobs.exists(replaced), 'removed once the rows naming it are gone')
})

t.test('hooks registered ahead follow a unit of work whose transaction never began', async (t) => {
  const url = await testDatabase(t)
  const name = new URL(url).pathname.slice(1)
  const app = await build(t, { DATABASE_URL: url })
  const writer = app.blobs.createWriter()
  await pipeline(Readable.from([Buffer.from('écrit avant la transaction')]), writer.stream)
  await writer.commit()
  const { adminUrl } = testEnv()
  const allow = (allowed: boolean) => withAdmin(adminUrl, (c) => c.query(`alter database "${name}" allow_connections ${allowed}`))
  t.teardown(() => allow(true))
  await allow(false)
  await withAdmin(adminUrl, (c) => c.query('select pg_terminate_backend(pid) from pg_stat_activity where datname = $1', [name]))
  const seen: string[] = []
  await t.rejects(
    app.unitOfWork(
      async () => void seen.push('work'),
      (after) => {
        app.blobs.deleteOnRollback(after, writer.name)
        after.rollback(() => void seen.push('rollback'))
        after.commit(() => void seen.push('commit'))
      },
    ),
    /not currently accepting connections/,
  )
  t.same(seen, ['rollback'], 'the work never ran, the rollback hooks did')
  t.notOk(await app.blobs.exists(writer.name), 'the blob written ahead is gone')
  await allow(true)

  const kept = app.blobs.createWriter()
  await pipeline(Readable.from([Buffer.from('gardé')]), kept.stream)
  await kept.commit()
  await app.unitOfWork(async () => {}, (after) => app.blobs.deleteOnRollback(after, kept.name))
  t.ok(await app.blobs.exists(kept.name), 'a unit of work that commits keeps it')
})

t.test('a COMMIT whose outcome is unknown keeps what was written ahead: only a refused one is a rollback', async (t) => {
  const logs = logCapture()
  const app = await build(t, { LOG_LEVEL: 'info' }, { logStream: logs.stream })
  const written = async () => {
    const writer = app.blobs.createWriter()
    await pipeline(Readable.from([Buffer.from('écrit avant la transaction')]), writer.stream)
    await writer.commit()
    return writer.name
  }

  // The connection is lost once the work is done, before COMMIT is answered: the rows may
  // have committed, so the blob they name must stay (the orphan collector decides later).
  const lost = await written()
  const seen: string[] = []
  await t.rejects(
    app.unitOfWork(
      async (trx, after) => {
        after.rollback(() => void seen.push('rollback'))
        after.commit(() => void seen.push('commit'))
        const { rows } = await sql<{ pid: number }>`select pg_backend_pid() as pid`.execute(trx)
        await sql`select pg_terminate_backend(${rows[0]!.pid})`.execute(app.db)
        // Let the server's goodbye reach the client before COMMIT is sent.
        await new Promise((resolve) => setTimeout(resolve, 200))
      },
      (after) => app.blobs.deleteOnRollback(after, lost),
    ),
  )
  t.same(seen, [], 'neither commit nor rollback hooks run when the outcome is unknown')
  t.ok(await app.blobs.exists(lost), 'the blob written ahead is kept')
  t.ok(logs.lines.some((l) => l.msg === 'the outcome of a COMMIT is unknown: its rollback hooks do not run'), 'and it is logged')
  t.equal((await app.inject({ method: 'GET', url: '/health/ready' })).statusCode, 200, 'the process and its pool carry on')

  // PostgreSQL answering COMMIT with an error (a deferred constraint) has rolled back.
  const refused = await written()
  const hooks: string[] = []
  await t.rejects(
    app.unitOfWork(
      async (trx, after) => {
        after.rollback(() => void hooks.push('rollback'))
        await sql`create temporary table doublon (id int primary key deferrable initially deferred) on commit drop`.execute(trx)
        await sql`insert into doublon values (1), (1)`.execute(trx)
      },
      (after) => app.blobs.deleteOnRollback(after, refused),
    ),
    { code: '23505' },
  )
  t.same(hooks, ['rollback'], 'a COMMIT refused by the server is a rollback')
  t.notOk(await app.blobs.exists(refused), 'the blob written ahead is gone')
})

t.test('a transaction not opened by unitOfWork cannot register what follows it', async (t) => {
  const app = await build(t)
  await t.rejects(
    app.db.transaction().execute(async (trx) => app.blobs.deleteOnRollback(trx, '0'.repeat(32))),
    /not opened by app\.unitOfWork/,
  )
})
