import { createHash, randomBytes } from 'node:crypto'
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { sql } from 'kysely'
import t from 'tap'
import { createCreditNote } from '../../plugins/billing/credit-notes.ts'
import { rotateMasterKeys } from '../../scripts/keys-rotate.ts'
import { createLocalKeySource } from '../../src/crypto/keys.ts'
import { signUp } from '../helpers/auth.ts'
import { loadConfig } from '../../src/config.ts'
import { build, testDatabase, testStorage } from '../helpers/build.ts'
import { feexpayEnv } from '../helpers/feexpay.ts'
import { pdfText } from '../helpers/pdf.ts'
import { smtpSink } from '../helpers/smtp-sink.ts'
import { as, billingApp, choose, pay, until, webhook } from './helpers.ts'

const SELLER = {
  BILLING_SELLER_NAME: 'Armoire Bénin SAS',
  BILLING_SELLER_ADDRESS: 'Lot 12, Haie Vive, Cotonou',
  BILLING_SELLER_IFU: '0202212345678',
  BILLING_SELLER_RCCM: 'RB/COT/22 B 12345',
}

t.test('an invoice: French PDF, encrypted at rest, mailed to the admins, immutable; a credit note corrects it', async (t) => {
  const sink = await smtpSink(t)
  const storage = await testStorage(t)
  const { app, fake } = await billingApp(t, { SMTP_URL: sink.url, FEEXPAY_POLL_SECONDS: '3600', STORAGE_DIR: storage, ...SELLER })
  const admin = await signUp(app, { organisation: 'Cabinet Adjovi' })
  await app.inject({
    method: 'PUT',
    url: '/organisation/facturation',
    headers: as(admin),
    payload: { raison_sociale: 'Cabinet Adjovi SARL', adresse: '12 rue des Cocotiers', ville: 'Cotonou', pays: 'Bénin', ifu: '3201900000001' },
  })
  await choose(app, admin, 'professionnel', 'annuelle')
  const payment = (await pay(app, admin)).json()
  t.equal(payment.montant, 295_000, '250 000 HT + 18 % TVA')
  fake.settle(payment.reference, 'SUCCESSFUL')
  t.equal((await webhook(app, fake.webhookBody(payment.reference))).statusCode, 200)
  const { facture_id: id } = (await app.inject({ method: 'GET', url: `/paiements/${payment.id}`, headers: as(admin) })).json()

  const facture = await until('the PDF', async () => {
    const f = (await app.inject({ method: 'GET', url: `/factures/${id}`, headers: as(admin) })).json()
    return f.pdf_disponible && f
  })
  const res = await app.inject({ method: 'GET', url: `/factures/${id}/pdf`, headers: as(admin) })
  t.equal(res.statusCode, 200)
  t.equal(res.headers['content-type'], 'application/pdf')
  const pdf = res.rawPayload
  const sha = createHash('sha256').update(pdf).digest('hex')
  t.equal(res.headers['x-content-sha256'], sha)
  t.equal(facture.pdf_sha256, sha)
  t.equal(res.headers['content-disposition'], `attachment; filename=${facture.numero}.pdf`)

  const text = (await pdfText(pdf)).replace(/\u00a0/g, ' ')
  t.match(text, new RegExp(`Facture ${facture.numero}`))
  t.match(text, /Armoire Bénin SAS/)
  t.match(text, /IFU : 0202212345678/)
  t.match(text, /RCCM : RB\/COT\/22 B 12345/)
  t.match(text, /Cabinet Adjovi SARL/)
  t.match(text, /12 rue des Cocotiers/)
  t.match(text, /IFU : 3201900000001/)
  t.match(text, /Total HT\s+250 000 FCFA/)
  t.match(text, /TVA \(18 %\)\s+45 000 FCFA/)
  t.match(text, /Total TTC\s+295 000 FCFA/)
  t.match(text, /Abonnement Professionnel/)
  t.match(text, /Période : du \d{1,2} (janvier|février|mars|avril|mai|juin|juillet|août|septembre|octobre|novembre|décembre) \d{4}/)
  t.match(text, new RegExp(`Référence du paiement : ${payment.reference}`))

  t.test('stored encrypted: no blob holds the PDF in clear', async (t) => {
    const row = await app.db.selectFrom('factures_pdf').selectAll().where('facture_id', '=', id).executeTakeFirstOrThrow()
    const blob = await findFile(join(storage, 'blobs'), row.blob)
    t.ok(blob, 'the blob exists')
    const bytes = await readFile(blob as string)
    t.notOk(bytes.includes(Buffer.from('%PDF-')), 'no PDF header in the blob')
    t.notOk(bytes.includes(Buffer.from(facture.numero)), 'no invoice number in the blob')
  })

  t.test('mailed to the admins, PDF attached', async (t) => {
    const mail = await sink.waitFor((m) => m.to.includes(admin.email) && /Facture/.test(m.parsed.subject ?? ''))
    t.match(mail.parsed.subject, facture.numero)
    const [attachment] = mail.parsed.attachments
    t.equal(attachment?.filename, `${facture.numero}.pdf`)
    t.equal(attachment?.contentType, 'application/pdf')
    t.equal(createHash('sha256').update(attachment?.content ?? Buffer.alloc(0)).digest('hex'), sha)
  })

  t.test('an issued invoice refuses updates and deletes', async (t) => {
    await t.rejects(app.db.updateTable('factures').set({ montant_ht: 1 }).where('id', '=', id).execute(), /ne peut être ni modifiée ni supprimée/)
    await t.rejects(app.db.deleteFrom('factures').where('id', '=', id).execute(), /ne peut être ni modifiée ni supprimée/)
  })

  t.test('a rolled-back numbering leaves no hole', async (t) => {
    const before = await app.db.selectFrom('compteurs_factures').select('dernier').where('serie', '=', 'FAC').executeTakeFirstOrThrow()
    await t.rejects(
      app.db.transaction().execute(async (trx) => {
        await sql`update compteurs_factures set dernier = dernier + 1 where serie = 'FAC'`.execute(trx)
        throw new Error('rollback')
      }),
    )
    const after = await app.db.selectFrom('compteurs_factures').select('dernier').where('serie', '=', 'FAC').executeTakeFirstOrThrow()
    t.equal(after.dernier, before.dernier)
  })

  t.test('npm run billing:avoir issues a numbered credit note, journaled, rendered, listed', async (t) => {
    const config = loadConfig({ ...feexpayEnv(fake), ...SELLER })
    const avoir = await createCreditNote(app, config, facture.numero, 'Erreur de raison sociale')
    t.match(avoir, { type: 'avoir', numero: new RegExp(`^AV-${new Date().getUTCFullYear()}-\\d{6}$`), montant_ttc: -295_000, montant_ht: -250_000, facture_origine_id: id })
    const listed = (await app.inject({ method: 'GET', url: '/factures', headers: as(admin) })).json()
    t.same(listed.items.map((f: { numero: string }) => f.numero), [avoir.numero, facture.numero])
    const doc = (await app.inject({ method: 'GET', url: `/factures/${avoir.id}/pdf`, headers: as(admin) })).rawPayload
    const text = (await pdfText(doc)).replace(/\u00a0/g, ' ')
    t.match(text, new RegExp(`Avoir ${avoir.numero}`))
    t.match(text, new RegExp(`Avoir sur la facture ${facture.numero}`))
    t.match(text, /Motif : Erreur de raison sociale/)
    t.match(text, /Total TTC\s+-295 000 FCFA/)
    const journal = await app.db.selectFrom('journal_activite').selectAll().where('action', '=', 'CREDIT_NOTE_ISSUED').execute()
    t.match(journal, [{ severite: 'HIGH', cible_nom: facture.numero }])
    await t.rejects(createCreditNote(app, config, facture.numero, 'encore'), /déjà entièrement couverte/)
  })
})

