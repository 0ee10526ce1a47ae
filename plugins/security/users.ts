import type { Static } from '@sinclair/typebox'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { type Kysely, sql, type Transaction } from 'kysely'
import type { Utilisateur } from '../../db/tables/security.ts'
import type { DB } from '../../db/types.ts'
import type { Role } from '../../openapi/common.ts'
import { createUser, listUsers, updateUser, type UsersQuerySchema } from '../../openapi/security.ts'
import { actorOf } from '../../src/audit.ts'
import { principalOf } from '../../src/auth.ts'
import { isUniqueViolation } from '../../src/db.ts'
import { Errors } from '../../src/errors.ts'
import type { Action } from '../../src/journal-actions.ts'
import { invitationMail } from './mails.ts'
import { decodeCursor, page } from '../../src/pagination.ts'
import { type Binding, handle } from '../../src/routes.ts'
import { newSecret, revokeSessions } from './tokens.ts'
import { findUser, findUserByEmail, otherActiveAdmins, toUserDto } from './users-repository.ts'

const INVITATION_DAYS = 7

// Repository: the rows these operations read and write, in the caller's executor.

/** One page of the organisation's members, oldest first, filtered by role, state and a text in the name or address. */
async function membersPage(db: Kysely<DB>, organisationId: string, { limit, cursor, role, actif, q }: Static<typeof UsersQuerySchema>) {
  let query = db.selectFrom('utilisateurs').selectAll().where('organisation_id', '=', organisationId)
  if (role) query = query.where('role', '=', role)
  if (actif !== undefined) query = query.where('actif', '=', actif)
  if (q) {
    const pattern = `%${q.replace(/[\\%_]/g, (c) => `\\${c}`)}%`
    query = query.where((eb) => eb.or([eb('nom', 'ilike', pattern), eb('email', 'ilike', pattern)]))
  }
  if (cursor) {
    // Compare with the stored timestamp itself: microseconds do not survive a JS Date.
    const [after] = decodeCursor<[string]>(cursor, ['uuid'])
    query = query.where((eb) =>
      eb(
        eb.refTuple('created_at', 'id'),
        '>',
        eb.selectFrom('utilisateurs as c').select(['c.created_at', 'c.id']).where('c.id', '=', after).where('c.organisation_id', '=', organisationId).$asTuple('created_at', 'id'),
      ),
    )
  }
  const rows = await query.orderBy('created_at').orderBy('id').limit(limit + 1).execute()
  return page(rows, limit, toUserDto, (u) => [u.id])
}

function insertInvitedUser(trx: Transaction<DB>, organisationId: string, member: { email: string; nom: string; role: Role }): Promise<Utilisateur> {
  return trx
    .insertInto('utilisateurs')
    .values({ organisation_id: organisationId, email: member.email.trim(), nom: member.nom.trim(), role: member.role, mot_de_passe_hash: null })
    .returningAll()
    .executeTakeFirstOrThrow()
    .catch((error) => {
      if (isUniqueViolation(error)) throw new Errors.EMAIL_TAKEN()
      throw error
    })
}

function updateUserRow(trx: Transaction<DB>, id: string, change: { role?: Role | undefined; nom?: string | undefined; actif?: boolean | undefined }): Promise<Utilisateur> {
  const { role, nom, actif } = change
  return trx
    .updateTable('utilisateurs')
    .set({
      ...(role !== undefined ? { role } : {}),
      ...(nom !== undefined ? { nom: nom.trim() } : {}),
      ...(actif !== undefined ? { actif } : {}),
      updated_at: sql`now()`,
    })
    .where('id', '=', id)
    .returningAll()
    .executeTakeFirstOrThrow()
}

// Services: one per operation.

