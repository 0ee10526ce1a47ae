import type { GlobalDashboardDto, UserDashboardDto } from '../../openapi/stats.ts'
import { METRICS } from '../../openapi/stats.ts'
import { METRIC_LABELS } from './csv.ts'

/** One-page PDF reports of the dashboards, rendered from HTML by the kernel's PDF service. */

const escape = (text: string) =>
  text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!)

const number = new Intl.NumberFormat('fr-FR')
const n = (value: number) => number.format(value)

export function bytes(value: number): string {
  const units = ['o', 'Ko', 'Mo', 'Go', 'To']
  let v = value
  let i = 0
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024
    i++
  }
  return `${new Intl.NumberFormat('fr-FR', { maximumFractionDigits: i === 0 ? 0 : 1 }).format(v)} ${units[i]}`
}

const dateFr = (day: string) => `${day.slice(8, 10)}/${day.slice(5, 7)}/${day.slice(0, 4)}`
const period = (p: { du: string; au: string; fuseau_horaire: string }) => `du ${dateFr(p.du)} au ${dateFr(p.au)} (${escape(p.fuseau_horaire)})`

const STYLE = `
  @page { size: A4; margin: 14mm 14mm 12mm; }
  body { font-family: 'DejaVu Sans', Arial, sans-serif; font-size: 9.5pt; color: #1d2733; margin: 0; }
  h1 { font-size: 16pt; margin: 0 0 2mm; color: #12355b; }
  h2 { font-size: 10.5pt; margin: 5mm 0 1.5mm; color: #12355b; border-bottom: 0.3mm solid #c9d3de; padding-bottom: 1mm; }
  .meta { color: #5b6b7c; margin-bottom: 3mm; }
  table { border-collapse: collapse; width: 100%; }
  td, th { padding: 1mm 1.5mm; text-align: left; border-bottom: 0.2mm solid #e3e8ee; }
  th { color: #5b6b7c; font-weight: normal; }
  td.v { text-align: right; font-variant-numeric: tabular-nums; }
  .cols { display: flex; gap: 6mm; }
  .cols > div { flex: 1; }
  .bar { fill: #2f6fb3; }
`

function page(title: string, subtitle: string, body: string): string {
  return `<!doctype html><html lang="fr"><head><meta charset="utf-8"><title>${escape(title)}</title><style>${STYLE}</style></head>
    <body><h1>${escape(title)}</h1><div class="meta">${subtitle}</div>${body}</body></html>`
}

const rows = (pairs: [string, string][]) => `<table>${pairs.map(([k, v]) => `<tr><th>${k}</th><td class="v">${v}</td></tr>`).join('')}</table>`

/** A bar per bucket of one series, as inline SVG (nothing is fetched, nothing runs). */
function bars(values: number[], labels: string[]): string {
  const width = 180
  const height = 28
  const max = Math.max(1, ...values)
  const w = width / Math.max(1, values.length)
  const rects = values
    .map((v, i) => {
      const h = (v / max) * (height - 2)
      return `<rect class="bar" x="${(i * w + w * 0.1).toFixed(2)}" y="${(height - h).toFixed(2)}" width="${(w * 0.8).toFixed(2)}" height="${h.toFixed(2)}"><title>${escape(labels[i] ?? '')} : ${v}</title></rect>`
    })
    .join('')
  return `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${width} ${height}" width="100%" height="26mm" preserveAspectRatio="none">${rects}</svg>`
}

const growth = (value: number | null) => (value === null ? '—' : `${value > 0 ? '+' : ''}${new Intl.NumberFormat('fr-FR').format(value)} %`)

