/**
 * `npm run billing:avoir -- <facture> <motif>`: the operator's correction of an issued invoice
 * (named by its number, FAC-2026-000001, or its id). An invoice never changes: this issues a
 * credit note for what it still bills, numbered in the gap-free AV series of the year,
 * journaled, rendered to PDF and mailed to the organisation's admins.
 */
import { buildApp } from '../src/app.ts'
import { loadConfig } from '../src/config.ts'
import { withDevDefaults } from '../src/dev-defaults.ts'
import { createCreditNote } from '../plugins/billing/credit-notes.ts'

const [facture, ...words] = process.argv.slice(2)
const motif = words.join(' ').trim()
if (!facture || !motif) {
  console.error('usage: npm run billing:avoir -- <numéro ou id de la facture> <motif>')
  process.exit(2)
}
const runtime = await withDevDefaults(loadConfig(), (line) => console.log(line))
const config = { ...runtime.config, LOG_LEVEL: 'warn' as const }
const app = await buildApp({ config })
let code = 0
try {
  await app.ready()
  const avoir = await createCreditNote(app, config, facture, motif)
  console.log(`avoir ${avoir.numero} émis sur ${facture} : ${avoir.montant_ttc} XOF TTC (PDF ${avoir.sha256})`)
} catch (error) {
  console.error(`refusé : ${(error as Error).message}`)
  code = 1
} finally {
  await app.close()
  await runtime.embedded?.stop()
}
process.exit(code)
