import { type Kysely, sql, type Transaction } from 'kysely'
import type { RestaurationDto, SauvegardeDto } from '../../openapi/backup.ts'
import type { JobError, RestaurationRow, SauvegardeRow } from '../../db/tables/backup.ts'
import type { DB } from '../../db/types.ts'
import { Errors } from '../../src/errors.ts'

const isoOrNull = (d: Date | null) => (d ? d.toISOString() : null)

export function toSauvegarde(row: SauvegardeRow): SauvegardeDto {
  const p = row.progression
  const contenu = row.contenu as SauvegardeDto['contenu']
  return {
    id: row.id,
    type: row.type,
    cible_id: row.cible_id,
    declencheur: row.declencheur,
    statut: row.statut,
    versions: row.versions,
    contenu: contenu && Object.keys(contenu).length > 0 ? contenu : null,
    taille: row.taille === null ? null : Number(row.taille),
    sha256: row.sha256,
    progression: {
      entrees_faites: p.entrees_faites ?? 0,
      entrees_total: p.entrees_total ?? 0,
      octets_faits: p.octets_faits ?? 0,
      octets_total: p.octets_total ?? 0,
    },
    erreur: row.erreur,
    verifiee_le: isoOrNull(row.verifiee_le),
    verification: row.verification as SauvegardeDto['verification'],
    planification_id: row.planification_id,
    created_by: row.created_by,
    created_at: row.created_at.toISOString(),
    demarree_le: isoOrNull(row.demarree_le),
    terminee_le: isoOrNull(row.terminee_le),
  }
}

export function toRestauration(row: RestaurationRow): RestaurationDto {
  return {
    id: row.id,
    sauvegarde_id: row.sauvegarde_id,
    cible_type: row.cible_type,
    cible_id: row.cible_id,
    elements: row.elements,
    simulation: row.simulation,
    statut: row.statut,
    rapport: row.rapport as RestaurationDto['rapport'],
    erreur: row.erreur,
    created_by: row.created_by,
    created_at: row.created_at.toISOString(),
    demarree_le: isoOrNull(row.demarree_le),
    terminee_le: isoOrNull(row.terminee_le),
  }
}

export async function findSauvegarde(db: Kysely<DB>, organisationId: string, id: string): Promise<SauvegardeRow> {
  const row = await db.selectFrom('sauvegardes').selectAll().where('id', '=', id).where('organisation_id', '=', organisationId).executeTakeFirst()
  if (!row) throw new Errors.NOT_FOUND('Sauvegarde')
  return row
}

export async function lockSauvegarde(trx: Transaction<DB>, organisationId: string, id: string): Promise<SauvegardeRow> {
  const row = await trx
    .selectFrom('sauvegardes')
    .selectAll()
    .where('id', '=', id)
    .where('organisation_id', '=', organisationId)
    .forUpdate()
    .executeTakeFirst()
  if (!row) throw new Errors.NOT_FOUND('Sauvegarde')
  return row
}

export async function findRestauration(db: Kysely<DB>, organisationId: string, id: string): Promise<RestaurationRow> {
  const row = await db.selectFrom('restaurations').selectAll().where('id', '=', id).where('organisation_id', '=', organisationId).executeTakeFirst()
  if (!row) throw new Errors.NOT_FOUND('Restauration')
  return row
}

/** Bytes of the organisation's finished archives: counted in its storage, as a figure of their own. */
export async function backupUsage(db: Kysely<DB> | Transaction<DB>, organisationId: string): Promise<number> {
  const { rows } = await sql<{ n: string | null }>`select sum(taille) as n from sauvegardes
    where organisation_id = ${organisationId} and statut in ('terminee', 'en_cours')`.execute(db)
  return Number(rows[0]?.n ?? 0)
}

/** The key of an archive, destroyed: what is left of the blob is noise. */
export async function shredKey(trx: Transaction<DB>, keyId: string | null, userId: string | null): Promise<void> {
  if (!keyId) return
  await trx
    .updateTable('cles_chiffrement')
    .set({ cle_enveloppee: null, detruite_at: sql`now()`, detruite_par: userId })
    .where('id', '=', keyId)
    .where('cle_enveloppee', 'is not', null)
    .execute()
}

/** A problem code and its French detail, from whatever was thrown. */
export function jobError(error: unknown): JobError {
  const e = error as { code?: string; statusCode?: number; message?: string; name?: string }
  if (e.name === 'IntegrityError') return { code: 'BACKUP_TAMPERED', detail: new Errors.BACKUP_TAMPERED('un segment chiffré ne s’authentifie pas').message }
  if (e.code && e.code in Errors && (e.statusCode ?? 500) < 500) return { code: e.code, detail: e.message ?? e.code }
  if (e.code === 'INTEGRITY_ERROR') return { code: e.code, detail: new Errors.INTEGRITY_ERROR().message }
  if (e.code === 'BACKUP_INTERRUPTED') return { code: e.code, detail: new Errors.BACKUP_INTERRUPTED().message }
  if (e.code === 'RESTORE_INTERRUPTED') return { code: e.code, detail: new Errors.RESTORE_INTERRUPTED().message }
  return { code: 'INTERNAL_ERROR', detail: 'Erreur interne pendant le travail en arrière-plan (détails dans les journaux du serveur)' }
}
