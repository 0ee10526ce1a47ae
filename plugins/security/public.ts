/**
 * What other domains may use of the security domain: nothing else of it is imported from
 * outside (eslint.config.js says so). Every function takes the executor first and is scoped
 * to one organisation.
 */
import type { Kysely, Transaction } from 'kysely'
import type { Role } from '../../openapi/common.ts'
import type { DB } from '../../db/types.ts'
import type { AuditEntry } from '../../src/audit.ts'
import { Errors } from '../../src/errors.ts'

export interface Member {
  id: string
  organisationId: string
  email: string
  nom: string
  role: Role
  actif: boolean
}

const MEMBER_COLUMNS = ['id', 'organisation_id as organisationId', 'email', 'nom', 'role', 'actif'] as const

/** A member of the organisation, active or not; undefined when none (or another organisation's). */
export function findMember(db: Kysely<DB> | Transaction<DB>, organisationId: string, id: string): Promise<Member | undefined> {
  return db.selectFrom('utilisateurs').select(MEMBER_COLUMNS).where('organisation_id', '=', organisationId).where('id', '=', id).executeTakeFirst()
}

/** The same, answering 404 when there is none. */
export async function getMember(db: Kysely<DB> | Transaction<DB>, organisationId: string, id: string): Promise<Member> {
  const member = await findMember(db, organisationId, id)
  if (!member) throw new Errors.NOT_FOUND('Utilisateur')
  return member
}

/** The organisation's active admins, by name: whom to tell about the organisation's account (billing, compliance). */
export function activeAdmins(db: Kysely<DB> | Transaction<DB>, organisationId: string): Promise<Member[]> {
  return db
    .selectFrom('utilisateurs')
    .select(MEMBER_COLUMNS)
    .where('organisation_id', '=', organisationId)
    .where('role', '=', 'admin')
    .where('actif', '=', true)
    .orderBy('nom')
    .orderBy('id')
    .execute()
}

type Target = NonNullable<AuditEntry['target']>

/** Journal targets of the security domain's objects, named as the journal shows them. */
export const auditTargets = {
  member: (member: Pick<Member, 'id' | 'nom'>): Target => ({ type: 'utilisateur', id: member.id, nom: member.nom }),
  organisation: (organisation: { id: string; nom: string }): Target => ({ type: 'organisation', id: organisation.id, nom: organisation.nom }),
  session: (id: string): Target => ({ type: 'session', id }),
}
