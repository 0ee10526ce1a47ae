import type { FastifyInstance } from 'fastify'
import type { Config } from '../../src/config.ts'
import { registerOperations } from '../../src/routes.ts'
import { createGuard } from './guard.ts'
import { holdBindings } from './holds.ts'
import { lockBindings } from './locks.ts'
import { ruleBindings } from './rules.ts'

/**
 * The compliance domain: locks, retention rules, legal holds. It fills the kernel's
 * safeguard, which documents (and backup, security) ask before anything destructive.
 */
export async function complianceDomain(app: FastifyInstance, _opts: { config: Config }) {
  app.safeguards.fill(createGuard(app))
  registerOperations(app, [...lockBindings(app), ...ruleBindings(app), ...holdBindings(app)])
}