export function globalReport(d: GlobalDashboardDto, organisation: string): string {
  const a = d.activite
  const activity = `<table><tr><th></th><th>Période</th><th>Précédente</th><th>Évolution</th></tr>${METRICS.map(
    (m) => `<tr><th>${METRIC_LABELS[m]}</th><td class="v">${n(a.totaux[m])}</td><td class="v">${n(a.periode_precedente[m])}</td><td class="v">${growth(a.croissance[m])}</td></tr>`,
  ).join('')}</table>`
  const s = d.stockage
  const body = `
    <div class="cols">
      <div><h2>Contenu</h2>${rows([
        ['Armoires', n(d.comptes.armoires)],
        ['Casiers', n(d.comptes.casiers)],
        ['Dossiers', n(d.comptes.dossiers)],
        ['Fichiers', n(d.comptes.fichiers)],
        ['Versions', n(d.comptes.versions)],
        ['Éléments dans la corbeille', n(d.comptes.elements_corbeille)],
      ])}</div>
      <div><h2>Stockage</h2>${rows([
        ['Versions courantes', bytes(s.versions_courantes)],
        ['Versions antérieures', bytes(s.versions_anciennes)],
        ['Corbeille', bytes(s.corbeille)],
        ...(d.sauvegardes ? ([['Sauvegardes', bytes(d.sauvegardes.octets)]] as [string, string][]) : []),
        ['Total', bytes(s.total)],
        ['Quota', s.quota === null ? 'illimité' : `${bytes(s.quota)} (${growth(s.pourcentage_quota).replace('+', '')} utilisés)`],
      ])}</div>
      <div><h2>Membres</h2>${rows([
        ['Total', n(d.membres.total)],
        ['Administrateurs', n(d.membres.par_role.admin)],
        ['Contributeurs', n(d.membres.par_role.contributeur)],
        ['Lecteurs', n(d.membres.par_role.lecteur)],
        ['Actifs (30 jours)', n(d.membres.par_statut.actifs_30_jours)],
        ['Invités', n(d.membres.par_statut.invites)],
        ['Désactivés', n(d.membres.par_statut.desactives)],
      ])}</div>
    </div>
    <h2>Activité ${period(d.periode)}</h2>
    <div class="cols"><div>${activity}</div><div>
      <div class="meta">Dépôts par ${d.periode.granularite}</div>${bars(a.series.map((p) => p.depots), a.series.map((p) => p.debut))}
      <div class="meta">Connexions par ${d.periode.granularite}</div>${bars(a.series.map((p) => p.connexions), a.series.map((p) => p.debut))}
    </div></div>
    <div class="cols">
      <div><h2>Membres les plus actifs</h2>${rows(a.membres_les_plus_actifs.map((m) => [escape(m.nom ?? m.id), n(m.actions)]))}</div>
      <div><h2>Plus grandes armoires</h2>${rows(s.plus_grandes_armoires.map((x) => [escape(x.nom), bytes(x.octets)]))}</div>
      <div><h2>Sécurité</h2>${rows([
        ['Double authentification', d.securite.part_2fa === null ? '—' : `${n(d.securite.part_2fa)} %`],
        ['Connexions échouées (7 j)', n(d.securite.connexions_echouees_7_jours)],
        ['Comptes bloqués (7 j)', n(d.securite.comptes_bloques_7_jours)],
        ['Sessions actives', n(d.securite.sessions_actives)],
        [
          'Vérification du journal',
          d.securite.derniere_verification_journal
            ? `${d.securite.derniere_verification_journal.intact ? 'intact' : 'ROMPU'}, ${dateFr(d.securite.derniere_verification_journal.verifie_le.slice(0, 10))}`
            : 'jamais',
        ],
      ])}</div>
      ${
        d.conformite
          ? `<div><h2>Conformité</h2>${rows([
              ['Sous conservation', n(d.conformite.objets_sous_conservation)],
              ['Sous gel juridique', n(d.conformite.objets_sous_gel)],
              ['En revue', n(d.conformite.eliminations_en_revue)],
              ['À détruire', n(d.conformite.destructions_planifiees)],
            ])}</div>`
          : ''
      }
    </div>`
  return page(`Tableau de bord — ${organisation}`, `Généré le ${escape(d.genere_le.replace('T', ' ').slice(0, 16))} UTC`, body)
}

export function userReport(d: UserDashboardDto): string {
  const body = `
    <div class="cols">
      <div><h2>Membre</h2>${rows([
        ['Rôle', escape(d.membre.role)],
        ['Compte', d.membre.actif ? 'actif' : 'désactivé'],
        ['Double authentification', d.double_authentification ? 'active' : 'inactive'],
        ['Dernière connexion', d.derniere_connexion ? escape(d.derniere_connexion.replace('T', ' ').slice(0, 16)) : 'jamais'],
        ['Sessions actives', n(d.sessions_actives)],
      ])}</div>
      <div><h2>Dépôts et stockage</h2>${rows([
        ['Nouveaux fichiers', n(d.depots.fichiers)],
        ['Nouvelles versions', n(d.depots.versions)],
        ['Octets déposés', bytes(d.depots.octets)],
        ['Stockage occupé', bytes(d.stockage_contribue.octets)],
      ])}</div>
    </div>
    <h2>Actions ${period(d.periode)}</h2>
    ${bars(d.series.map((p) => Object.values(p.actions).reduce((x, y) => x + y, 0)), d.series.map((p) => p.debut))}
    ${rows(d.actions.slice(0, 18).map((x) => [escape(x.action), n(x.nombre)]))}`
  return page(`Activité de ${d.membre.nom}`, `${escape(d.membre.email)} — généré le ${escape(d.genere_le.replace('T', ' ').slice(0, 16))} UTC`, body)
}
