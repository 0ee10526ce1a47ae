import { createHash } from 'node:crypto'
import { Readable } from 'node:stream'
import { buffer } from 'node:stream/consumers'
import { pipeline } from 'node:stream/promises'
import type { FastifyInstance } from 'fastify'
import type { Kysely, Transaction } from 'kysely'
import type { Facture, LigneFacture, Paiement, Partie } from '../../db/tables/billing.ts'
import type { DB } from '../../db/types.ts'
import type { FactureDto } from '../../openapi/billing.ts'
import { createDecryptStream, createEncryptStream, randomDataKey } from '../../src/crypto/segmented.ts'
import { registerBlobColumn } from '../../src/blob-collector.ts'
import { registerWrappedColumn } from '../../src/keys.ts'
import { renderMail } from '../../src/mail-templates.ts'
import { taxed } from './plans.ts'
import { mailAdmins } from './subscriptions.ts'
import { dateFr, fcfa, invoiceHtml } from './template.ts'

export const PDF_QUEUE = 'billing.facture.pdf'

declare module '../../src/jobs.ts' {
  interface JobPayloads {
    'billing.facture.pdf': { facture_id: string }
  }
}

export interface SellerSettings {
  name: string
  address: string
  ifu: string
  rccm: string
  email: string
  timeZone: string
}

export function sellerOf(s: SellerSettings): Partie {
  return { nom: s.name, adresse: s.address, ifu: s.ifu || null, rccm: s.rccm || null, email: s.email || null }
}

/** The year an invoice is numbered in: its issue date's, in the billing time zone. */
export function yearIn(date: Date, timeZone: string): number {
  return Number(new Intl.DateTimeFormat('en-GB', { year: 'numeric', timeZone }).format(date))
}

/**
 * The next number of a series for a year, from its counter row locked until the caller's
 * transaction ends: numbers are consecutive, and a transaction that rolls back gives its
 * number back. Take it last, just before committing, as the lock serialises every issuer.
 */
export async function allocateNumber(trx: Transaction<DB>, serie: 'FAC' | 'AV', annee: number): Promise<{ rang: number; numero: string }> {
  await trx.insertInto('compteurs_factures').values({ serie, annee, dernier: 0 }).onConflict((oc) => oc.columns(['serie', 'annee']).doNothing()).execute()
  const { dernier } = await trx
    .selectFrom('compteurs_factures')
    .select('dernier')
    .where('serie', '=', serie)
    .where('annee', '=', annee)
    .forUpdate()
    .executeTakeFirstOrThrow()
  const rang = dernier + 1
  await trx.updateTable('compteurs_factures').set({ dernier: rang }).where('serie', '=', serie).where('annee', '=', annee).execute()
  return { rang, numero: `${serie}-${annee}-${String(rang).padStart(6, '0')}` }
}

export async function buyerOf(db: Kysely<DB>, organisationId: string): Promise<Partie> {
  const details = await db.selectFrom('organisations_facturation').selectAll().where('organisation_id', '=', organisationId).executeTakeFirst()
  if (details) {
    const { raison_sociale, adresse, ville, pays, ifu, rccm, email, telephone } = details
    return { nom: raison_sociale, adresse, ville, pays, ifu, rccm, email, telephone }
  }
  const org = await db.selectFrom('organisations').select('nom').where('id', '=', organisationId).executeTakeFirstOrThrow()
  return { nom: org.nom, adresse: '' }
}

/**
 * Issues the invoice of a confirmed payment inside the confirming transaction, and queues its
 * PDF there too: it exists, numbered, exactly when the payment is marked paid.
 */
export async function issueInvoice(
  app: FastifyInstance,
  trx: Transaction<DB>,
  payment: Paiement,
  period: { debut: Date; fin: Date; planNom: string; creditPlanNom: string | null },
  seller: SellerSettings,
): Promise<Facture> {
  const now = new Date()
  const tz = seller.timeZone
  const lignes: LigneFacture[] = [
    {
      libelle: `Abonnement ${period.planNom} (${payment.periodicite}) du ${dateFr(period.debut, tz)} au ${dateFr(period.fin, tz)}`,
      quantite: 1,
      prix_unitaire_ht: payment.montant_ht + payment.credit_prorata_ht,
      montant_ht: payment.montant_ht + payment.credit_prorata_ht,
    },
  ]
  if (payment.credit_prorata_ht > 0) {
    lignes.push({
      libelle: `Crédit au prorata : ${payment.credit_jours} jours restants de l’abonnement ${period.creditPlanNom ?? ''}`.trim(),
      quantite: 1,
      prix_unitaire_ht: -payment.credit_prorata_ht,
      montant_ht: -payment.credit_prorata_ht,
    })
  }
  const acheteur = await buyerOf(trx, payment.organisation_id)
  const annee = yearIn(now, tz)
  const { rang, numero } = await allocateNumber(trx, 'FAC', annee)
  const facture = await trx
    .insertInto('factures')
    .values({
      organisation_id: payment.organisation_id,
      type: 'facture',
      serie: 'FAC',
      annee,
      rang,
      numero,
      paiement_id: payment.id,
      facture_origine_id: null,
      motif: null,
      vendeur: JSON.stringify(sellerOf(seller)),
      acheteur: JSON.stringify(acheteur),
      lignes: JSON.stringify(lignes),
      montant_ht: payment.montant_ht,
      taux_tva: payment.taux_tva,
      montant_tva: payment.montant_tva,
      montant_ttc: payment.montant,
      devise: payment.devise,
      reference_paiement: payment.reference,
      periode_debut: period.debut,
      periode_fin: period.fin,
      emise_at: now,
    })
    .returningAll()
    .executeTakeFirstOrThrow()
  await app.jobs.sendInTransaction(trx, PDF_QUEUE, { facture_id: facture.id })
  return facture
}

