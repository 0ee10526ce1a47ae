import type { GlobalDashboardDto, Metric, UserDashboardDto } from '../../openapi/stats.ts'
import { METRICS } from '../../openapi/stats.ts'

/** French spreadsheets split on `;` and read UTF-8 only after a byte-order mark. */
const SEPARATOR = ';'
const BOM = '\ufeff'

export const METRIC_LABELS: Record<Metric, string> = {
  depots: 'Dépôts',
  nouvelles_versions: 'Nouvelles versions',
  telechargements: 'Téléchargements',
  suppressions: 'Suppressions',
  restaurations: 'Restaurations',
  connexions: 'Connexions',
  connexions_echouees: 'Connexions échouées',
}

function cell(value: string | number): string {
  const text = String(value)
  // Neutralise spreadsheet formulas (CSV injection), quote what needs it.
  const safe = /^[=+\-@\t\r]/.test(text) ? `'${text}` : text
  return /[";\r\n]/.test(safe) || safe !== text ? `"${safe.replaceAll('"', '""')}"` : safe
}

function table(first: string, buckets: { debut: string }[], rows: [string, number[]][]): Buffer {
  const lines = [[first, ...buckets.map((b) => b.debut), 'Total'].map(cell).join(SEPARATOR)]
  for (const [label, values] of rows) lines.push([label, ...values, values.reduce((a, b) => a + b, 0)].map(cell).join(SEPARATOR))
  return Buffer.from(`${BOM}${lines.join('\r\n')}\r\n`, 'utf8')
}

/** The organisation's activity: one metric a row, one period bucket a column (its first day). */
export function globalCsv(dashboard: GlobalDashboardDto): Buffer {
  const { series } = dashboard.activite
  return table('Série', series, METRICS.map((m) => [METRIC_LABELS[m], series.map((s) => s[m])]))
}

/** A member's activity: one journal action a row. */
export function userCsv(dashboard: UserDashboardDto): Buffer {
  const { series } = dashboard
  return table('Action', series, dashboard.actions.map((a) => [a.action, series.map((s) => s.actions[a.action] ?? 0)]))
}
