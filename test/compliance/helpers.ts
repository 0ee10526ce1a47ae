/** What the compliance tests share: JSON calls as a member, and the journal's refusals. */
import type { FastifyInstance } from 'fastify'
import type { Member } from '../helpers/auth.ts'

export function caller(app: FastifyInstance, member: Member) {
  const call = (method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, payload?: unknown) =>
    app.inject({ method, url, headers: member.headers, ...(payload === undefined ? {} : { payload: payload as object }) })
  return {
    get: (url: string) => call('GET', url),
    post: (url: string, payload: unknown = {}) => call('POST', url, payload),
    patch: (url: string, payload: unknown) => call('PATCH', url, payload),
    delete: (url: string, payload?: unknown) => call('DELETE', url, payload),
  }
}

/** A retention rule on `type`/`id` whose term is long past (one day from 2001-01-01): its files are due at once. */
export const pastRule = (type: string, id: string, over: Record<string, unknown> = {}) => ({
  nom: 'Échue',
  cible: { type, id },
  duree: 1,
  unite: 'jours',
  evenement: 'date',
  date_depart: '2001-01-01T00:00:00Z',
  action_terme: 'revue',
  mode: 'gouvernance',
  ...over,
})

export async function refusals(app: FastifyInstance, organisationId: string) {
  return app.db
    .selectFrom('journal_activite')
    .selectAll()
    .where('organisation_id', '=', organisationId)
    .where('action', '=', 'CHANGE_REFUSED')
    .orderBy('sequence')
    .execute()
}
