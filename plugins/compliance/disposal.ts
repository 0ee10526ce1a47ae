import type { FastifyInstance, FastifyRequest } from 'fastify'
import { type Kysely, sql, type Transaction } from 'kysely'
import type { EliminationRow } from '../../db/tables/compliance.ts'
import type { DB } from '../../db/types.ts'
import {
  type CertificatDto,
  decideElimination,
  type EliminationDto,
  getCertificat,
  listEliminations,
  objectElimination,
} from '../../openapi/compliance.ts'
import { actorOf, type AuditEntry } from '../../src/audit.ts'
import { principalOf } from '../../src/auth.ts'
import { Errors } from '../../src/errors.ts'
import { type Binding, handle } from '../../src/routes.ts'
import { removeShreddedBlobs, type ShreddedFile, shredFile } from '../documents/public.ts'
import { canonical, sha256Hex } from './canonical.ts'
import { certificateHtml } from './certificate-html.ts'
import { newestFirst } from '../../src/pagination.ts'
import { iso } from './listing.ts'
import { activeTerms, governing, termsOf } from './retention.ts'
import { attachment } from '../../src/attachment.ts'

const DAY_MS = 86_400_000

type Actor = Pick<AuditEntry, 'userId' | 'ip' | 'userAgent'> & { organisationId: string }

export const toElimination = (r: EliminationRow): EliminationDto => ({
  id: r.id,
  fichier: { id: r.fichier_id, nom: r.fichier_nom },
  regle: null,
  action_terme: r.action_terme,
  terme: r.terme.toISOString(),
  statut: r.statut,
  destruction_prevue_at: iso(r.destruction_prevue_at),
  decision: r.decision,
  decide_par: r.decide_par,
  decide_at: iso(r.decide_at),
  motif: r.motif,
  certificat_id: r.certificat_id,
  created_at: r.created_at.toISOString(),
})

async function withRules(db: Kysely<DB>, rows: EliminationRow[]): Promise<EliminationDto[]> {
  const ids = [...new Set(rows.map((r) => r.regle_id).filter((id): id is string => id !== null))]
  const rules = ids.length ? await db.selectFrom('regles_conservation').select(['id', 'nom']).where('id', 'in', ids).execute() : []
  return rows.map((r) => ({ ...toElimination(r), regle: rules.find((x) => x.id === r.regle_id) ?? null }))
}

/** "Armoire / Casier / Dossier / Sous-dossier / fichier.pdf", read before the file goes. */
async function pathOf(db: Kysely<DB>, organisationId: string, fileId: string): Promise<string> {
  const { rows } = await sql<{ nom: string }>`with recursive up(id, parent_id, casier_id, nom, depth) as (
      select d.id, d.parent_id, d.casier_id, d.nom, 1 from dossiers d join fichiers f on f.dossier_id = d.id
        where f.id = ${fileId} and f.organisation_id = ${organisationId}
      union all
      select d.id, d.parent_id, d.casier_id, d.nom, up.depth + 1 from dossiers d join up on d.id = up.parent_id
    )
    select nom from (
      select a.nom, 3 as rank, 0 as depth from armoires a join casiers c on c.armoire_id = a.id
        where c.id = (select casier_id from up limit 1)
      union all select c.nom, 2, 0 from casiers c where c.id = (select casier_id from up limit 1)
      union all select nom, 1, depth from up
    ) p order by rank desc, depth desc`.execute(db)
  const file = await db.selectFrom('fichiers').select('nom').where('id', '=', fileId).executeTakeFirstOrThrow()
  return [...rows.map((r) => r.nom), file.nom].join(' / ')
}

/** The journal's entries on a file, with their chain hashes. */
export async function fileEntries(db: Kysely<DB>, organisationId: string, fileId: string) {
  return db
    .selectFrom('journal_activite')
    .selectAll()
    .where('organisation_id', '=', organisationId)
    .where('cible_type', '=', 'fichier')
    .where('cible_id', '=', fileId)
    .orderBy('sequence')
    .execute()
}

const proof = (e: { sequence: number; action: string; created_at: Date; hash: Buffer; hash_precedent: Buffer | null }) => ({
  sequence: e.sequence,
  action: e.action,
  created_at: e.created_at.toISOString(),
  hash: e.hash.toString('hex'),
  hash_precedent: e.hash_precedent?.toString('hex') ?? null,
})

/**
 * Destroys the file of an elimination in the caller's transaction: the safeguards are asked
 * (a legal hold wins), the retention is checked once more, every version is crypto-shredded
 * through the documents domain, the destruction is journaled and its certificate written.
 */
