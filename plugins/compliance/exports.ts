import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { type Kysely, sql } from 'kysely'
import type { JournalEntry } from '../../db/tables/journal.ts'
import type { DB } from '../../db/types.ts'
import { type EffacementDto, eraseUser, exportMe, exportUser, getPreuve } from '../../openapi/compliance-exports.ts'
import { actorOf, verifyChain } from '../../src/audit.ts'
import { principalOf } from '../../src/auth.ts'
import { Errors } from '../../src/errors.ts'
import { forgetAddress } from '../../src/mail.ts'
import { type Binding, handle } from '../../src/routes.ts'
import { anonymiseMember, personalData } from '../security/public.ts'
import { sha256Hex } from './canonical.ts'
import { iso } from './listing.ts'
import { README } from './readme.ts'
import { termsOf } from './retention.ts'
import { amongTargets, ancestorsOf } from './scope.ts'
import { exportSize, requestExport, shredExportsOf, toExport } from './export-jobs.ts'
import { json, zipOf } from './zip.ts'
import { attachment } from '../../src/attachment.ts'

/** An entry as the journal holds it, with what recomputing its hash takes. */
export const entryRecord = (e: JournalEntry) => ({
  sequence: e.sequence,
  organisation_id: e.organisation_id,
  utilisateur_id: e.utilisateur_id,
  action: e.action,
  cible_type: e.cible_type,
  cible_id: e.cible_id,
  cible_nom: e.cible_nom,
  resultat: e.resultat,
  severite: e.severite,
  ip: e.ip,
  user_agent: e.user_agent,
  details: e.details,
  created_at: e.created_at.toISOString(),
  schema_hash: e.version_hash,
  hash_precedent: e.hash_precedent?.toString('hex') ?? null,
  hash: e.hash.toString('hex'),
})

/** A member's personal data as a ZIP of JSON documents. */
export async function personalArchive(db: Kysely<DB>, organisationId: string, userId: string) {
  const data = await personalData(db, organisationId, userId)
  if (!data) throw new Errors.NOT_FOUND('Utilisateur')
  const entries = await db
    .selectFrom('journal_activite')
    .selectAll()
    .where('organisation_id', '=', organisationId)
    .where((eb) => eb.or([eb('utilisateur_id', '=', userId), eb.and([eb('cible_type', '=', 'utilisateur'), eb('cible_id', '=', userId)])]))
    .orderBy('sequence')
    .execute()
  const files = await db
    .selectFrom('fichiers')
    .select(['id', 'dossier_id', 'nom', 'type_mime', 'taille', 'sha256', 'version_courante', 'created_at', 'updated_at', 'deleted_at'])
    .where('organisation_id', '=', organisationId)
    .where('created_by', '=', userId)
    .orderBy('created_at')
    .execute()
  const versions = await db
    .selectFrom('versions_fichiers')
    .select(['id', 'fichier_id', 'version_number', 'nom', 'type_mime', 'taille', 'sha256', 'restauree_depuis', 'created_at'])
    .where('organisation_id', '=', organisationId)
    .where('created_by', '=', userId)
    .orderBy('created_at')
    .execute()
  const exported = new Date().toISOString()
  return zipOf([
    { name: 'compte.json', content: json({ exporte_le: exported, compte: data.account }) },
    { name: 'sessions.json', content: json(data.sessions) },
    { name: 'facteurs.json', content: json({ facteurs: data.factors, codes_secours: data.backupCodes, identites_sso: data.sso }) },
    { name: 'journal.json', content: json(entries.map(entryRecord)) },
    { name: 'fichiers.json', content: json({ fichiers: files, versions }) },
  ])
}

function sendZip(reply: FastifyReply, name: string, body: ReturnType<typeof zipOf>) {
  return reply.type('application/zip').header('content-disposition', attachment(name)).send(body as never)
}

const addressOf = async (db: Kysely<DB>, organisationId: string, userId: string) =>
  (await db.selectFrom('utilisateurs').select('email').where('id', '=', userId).where('organisation_id', '=', organisationId).executeTakeFirst())?.email

/** Files a member created (or gave a version to) that an active legal hold covers, by hold. */
async function heldFilesOf(db: Kysely<DB>, organisationId: string, userId: string) {
  const { rows } = await sql<{ fichier_id: string; fichier_nom: string; gel_id: string; gel_nom: string }>`
    select distinct f.id as fichier_id, f.nom as fichier_nom, g.id as gel_id, g.nom as gel_nom
    from fichiers f
    cross join lateral conformite_ancetres('fichier', f.id) a
    join gels_objets o on o.cible_type = a.cible_type and o.cible_id = a.cible_id
    join gels g on g.id = o.gel_id and g.leve_at is null and g.organisation_id = ${organisationId}
    where f.organisation_id = ${organisationId}
      and (f.created_by = ${userId} or exists (select 1 from versions_fichiers v where v.fichier_id = f.id and v.created_by = ${userId}))
    order by g.nom, f.nom`.execute(db)
  const byHold = new Map<string, EffacementDto['refus'][number]>()
  for (const r of rows) {
    const entry = byHold.get(r.gel_id) ?? { gel: { id: r.gel_id, nom: r.gel_nom }, fichiers: [] }
    entry.fichiers.push({ id: r.fichier_id, nom: r.fichier_nom })
    byHold.set(r.gel_id, entry)
  }
  return [...byHold.values()]
}

