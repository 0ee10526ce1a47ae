import { Type } from '@sinclair/typebox'
import { StringEnum } from './common.ts'
import { defineOperation } from './operation.ts'

const CheckSchema = Type.Object({
  status: StringEnum(['ok', 'fail']),
  duration_ms: Type.Number(),
  error: Type.Optional(Type.String()),
})

export const ReadinessSchema = Type.Object(
  {
    status: StringEnum(['ok', 'fail']),
    checks: Type.Object({ database: CheckSchema, storage: CheckSchema, migrations: CheckSchema }),
  },
  { description: 'État de chaque vérification' },
)

export const live = defineOperation({
  method: 'GET',
  url: '/health/live',
  operationId: 'healthLive',
  tags: ['sante'],
  summary: 'Le processus répond',
  description:
    'Sonde de vivacité : répond dès que le processus sert des requêtes, sans toucher la base. À donner à l’orchestrateur ' +
    '(liveness probe) pour redémarrer un processus bloqué ; jamais limitée en débit.',
  access: { public: true },
  schema: { response: { 200: Type.Object({ status: Type.Literal('ok') }, { description: 'Le processus est vivant' }) } },
  responses: { 200: { example: { status: 'ok' } } },
})

export const ready = defineOperation({
  method: 'GET',
  url: '/health/ready',
  operationId: 'healthReady',
  tags: ['sante'],
  summary: 'L’instance peut servir : base de données, stockage, migrations',
  description:
    'Sonde de disponibilité : vérifie la base de données, le stockage des fichiers et les migrations. À donner au ' +
    'répartiteur de charge (readiness probe) pour n’envoyer du trafic qu’aux instances prêtes ; répond 503 en nommant ' +
    'la vérification en échec.',
  access: { public: true },
  schema: {
    response: {
      200: ReadinessSchema,
      503: { description: 'Au moins une vérification a échoué', content: { 'application/json': { schema: ReadinessSchema } } },
    },
  },
  responses: {
    200: {
      example: {
        status: 'ok',
        checks: {
          database: { status: 'ok', duration_ms: 1.8 },
          storage: { status: 'ok', duration_ms: 0.4 },
          migrations: { status: 'ok', duration_ms: 2.1 },
        },
      },
    },
    503: {
      example: {
        status: 'fail',
        checks: {
          database: { status: 'fail', duration_ms: 2000, error: 'connect ECONNREFUSED 127.0.0.1:5432' },
          storage: { status: 'ok', duration_ms: 0.4 },
          migrations: { status: 'fail', duration_ms: 0, error: 'database unavailable' },
        },
      },
    },
  },
})

export const healthOperations = [live, ready]