async function destroy(
  app: FastifyInstance,
  trx: Transaction<DB>,
  elimination: EliminationRow,
  actor: Actor,
  decision: { automatic: boolean; motif: string | null },
): Promise<{ certificate: CertificatDto; shredded: ShreddedFile }> {
  const { organisationId } = actor
  const fileId = elimination.fichier_id
  await app.safeguards.assertMayChange(trx, { ...actor, object: { type: 'fichier', id: fileId }, action: 'dispose' })
  const still = activeTerms(await termsOf(trx, organisationId, [fileId])).get(fileId)
  if (still) throw new Errors.RETENTION_ACTIVE(`Une conservation s’applique de nouveau à « ${elimination.fichier_nom} »`)
  const chemin = await pathOf(trx, organisationId, fileId)
  const rule = elimination.regle_id
    ? await trx.selectFrom('regles_conservation').selectAll().where('id', '=', elimination.regle_id).executeTakeFirst()
    : undefined
  const shredded = await shredFile(trx, organisationId, fileId, actor.userId)
  const certificateId = (await sql<{ id: string }>`select gen_random_uuid() as id`.execute(trx)).rows[0]!.id
  const versions = shredded.versions.map((v) => ({
    version_id: v.id,
    version_number: v.version_number,
    nom: v.nom,
    type_mime: v.type_mime,
    taille: v.taille,
    sha256: v.sha256,
    cle_id: v.cle_id,
    created_at: v.created_at.toISOString(),
  }))
  const entry = await app.audit.record(trx, {
    ...actor,
    action: 'DESTROYED',
    target: { type: 'fichier', id: fileId, nom: shredded.nom },
    details: { elimination_id: elimination.id, certificat_id: certificateId, regle_id: elimination.regle_id, automatique: decision.automatic, chemin, versions },
  })
  const history = await fileEntries(trx, organisationId, fileId)
  const destruction = history.find((e) => e.sequence === entry.sequence)!
  const now = new Date()
  const content: Omit<CertificatDto, 'empreinte'> = {
    id: certificateId,
    organisation_id: organisationId,
    emis_le: now.toISOString(),
    elimination_id: elimination.id,
    fichier: { id: fileId, nom: shredded.nom, chemin, taille_totale: shredded.bytes },
    versions,
    regle: rule ? { id: rule.id, nom: rule.nom, mode: rule.mode, duree: rule.duree, unite: rule.unite, evenement: rule.evenement } : null,
    terme: elimination.terme.toISOString(),
    decision: { automatique: decision.automatic, par: actor.userId, motif: decision.motif, le: now.toISOString() },
    journal: { destruction: proof(destruction), historique: history.map(proof) },
  }
  const empreinte = sha256Hex(canonical(content))
  await trx.insertInto('certificats_destruction').values({ id: certificateId, organisation_id: organisationId, contenu: JSON.stringify(content), empreinte }).execute()
  await trx
    .updateTable('eliminations')
    .set({
      statut: 'detruite',
      certificat_id: certificateId,
      ...(decision.automatic ? {} : { decision: 'approuver' as const, decide_par: actor.userId, decide_at: now, motif: decision.motif }),
    })
    .where('id', '=', elimination.id)
    .execute()
  return { certificate: { ...content, empreinte }, shredded }
}

/**
 * The daily sweep: files whose retention has ended enter the review queue (term action
 * `revue`) or are scheduled for destruction after the notice period (`destruction`);
 * scheduled destructions whose notice has run out are carried out.
 */