/** A new member without a password, who takes a seat of the plan and is mailed an invitation. */
async function inviteMember(app: FastifyInstance, request: FastifyRequest, member: { email: string; nom: string; role: Role }, publicUrl: string) {
  const principal = principalOf(request)
  if (await findUserByEmail(app.db, member.email)) throw new Errors.EMAIL_TAKEN()
  const invitation = newSecret()
  const expires = new Date(Date.now() + INVITATION_DAYS * 86_400_000)
  const user = await app.unitOfWork(async (trx) => {
    await app.entitlements.assertMayAdd(trx, principal.organisationId, 'membre')
    const org = await trx.selectFrom('organisations').select('nom').where('id', '=', principal.organisationId).executeTakeFirstOrThrow()
    const created = await insertInvitedUser(trx, principal.organisationId, member)
    await trx
      .insertInto('invitations')
      .values({ hash: invitation.hash, organisation_id: principal.organisationId, utilisateur_id: created.id, created_by: principal.userId, expires_at: expires })
      .execute()
    const lien = `${publicUrl}/invitation?token=${encodeURIComponent(invitation.token)}`
    await app.mailer.queue(trx, {
      organisationId: principal.organisationId,
      to: created.email,
      kind: 'invitation',
      ...invitationMail({ nom: created.nom, organisation: org.nom, lien }),
    })
    await app.audit.record(trx, {
      ...actorOf(request),
      action: 'USER_INVITED',
      target: { type: 'utilisateur', id: created.id, nom: created.email },
      details: { role: member.role },
    })
    return created
  })
  return { utilisateur: toUserDto(user), invitation_expire_at: expires.toISOString() }
}

/** What a change of a member is, for the journal. */
function changeAction(user: Utilisateur, role: Role | undefined, actif: boolean | undefined): Action {
  if (actif === false && user.actif) return 'USER_DEACTIVATED'
  if (actif === true && !user.actif) return 'USER_REACTIVATED'
  if (role !== undefined && role !== user.role) return 'USER_ROLE_CHANGED'
  return 'USER_UPDATED'
}

/**
 * Changes a member's role, name or state. The last active administrator keeps that role; a
 * member deactivated loses their sessions, one reactivated takes a seat again.
 */
async function changeMember(app: FastifyInstance, request: FastifyRequest, id: string, change: { role?: Role; nom?: string; actif?: boolean }) {
  const principal = principalOf(request)
  const { role, actif } = change
  return app.unitOfWork(async (trx) => {
    const user = await findUser(trx, principal.organisationId, id)
    if (!user) throw new Errors.NOT_FOUND('Utilisateur')
    const losesAdmin = user.role === 'admin' && user.actif && ((role !== undefined && role !== 'admin') || actif === false)
    if (losesAdmin && (await otherActiveAdmins(trx, principal.organisationId, user.id)) === 0) throw new Errors.LAST_ADMIN()
    if (actif === true && !user.actif) await app.entitlements.assertMayAdd(trx, principal.organisationId, 'membre')
    const row = await updateUserRow(trx, user.id, change)
    if (actif === false && user.actif) await revokeSessions(app, trx, { userId: user.id }, 'desactivation')
    // Every instance's session cache holds the user's role and account: forget them all.
    else await app.sessions.announce(trx, 'user', user.id)
    await app.audit.record(trx, {
      ...actorOf(request),
      action: changeAction(user, role, actif),
      target: { type: 'utilisateur', id: user.id, nom: user.email },
      details: { avant: { role: user.role, nom: user.nom, actif: user.actif }, apres: { role: row.role, nom: row.nom, actif: row.actif } },
    })
    return row
  })
}

export function userBindings(app: FastifyInstance, publicUrl: string): Binding[] {
  return [
    handle(listUsers, async (request) => membersPage(app.db, principalOf(request).organisationId, request.query)),
    handle(createUser, async (request, reply) => reply.code(201).send(await inviteMember(app, request, request.body, publicUrl))),
    handle(updateUser, async (request) => toUserDto(await changeMember(app, request, request.params.id, request.body))),
  ]
}