/** Everything the evidence bundle says of a file, from the database as it is now. */
async function evidenceOf(db: Kysely<DB>, organisationId: string, fileId: string) {
  const file = await db.selectFrom('fichiers').selectAll().where('id', '=', fileId).where('organisation_id', '=', organisationId).where('deleted_at', 'is', null).executeTakeFirst()
  if (!file) throw new Errors.NOT_FOUND('Fichier')
  const versions = await db
    .selectFrom('versions_fichiers')
    .select(['id', 'version_number', 'nom', 'type_mime', 'taille', 'sha256', 'restauree_depuis', 'created_by', 'created_at'])
    .where('fichier_id', '=', fileId)
    .orderBy('version_number')
    .execute()
  const entries = await db
    .selectFrom('journal_activite')
    .selectAll()
    .where('organisation_id', '=', organisationId)
    .where('cible_type', '=', 'fichier')
    .where('cible_id', '=', fileId)
    .orderBy('sequence')
    .execute()
  const above = await ancestorsOf(db, { type: 'fichier', id: fileId })
  const rules = await db.selectFrom('regles_conservation as r').selectAll().where('r.organisation_id', '=', organisationId).where(amongTargets(above, 'r')).orderBy('created_at').execute()
  const carried = await db.selectFrom('conservations_fichiers').selectAll().where('fichier_id', '=', fileId).orderBy('created_at').execute()
  const carriedRules = carried.length
    ? await db.selectFrom('regles_conservation').selectAll().where('id', 'in', carried.flatMap((c) => (c.regle_id ? [c.regle_id] : []))).execute()
    : []
  const locks = await db.selectFrom('verrous as v').selectAll().where('v.organisation_id', '=', organisationId).where(amongTargets(above, 'v')).orderBy('created_at').execute()
  const holds = await db
    .selectFrom('gels_objets as o')
    .innerJoin('gels as g', 'g.id', 'o.gel_id')
    .select(['g.id', 'g.nom', 'g.motif', 'g.reference', 'g.created_by', 'g.created_at', 'g.leve_at', 'g.leve_par', 'g.motif_levee', 'o.cible_type', 'o.cible_id', 'o.origine', 'o.added_at'])
    .where('o.organisation_id', '=', organisationId)
    .where(amongTargets(above, 'o'))
    .orderBy('o.added_at')
    .execute()
  const folders = above.filter((t) => t.type === 'dossier').map((t) => t.id)
  const closures = folders.length ? await db.selectFrom('clotures_dossiers').selectAll().where('dossier_id', 'in', folders).execute() : []
  const terms = await termsOf(db, organisationId, [fileId])
  return { file, versions, entries, above, rules: [...rules, ...carriedRules.filter((r) => !rules.some((x) => x.id === r.id))], carried, locks, holds, closures, terms }
}