/** A credit note cancelling `amount` TTC (the whole invoice by default) of an issued invoice. */
export async function issueCreditNote(
  app: FastifyInstance,
  trx: Transaction<DB>,
  origine: Facture,
  motif: string,
  seller: SellerSettings,
): Promise<Facture> {
  const already = await trx
    .selectFrom('factures')
    .select((eb) => eb.fn.coalesce(eb.fn.sum<number>('montant_ht'), eb.val(0)).as('total'))
    .where('facture_origine_id', '=', origine.id)
    .executeTakeFirstOrThrow()
  // Credit notes carry negative amounts.
  const left = origine.montant_ht + Number(already.total)
  if (left <= 0) throw new Error(`la facture ${origine.numero} est déjà entièrement couverte par des avoirs`)
  const rate = Number(origine.taux_tva)
  const { tva, ttc } = left === origine.montant_ht ? { tva: origine.montant_tva, ttc: origine.montant_ttc } : taxed(left, rate)
  const now = new Date()
  const annee = yearIn(now, seller.timeZone)
  const { rang, numero } = await allocateNumber(trx, 'AV', annee)
  const facture = await trx
    .insertInto('factures')
    .values({
      organisation_id: origine.organisation_id,
      type: 'avoir',
      serie: 'AV',
      annee,
      rang,
      numero,
      paiement_id: null,
      facture_origine_id: origine.id,
      motif,
      vendeur: JSON.stringify(origine.vendeur),
      acheteur: JSON.stringify(origine.acheteur),
      lignes: JSON.stringify([{ libelle: `Avoir sur la facture ${origine.numero} : ${motif}`, quantite: 1, prix_unitaire_ht: -left, montant_ht: -left }]),
      montant_ht: -left,
      taux_tva: origine.taux_tva,
      montant_tva: -tva,
      montant_ttc: -ttc,
      devise: origine.devise,
      reference_paiement: origine.reference_paiement,
      periode_debut: origine.periode_debut,
      periode_fin: origine.periode_fin,
      emise_at: now,
    })
    .returningAll()
    .executeTakeFirstOrThrow()
  await app.jobs.sendInTransaction(trx, PDF_QUEUE, { facture_id: facture.id })
  return facture
}

const keyAad = (factureId: string) => `armoire:facture:${factureId}`

// An invoice PDF's data key is wrapped by the master key like a document's: rotation re-wraps it.
registerWrappedColumn({
  kind: 'factures_pdf',
  table: 'factures_pdf',
  id: 'facture_id',
  organisation: 'organisation_id',
  wrapped: 'cle_enveloppee',
  version: 'version_cle_maitre',
  aad: keyAad,
  rewrappedAt: 'reenveloppee_at',
})

registerBlobColumn({ kind: 'factures_pdf', table: 'factures_pdf', column: 'blob' })

export function invoiceMail(facture: Facture, timeZone: string) {
  const avoir = facture.type === 'avoir'
  const what = avoir ? 'Avoir' : 'Facture'
  return renderMail({
    subject: `${what} ${facture.numero} — Armoire`,
    title: `${what} ${facture.numero}`,
    paragraphs: [
      'Bonjour,',
      avoir
        ? `Veuillez trouver ci-joint l’avoir ${facture.numero} du ${dateFr(facture.emise_at, timeZone)}, d’un montant de ${fcfa(facture.montant_ttc)} TTC.`
        : `Merci pour votre paiement. Veuillez trouver ci-joint la facture ${facture.numero} du ${dateFr(facture.emise_at, timeZone)}, d’un montant de ${fcfa(facture.montant_ttc)} TTC.`,
      'Vos factures restent disponibles à tout moment dans l’espace Abonnement d’Armoire.',
    ],
  })
}

/**
 * The PDF job: renders the invoice, stores it encrypted with its own data key (AES-256-GCM in
 * segments, the invoice id as associated data, the key wrapped by the master key), records its
 * SHA-256, and mails it to the organisation's admins. Running twice does nothing more.
 */
