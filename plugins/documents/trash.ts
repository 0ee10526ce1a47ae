import type { FastifyInstance } from 'fastify'
import { type Kysely, sql, type Transaction } from 'kysely'
import { listCorbeille, purgeFromTrash, restoreFromTrash, type TrashItemDto } from '../../openapi/documents-corbeille.ts'
import type { DB } from '../../db/types.ts'
import { actorOf, type AuditEntry } from '../../src/audit.ts'
import { principalOf } from '../../src/auth.ts'
import { Errors } from '../../src/errors.ts'
import { decodeCursor, isTimestamp, page } from '../../src/pagination.ts'
import { type Binding, handle } from '../../src/routes.ts'
import { nameConflict } from './names.ts'
import { releaseUsage } from './storage.ts'
import {
  assertNameFreeInDossier,
  type ContainerKind,
  dossiersUnder,
  type Kind,
  LABELS,
  lockLive,
  TABLES,
} from './tree.ts'

export type Actor = Pick<AuditEntry, 'organisationId' | 'userId' | 'ip' | 'userAgent'> & { organisationId: string }

const DAY_MS = 86_400_000

/**
 * Sends an element and everything live below it to the trash, stamped with the element's id.
 * Already-trashed descendants keep their own stamp: they come back only with their own restore.
 * Returns how many elements the deletion hid, the element included.
 */
export async function sendToTrash(
  trx: Transaction<DB>,
  organisationId: string,
  kind: Kind,
  id: string,
  userId: string | null,
): Promise<number> {
  const stamp = sql`deleted_at = now(), deleted_by = ${userId}, suppression_id = ${id}`
  const live = sql`organisation_id = ${organisationId} and deleted_at is null`
  if (kind === 'fichier') {
    const r = await sql`update fichiers set ${stamp} where id = ${id} and ${live}`.execute(trx)
    return Number(r.numAffectedRows ?? 0)
  }
  const dossiers = dossiersUnder(organisationId, kind, id)
  let hidden = 0
  const run = async (query: ReturnType<typeof sql>) => {
    hidden += Number((await query.execute(trx)).numAffectedRows ?? 0)
  }
  await run(sql`update fichiers set ${stamp} where dossier_id in (${dossiers}) and ${live}`)
  await run(sql`update dossiers set ${stamp} where id in (${dossiers}) and ${live}`)
  if (kind === 'armoire') {
    await run(sql`update casiers set ${stamp} where armoire_id = ${id} and ${live}`)
    await run(sql`update armoires set ${stamp} where id = ${id} and ${live}`)
  } else if (kind === 'casier') {
    await run(sql`update casiers set ${stamp} where id = ${id} and ${live}`)
  }
  return hidden
}

interface TrashRoot {
  id: string
  nom: string
  armoire_id?: string
  casier_id?: string
  parent_id?: string | null
  dossier_id?: string
}

/** A trash entry (an element deleted by itself, not with its container), locked, or 404. */
async function lockTrashRoot(
  trx: Transaction<DB>,
  kind: Kind,
  organisationId: string,
  id: string,
  deletedBefore?: Date,
): Promise<TrashRoot> {
  const expired = deletedBefore ? sql`and deleted_at < ${deletedBefore}` : sql``
  const { rows } = await sql<TrashRoot>`select * from ${sql.table(TABLES[kind])}
    where id = ${id} and organisation_id = ${organisationId} and suppression_id = id ${expired} for update`.execute(trx)
  if (!rows[0]) throw new Errors.NOT_FOUND(`${LABELS[kind]} dans la corbeille`)
  return rows[0]
}