export function exportBindings(app: FastifyInstance, opts: { threshold: number }): Binding[] {
  const { db } = app

  const exportOf = async (request: FastifyRequest, reply: FastifyReply, userId: string) => {
    const { organisationId } = principalOf(request)
    if (!(await personalData(db, organisationId, userId))) throw new Errors.NOT_FOUND('Utilisateur')
    const elements = await exportSize(db, organisationId, userId)
    if (elements > opts.threshold) {
      const pending = await requestExport(app, request, userId, elements)
      return reply.code(202).header('location', `/conformite/exports/${pending.id}`).send(toExport(pending))
    }
    const body = await personalArchive(db, organisationId, userId)
    await app.audit.recordAlone({ ...actorOf(request), action: 'USER_DATA_EXPORTED', target: { type: 'utilisateur', id: userId } })
    return sendZip(reply, `donnees-${userId}.zip`, body)
  }

  return [
    handle(exportMe, async (request, reply) => exportOf(request, reply, principalOf(request).userId)),

    handle(exportUser, async (request, reply) => exportOf(request, reply, request.params.id)),

    handle(eraseUser, async (request) => {
      const { organisationId } = principalOf(request)
      const userId = request.params.id
      const motif = request.body.motif.trim()
      // A unit of work: this instance forgets the member's sessions the moment it commits.
      const report = await app.unitOfWork(async (trx) => {
        const refus = await heldFilesOf(trx, organisationId, userId)
        const address = await addressOf(trx, organisationId, userId)
        const done = await anonymiseMember(app, trx, organisationId, userId, { keepIdentity: refus.length > 0 })
        // The outbox forgets the address with the account; the journal keeps its entries as they were hashed.
        const courriels = done.identiteConservee || !address ? null : await forgetAddress(trx, organisationId, address, (await addressOf(trx, organisationId, userId))!)
        const exports = await shredExportsOf(app, trx, organisationId, userId)
        const actor = actorOf(request)
        if (refus.length > 0) {
          await app.audit.record(trx, {
            ...actor,
            action: 'CHANGE_REFUSED',
            target: { type: 'utilisateur', id: userId, nom: done.pseudonyme },
            result: 'refus',
            severity: 'HIGH',
            details: { action: 'erase', raison: 'gel', gels: refus.map((r) => r.gel.id), fichiers: refus.flatMap((r) => r.fichiers.map((f) => f.id)) },
          })
        }
        await app.audit.record(trx, {
          ...actor,
          action: 'USER_ERASED',
          target: { type: 'utilisateur', id: userId, nom: done.pseudonyme },
          details: { motif, statut: refus.length ? 'partiel' : 'complet', sessions: done.sessions, facteurs: done.facteurs, identite_conservee: done.identiteConservee, courriels, exports_detruits: exports },
        })
        const result: EffacementDto = {
          utilisateur_id: userId,
          statut: refus.length ? 'partiel' : 'complet',
          pseudonyme: done.pseudonyme,
          sessions_supprimees: done.sessions,
          facteurs_supprimes: done.facteurs,
          identite_conservee: done.identiteConservee,
          refus,
        }
        return result
      })
      return report
    }),

    handle(getPreuve, async (request, reply) => {
      const { organisationId } = principalOf(request)
      const e = await evidenceOf(db, organisationId, request.params.id)
      const chain = await verifyChain(db, organisationId)
      const head = await db.selectFrom('journal_activite').select(['sequence', 'hash']).where('organisation_id', '=', organisationId).orderBy('sequence', 'desc').limit(1).executeTakeFirst()
      const generated = new Date().toISOString()
      const documents = [
        {
          name: 'fichier.json',
          content: json({
            fichier: { id: e.file.id, nom: e.file.nom, dossier_id: e.file.dossier_id, type_mime: e.file.type_mime, taille: e.file.taille, sha256: e.file.sha256, version_courante: e.file.version_courante, created_by: e.file.created_by, created_at: e.file.created_at.toISOString(), updated_at: e.file.updated_at.toISOString() },
            emplacement: e.above.filter((t) => t.type !== 'fichier'),
            versions: e.versions.map((v) => ({ ...v, created_at: v.created_at.toISOString() })),
          }),
        },
        {
          name: 'journal.json',
          content: json({
            organisation_id: organisationId,
            verification: chain.intact
              ? { intact: true, nombre_entrees: chain.count, premiere_rupture: null }
              : { intact: false, nombre_entrees: chain.count, premiere_rupture: { sequence: chain.sequence, raison: chain.reason } },
            verifie_le: generated,
            tete: head ? { sequence: head.sequence, hash: head.hash.toString('hex') } : null,
            entrees: e.entries.map(entryRecord),
          }),
        },
        {
          name: 'conformite.json',
          content: json({
            regles: e.rules.map((r) => ({ ...r, date_depart: iso(r.date_depart), created_at: r.created_at.toISOString(), updated_at: r.updated_at.toISOString(), retiree_at: iso(r.retiree_at) })),
            conservations_propres: e.carried.map((c) => ({ ...c, jusqua: c.jusqua instanceof Date ? iso(c.jusqua) : c.jusqua, created_at: c.created_at.toISOString() })),
            termes_actuels: e.terms.map((t) => ({ ...t, depart: iso(t.depart), jusqua: iso(t.jusqua) })),
            clotures: e.closures.map((c) => ({ ...c, cloture_at: c.cloture_at.toISOString() })),
            verrous: e.locks.map((l) => ({ ...l, created_at: l.created_at.toISOString(), leve_at: iso(l.leve_at) })),
            gels: e.holds.map((h) => ({ ...h, created_at: h.created_at.toISOString(), leve_at: iso(h.leve_at), added_at: h.added_at.toISOString() })),
          }),
        },
        { name: 'LISEZ-MOI.txt', content: README },
      ]
      const manifest = { genere_le: generated, fichier_id: e.file.id, sha256: Object.fromEntries(documents.map((d) => [d.name, sha256Hex(d.content)])) }
      await app.audit.recordAlone({ ...actorOf(request), action: 'EVIDENCE_EXPORTED', target: { type: 'fichier', id: e.file.id, nom: e.file.nom }, details: { empreintes: manifest.sha256 } })
      return sendZip(reply, `preuve-${e.file.id}.zip`, zipOf([...documents, { name: 'empreintes.json', content: json(manifest) }]))
    }),
  ]
}
