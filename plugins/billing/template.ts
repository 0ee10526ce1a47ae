import type { Facture, Partie } from '../../db/tables/billing.ts'
import { escapeHtml } from '../../src/mail-templates.ts'

const NBSP = '\u00a0'

/** `12 000 FCFA`: whole francs, groups of three separated by a (non-breaking) space. */
export function fcfa(amount: number): string {
  const sign = amount < 0 ? '-' : ''
  const digits = String(Math.abs(Math.trunc(amount))).replace(/\B(?=(\d{3})+(?!\d))/g, NBSP)
  return `${sign}${digits}${NBSP}FCFA`
}

/** `2 décembre 2026`, in the billing time zone. */
export function dateFr(date: Date, timeZone: string): string {
  return new Intl.DateTimeFormat('fr-FR', { day: 'numeric', month: 'long', year: 'numeric', timeZone }).format(date)
}

export function tauxFr(rate: string | number): string {
  return `${String(Number(rate)).replace('.', ',')}${NBSP}%`
}

function partie(title: string, p: Partie): string {
  const lines = [
    `<strong>${escapeHtml(p.nom)}</strong>`,
    ...[p.adresse, [p.ville, p.pays].filter(Boolean).join(', ')].filter(Boolean).map((l) => escapeHtml(String(l))),
    ...(p.ifu ? [`IFU${NBSP}: ${escapeHtml(p.ifu)}`] : []),
    ...(p.rccm ? [`RCCM${NBSP}: ${escapeHtml(p.rccm)}`] : []),
    ...(p.email ? [escapeHtml(p.email)] : []),
    ...(p.telephone ? [`Tél.${NBSP}: ${escapeHtml(p.telephone)}`] : []),
  ]
  return `<div class="partie"><h2>${title}</h2><p>${lines.join('<br>')}</p></div>`
}

/**
 * The invoice (or credit note) as a self-contained French HTML page for the PDF service: no
 * script, no external asset. Every value from the database is escaped.
 */
export function invoiceHtml(facture: Facture, opts: { timeZone: string; origine?: string | null }): string {
  const tz = opts.timeZone
  const avoir = facture.type === 'avoir'
  const title = avoir ? 'Avoir' : 'Facture'
  const rows = facture.lignes
    .map(
      (l) =>
        `<tr><td>${escapeHtml(l.libelle)}</td><td class="n">${l.quantite}</td><td class="n">${fcfa(l.prix_unitaire_ht)}</td><td class="n">${fcfa(l.montant_ht)}</td></tr>`,
    )
    .join('')
  const periode =
    facture.periode_debut && facture.periode_fin
      ? `<p>Période${NBSP}: du ${dateFr(facture.periode_debut, tz)} au ${dateFr(facture.periode_fin, tz)}</p>`
      : ''
  const meta = [
    `<p>Date d’émission${NBSP}: ${dateFr(facture.emise_at, tz)}</p>`,
    periode,
    facture.reference_paiement ? `<p>Référence du paiement${NBSP}: ${escapeHtml(facture.reference_paiement)}</p>` : '',
    avoir && opts.origine ? `<p>Avoir sur la facture ${escapeHtml(opts.origine)}</p>` : '',
    avoir && facture.motif ? `<p>Motif${NBSP}: ${escapeHtml(facture.motif)}</p>` : '',
  ].join('')
  return `<!doctype html>
<html lang="fr"><head><meta charset="utf-8"><title>${title} ${escapeHtml(facture.numero)}</title>
<style>
@page { size: A4; margin: 18mm 16mm; }
body { font-family: "DejaVu Sans", "Liberation Sans", Arial, sans-serif; font-size: 10.5pt; color: #1f2933; }
h1 { font-size: 20pt; margin: 0 0 4mm; color: #102a43; }
h2 { font-size: 9pt; text-transform: uppercase; letter-spacing: 1px; color: #52606d; margin: 0 0 2mm; }
.parties { display: flex; justify-content: space-between; gap: 10mm; margin: 8mm 0; }
.partie { width: 48%; }
table { width: 100%; border-collapse: collapse; margin-top: 6mm; }
th, td { padding: 2.5mm 2mm; border-bottom: 1px solid #d9e2ec; text-align: left; vertical-align: top; }
th { background: #f0f4f8; font-size: 9pt; }
.n { text-align: right; white-space: nowrap; }
.totaux { margin-left: auto; width: 45%; margin-top: 6mm; }
.totaux td { border: none; padding: 1.5mm 2mm; }
.totaux .ttc td { font-weight: bold; font-size: 12pt; border-top: 2px solid #102a43; }
footer { margin-top: 12mm; font-size: 8.5pt; color: #7b8794; }
</style></head>
<body>
<h1>${title} ${escapeHtml(facture.numero)}</h1>
${meta}
<div class="parties">${partie('Vendeur', facture.vendeur)}${partie('Client', facture.acheteur)}</div>
<table><thead><tr><th>Désignation</th><th class="n">Qté</th><th class="n">Prix unitaire HT</th><th class="n">Montant HT</th></tr></thead>
<tbody>${rows}</tbody></table>
<table class="totaux"><tbody>
<tr><td>Total HT</td><td class="n">${fcfa(facture.montant_ht)}</td></tr>
<tr><td>TVA (${tauxFr(facture.taux_tva)})</td><td class="n">${fcfa(facture.montant_tva)}</td></tr>
<tr class="ttc"><td>Total TTC</td><td class="n">${fcfa(facture.montant_ttc)}</td></tr>
</tbody></table>
<footer>Montants en francs CFA (XOF). ${avoir ? 'Cet avoir annule tout ou partie de la facture d’origine.' : 'Facture acquittée par paiement FeexPay.'}</footer>
</body></html>`
}
