import { healthOperations } from './health.ts'
import type { Operation } from './operation.ts'

/** The tags of the document, one per domain, in display order. */
export const tags = [
  { name: 'sante', description: 'Santé de l’instance : vivacité et disponibilité.' },
]

/** The whole contract: every operation the API serves, and nothing else. */
export const contract: readonly Operation[] = [...healthOperations]
