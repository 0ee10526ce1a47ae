/**
 * `npm run bench:invoices`: renders 200 invoices (the billing domain's French template)
 * through the kernel PDF service, one Chromium and its tab pool, as the invoice job does.
 * Prints PDFs per second (target ≥ 5) and the browser's memory — its whole process tree,
 * renderers included — after a warm-up and at the end (target: no growth beyond 100 MB).
 */
import { readdirSync, readFileSync } from 'node:fs'
import { cpus, loadavg } from 'node:os'
import { pino } from 'pino'
import type { Facture } from '../../db/tables/billing.ts'
import { invoiceHtml } from '../../plugins/billing/template.ts'
import { loadConfig } from '../../src/config.ts'
import { createPdfService } from '../../src/pdf.ts'

const COUNT = Number(process.env.BENCH_INVOICES ?? 200)
const config = loadConfig()

/** Resident memory of a process and all its descendants, in bytes (Linux /proc). */
function treeRss(root: number): number {
  const children = new Map<number, number[]>()
  const rss = new Map<number, number>()
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8')
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      const pid = Number(name)
      const ppid = Number(fields[1])
      rss.set(pid, Number(fields[21]) * 4096)
      children.set(ppid, [...(children.get(ppid) ?? []), pid])
    } catch {
      // gone meanwhile
    }
  }
  let total = 0
  const stack = [root]
  while (stack.length > 0) {
    const pid = stack.pop() as number
    total += rss.get(pid) ?? 0
    stack.push(...(children.get(pid) ?? []))
  }
  return total
}

function invoice(i: number): Facture {
  const debut = new Date(Date.UTC(2026, 11, 2))
  const ht = 10_000 + (i % 7) * 5_000
  const tva = Math.round(ht * 0.18)
  return {
    id: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
    organisation_id: '00000000-0000-4000-8000-000000000000',
    type: 'facture',
    serie: 'FAC',
    annee: 2026,
    rang: i + 1,
    numero: `FAC-2026-${String(i + 1).padStart(6, '0')}`,
    paiement_id: null,
    facture_origine_id: null,
    motif: null,
    vendeur: { nom: 'Armoire Bénin SAS', adresse: 'Lot 12, Haie Vive, Cotonou', ifu: '0202212345678', rccm: 'RB/COT/22 B 12345' },
    acheteur: { nom: `Cabinet n° ${i} SARL`, adresse: `${i} rue des Cocotiers`, ville: 'Cotonou', pays: 'Bénin', ifu: '3201900000001' },
    lignes: [
      { libelle: 'Abonnement Essentiel (mensuelle) du 2 décembre 2026 au 2 janvier 2027', quantite: 1, prix_unitaire_ht: ht + 2_000, montant_ht: ht + 2_000 },
      { libelle: 'Crédit au prorata : 6 jours restants de l’abonnement Essai', quantite: 1, prix_unitaire_ht: -2_000, montant_ht: -2_000 },
    ],
    montant_ht: ht,
    taux_tva: '18',
    montant_tva: tva,
    montant_ttc: ht + tva,
    devise: 'XOF',
    reference_paiement: `FP-${String(i).padStart(16, '0')}`,
    periode_debut: debut,
    periode_fin: new Date(Date.UTC(2027, 0, 2)),
    emise_at: debut,
  }
}

const service = createPdfService(
  { chromiumPath: config.CHROMIUM_PATH, pages: config.PDF_PAGES, timeoutMs: 60_000 },
  pino({ level: 'warn' }),
)
const mb = (bytes: number) => `${(bytes / 1024 ** 2).toFixed(1)} MB`
try {
  // Warm-up: the browser starts and every tab of the pool has rendered once.
  await Promise.all(Array.from({ length: config.PDF_PAGES }, (_, i) => service.render(invoiceHtml(invoice(i), { timeZone: config.BILLING_TIMEZONE }))))
  const pid = service.browserPid()
  if (pid === null) throw new Error('no browser')
  const rssStart = treeRss(pid)
  const started = performance.now()
  let next = 0
  let bytes = 0
  await Promise.all(
    Array.from({ length: config.PDF_PAGES }, async () => {
      while (next < COUNT) {
        const i = next++
        bytes += (await service.render(invoiceHtml(invoice(i), { timeZone: config.BILLING_TIMEZONE }))).length
      }
    }),
  )
  const seconds = (performance.now() - started) / 1000
  const rssEnd = treeRss(pid)
  const rate = COUNT / seconds
  const growth = rssEnd - rssStart
  console.log(`bench:invoices — ${COUNT} invoices, one Chromium (pid ${pid}), ${config.PDF_PAGES} tabs; ${cpus().length} cores, load ${loadavg()[0]?.toFixed(1)}`)
  console.log(`  rendered in ${seconds.toFixed(2)} s: ${rate.toFixed(2)} PDFs/s (target ≥ 5: ${rate >= 5 ? 'met' : 'NOT met'}), ${(bytes / COUNT / 1024).toFixed(1)} KiB per PDF`)
  console.log(`  browser RSS (process tree): start ${mb(rssStart)}, end ${mb(rssEnd)}, growth ${mb(growth)} (target ≤ 100 MB: ${growth <= 100 * 1024 ** 2 ? 'met' : 'NOT met'})`)
  console.log(`  same browser throughout: ${service.browserPid() === pid ? 'yes' : 'no'}`)
} finally {
  await service.close()
}