async function findFile(dir: string, name: string): Promise<string | null> {
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile() && entry.name === name) return join(entry.parentPath, entry.name)
  }
  return null
}

t.test('master-key rotation re-wraps an invoice PDF’s key: it opens under the new key alone', async (t) => {
  const [one, two] = [randomBytes(32), randomBytes(32)]
  const env = { STORAGE_DIR: await testStorage(t), DATABASE_URL: await testDatabase(t), FEEXPAY_POLL_SECONDS: '3600' }
  const { app, fake } = await billingApp(t, { ...env, MASTER_KEYS: `1:${one.toString('base64')}` })
  const admin = await signUp(app)
  await choose(app, admin, 'essentiel')
  const payment = (await pay(app, admin)).json()
  fake.settle(payment.reference, 'SUCCESSFUL')
  await webhook(app, fake.webhookBody(payment.reference))
  const { facture_id: id } = (await app.inject({ method: 'GET', url: `/paiements/${payment.id}`, headers: as(admin) })).json()
  await until('the PDF', async () => (await app.inject({ method: 'GET', url: `/factures/${id}`, headers: as(admin) })).json().pdf_disponible)
  const before = await app.inject({ method: 'GET', url: `/factures/${id}/pdf`, headers: as(admin) })
  t.equal(before.statusCode, 200)

  const rotation = await rotateMasterKeys(app.db, createLocalKeySource(new Map([[1, one], [2, two]])), { log: () => {} })
  t.match(rotation.kinds.find((k) => k.kind === 'factures_pdf'), { rewrapped: 1, unreadable: 0 })
  const after = await build(t, { ...env, MASTER_KEYS: `2:${two.toString('base64')}` })
  const res = await after.inject({ method: 'GET', url: `/factures/${id}/pdf`, headers: as(admin) })
  t.equal(res.statusCode, 200, 'the PDF opens with only the new master key')
  t.same(res.rawPayload, before.rawPayload)
})
