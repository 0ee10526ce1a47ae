import { EventEmitter, once } from 'node:events'
import type { FastifyBaseLogger, FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { type Kysely, sql, type Transaction } from 'kysely'
import nodemailer from 'nodemailer'
import type { Courriel, StatutCourriel } from '../db/tables/mail.ts'
import type { DB } from '../db/types.ts'
import type { Job } from './jobs.ts'
import type { MailContent } from './mail-templates.ts'

const SEND_QUEUE = 'mail.send'
// Jobs whose retries ran out land here; the row is then marked `echec` whatever killed them.
const DEAD_QUEUE = 'mail.send.echec'

declare module './jobs.ts' {
  interface JobPayloads {
    'mail.send': { id: string }
    'mail.send.echec': { id: string }
  }
}

/**
 * A file attached to a mail, named by reference: the outbox never holds its bytes (they may be
 * a customer's invoice, encrypted at rest), the sender reads them from its source when sending.
 */
export interface AttachmentRef {
  /** The source registered with `mailer.attachmentSource`, e.g. `facture`. */
  source: string
  id: string
}

export interface Attachment {
  filename: string
  contentType: string
  content: Buffer
}

export interface OutgoingMail extends MailContent {
  /** One bare address: `nom@example.org`. */
  to: string
  /** What the mail is about (`invitation`, `compte_verrouille`…), for logs and statistics. */
  kind: string
  organisationId?: string | null
  attachments?: readonly AttachmentRef[]
}

export interface Mailer {
  /**
   * Writes the mail to the `courriels` outbox and queues its delivery, both inside `trx`:
   * a transaction that rolls back sends nothing. Answers the courriel id.
   */
  queue(trx: Transaction<DB>, mail: OutgoingMail): Promise<string>
  /**
   * After the commit of a transaction not opened by `app.unitOfWork` (whose commit already wakes
   * the workers): lets committed mails leave now rather than at the worker's next poll. Does
   * nothing when no mail was queued since the last flush.
   */
  flush(): void
  /** Lets mails attach files of a source (read at sending time, so never copied into the outbox). */
  attachmentSource(source: string, read: (id: string) => Promise<Attachment>): void
  /** Resolves with the row once its delivery is settled (`envoye`, `echec` or `non_envoye`). */
  settled(id: string, timeoutMs?: number): Promise<Courriel>
}

declare module 'fastify' {
  interface FastifyInstance {
    mailer: Mailer
  }
}

export interface MailOptions {
  /** smtp://user:pass@host:port; empty keeps every mail in the outbox as `non_envoye`. */
  smtpUrl: string
  from: string
  retryLimit: number
  retryDelaySeconds: number
}

const ADDRESS = /^[^\s@<>",;]+@[^\s@<>",;]+$/
const SMTP_TIMEOUTS = { connectionTimeout: 10_000, greetingTimeout: 10_000, socketTimeout: 30_000 }

function oneLine(value: string): string {
  return value.replace(/[\r\n\t]+/g, ' ').trim()
}

function describe(error: unknown): string {
  const e = error as { message?: string; responseCode?: number }
  return (e.responseCode ? `${e.responseCode} ` : '') + (e.message ?? String(error)).slice(0, 1000)
}

async function setStatus(
  db: Kysely<DB>,
  id: string,
  statut: StatutCourriel,
  values: { derniere_erreur?: string | null; attempted: boolean },
): Promise<void> {
  await db
    .updateTable('courriels')
    .set((eb) => ({
      statut,
      ...(values.attempted ? { tentatives: eb('tentatives', '+', 1) } : {}),
      ...(values.derniere_erreur !== undefined ? { derniere_erreur: values.derniere_erreur } : {}),
      ...(statut === 'envoye' ? { sent_at: new Date() } : {}),
    }))
    .where('id', '=', id)
    // A duplicate job (one that expired while its first run was still sending) changes nothing.
    .where('statut', '=', 'en_attente')
    .execute()
}

function createMailer(app: FastifyInstance, opts: MailOptions, log: FastifyBaseLogger) {
  const { db, jobs } = app
  const transport = opts.smtpUrl ? nodemailer.createTransport({ url: opts.smtpUrl, ...SMTP_TIMEOUTS }) : null
  // Tells waiters in this process that a courriel changed; other instances are seen by polling.
  const changes = new EventEmitter().setMaxListeners(0)
  const sources = new Map<string, (id: string) => Promise<Attachment>>()

  async function attachments(refs: readonly AttachmentRef[]): Promise<Attachment[]> {
    return Promise.all(
      refs.map((ref) => {
        const read = sources.get(ref.source)
        if (!read) throw new Error(`no attachment source "${ref.source}" registered`)
        return read(ref.id)
      }),
    )
  }

  async function deliver(job: Job<typeof SEND_QUEUE>): Promise<void> {
    const { id } = job.data
    const mail = await db.selectFrom('courriels').selectAll().where('id', '=', id).executeTakeFirst()
    if (!mail || mail.statut !== 'en_attente') return
    const about = { courriel: id, kind: mail.kind, to: mail.destinataire, subject: mail.sujet }
    try {
      if (!transport) {
        await setStatus(db, id, 'non_envoye', { attempted: false })
        log.info(about, 'mail kept in the outbox, not sent: no SMTP_URL configured')
        // Bodies may carry links that grant access: only at debug level, never at info.
        log.debug({ courriel: id, text: mail.texte }, 'mail body')
        return
      }
      try {
        const files = await attachments(mail.pieces_jointes)
        const info = await transport.sendMail({
          from: opts.from,
          to: mail.destinataire,
          subject: mail.sujet,
          text: mail.texte,
          ...(mail.html ? { html: mail.html } : {}),
          ...(files.length > 0 ? { attachments: files } : {}),
          headers: { 'Auto-Submitted': 'auto-generated' },
        })
        await setStatus(db, id, 'envoye', { attempted: true, derniere_erreur: null })
        log.info({ ...about, messageId: info.messageId }, 'mail sent')
      } catch (error) {
        const last = job.retryCount >= job.retryLimit
        await setStatus(db, id, last ? 'echec' : 'en_attente', { attempted: true, derniere_erreur: describe(error) })
        throw error
      }
    } finally {
      changes.emit(id)
    }
  }

  async function buried(job: Job<typeof DEAD_QUEUE>): Promise<void> {
    const { id } = job.data
    const { numUpdatedRows } = await db
      .updateTable('courriels')
      .set((eb) => ({
        statut: 'echec',
        derniere_erreur: eb.fn.coalesce('derniere_erreur', eb.val('delivery job expired or was interrupted')),
      }))
      .where('id', '=', id)
      .where('statut', '=', 'en_attente')
      .executeTakeFirst()
    if (numUpdatedRows > 0n) log.error({ courriel: id }, 'mail delivery abandoned')
    changes.emit(id)
  }

  // In a transaction opened by app.unitOfWork (every application call site), the commit hook
  // jobs.sendInTransaction registers wakes the workers, and only when a mail was queued. flush()
  // is for a transaction opened otherwise, and wakes them only when a mail was queued since the
  // last flush: a fetch is a query as heavy as a request. Should another flush reset this between
  // a queue and its commit, that mail leaves at the workers' next poll instead.
  let queuedSinceWake = false

  const mailer: Mailer = {
    async queue(trx, mail) {
      const to = mail.to.trim()
      if (!ADDRESS.test(to)) throw new TypeError(`not a single e-mail address: ${JSON.stringify(mail.to)}`)
      const { id } = await trx
        .insertInto('courriels')
        .values({
          organisation_id: mail.organisationId ?? null,
          destinataire: to,
          sujet: oneLine(mail.subject),
          texte: mail.text,
          html: mail.html ?? null,
          kind: mail.kind,
          pieces_jointes: JSON.stringify(mail.attachments ?? []),
        })
        .returning('id')
        .executeTakeFirstOrThrow()
      await jobs.sendInTransaction(trx, SEND_QUEUE, { id })
      queuedSinceWake = true
      return id
    },
    attachmentSource(source, read) {
      sources.set(source, read)
    },
    flush() {
      if (!queuedSinceWake) return
      queuedSinceWake = false
      jobs.wake(SEND_QUEUE)
    },
    async settled(id, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs
      for (;;) {
        const left = deadline - Date.now()
        // Listening before reading, so a change between the two is not missed. This process's
        // worker wakes the wait; the bound re-reads the row for the other instances' workers.
        const wait = new AbortController()
        const timer = setTimeout(() => wait.abort(), Math.max(0, Math.min(left, 1_000)))
        const changed = once(changes, id, { signal: wait.signal }).catch(() => {})
        try {
          const row = await db.selectFrom('courriels').selectAll().where('id', '=', id).executeTakeFirst()
          if (!row) throw new Error(`no courriel ${id}`)
          if (row.statut !== 'en_attente') return row
          if (left <= 0) throw new Error(`courriel ${id} still en_attente after ${timeoutMs} ms`)
          await changed
        } finally {
          clearTimeout(timer)
          wait.abort()
        }
      }
    },
  }
  return { mailer, deliver, buried, smtp: transport !== null }
}

/**
 * Transactional e-mail: an outbox table written in the caller's transaction, delivered by the
 * `mail.send` job through nodemailer, retried with exponential backoff, never dropped silently.
 */
const regexLiteral = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')

/**
 * Forgets an address the outbox holds (a GDPR erasure): every mail to it goes, whatever its
 * status, and so does every mail already settled that names it; a mail still to be sent to
 * someone else names `replacement` instead. Within the organisation and platform mails only,
 * for what names it; to it, everywhere (an address is one person's). Counts what changed.
 */
export async function forgetAddress(trx: Transaction<DB>, organisationId: string, address: string, replacement: string): Promise<{ supprimes: number; reecrits: number }> {
  const pattern = regexLiteral(address.trim())
  const names = sql<boolean>`(sujet ~* ${pattern} or texte ~* ${pattern} or coalesce(html, '') ~* ${pattern})`
  const ours = sql<boolean>`(organisation_id = ${organisationId} or organisation_id is null)`
  const removed = await trx
    .deleteFrom('courriels')
    .where((eb) => eb.or([eb(sql`lower(destinataire)`, '=', address.trim().toLowerCase()), eb.and([eb('statut', '<>', 'en_attente'), ours, names])]))
    .executeTakeFirst()
  const swap = (column: string) => sql<string>`regexp_replace(${sql.ref(column)}, ${pattern}, ${replacement}, 'gi')`
  const rewritten = await trx
    .updateTable('courriels')
    .set({ sujet: swap('sujet'), texte: swap('texte'), html: sql<string | null>`case when html is null then null else ${swap('html')} end` })
    .where('statut', '=', 'en_attente')
    .where(ours)
    .where(names)
    .executeTakeFirst()
  return { supprimes: Number(removed.numDeletedRows), reecrits: Number(rewritten.numUpdatedRows) }
}

export const mailPlugin = fp(
  async (app: FastifyInstance, opts: MailOptions) => {
    const log = app.log.child({ component: 'mail' })
    const { mailer, deliver, buried, smtp } = createMailer(app, opts, log)
    await app.jobs.work(DEAD_QUEUE, buried)
    await app.jobs.work(SEND_QUEUE, deliver, {
      retryLimit: opts.retryLimit,
      retryDelay: opts.retryDelaySeconds,
      retryBackoff: true,
      // Well above the SMTP timeouts, so a job is not presumed dead while it is still sending.
      expireInSeconds: 5 * 60,
      deadLetter: DEAD_QUEUE,
      concurrency: 2,
    })
    app.decorate('mailer', mailer)
    if (!smtp) log.warn('SMTP_URL is not set: mails are kept in the courriels table and logged, not sent')
  },
  { name: 'mail', fastify: '5.x', dependencies: ['db', 'jobs'] },
)
