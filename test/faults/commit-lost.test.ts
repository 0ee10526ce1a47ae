/**
 * Fault (issue 16): the connection to PostgreSQL lost during COMMIT. Before the fix in
 * src/db.ts, node-postgres' 'error' event of the checked-out client, unheard, was an
 * uncaught exception: the server process died. The client cannot know
 * whether the transaction committed, so a blob written ahead of it must not be removed: its
 * rows may name it. A loss before COMMIT is a plain rollback and removes the blob.
 */
import { sql } from 'kysely'
import t from 'tap'
import { isDatabaseUnavailable } from '../../src/db.ts'
import { build } from '../helpers/build.ts'

t.test('a unit of work whose COMMIT loses the connection keeps the blobs written ahead; one lost before COMMIT removes them', async (t) => {
  const app = await build(t)
  // The backend terminates itself (57P01, as in a fast shutdown) from a trigger: at COMMIT when deferred, at the INSERT otherwise.
  await sql`create function panne_coupe() returns trigger language plpgsql as $$
    begin perform pg_terminate_backend(pg_backend_pid()); return null; end $$`.execute(app.db)
  await sql`create table panne_au_commit (id int)`.execute(app.db)
  await sql`create constraint trigger coupe after insert on panne_au_commit deferrable initially deferred for each row execute function panne_coupe()`.execute(app.db)
  await sql`create table panne_avant_commit (id int)`.execute(app.db)
  await sql`create trigger coupe after insert on panne_avant_commit for each row execute function panne_coupe()`.execute(app.db)

  const blobWrittenAhead = async () => {
    const writer = app.blobs.createWriter()
    writer.stream.end(Buffer.from('contenu chiffré'))
    await writer.commit()
    return writer.name
  }
  const attempt = async (table: 'panne_au_commit' | 'panne_avant_commit') => {
    const name = await blobWrittenAhead()
    const error = await app
      .unitOfWork(async (trx) => {
        await sql`insert into ${sql.table(table)} values (1)`.execute(trx)
      }, app.blobs.writtenAhead(name))
      .then(
        () => null,
        (e: unknown) => e as Error,
      )
    return { name, error, kept: await app.blobs.exists(name) }
  }

  const atCommit = await attempt('panne_au_commit')
  t.comment(`connection lost at COMMIT: ${atCommit.error?.message}; blob kept: ${atCommit.kept}`)
  t.ok(isDatabaseUnavailable(atCommit.error), 'the COMMIT failed with the connection (answered 503 DATABASE_UNAVAILABLE)')
  t.ok(atCommit.kept, 'the blob written ahead is kept: the rows may have committed')

  const before = await attempt('panne_avant_commit')
  t.comment(`connection lost before COMMIT: ${before.error?.message}; blob kept: ${before.kept}`)
  t.ok(isDatabaseUnavailable(before.error))
  t.notOk(before.kept, 'a transaction that failed before COMMIT rolled back: its blob is removed')

  // The pool recovers by itself: the next unit of work runs on a new connection.
  t.same((await sql<{ ok: number }>`select 1 as ok`.execute(app.db)).rows, [{ ok: 1 }])
})
