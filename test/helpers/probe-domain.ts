import { Type } from '@sinclair/typebox'
import type { FastifyInstance } from 'fastify'
import { contract } from '../../openapi/index.ts'
import { ADMINS, ALL_ROLES, defineOperation } from '../../openapi/operation.ts'
import { handle, registerOperations } from '../../src/routes.ts'

/** Operations that exist only in tests, to prove the kernel without a real domain. */
export const probeAdminOnly = defineOperation({
  method: 'GET',
  url: '/probe/admin',
  operationId: 'probeAdminOnly',
  tags: ['sante'],
  summary: 'admin only',
  access: { roles: ADMINS },
  schema: { response: { 200: Type.Object({ user: Type.String(), role: Type.String() }) } },
})

export const probeEcho = defineOperation({
  method: 'POST',
  url: '/probe/echo/:id',
  operationId: 'probeEcho',
  tags: ['sante'],
  summary: 'validates its input',
  access: { roles: ALL_ROLES },
  schema: {
    params: Type.Object({ id: Type.String({ format: 'uuid' }) }),
    body: Type.Object(
      { email: Type.String({ format: 'email' }), age: Type.Integer({ minimum: 0 }), nom: Type.String({ minLength: 1 }) },
      { additionalProperties: false },
    ),
    response: { 200: Type.Object({ id: Type.String(), email: Type.String() }) },
  },
})

export const probeCrash = defineOperation({
  method: 'GET',
  url: '/probe/crash',
  operationId: 'probeCrash',
  tags: ['sante'],
  summary: 'fails inside',
  access: { public: true },
  schema: { response: { 200: Type.Object({}) } },
})

export const probeSlow = defineOperation({
  method: 'GET',
  url: '/probe/slow',
  operationId: 'probeSlow',
  tags: ['sante'],
  summary: 'takes its time',
  access: { public: true },
  schema: { querystring: Type.Object({ ms: Type.Integer({ maximum: 5000 }) }), response: { 200: Type.Object({ waited: Type.Integer() }) } },
})

export const probeOperations = [probeAdminOnly, probeEcho, probeCrash, probeSlow]
export const probeContract = [...contract, ...probeOperations]

export async function probeDomain(app: FastifyInstance) {
  registerOperations(app, [
    handle(probeAdminOnly, async (request) => ({ user: request.principal?.userId ?? '', role: request.principal?.role ?? '' })),
    handle(probeEcho, async (request) => ({ id: request.params.id, email: request.body.email })),
    handle(probeCrash, async () => {
      throw new Error('secret database password in a stack trace')
    }),
    handle(probeSlow, async (request) => {
      await new Promise((r) => setTimeout(r, request.query.ms))
      return { waited: request.query.ms }
    }),
  ])
}

/** Builds options for `build(t, env, options)` that add the probe domain to the app. */
export const withProbes = { contract: probeContract, extraPlugins: [probeDomain] }
