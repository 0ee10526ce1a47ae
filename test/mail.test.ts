import { spawn } from 'node:child_process'
import { sql } from 'kysely'
import t from 'tap'
import { accountLockedMail, invitationMail } from '../plugins/security/mails.ts'
import { renderMail } from '../src/mail-templates.ts'
import { build, testDatabase, testStorage } from './helpers/build.ts'
import { logCapture } from './helpers/logs.ts'
import { smtpSink } from './helpers/smtp-sink.ts'

declare module '../src/jobs.ts' {
  interface JobPayloads {
    'test.lent': { ms: number }
  }
}

function invitation(to: string, nom = 'Alice Martin') {
  return {
    to,
    kind: 'invitation',
    ...invitationMail({ nom, organisation: 'Cabinet Dupont & Associés', lien: 'https://armoire.example/invitation?jeton=abc123' }),
  }
}

t.test('a mail queued in a committed transaction arrives with its French subject, text and HTML', async (t) => {
  const sink = await smtpSink(t)
  // A poll far away: the mail arriving promptly shows flush() woke the worker.
  const app = await build(t, { SMTP_URL: sink.url, JOBS_POLLING_INTERVAL_SECONDS: '60' })
  const org = await app.db.insertInto('organisations').values({ nom: 'Cabinet Dupont' }).returning('id').executeTakeFirstOrThrow()

  const id = await app.db.transaction().execute((trx) =>
    app.mailer.queue(trx, { ...invitation('alice@example.org'), organisationId: org.id }),
  )
  const start = Date.now()
  app.mailer.flush()
  const mail = await sink.waitFor((m) => m.to.includes('alice@example.org'), 3_000)
  t.ok(Date.now() - start < 3_000, 'delivered without waiting for the next poll')

  t.equal(mail.parsed.subject, 'Invitation à rejoindre Cabinet Dupont & Associés sur Armoire')
  t.match(mail.parsed.text, /Bonjour Alice Martin,/)
  t.match(mail.parsed.text, /Accepter l’invitation\u00a0: https:\/\/armoire\.example\/invitation\?jeton=abc123/)
  t.match(mail.parsed.html, /<a href="https:\/\/armoire\.example\/invitation\?jeton=abc123"/)
  t.match(mail.parsed.html, /Cabinet Dupont &amp; Associés/)
  t.match(mail.parsed.html, /<html lang="fr">/)
  t.notMatch(mail.parsed.html, /<(img|link|script)\b|src=|url\(/, 'no external asset')
  t.equal(mail.from, 'no-reply@armoire.local')
  t.same(mail.parsed.from?.value, [{ address: 'no-reply@armoire.local', name: 'Armoire' }])
  t.equal(mail.user, 'armoire', 'authenticated with the credentials of SMTP_URL')
  t.equal(mail.parsed.headers.get('auto-submitted'), 'auto-generated')

  const row = await app.mailer.settled(id)
  t.match(row, { statut: 'envoye', tentatives: 1, derniere_erreur: null, organisation_id: org.id, kind: 'invitation' })
  t.ok(row.sent_at instanceof Date)
})

t.test('a mail queued in a rolled-back transaction never leaves and leaves no row', async (t) => {
  const sink = await smtpSink(t)
  const app = await build(t, { SMTP_URL: sink.url })

  await t.rejects(
    app.db.transaction().execute(async (trx) => {
      await app.mailer.queue(trx, invitation('bob@example.org'))
      throw new Error('action abandonnée')
    }),
    /action abandonnée/,
  )
  const id = await app.db.transaction().execute((trx) => app.mailer.queue(trx, invitation('carol@example.org')))
  app.mailer.flush()
  await sink.waitFor((m) => m.to.includes('carol@example.org'))
  await app.mailer.settled(id)

  t.same(sink.received.map((m) => m.to), [['carol@example.org']])
  t.same(sink.attempts, ['carol@example.org'])
  const rows = await app.db.selectFrom('courriels').select('destinataire').execute()
  t.same(rows, [{ destinataire: 'carol@example.org' }])
  const { rows: jobs } = await sql<{ n: number }>`select count(*)::int as n from pgboss.job where name = 'mail.send'`.execute(app.db)
  t.equal(jobs[0]?.n, 1, 'the delivery job rolled back with the row')
})

t.test('without SMTP the mail is kept as non_envoye and logged without its body', async (t) => {
  const logs = logCapture()
  const app = await build(t, { LOG_LEVEL: 'info' }, { logStream: logs.stream })
  const id = await app.db.transaction().execute((trx) => app.mailer.queue(trx, invitation('dan@example.org', 'Dan')))
  app.mailer.flush()
  const row = await app.mailer.settled(id, 5_000)
  t.match(row, { statut: 'non_envoye', tentatives: 0, sent_at: null, destinataire: 'dan@example.org' })
  t.match(row.texte, /jeton=abc123/, 'the outbox keeps the whole mail')

  const line = logs.lines.find((l) => l.courriel === id)
  t.match(line, { level: 30, to: 'dan@example.org', subject: 'Invitation à rejoindre Cabinet Dupont & Associés sur Armoire', kind: 'invitation' })
  const leaked = logs.lines.filter((l) => Number(l.level) >= 30 && JSON.stringify(l).includes('jeton=abc123'))
  t.same(leaked, [], 'the link that grants access never reaches the logs at info level')
})

t.test('a temporary SMTP refusal is retried, then the mail is sent', async (t) => {
  let refusals = 0
  const sink = await smtpSink(t, {
    rejectRecipient: () => (refusals++ === 0 ? Object.assign(new Error('Try again later'), { responseCode: 451 }) : undefined),
  })
  const app = await build(t, { SMTP_URL: sink.url, MAIL_RETRY_DELAY_SECONDS: '1', JOBS_POLLING_INTERVAL_SECONDS: '0.5' })
  const id = await app.db.transaction().execute((trx) => app.mailer.queue(trx, invitation('erin@example.org')))
  app.mailer.flush()
  const row = await app.mailer.settled(id, 20_000)
  t.match(row, { statut: 'envoye', tentatives: 2, derniere_erreur: null })
  t.same(sink.attempts, ['erin@example.org', 'erin@example.org'])
  t.equal(sink.received.length, 1)
})

t.test('a mail the SMTP server keeps refusing is retried, then marked echec with the error', async (t) => {
  const sink = await smtpSink(t, {
    rejectRecipient: () => Object.assign(new Error('Mailbox unavailable'), { responseCode: 550 }),
  })
  const logs = logCapture()
  const app = await build(
    t,
    { SMTP_URL: sink.url, MAIL_RETRY_LIMIT: '2', MAIL_RETRY_DELAY_SECONDS: '1', JOBS_POLLING_INTERVAL_SECONDS: '0.5', LOG_LEVEL: 'warn' },
    { logStream: logs.stream },
  )
  const id = await app.db.transaction().execute((trx) => app.mailer.queue(trx, invitation('frank@example.org')))
  app.mailer.flush()
  const row = await app.mailer.settled(id, 30_000)
  t.match(row, { statut: 'echec', tentatives: 3, sent_at: null })
  t.match(row.derniere_erreur, /550/)
  t.match(row.derniere_erreur, /Mailbox unavailable/)
  t.same(sink.attempts, ['frank@example.org', 'frank@example.org', 'frank@example.org'], 'first try and two retries')
  t.same(sink.received, [])
  t.ok(logs.lines.some((l) => l.level === 50 && l.msg === 'job failed, no retry left' && l.queue === 'mail.send'), 'the failure is logged as an error')
})

t.test('templates escape every value they are given', async (t) => {
  const hostile = '<script>alert("x")</script>'
  const invitationContent = invitationMail({ nom: hostile, organisation: `O'Brien <b>&</b>`, lien: 'https://armoire.example/i?a=1&b="2"' })
  t.notMatch(invitationContent.html, /<script|<b>/)
  t.match(invitationContent.html, /Bonjour &lt;script&gt;alert\(&quot;x&quot;\)&lt;\/script&gt;,/)
  t.match(invitationContent.html, /O&#39;Brien &lt;b&gt;&amp;&lt;\/b&gt;/)
  t.match(invitationContent.html, /href="https:\/\/armoire\.example\/i\?a=1&amp;b=%222%22"/, 'the link is a normalised URL, escaped in its attribute')
  t.match(invitationContent.text, `Bonjour ${hostile},`, 'the text part is not HTML: it keeps values as they are')
  t.throws(() => renderMail({ subject: 's', title: 't', paragraphs: [], action: { label: 'x', url: 'javascript:alert(1)' } }), /not a web link/)

  const locked = accountLockedMail({ nom: hostile, jusqua: new Date('2026-11-21T09:30:00Z') })
  t.equal(locked.subject, 'Votre compte Armoire est temporairement verrouillé')
  t.match(locked.text, /jusqu’au samedi 21 novembre 2026 à 10:30 UTC\+1\./)
  t.notMatch(locked.html, /<script/)
  t.notMatch(locked.html, /<a /, 'no action button')

  const sink = await smtpSink(t)
  const app = await build(t, { SMTP_URL: sink.url })
  const id = await app.db.transaction().execute((trx) =>
    app.mailer.queue(trx, { to: 'gina@example.org', kind: 'compte_verrouille', ...locked }),
  )
  app.mailer.flush()
  const mail = await sink.waitFor((m) => m.to.includes('gina@example.org'))
  t.notMatch(mail.parsed.html, /<script/)
  t.match(mail.parsed.html, /&lt;script&gt;/)
  t.match(await app.mailer.settled(id), { statut: 'envoye' })

  await t.rejects(
    app.db.transaction().execute((trx) => app.mailer.queue(trx, { ...locked, to: 'a@b.c\r\nBcc: x@y.z', kind: 'x' })),
    /not a single e-mail address/,
  )
})

t.test('names given at registration and invitation reach real mails escaped in HTML, as typed in text', async (t) => {
  const sink = await smtpSink(t)
  const app = await build(t, { SMTP_URL: sink.url, PUBLIC_URL: 'https://armoire.exemple.fr' })
  const nom = `<script>alert(1)</script> "quoted" Tom & Jerry O'Brien`
  const organisation = `Tom & Jerry "Associés" <b>gras</b>`
  const register = await app.inject({
    method: 'POST',
    url: '/auth/register',
    payload: { email: 'tom@exemple.fr', mot_de_passe: 'Echappe-les-noms-2026', nom, organisation },
  })
  t.equal(register.statusCode, 201, register.body)
  const admin = { authorization: `Bearer ${register.json().access_token}` }
  const invited = await app.inject({ method: 'POST', url: '/users', headers: admin, payload: { email: 'jerry@exemple.fr', nom, role: 'lecteur' } })
  t.equal(invited.statusCode, 201, invited.body)

  const verification = await sink.waitFor((m) => m.to.includes('tom@exemple.fr'))
  const invitation = await sink.waitFor((m) => m.to.includes('jerry@exemple.fr'))
  const escapedNom = /Bonjour &lt;script&gt;alert\(1\)&lt;\/script&gt; (&quot;|&#34;)quoted(&quot;|&#34;) Tom &amp; Jerry O(&#39;|&#x27;|&apos;)Brien,/
  for (const mail of [verification, invitation]) {
    const html = String(mail.parsed.html)
    t.notMatch(html, /<script|<b>/, `${mail.parsed.subject}: no markup from a name`)
    t.match(html, escapedNom, `${mail.parsed.subject}: the name is escaped in the HTML part`)
    t.match(mail.parsed.text, `Bonjour ${nom},`, `${mail.parsed.subject}: and as typed in the text part`)
  }
  t.equal(invitation.parsed.subject, `Invitation à rejoindre ${organisation} sur Armoire`)
  t.match(String(invitation.parsed.html), /Tom &amp; Jerry (&quot;|&#34;)Associés(&quot;|&#34;) &lt;b&gt;gras&lt;\/b&gt;/, 'the organisation too')
  t.match(invitation.parsed.text, `«\u00a0${organisation}\u00a0»`)
  t.match(String(invitation.parsed.html), /<a href="https:\/\/armoire\.exemple\.fr\/invitation\?token=[\w%-]+"/, 'the button keeps its link')
})

t.test('several instances share the queue: each mail is delivered once', async (t) => {
  const sink = await smtpSink(t)
  const url = await testDatabase(t)
  const env = { SMTP_URL: sink.url, DATABASE_URL: url, JOBS_POLLING_INTERVAL_SECONDS: '0.5' }
  const [one, two] = await Promise.all([build(t, env), build(t, env)])
  const recipients = Array.from({ length: 8 }, (_, i) => `user${i}@example.org`)
  const ids = await one.db.transaction().execute(async (trx) => {
    const queued: string[] = []
    for (const to of recipients) queued.push(await one.mailer.queue(trx, invitation(to)))
    return queued
  })
  one.mailer.flush()
  two.mailer.flush()
  const rows = await Promise.all(ids.map((id) => two.mailer.settled(id, 20_000)))
  t.ok(rows.every((r) => r.statut === 'envoye' && r.tentatives === 1))
  t.same(sink.received.flatMap((m) => m.to).sort(), [...recipients].sort(), 'each recipient got exactly one mail')
})

t.test('close waits for a running job and stops the workers', async (t) => {
  const app = await build(t)
  let finished = false
  let begin = () => {}
  const started = new Promise<void>((resolve) => (begin = resolve))
  await app.jobs.work('test.lent', async (job) => {
    begin()
    await new Promise((r) => setTimeout(r, job.data.ms))
    finished = true
  })
  await app.jobs.send('test.lent', { ms: 700 })
  app.jobs.wake('test.lent')
  await started
  await app.close()
  t.ok(finished, 'the running job finished before close resolved')
})

t.test('an app with jobs leaves no handle behind once closed: its process exits by itself', async (t) => {
  const url = await testDatabase(t)
  const storage = await testStorage(t)
  const script = `
    import { buildApp } from ${JSON.stringify(new URL('../src/app.ts', import.meta.url).href)}
    import { loadConfig } from ${JSON.stringify(new URL('../src/config.ts', import.meta.url).href)}
    const app = await buildApp({ config: loadConfig({ NODE_ENV: 'test', LOG_LEVEL: 'silent', JWT_SECRET: 'x'.repeat(40), DATABASE_URL: ${JSON.stringify(url)}, STORAGE_DIR: ${JSON.stringify(storage)} }) })
    await app.ready()
    const id = await app.db.transaction().execute((trx) => app.mailer.queue(trx, { to: 'h@example.org', kind: 'test', subject: 'Essai', text: 'Bonjour' }))
    app.mailer.flush()
    await app.mailer.settled(id, 10_000)
    await app.close()
    console.log('closed')
  `
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  let err = ''
  child.stdout.on('data', (c: Buffer) => (out += c.toString()))
  child.stderr.on('data', (c: Buffer) => (err += c.toString()))
  let closedAt = 0
  child.stdout.on('data', () => {
    if (!closedAt && out.includes('closed')) closedAt = Date.now()
  })
  const code = await new Promise<number | null>((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000)
    child.on('exit', (c) => {
      clearTimeout(timer)
      resolve(c)
    })
  })
  t.equal(code, 0, err)
  t.ok(closedAt > 0, 'the app closed')
  t.ok(Date.now() - closedAt < 5_000, `the process exited ${Date.now() - closedAt} ms after close`)
})