/** Brings back what one deletion hid; refused while the element's container is itself in the trash. */
export async function restore(trx: Transaction<DB>, kind: Kind, id: string, organisationId: string): Promise<{ nom: string; restored: number }> {
  const root = await lockTrashRoot(trx, kind, organisationId, id)
  const parent: [Kind, string] | null =
    kind === 'casier'
      ? ['armoire', root.armoire_id!]
      : kind === 'dossier'
        ? root.parent_id
          ? ['dossier', root.parent_id]
          : ['casier', root.casier_id!]
        : kind === 'fichier'
          ? ['dossier', root.dossier_id!]
          : null
  if (parent) {
    await lockLive(trx, parent[0], organisationId, parent[1]).catch((error: unknown) => {
      throw (error as { code?: string }).code === 'NOT_FOUND' ? new Errors.PARENT_IN_TRASH() : error
    })
    if (kind === 'fichier') await assertNameFreeInDossier(trx, organisationId, parent[1], root.nom, 'dossiers')
    if (kind === 'dossier' && parent[0] === 'dossier') await assertNameFreeInDossier(trx, organisationId, parent[1], root.nom, 'fichiers')
  }
  let restored = 0
  for (const table of ['armoires', 'casiers', 'dossiers', 'fichiers'] as const) {
    const r = await sql`update ${sql.table(table)} set deleted_at = null, deleted_by = null, suppression_id = null
      where suppression_id = ${id} and organisation_id = ${organisationId}`
      .execute(trx)
      .catch((error: unknown) => nameConflict(error, root.nom))
    restored += Number(r.numAffectedRows ?? 0)
  }
  return { nom: root.nom, restored }
}

interface DestroyedVersion {
  id: string
  fichier_id: string
  version_number: number
  taille: number
  sha256: string
  blob: string
  cle_id: string
}

export interface PurgeResult {
  nom: string
  files: { id: string; nom: string; versions: DestroyedVersion[] }[]
  dossiers: number
  bytes: number
}

/**
 * Destroys a trash entry and everything below it, trashed or not. Every data key of every
 * version is destroyed in this transaction (crypto-shredding): once it commits, the blobs are
 * unreadable noise, removed afterwards by the caller.
 */
export async function purge(trx: Transaction<DB>, kind: Kind, id: string, actor: Actor, deletedBefore?: Date): Promise<PurgeResult> {
  const { organisationId } = actor
  const root = await lockTrashRoot(trx, kind, organisationId, id, deletedBefore)
  const files =
    kind === 'fichier'
      ? [{ id, nom: root.nom }]
      : (await sql<{ id: string; nom: string }>`select id, nom from fichiers
          where dossier_id in (${dossiersUnder(organisationId, kind, id)}) and organisation_id = ${organisationId} for update`.execute(trx)).rows
  const fileIds = files.map((f) => f.id)
  const versions = fileIds.length
    ? await trx
        .selectFrom('versions_fichiers')
        .select(['id', 'fichier_id', 'version_number', 'taille', 'sha256', 'blob', 'cle_id'])
        .where(sql<boolean>`fichier_id = any(${fileIds}::uuid[])`)
        .where('organisation_id', '=', organisationId)
        .orderBy('fichier_id')
        .orderBy('version_number')
        .execute()
    : []
  if (versions.length > 0) {
    await trx
      .updateTable('cles_chiffrement')
      .set({ cle_enveloppee: null, detruite_at: sql`now()`, detruite_par: actor.userId })
      .where(sql<boolean>`id = any(${versions.map((v) => v.cle_id)}::uuid[])`)
      .execute()
  }
  if (fileIds.length) await trx.deleteFrom('fichiers').where(sql<boolean>`id = any(${fileIds}::uuid[])`).execute()
  const dossiers =
    kind === 'fichier' ? 0 : Number((await sql<{ n: number }>`select count(*) as n from (${dossiersUnder(organisationId, kind as ContainerKind, id)}) s`.execute(trx)).rows[0]?.n ?? 0)
  if (kind !== 'fichier') {
    await sql`delete from ${sql.table(TABLES[kind])} where id = ${id} and organisation_id = ${organisationId}`.execute(trx)
  }
  const bytes = versions.reduce((sum, v) => sum + v.taille, 0)
  await releaseUsage(trx, organisationId, bytes)
  const byFile = new Map(files.map((f) => [f.id, { ...f, versions: [] as DestroyedVersion[] }]))
  for (const v of versions) byFile.get(v.fichier_id)?.versions.push(v)
  return { nom: root.nom, files: [...byFile.values()], dossiers, bytes }
}