export async function sweepDisposals(app: FastifyInstance, noticeDays: number, now = new Date()): Promise<{ proposees: number; detruites: number }> {
  const { db } = app
  const { rows: candidates } = await sql<{ fichier_id: string; organisation_id: string }>`
    select d.cible_id as fichier_id, r.organisation_id from regles_conservation r
      cross join lateral conformite_descendants(r.cible_type, r.cible_id) d
      where r.retiree_at is null and d.cible_type = 'fichier'
    union select fichier_id, organisation_id from conservations_fichiers
    except select fichier_id, organisation_id from eliminations where statut in ('en_attente', 'planifiee')`.execute(db)
  const byOrganisation = new Map<string, string[]>()
  for (const c of candidates) byOrganisation.set(c.organisation_id, [...(byOrganisation.get(c.organisation_id) ?? []), c.fichier_id])
  let proposees = 0
  for (const [organisationId, files] of byOrganisation) {
    const terms = await termsOf(db, organisationId, files)
    for (const fileId of files) {
      const g = governing(terms.filter((t) => t.fichier_id === fileId))
      if (!g?.jusqua || g.jusqua > now) continue
      await db.transaction().execute(async (trx) => {
        const file = await trx.selectFrom('fichiers').select(['id', 'nom']).where('id', '=', fileId).executeTakeFirst()
        if (!file) return
        const review = g.action_terme === 'revue'
        const created = await trx
          .insertInto('eliminations')
          .values({
            organisation_id: organisationId,
            fichier_id: fileId,
            fichier_nom: file.nom,
            regle_id: g.regle_id,
            action_terme: g.action_terme,
            terme: g.jusqua!,
            statut: review ? 'en_attente' : 'planifiee',
            destruction_prevue_at: review ? null : new Date(now.getTime() + noticeDays * DAY_MS),
          })
          .onConflict((oc) => oc.doNothing())
          .returningAll()
          .executeTakeFirst()
        if (!created) return
        await app.audit.record(trx, {
          organisationId,
          userId: null,
          action: 'DISPOSAL_PROPOSED',
          target: { type: 'fichier', id: fileId, nom: file.nom },
          details: { elimination_id: created.id, regle_id: g.regle_id, terme: g.jusqua!.toISOString(), action_terme: g.action_terme, destruction_prevue_at: iso(created.destruction_prevue_at) },
        })
        proposees++
      })
    }
  }

  let detruites = 0
  const due = await db.selectFrom('eliminations').selectAll().where('statut', '=', 'planifiee').where('destruction_prevue_at', '<=', now).execute()
  for (const elimination of due) {
    try {
      const { shredded } = await db.transaction().execute(async (trx) => {
        const locked = await trx.selectFrom('eliminations').selectAll().where('id', '=', elimination.id).where('statut', '=', 'planifiee').forUpdate().executeTakeFirst()
        if (!locked) throw new Errors.NOT_FOUND('Élimination')
        return destroy(app, trx, locked, { organisationId: locked.organisation_id, userId: null }, { automatic: true, motif: null })
      })
      await removeShreddedBlobs(app, shredded)
      detruites++
    } catch (err) {
      const code = (err as { code?: string }).code
      if (code === 'LEGAL_HOLD') app.log.info({ elimination: elimination.id }, 'scheduled destruction kept by a legal hold')
      else if (code === 'RETENTION_ACTIVE') await db.updateTable('eliminations').set({ statut: 'annulee' }).where('id', '=', elimination.id).execute()
      else if (code !== 'NOT_FOUND') app.log.error({ err, elimination: elimination.id }, 'scheduled destruction failed')
    }
  }
  return { proposees, detruites }
}

// Repository: the rows of eliminations, in the caller's executor.

/** An elimination not decided yet, locked for its decision. */
async function lockOpenElimination(trx: Transaction<DB>, organisationId: string, id: string): Promise<EliminationRow> {
  const row = await trx.selectFrom('eliminations').selectAll().where('id', '=', id).where('organisation_id', '=', organisationId).forUpdate().executeTakeFirst()
  if (!row) throw new Errors.NOT_FOUND('Élimination')
  if (row.statut !== 'en_attente' && row.statut !== 'planifiee') throw new Errors.DISPOSAL_DECIDED(row.statut)
  return row
}

async function findElimination(db: Kysely<DB>, organisationId: string, id: string): Promise<EliminationDto> {
  const row = await db.selectFrom('eliminations').selectAll().where('id', '=', id).where('organisation_id', '=', organisationId).executeTakeFirstOrThrow()
  return (await withRules(db, [row]))[0]!
}

type Decision = 'approuver' | 'prolonger' | 'conserver'

/** The term a decision to keep sets on the file: until `jusqua` (prolonger), or for ever under review (conserver). */
async function insertKeptTerm(trx: Transaction<DB>, row: EliminationRow, decision: Exclude<Decision, 'approuver'>, jusqua: string | undefined, by: { userId: string; motif: string }) {
  await trx
    .insertInto('conservations_fichiers')
    .values({
      organisation_id: row.organisation_id,
      fichier_id: row.fichier_id,
      regle_id: row.regle_id,
      origine: decision === 'prolonger' ? 'prolongation' : 'conservation',
      jusqua: decision === 'prolonger' ? new Date(jusqua!) : 'infinity',
      action_terme: decision === 'prolonger' ? row.action_terme : 'revue',
      mode: 'gouvernance',
      motif: by.motif,
      created_by: by.userId,
    })
    .execute()
}

// Services: one per operation.