export async function renderInvoicePdf(app: FastifyInstance, factureId: string, timeZone: string): Promise<{ sha256: string } | null> {
  const { db } = app
  const facture = await db.selectFrom('factures').selectAll().where('id', '=', factureId).executeTakeFirst()
  if (!facture) return null
  const done = await db.selectFrom('factures_pdf').select('sha256').where('facture_id', '=', factureId).executeTakeFirst()
  if (done) return done
  const origine = facture.facture_origine_id
    ? (await db.selectFrom('factures').select('numero').where('id', '=', facture.facture_origine_id).executeTakeFirst())?.numero
    : null
  const pdf = await app.pdf.render(invoiceHtml(facture, { timeZone, origine }))
  const sha256 = createHash('sha256').update(pdf).digest('hex')
  const dataKey = randomDataKey()
  const writer = app.blobs.createWriter()
  let wrapped: Awaited<ReturnType<typeof app.keys.wrap>>
  try {
    await pipeline(Readable.from([pdf]), createEncryptStream({ key: dataKey, aad: facture.id }), writer.stream)
    wrapped = await app.keys.wrap(dataKey, keyAad(facture.id))
    await writer.commit()
  } catch (error) {
    await writer.abort()
    throw error
  } finally {
    dataKey.fill(0)
  }
  await app.unitOfWork(async (trx) => {
    const inserted = await trx
      .insertInto('factures_pdf')
      .values({
        facture_id: facture.id,
        organisation_id: facture.organisation_id,
        sha256,
        taille: pdf.length,
        blob: writer.name,
        cle_enveloppee: wrapped.wrapped,
        version_cle_maitre: wrapped.masterKeyVersion,
      })
      .onConflict((oc) => oc.column('facture_id').doNothing())
      .returning('facture_id')
      .executeTakeFirst()
    // Another run stored it first: this one's blob is surplus.
    if (!inserted) return app.blobs.deleteOnCommit(trx, writer.name)
    await mailAdmins(app, trx, facture.organisation_id, {
      kind: facture.type === 'avoir' ? 'avoir' : 'facture',
      attachments: [{ source: 'facture', id: facture.id }],
      ...invoiceMail(facture, timeZone),
    })
  }, app.blobs.writtenAhead(writer.name))
  return { sha256 }
}

/** The decrypted PDF of an invoice, or null while it is not rendered yet. */
export async function readInvoicePdf(app: FastifyInstance, factureId: string): Promise<{ pdf: Buffer; sha256: string; numero: string } | null> {
  const row = await app.db
    .selectFrom('factures_pdf')
    .innerJoin('factures', 'factures.id', 'factures_pdf.facture_id')
    .select(['factures_pdf.blob', 'factures_pdf.cle_enveloppee', 'factures_pdf.version_cle_maitre', 'factures_pdf.sha256', 'factures.numero'])
    .where('factures_pdf.facture_id', '=', factureId)
    .executeTakeFirst()
  if (!row) return null
  const dataKey = await app.keys.unwrap(row.cle_enveloppee, row.version_cle_maitre, keyAad(factureId))
  try {
    const source = await app.blobs.read(row.blob)
    const decrypt = createDecryptStream({ key: dataKey, aad: factureId })
    const [pdf] = await Promise.all([buffer(decrypt), pipeline(source, decrypt)])
    if (createHash('sha256').update(pdf).digest('hex') !== row.sha256) throw new Error(`invoice PDF ${factureId} differs from its SHA-256`)
    return { pdf, sha256: row.sha256, numero: row.numero }
  } finally {
    dataKey.fill(0)
  }
}

export function toFactureDto(f: Facture, pdfSha256: string | null): FactureDto {
  const partie = (p: Partie) => ({
    nom: p.nom,
    adresse: p.adresse,
    ville: p.ville ?? null,
    pays: p.pays ?? null,
    ifu: p.ifu ?? null,
    rccm: p.rccm ?? null,
    email: p.email ?? null,
    telephone: p.telephone ?? null,
  })
  return {
    id: f.id,
    type: f.type,
    numero: f.numero,
    facture_origine_id: f.facture_origine_id,
    motif: f.motif,
    vendeur: partie(f.vendeur),
    acheteur: partie(f.acheteur),
    lignes: f.lignes,
    montant_ht: f.montant_ht,
    taux_tva: Number(f.taux_tva),
    montant_tva: f.montant_tva,
    montant_ttc: f.montant_ttc,
    devise: 'XOF',
    reference_paiement: f.reference_paiement,
    periode_debut: f.periode_debut?.toISOString() ?? null,
    periode_fin: f.periode_fin?.toISOString() ?? null,
    emise_at: f.emise_at.toISOString(),
    pdf_disponible: pdfSha256 !== null,
    pdf_sha256: pdfSha256,
  }
}
