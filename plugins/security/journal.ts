import { Readable } from 'node:stream'
import type { Static } from '@sinclair/typebox'
import { stringify } from 'csv-stringify/sync'
import type { FastifyInstance } from 'fastify'
import type { Kysely, SelectQueryBuilder } from 'kysely'
import type { JournalCheckpoint, JournalEntry } from '../../db/tables/journal.ts'
import type { DB } from '../../db/types.ts'
import { type CheckpointSchema, createJournalCheckpoint, type JournalEntrySchema, exportJournal, listJournal, verifyJournal } from '../../openapi/security.ts'
import { actorOf, entryMessage } from '../../src/audit.ts'
import { principalOf } from '../../src/auth.ts'
import { createCheckpoint, latestCheckpoint, verifyChainWithCheckpoint } from '../../src/journal-checkpoints.ts'
import { decodeCursor, page } from '../../src/pagination.ts'
import { type Binding, handle } from '../../src/routes.ts'
import { attachment } from '../../src/attachment.ts'

type Filters = {
  utilisateur_id?: string
  action?: string
  cible_type?: string
  cible_id?: string
  severite?: JournalEntry['severite']
  resultat?: JournalEntry['resultat']
  depuis?: string
  jusqua?: string
}

const EXPORT_BATCH = 1000

function filtered(db: Kysely<DB>, organisationId: string, f: Filters): SelectQueryBuilder<DB, 'journal_activite', JournalEntry> {
  let q = db.selectFrom('journal_activite').selectAll().where('organisation_id', '=', organisationId)
  if (f.utilisateur_id) q = q.where('utilisateur_id', '=', f.utilisateur_id)
  if (f.action) q = q.where('action', '=', f.action)
  if (f.cible_type) q = q.where('cible_type', '=', f.cible_type)
  if (f.cible_id) q = q.where('cible_id', '=', f.cible_id)
  if (f.severite) q = q.where('severite', '=', f.severite)
  if (f.resultat) q = q.where('resultat', '=', f.resultat)
  if (f.depuis) q = q.where('created_at', '>=', new Date(f.depuis))
  if (f.jusqua) q = q.where('created_at', '<=', new Date(f.jusqua))
  return q
}

function toCheckpointDto(cp: JournalCheckpoint): Static<typeof CheckpointSchema> {
  return { sequence: cp.sequence, hash: cp.hash.toString('hex'), cle_id: cp.cle_id, signature: cp.signature.toString('hex'), created_at: cp.created_at.toISOString() }
}

export function toEntryDto(row: JournalEntry): Static<typeof JournalEntrySchema> {
  return {
    id: row.id,
    sequence: row.sequence,
    utilisateur_id: row.utilisateur_id,
    action: row.action,
    cible_type: row.cible_type,
    cible_id: row.cible_id,
    cible_nom: row.cible_nom,
    resultat: row.resultat,
    severite: row.severite,
    ip: row.ip,
    user_agent: row.user_agent,
    details: row.details,
    created_at: row.created_at.toISOString(),
    message: entryMessage(row),
  }
}

const CSV_COLUMNS = ['id', 'created_at', 'utilisateur_id', 'action', 'cible_type', 'cible_id', 'cible_nom', 'resultat', 'severite', 'ip', 'message'] as const

/** A cell as text, a spreadsheet formula neutralised (CSV injection); quoting is csv-stringify's. */
function csvCell(value: unknown): string {
  const text = value === null || value === undefined ? '' : String(value)
  return /^[=+\-@\t\r]/.test(text) ? `'${text}` : text
}

const csvRows = (rows: readonly Record<string, unknown>[]): string =>
  stringify(
    rows.map((dto) => CSV_COLUMNS.map((c) => csvCell(dto[c]))),
    { quoted: true, quoted_empty: true, record_delimiter: 'windows' },
  )

/**
 * The filtered journal, oldest first, read in batches so memory stays flat whatever its size.
 * The first batch is read before the answer's head is sent: a query PostgreSQL refuses is an
 * error answer, not a 200 cut short. A later failure makes Fastify destroy the socket, so the
 * chunked body never gets its terminating chunk and the client sees the export fail.
 */
