import type { FastifyInstance } from 'fastify'
import { sql } from 'kysely'
import { createUser, listUsers, updateUser } from '../../openapi/security.ts'
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

export function userBindings(app: FastifyInstance, publicUrl: string): Binding[] {
  const { db } = app
  return [
    handle(listUsers, async (request) => {
      const { organisationId } = principalOf(request)
      const { limit, cursor, role, actif, q } = request.query
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
    }),

    handle(createUser, async (request, reply) => {
      const principal = principalOf(request)
      const { email, nom, role } = request.body
      if (await findUserByEmail(db, email)) throw new Errors.EMAIL_TAKEN()
      const invitation = newSecret()
      const expires = new Date(Date.now() + INVITATION_DAYS * 86_400_000)
      const user = await app.unitOfWork(async (trx) => {
        await app.entitlements.assertMayAdd(trx, principal.organisationId, 'membre')
        const org = await trx.selectFrom('organisations').select('nom').where('id', '=', principal.organisationId).executeTakeFirstOrThrow()
        const created = await trx
          .insertInto('utilisateurs')
          .values({ organisation_id: principal.organisationId, email: email.trim(), nom: nom.trim(), role, mot_de_passe_hash: null })
          .returningAll()
          .executeTakeFirstOrThrow()
          .catch((error) => {
            if (isUniqueViolation(error)) throw new Errors.EMAIL_TAKEN()
            throw error
          })
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
          details: { role },
        })
        return created
      })
      return reply.code(201).send({ utilisateur: toUserDto(user), invitation_expire_at: expires.toISOString() })
    }),

    handle(updateUser, async (request) => {
      const principal = principalOf(request)
      const { role, nom, actif } = request.body
      const updated = await app.unitOfWork(async (trx) => {
        const user = await findUser(trx, principal.organisationId, request.params.id)
        if (!user) throw new Errors.NOT_FOUND('Utilisateur')
        const losesAdmin = user.role === 'admin' && user.actif && ((role !== undefined && role !== 'admin') || actif === false)
        if (losesAdmin && (await otherActiveAdmins(trx, principal.organisationId, user.id)) === 0) throw new Errors.LAST_ADMIN()
        // A member reactivated takes a seat again.
        if (actif === true && !user.actif) await app.entitlements.assertMayAdd(trx, principal.organisationId, 'membre')
        const row = await trx
          .updateTable('utilisateurs')
          .set({
            ...(role !== undefined ? { role } : {}),
            ...(nom !== undefined ? { nom: nom.trim() } : {}),
            ...(actif !== undefined ? { actif } : {}),
            updated_at: sql`now()`,
          })
          .where('id', '=', user.id)
          .returningAll()
          .executeTakeFirstOrThrow()
        if (actif === false && user.actif) await revokeSessions(app, trx, { userId: user.id }, 'desactivation')
        // Every instance's session cache holds the user's role and account: forget them all.
        else await app.sessions.announce(trx, 'user', user.id)
        const action: Action =
          actif === false && user.actif
            ? 'USER_DEACTIVATED'
            : actif === true && !user.actif
              ? 'USER_REACTIVATED'
              : role !== undefined && role !== user.role
                ? 'USER_ROLE_CHANGED'
                : 'USER_UPDATED'
        await app.audit.record(trx, {
          ...actorOf(request),
          action,
          target: { type: 'utilisateur', id: user.id, nom: user.email },
          details: { avant: { role: user.role, nom: user.nom, actif: user.actif }, apres: { role: row.role, nom: row.nom, actif: row.actif } },
        })
        return row
      })
      return toUserDto(updated)
    }),
  ]
}