/** Decides an elimination: destroy the file now, or keep it (until a date, or for ever). Answers the shredded file, if any. */
async function decide(app: FastifyInstance, request: FastifyRequest, id: string, body: { decision: Decision; motif: string; jusqua?: string | undefined }) {
  const { organisationId, userId } = principalOf(request)
  const { decision, jusqua } = body
  const motif = body.motif.trim()
  const actor = { ...actorOf(request), organisationId }
  if (decision === 'prolonger' && (!jusqua || new Date(jusqua) <= new Date())) {
    throw new Errors.BAD_REQUEST('jusqua, une date à venir, est requis pour prolonger')
  }
  const shredded = await app.db.transaction().execute(async (trx) => {
    const row = await lockOpenElimination(trx, organisationId, id)
    if (decision === 'approuver') return (await destroy(app, trx, row, actor, { automatic: false, motif })).shredded
    const file = await trx.selectFrom('fichiers').select('id').where('id', '=', row.fichier_id).executeTakeFirst()
    if (!file) throw new Errors.NOT_FOUND('Fichier')
    await insertKeptTerm(trx, row, decision, jusqua, { userId, motif })
    await trx
      .updateTable('eliminations')
      .set({ statut: decision === 'prolonger' ? 'prolongee' : 'conservee', decision, decide_par: userId, decide_at: new Date(), motif })
      .where('id', '=', row.id)
      .execute()
    await app.audit.record(trx, {
      ...actor,
      action: 'DISPOSAL_DECIDED',
      target: { type: 'fichier', id: row.fichier_id, nom: row.fichier_nom },
      details: { elimination_id: row.id, decision, motif, ...(jusqua ? { jusqua } : {}) },
    })
    return null
  })
  if (shredded) await removeShreddedBlobs(app, shredded)
}

/** Stops a scheduled destruction: the elimination goes back to review. */
async function objectTo(app: FastifyInstance, request: FastifyRequest, id: string, motif: string): Promise<void> {
  const { organisationId, userId } = principalOf(request)
  await app.db.transaction().execute(async (trx) => {
    const row = await lockOpenElimination(trx, organisationId, id)
    if (row.statut !== 'planifiee') throw new Errors.DISPOSAL_DECIDED('déjà en revue')
    await trx
      .updateTable('eliminations')
      .set({ statut: 'en_attente', destruction_prevue_at: null, decision: 'opposer', decide_par: userId, decide_at: new Date(), motif })
      .where('id', '=', row.id)
      .execute()
    await app.audit.record(trx, {
      ...actorOf(request),
      action: 'DISPOSAL_DECIDED',
      target: { type: 'fichier', id: row.fichier_id, nom: row.fichier_nom },
      details: { elimination_id: row.id, decision: 'opposer', motif },
    })
  })
}

async function findCertificate(db: Kysely<DB>, organisationId: string, id: string): Promise<{ id: string; certificate: CertificatDto }> {
  const row = await db.selectFrom('certificats_destruction').selectAll().where('id', '=', id).where('organisation_id', '=', organisationId).executeTakeFirst()
  if (!row) throw new Errors.NOT_FOUND('Certificat de destruction')
  return { id: row.id, certificate: { ...(row.contenu as Omit<CertificatDto, 'empreinte'>), empreinte: row.empreinte } }
}

export function disposalBindings(app: FastifyInstance): Binding[] {
  const { db } = app
  const organisationOf = (request: FastifyRequest) => principalOf(request).organisationId

  return [
    handle(listEliminations, async (request) => {
      let query = db.selectFrom('eliminations as e').selectAll('e').where('e.organisation_id', '=', organisationOf(request))
      if (request.query.statut) query = query.where('e.statut', '=', request.query.statut)
      const result = await newestFirst(query, 'e', request.query, (r) => r)
      return { items: await withRules(db, result.items), next_cursor: result.next_cursor }
    }),

    handle(decideElimination, async (request) => {
      await decide(app, request, request.params.id, request.body)
      return findElimination(db, organisationOf(request), request.params.id)
    }),

    handle(objectElimination, async (request) => {
      await objectTo(app, request, request.params.id, request.body.motif.trim())
      return findElimination(db, organisationOf(request), request.params.id)
    }),

    handle(getCertificat, async (request, reply) => {
      const { id, certificate } = await findCertificate(db, organisationOf(request), request.params.id)
      if (request.query.format === 'pdf') {
        const pdf = await app.pdf.render(certificateHtml(certificate))
        return reply.type('application/pdf').header('content-disposition', attachment(`certificat-${id}.pdf`)).send(pdf as never) // the PDF alternative of the 200
      }
      return reply.type('application/json; charset=utf-8').send(certificate)
    }),
  ]
}