async function exportStream(db: Kysely<DB>, organisationId: string, f: Filters, format: 'csv' | 'json'): Promise<Readable> {
  const batch = (after: number) => filtered(db, organisationId, f).where('id', '>', after).orderBy('id').limit(EXPORT_BATCH).execute()
  const firstRows = await batch(0)
  async function* chunks() {
    yield format === 'csv' ? `${CSV_COLUMNS.join(',')}\r\n` : '['
    let rows = firstRows
    let first = true
    while (rows.length > 0) {
      let chunk = ''
      for (const row of rows) {
        const dto = toEntryDto(row)
        if (format === 'csv') chunk += csvRows([dto])
        else {
          chunk += `${first ? '' : ','}\n${JSON.stringify(dto)}`
          first = false
        }
      }
      yield chunk
      if (rows.length < EXPORT_BATCH) break
      rows = await batch(rows.at(-1)?.id ?? 0)
    }
    if (format === 'json') yield '\n]\n'
  }
  // One batch ahead at most: the socket's own buffer does the rest.
  return Readable.from(chunks(), { highWaterMark: 1 })
}

export function journalBindings(app: FastifyInstance): Binding[] {
  const { db } = app
  return [
    handle(listJournal, async (request) => {
      const { organisationId } = principalOf(request)
      const { limit, cursor, ...filters } = request.query
      let q = filtered(db, organisationId, filters)
      if (cursor) q = q.where('id', '<', decodeCursor<[number]>(cursor, ['number'])[0])
      const rows = await q.orderBy('id', 'desc').limit(limit + 1).execute()
      return page(rows, limit, toEntryDto, (r) => [r.id])
    }),

    handle(exportJournal, async (request, reply) => {
      const { organisationId } = principalOf(request)
      const { format, ...filters } = request.query
      await app.audit.recordAlone({ ...actorOf(request), action: 'JOURNAL_EXPORTED', target: { type: 'journal', id: null }, details: { format, filtres: filters } })
      const stream = await exportStream(db, organisationId, filters, format)
      const stamp = new Date().toISOString().slice(0, 10)
      const checkpoint = await latestCheckpoint(db, organisationId)
      return reply
        .type(format === 'csv' ? 'text/csv; charset=utf-8' : 'application/json; charset=utf-8')
        .header('content-disposition', attachment(`journal-${stamp}.${format}`))
        // The newest signed checkpoint travels with the export, so its reader can hold the entries against it.
        .header('armoire-point-controle', checkpoint ? JSON.stringify(toCheckpointDto(checkpoint)) : 'aucun')
        .send(stream)
    }),

    handle(verifyJournal, async (request) => {
      const { organisationId } = principalOf(request)
      const { checkpoint, ...result } = await verifyChainWithCheckpoint(db, app.keys, organisationId)
      await app.audit.recordAlone({
        ...actorOf(request),
        action: 'JOURNAL_VERIFIED',
        target: { type: 'journal', id: null },
        result: result.intact ? 'succes' : 'echec',
        severity: result.intact ? 'LOW' : 'CRITICAL',
        details: { ...result, point_controle: checkpoint?.sequence ?? null },
      })
      return {
        intact: result.intact,
        nombre_entrees: result.count,
        premiere_rupture: result.intact ? null : { id: result.entry_id, sequence: result.sequence, raison: result.reason },
        point_controle: checkpoint ? toCheckpointDto(checkpoint) : null,
      }
    }),

    handle(createJournalCheckpoint, async (request, reply) => {
      const { organisationId } = principalOf(request)
      const checkpoint = await createCheckpoint(db, app.keys, organisationId)
      // An organisation's chain holds at least its registration: never empty.
      if (!checkpoint) throw new Error('empty journal chain')
      await app.audit.recordAlone({
        ...actorOf(request),
        action: 'JOURNAL_CHECKPOINTED',
        target: { type: 'journal', id: null },
        details: { sequence: checkpoint.sequence },
      })
      return reply.code(201).send(toCheckpointDto(checkpoint))
    }),
  ]
}
