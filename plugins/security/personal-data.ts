import type { FastifyInstance } from 'fastify'
import { type Kysely, sql, type Transaction } from 'kysely'
import type { DB } from '../../db/types.ts'
import { Errors } from '../../src/errors.ts'
import { revokeSessions } from './tokens.ts'
import { otherActiveAdmins } from './users-repository.ts'

/** What the security domain holds about a member, secrets left out: for a GDPR export. */
export async function personalData(db: Kysely<DB>, organisationId: string, userId: string) {
  const account = await db
    .selectFrom('utilisateurs as u')
    .innerJoin('organisations as o', 'o.id', 'u.organisation_id')
    .select(['u.id', 'u.email', 'u.nom', 'u.role', 'u.actif', 'u.email_verifie_at', 'u.created_at', 'u.updated_at', 'o.nom as organisation'])
    .where('u.id', '=', userId)
    .where('u.organisation_id', '=', organisationId)
    .executeTakeFirst()
  if (!account) return undefined
  const sessions = await db
    .selectFrom('sessions')
    .select(['id', 'ip', 'user_agent', 'created_at', 'last_used_at', 'expires_at', 'revoked_at', 'revoked_reason', 'second_facteur'])
    .where('utilisateur_id', '=', userId)
    .orderBy('created_at')
    .execute()
  const factors = await db
    .selectFrom('facteurs_mfa')
    .select(['id', 'methode', 'active_at', 'created_at'])
    .where('utilisateur_id', '=', userId)
    .orderBy('created_at')
    .execute()
  const codes = await db
    .selectFrom('codes_secours')
    .select([sql<number>`count(*) filter (where used_at is null)`.as('restants'), sql<number>`count(*) filter (where used_at is not null)`.as('utilises')])
    .where('utilisateur_id', '=', userId)
    .executeTakeFirstOrThrow()
  const sso = await db
    .selectFrom('identites_sso')
    .select(['fournisseur', 'emetteur', 'sujet', 'email', 'created_at', 'last_login_at'])
    .where('utilisateur_id', '=', userId)
    .execute()
  return {
    account,
    sessions,
    factors,
    backupCodes: { restants: Number(codes.restants), utilises: Number(codes.utilises) },
    sso,
  }
}

export interface Anonymised {
  /** What replaces the member's name; their id stays, the journal's pseudonymous reference. */
  pseudonyme: string
  sessions: number
  facteurs: number
  identiteConservee: boolean
}

/**
 * GDPR erasure of a member's account, in the caller's transaction: sessions (revoked at once
 * on every instance, then removed), second factors, backup codes, SSO identities, pending
 * tokens and invitations go; the account is deactivated, and its name and e-mail replaced
 * unless `keepIdentity` (a legal hold needs to know who acted). The id stays.
 */
export async function anonymiseMember(
  app: FastifyInstance,
  trx: Transaction<DB>,
  organisationId: string,
  userId: string,
  opts: { keepIdentity: boolean },
): Promise<Anonymised> {
  const user = await trx.selectFrom('utilisateurs').selectAll().where('id', '=', userId).where('organisation_id', '=', organisationId).forUpdate().executeTakeFirst()
  if (!user) throw new Errors.NOT_FOUND('Utilisateur')
  if (user.role === 'admin' && user.actif && (await otherActiveAdmins(trx, organisationId, userId)) === 0) throw new Errors.LAST_ADMIN()
  await revokeSessions(app, trx, { userId }, 'effacement')
  const sessions = await trx.deleteFrom('sessions').where('utilisateur_id', '=', userId).executeTakeFirst()
  const factors = await trx.deleteFrom('facteurs_mfa').where('utilisateur_id', '=', userId).executeTakeFirst()
  await trx.deleteFrom('codes_secours').where('utilisateur_id', '=', userId).execute()
  await trx.deleteFrom('identites_sso').where('utilisateur_id', '=', userId).execute()
  await trx.deleteFrom('jetons_usage_unique').where('utilisateur_id', '=', userId).execute()
  await trx.deleteFrom('invitations').where('utilisateur_id', '=', userId).execute()
  const pseudonyme = `Utilisateur effacé ${userId.slice(0, 8)}`
  await trx
    .updateTable('utilisateurs')
    .set({
      actif: false,
      mot_de_passe_hash: null,
      ...(opts.keepIdentity ? {} : { nom: pseudonyme, email: `efface-${userId}@anonyme.invalid`, email_verifie_at: null }),
      updated_at: sql`now()`,
    })
    .where('id', '=', userId)
    .execute()
  return { pseudonyme, sessions: Number(sessions.numDeletedRows), facteurs: Number(factors.numDeletedRows), identiteConservee: opts.keepIdentity }
}
