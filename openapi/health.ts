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

// Probes are polled by load balancers and orchestrators from a few addresses: they are never
// rate-limited, or a busy instance would be declared dead and restarted.

export const live = defineOperation({
  method: 'GET',
  url: '/health/live',
  operationId: 'healthLive',
  tags: ['sante'],
  summary: 'Le processus répond',
  access: { public: true },
  rateLimits: false,
  schema: { response: { 200: Type.Object({ status: Type.Literal('ok') }, { description: 'Le processus est vivant' }) } },
})

export const ready = defineOperation({
  method: 'GET',
  url: '/health/ready',
  operationId: 'healthReady',
  tags: ['sante'],
  summary: 'L’instance peut servir : base de données, stockage, migrations',
  description: 'Répond 503 en nommant la vérification en échec.',
  access: { public: true },
  rateLimits: false,
  schema: {
    response: {
      200: ReadinessSchema,
      503: { description: 'Au moins une vérification a échoué', content: { 'application/json': { schema: ReadinessSchema } } },
    },
  },
})

export const healthOperations = [live, ready]
