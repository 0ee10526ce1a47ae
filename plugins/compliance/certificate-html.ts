import type { CertificatDto } from '../../openapi/compliance.ts'

const escape = (text: string | number | null): string =>
  String(text ?? '—').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!)

const date = (iso: string) => iso.replace('T', ' ').slice(0, 19) + ' UTC'

/** The destruction certificate as a printable page, for the kernel's PDF service. */
export function certificateHtml(c: CertificatDto): string {
  const rows = c.versions
    .map((v) => `<tr><td>${v.version_number}</td><td>${escape(v.nom)}</td><td>${v.taille}</td><td class="h">${v.sha256}</td><td class="h">${v.cle_id}</td></tr>`)
    .join('')
  const history = c.journal.historique
    .map((e) => `<tr><td>${e.sequence}</td><td>${escape(e.action)}</td><td>${date(e.created_at)}</td><td class="h">${e.hash}</td></tr>`)
    .join('')
  const rule = c.regle ? `« ${escape(c.regle.nom)} » (${c.regle.duree} ${c.regle.unite}, départ : ${c.regle.evenement}, mode ${c.regle.mode})` : 'décision de revue'
  const who = c.decision.automatique ? 'destruction automatique à l’issue du préavis, sans opposition' : `approuvée par ${escape(c.decision.par)} — motif : ${escape(c.decision.motif)}`
  return `<!doctype html><html lang="fr"><head><meta charset="utf-8"><title>Certificat de destruction ${c.id}</title>
<style>@page{size:A4;margin:16mm}body{font:10pt sans-serif;color:#111}h1{font-size:16pt}table{border-collapse:collapse;width:100%;margin:6px 0 14px}
td,th{border:1px solid #999;padding:3px 5px;text-align:left;vertical-align:top}.h{font:7pt monospace;word-break:break-all}dt{font-weight:bold}</style></head>
<body><h1>Certificat de destruction</h1>
<dl><dt>Certificat</dt><dd class="h">${c.id}</dd><dt>Émis le</dt><dd>${date(c.emis_le)}</dd>
<dt>Fichier détruit</dt><dd>${escape(c.fichier.chemin)} (identifiant ${c.fichier.id}, ${c.fichier.taille_totale} octets au total)</dd>
<dt>Règle</dt><dd>${rule} ; terme : ${date(c.terme)}</dd><dt>Décision</dt><dd>${who}, le ${date(c.decision.le)}</dd></dl>
<h2>Versions détruites (crypto-effacement de leur clé)</h2><table><tr><th>N°</th><th>Nom</th><th>Octets</th><th>SHA-256</th><th>Clé détruite</th></tr>${rows}</table>
<h2>Preuve au journal</h2><p>Entrée de destruction n° ${c.journal.destruction.sequence}, hash <span class="h">${c.journal.destruction.hash}</span></p>
<table><tr><th>Séquence</th><th>Action</th><th>Date</th><th>Hash chaîné</th></tr>${history}</table>
<p>Empreinte du certificat (SHA-256 de sa forme JSON canonique) : <span class="h">${c.empreinte}</span></p></body></html>`
}
