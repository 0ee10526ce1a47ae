import { Type } from '@sinclair/typebox'
import { defineOperation } from './operation.ts'

const EXEMPLE = `# HELP armoire_http_errors_total Réponses problem+json, par code du catalogue et statut
# TYPE armoire_http_errors_total counter
armoire_http_errors_total{code="NOT_FOUND",status="404"} 3
`

// Scraped by Prometheus every few seconds from one or two addresses: never rate-limited. The
// token (32 characters at least) is what keeps it closed. Public as far as members' roles go:
// the operator's token is checked by its handler (src/metrics.ts), not by the members' guard.

export const metrics = defineOperation({
  method: 'GET',
  url: '/metrics',
  operationId: 'getMetrics',
  tags: ['supervision'],
  summary: 'Métriques Prometheus de l’instance',
  description:
    'Métriques de cette instance au format d’exposition Prometheus 0.0.4 : durées des requêtes par opération, erreurs ' +
    'par code, files de tâches, sauvegardes et restaurations, paiements par statut, latence du stockage, et celles du ' +
    'processus. Fermée tant que `METRICS_TOKEN` n’est pas configuré (404, comme une adresse inconnue) ; ensuite ' +
    'l’appelant présente ce jeton (`Authorization: Bearer <METRICS_TOKEN>`), sinon 401 `METRICS_UNAUTHORIZED`. ' +
    'À interroger sur chaque instance, pas à travers le répartiteur de charge.',
  access: { public: true },
  rateLimits: false,
  problems: ['METRICS_UNAUTHORIZED', 'ROUTE_NOT_FOUND'],
  schema: {
    response: {
      200: {
        description: 'Les métriques, au format texte de Prometheus',
        content: { 'text/plain; version=0.0.4': { schema: Type.String(), example: EXEMPLE } },
      },
    },
  },
})

export const metricsOperations = [metrics]
