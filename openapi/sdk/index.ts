import createClient, { type ClientOptions } from 'openapi-fetch'
import type { paths } from './schema.ts'

export type { components, operations, paths } from './schema.ts'

/** A typed client of the Armoire API, as the front end uses it. */
export function createArmoireClient(options: ClientOptions) {
  return createClient<paths>(options)
}
