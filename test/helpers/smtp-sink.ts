import { type ParsedMail, simpleParser } from 'mailparser'
import { SMTPServer, type SMTPServerOptions } from 'smtp-server'
import type { TestContext } from './build.ts'

export interface ReceivedMail {
  /** Envelope recipients, as given to RCPT TO. */
  to: string[]
  from: string | undefined
  /** The user the client authenticated as, if it did. */
  user: string | undefined
  parsed: ParsedMail
}

export interface SmtpSink {
  /** smtp://user:pass@127.0.0.1:port of this sink, for SMTP_URL. */
  url: string
  port: number
  received: ReceivedMail[]
  /** Recipient commands seen, accepted or refused: each delivery attempt shows here. */
  attempts: string[]
  /** Resolves with the first mail (received or to come) that matches, or rejects after timeoutMs. */
  waitFor(predicate: (mail: ReceivedMail) => boolean, timeoutMs?: number): Promise<ReceivedMail>
}

export interface SmtpSinkOptions {
  /** Answers an error for a recipient to refuse it (the SMTP client sees a 5xx or 4xx reply). */
  rejectRecipient?: (address: string) => (Error & { responseCode?: number }) | undefined
  /** A given port of the loopback (an SMTP server coming back where it was); default: any free one. */
  port?: number
}

/** A real SMTP server on the loopback, collecting parsed mails; closed at teardown. */
export async function smtpSink(t: TestContext, opts: SmtpSinkOptions = {}): Promise<SmtpSink> {
  const received: ReceivedMail[] = []
  const attempts: string[] = []
  const waiters = new Set<(mail: ReceivedMail) => void>()

  const options: SMTPServerOptions = {
    // Plain SMTP on the loopback: no STARTTLS with a self-signed certificate the client would refuse.
    disabledCommands: ['STARTTLS'],
    allowInsecureAuth: true,
    authOptional: true,
    logger: false,
    // A delivering client finishes within this; a stuck one must not hold the test run.
    closeTimeout: 1_000,
    onAuth(auth, _session, callback) {
      if (auth.username === 'armoire' && auth.password === 'secret') callback(null, { user: auth.username })
      else callback(Object.assign(new Error('Invalid username or password'), { responseCode: 535 }))
    },
    onRcptTo(address, _session, callback) {
      attempts.push(address.address)
      callback(opts.rejectRecipient?.(address.address) ?? null)
    },
    onData(stream, session, callback) {
      simpleParser(stream)
        .then((parsed) => {
          const mail: ReceivedMail = {
            to: session.envelope.rcptTo.map((r) => r.address),
            from: session.envelope.mailFrom ? session.envelope.mailFrom.address : undefined,
            user: typeof session.user === 'string' ? session.user : undefined,
            parsed,
          }
          received.push(mail)
          for (const waiter of waiters) waiter(mail)
          callback()
        })
        .catch((error: Error) => callback(error))
    },
  }
  const server = new SMTPServer(options)
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(opts.port ?? 0, '127.0.0.1', () => resolve())
  })
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  const { port } = server.server.address() as { port: number }

  return {
    url: `smtp://armoire:secret@127.0.0.1:${port}`,
    port,
    received,
    attempts,
    waitFor(predicate, timeoutMs = 5_000) {
      const already = received.find(predicate)
      if (already) return Promise.resolve(already)
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(check)
          reject(new Error(`no matching mail within ${timeoutMs} ms (${received.length} received)`))
        }, timeoutMs)
        const check = (mail: ReceivedMail) => {
          if (!predicate(mail)) return
          clearTimeout(timer)
          waiters.delete(check)
          resolve(mail)
        }
        waiters.add(check)
      })
    },
  }
}
