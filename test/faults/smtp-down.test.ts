/**
 * Fault (issue 16): the SMTP server down, then back on its address. test/mail.test.ts covers a
 * server that answers and refuses (4xx then accepted, 5xx until echec); here nothing answers.
 */
import t from 'tap'
import { invitationMail } from '../../plugins/security/mails.ts'
import { build } from '../helpers/build.ts'
import { freePort } from '../helpers/net.ts'
import { smtpSink } from '../helpers/smtp-sink.ts'

t.test('SMTP down: the mail waits in the outbox, retried, and goes once the server is back', async (t) => {
  const port = await freePort()
  const app = await build(t, {
    SMTP_URL: `smtp://armoire:secret@127.0.0.1:${port}`,
    MAIL_RETRY_LIMIT: '10',
    MAIL_RETRY_DELAY_SECONDS: '1',
    JOBS_POLLING_INTERVAL_SECONDS: '0.5',
  })
  const mail = {
    to: 'gaelle@example.org',
    kind: 'invitation',
    ...invitationMail({ nom: 'Gaëlle Martin', organisation: 'Cabinet Dupont', lien: 'https://armoire.example/invitation?jeton=abc' }),
  }
  const id = await app.db.transaction().execute((trx) => app.mailer.queue(trx, mail))
  app.mailer.flush()
  const row = () => app.db.selectFrom('courriels').select(['statut', 'tentatives', 'derniere_erreur']).where('id', '=', id).executeTakeFirstOrThrow()
  const deadline = Date.now() + 20_000
  while ((await row()).tentatives < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200))
  const waiting = await row()
  t.comment(`SMTP port ${port} closed: after ${waiting.tentatives} attempts the mail is ${waiting.statut} (${waiting.derniere_erreur})`)
  t.equal(waiting.statut, 'en_attente', 'the mail waits in the outbox')
  t.ok(waiting.tentatives >= 2, 'its delivery was tried and retried')
  t.match(waiting.derniere_erreur, /ECONNREFUSED/, 'the last error says why')

  const sink = await smtpSink(t, { port })
  const sent = await app.mailer.settled(id, 30_000)
  t.comment(`SMTP back on port ${port}: the mail is ${sent.statut} after ${sent.tentatives} attempts`)
  t.match(sent, { statut: 'envoye', derniere_erreur: null })
  t.equal(sink.received.length, 1, 'delivered once')
  t.same(sink.received[0]?.to, ['gaelle@example.org'])
})