/** Journals a purge in its transaction: one entry per destroyed file, one for a container. */
export async function journalPurge(
  app: FastifyInstance,
  trx: Transaction<DB>,
  kind: Kind,
  id: string,
  result: PurgeResult,
  actor: Actor,
  automatic: boolean,
): Promise<void> {
  for (const file of result.files) {
    await app.audit.record(trx, {
      ...actor,
      action: 'PURGED',
      target: { type: 'fichier', id: file.id, nom: file.nom },
      details: {
        automatique: automatic,
        suppression_id: id,
        cles_detruites: file.versions.length,
        versions: file.versions.map((v) => ({
          version_id: v.id,
          version_number: v.version_number,
          taille: v.taille,
          sha256: v.sha256,
          cle_id: v.cle_id,
        })),
      },
    })
  }
  if (kind !== 'fichier') {
    await app.audit.record(trx, {
      ...actor,
      action: 'PURGED',
      target: { type: kind, id, nom: result.nom },
      details: { automatique: automatic, fichiers: result.files.length, dossiers: result.dossiers, octets: result.bytes },
    })
  }
}

/**
 * Purges one trash entry in the caller's unit of work: shred and journal in its transaction,
 * the blobs removed once it commits (the keys are gone by then: a blob left behind by a
 * failure is unreadable noise). `deletedBefore` (the automatic purge) skips an entry restored
 * and deleted again since.
 */
export async function purgeElement(
  trx: Transaction<DB>,
  app: FastifyInstance,
  kind: Kind,
  id: string,
  actor: Actor,
  deletedBefore?: Date,
): Promise<PurgeResult> {
  await app.safeguards.assertMayChange(trx, { ...actor, object: { type: kind, id }, action: 'purge' })
  const purged = await purge(trx, kind, id, actor, deletedBefore)
  await journalPurge(app, trx, kind, id, purged, actor, deletedBefore !== undefined)
  for (const file of purged.files) {
    for (const version of file.versions) app.blobs.deleteOnCommit(trx, version.blob)
  }
  return purged
}

export function purgeEntry(app: FastifyInstance, kind: Kind, id: string, actor: Actor, deletedBefore?: Date): Promise<PurgeResult> {
  return app.unitOfWork((trx) => purgeElement(trx, app, kind, id, actor, deletedBefore))
}

/**
 * Purges every trash entry older than the retention period, across organisations; containers
 * first, so that entries inside them go with them. Answers how many entries were purged.
 */
export async function purgeExpiredTrash(app: FastifyInstance, retentionDays: number, now = new Date()): Promise<number> {
  const cutoff = new Date(now.getTime() - retentionDays * DAY_MS)
  let purged = 0
  for (const kind of ['armoire', 'casier', 'dossier', 'fichier'] as const) {
    const { rows } = await sql<{ id: string; organisation_id: string }>`select id, organisation_id from ${sql.table(TABLES[kind])}
      where suppression_id = id and deleted_at < ${cutoff} order by deleted_at`.execute(app.db)
    for (const row of rows) {
      try {
        await purgeEntry(app, kind, row.id, { organisationId: row.organisation_id, userId: null }, cutoff)
        purged++
      } catch (err) {
        // Gone with a container purged just before, kept by retention or a hold, or to be retried on the next run.
        const code = (err as { code?: string }).code
        if (code === 'RETENTION_ACTIVE' || code === 'LEGAL_HOLD') app.log.info({ kind, id: row.id, code }, 'trash entry kept')
        else if (code !== 'NOT_FOUND') app.log.error({ err, kind, id: row.id }, 'trash purge failed')
      }
    }
  }
  return purged
}

interface TrashRow {
  type: Kind
  id: string
  nom: string
  parent_type: 'armoire' | 'casier' | 'dossier' | null
  parent_id: string | null
  taille: number | null
  deleted_at: Date
  deleted_by: string | null
  sort_value: string
}

