import type { FastifyInstance } from 'fastify'
import { billingSettings, type BillingConfig } from './index.ts'
import { issueCreditNote, renderInvoicePdf } from './invoices.ts'

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/**
 * Issues a credit note on an invoice (by number or id) and renders its PDF before answering,
 * so that the operator's script ends with the note stored, journaled and mailed.
 */
export async function createCreditNote(app: FastifyInstance, config: BillingConfig, reference: string, motif: string) {
  const { seller } = billingSettings(config)
  const avoir = await app.db.transaction().execute(async (trx) => {
    const origine = await trx
      .selectFrom('factures')
      .selectAll()
      .where(UUID.test(reference) ? 'id' : 'numero', '=', reference)
      .where('type', '=', 'facture')
      // Two notes on one invoice at once would both see it uncovered.
      .forUpdate()
      .executeTakeFirst()
    if (!origine) throw new Error(`aucune facture ${reference}`)
    const note = await issueCreditNote(app, trx, origine, motif, seller)
    await app.audit.record(trx, {
      organisationId: origine.organisation_id,
      userId: null,
      action: 'CREDIT_NOTE_ISSUED',
      target: { type: 'facture', id: origine.id, nom: origine.numero },
      details: { avoir: note.numero, avoir_id: note.id, motif, montant_ttc: note.montant_ttc },
    })
    return note
  })
  const pdf = await renderInvoicePdf(app, avoir.id, seller.timeZone)
  return { ...avoir, sha256: pdf?.sha256 ?? null }
}