/** A trash branch per kind: the element, its parent as the listing names it, and a file's size. */
function trashBranch(organisationId: string, kind: Kind) {
  const parent =
    kind === 'armoire'
      ? sql`null::text, null::uuid, null::bigint`
      : kind === 'casier'
        ? sql`'armoire', armoire_id, null::bigint`
        : kind === 'dossier'
          ? sql`case when parent_id is null then 'casier' else 'dossier' end, coalesce(parent_id, casier_id), null::bigint`
          : sql`'dossier', dossier_id, taille`
  return sql`select ${kind}::text as type, id, nom, ${parent}, deleted_at, deleted_by from ${sql.table(TABLES[kind])}
    where organisation_id = ${organisationId} and suppression_id = id`
}

/** Trash entries of the organisation (of one kind, if given), newest deletion first, after a keyset position. */
export async function findTrashRows(
  db: Kysely<DB>,
  organisationId: string,
  filter: { type?: Kind | undefined; after: { at: string; id: string } | null; limit: number },
): Promise<TrashRow[]> {
  const kinds = (['armoire', 'casier', 'dossier', 'fichier'] as const).filter((kind) => !filter.type || filter.type === kind)
  const branches = kinds.map((kind) => trashBranch(organisationId, kind))
  const after = filter.after ? sql`(deleted_at, id) < (${filter.after.at}::timestamptz, ${filter.after.id}::uuid)` : sql`true`
  const { rows } = await sql<TrashRow>`select type, id, nom, parent_type, parent_id, taille, deleted_at, deleted_by,
      to_char(deleted_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as sort_value
    from (${sql.join(branches, sql` union all `)}) as t(type, id, nom, parent_type, parent_id, taille, deleted_at, deleted_by)
    where ${after}
    order by deleted_at desc, id desc
    limit ${filter.limit + 1}`.execute(db)
  return rows
}

/** One page of the trash; each entry says when the retention sweep will purge it. */
async function listTrash(
  db: Kysely<DB>,
  organisationId: string,
  query: { limit: number; cursor?: string | undefined; type?: Kind | undefined },
  retentionDays: number,
) {
  let after: { at: string; id: string } | null = null
  if (query.cursor) {
    const [at, id] = decodeCursor<[string, string]>(query.cursor, ['string', 'uuid'])
    if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/.test(at) || !isTimestamp(at)) throw new Errors.INVALID_CURSOR()
    after = { at, id }
  }
  const rows = await findTrashRows(db, organisationId, { type: query.type, after, limit: query.limit })
  return page(
    rows,
    query.limit,
    (row): TrashItemDto => ({
      type: row.type,
      id: row.id,
      nom: row.nom,
      parent: row.parent_type && row.parent_id ? { type: row.parent_type, id: row.parent_id } : null,
      taille: row.taille === null ? null : Number(row.taille),
      deleted_at: row.deleted_at.toISOString(),
      deleted_by: row.deleted_by,
      purge_le: new Date(row.deleted_at.getTime() + retentionDays * DAY_MS).toISOString(),
    }),
    (row) => [row.sort_value, row.id],
  )
}

export function trashBindings(app: FastifyInstance, retentionDays: number): Binding[] {
  const { db } = app
  return [
    handle(listCorbeille, async (request) => {
      const { organisationId } = principalOf(request)
      return listTrash(db, organisationId, request.query, retentionDays)
    }),

    handle(restoreFromTrash, async (request, reply) => {
      const { type, id } = request.params
      const actor = { ...actorOf(request), organisationId: principalOf(request).organisationId }
      await db.transaction().execute(async (trx) => {
        const { nom, restored } = await restore(trx, type, id, actor.organisationId)
        await app.audit.record(trx, { ...actor, action: 'RESTORED_FROM_TRASH', target: { type, id, nom }, details: { elements: restored } })
      })
      return reply.code(204).send(null)
    }),

    handle(purgeFromTrash, async (request, reply) => {
      const { type, id } = request.params
      await purgeEntry(app, type, id, { ...actorOf(request), organisationId: principalOf(request).organisationId })
      return reply.code(204).send(null)
    }),
  ]
}
