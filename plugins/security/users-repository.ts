import type { FastifyRequest } from 'fastify'
import { type Kysely, sql, type Transaction } from 'kysely'
import type { Utilisateur } from '../../db/tables/security.ts'
import type { DB } from '../../db/types.ts'
import type { UtilisateurDto } from '../../openapi/security.ts'
import { prepared } from '../../src/db.ts'
import { type SessionContextRow, sessionContextColumns } from './tokens.ts'

export function findUserById(db: Kysely<DB>, id: string): Promise<Utilisateur | undefined> {
  return db.selectFrom('utilisateurs').selectAll().where('id', '=', id).executeTakeFirst()
}

/** The signed-in caller's own row, which exists while their session does. */
export function findCaller(db: Kysely<DB>, userId: string): Promise<Utilisateur> {
  return db.selectFrom('utilisateurs').selectAll().where('id', '=', userId).executeTakeFirstOrThrow()
}

export function findUserByEmail(db: Kysely<DB>, email: string): Promise<Utilisateur | undefined> {
  return db.selectFrom('utilisateurs').selectAll().where(sql`lower(email)`, '=', email.toLowerCase()).executeTakeFirst()
}

/** Every column of a user, by name (a prepared statement must not select `*`); the compiler keeps the list whole. */
const USER_COLUMNS = sql.join(
  Object.keys({
    id: true,
    organisation_id: true,
    email: true,
    nom: true,
    role: true,
    actif: true,
    mot_de_passe_hash: true,
    echecs_connexion: true,
    bloque_jusqua: true,
    email_verifie_at: true,
    echecs_mfa: true,
    mfa_bloque_jusqua: true,
    created_at: true,
    updated_at: true,
  } satisfies Record<keyof Utilisateur, true>).map((column) => sql.ref(`u.${column}`)),
)

/** The account behind a sign-in, with its session context (one round trip for both, planned once per connection). */
export async function findUserForSignIn(db: Kysely<DB>, email: string, request: FastifyRequest): Promise<(Utilisateur & SessionContextRow) | undefined> {
  const { rows } = await sql<Utilisateur & SessionContextRow>`${prepared}
    select ${USER_COLUMNS}, ${sessionContextColumns(sql.ref('u.id'), sql.ref('u.organisation_id'), request)}
    from utilisateurs u where lower(u.email) = ${email.toLowerCase()}`.execute(db)
  return rows[0]
}

export function findUser(db: Kysely<DB>, organisationId: string, id: string): Promise<Utilisateur | undefined> {
  return db.selectFrom('utilisateurs').selectAll().where('organisation_id', '=', organisationId).where('id', '=', id).executeTakeFirst()
}

/** Active admins other than `exceptId`, counted under a lock so two demotions cannot race past zero. */
export async function otherActiveAdmins(trx: Transaction<DB>, organisationId: string, exceptId: string): Promise<number> {
  await sql`select pg_advisory_xact_lock(hashtextextended(${`admins:${organisationId}`}, 0))`.execute(trx)
  const { count } = await trx
    .selectFrom('utilisateurs')
    .select((eb) => eb.fn.countAll<number>().as('count'))
    .where('organisation_id', '=', organisationId)
    .where('role', '=', 'admin')
    .where('actif', '=', true)
    .where('id', '!=', exceptId)
    .executeTakeFirstOrThrow()
  return Number(count)
}

/** Whether the user has signed in from this address before: such an address is not held back by a lock. */
export async function isKnownAddress(db: Kysely<DB>, userId: string, ip: string): Promise<boolean> {
  const row = await db
    .selectFrom('sessions')
    .select('id')
    .where('utilisateur_id', '=', userId)
    .where('ip', '=', ip)
    .where('created_at', '>', sql<Date>`now() - interval '90 days'`)
    .limit(1)
    .executeTakeFirst()
  return row !== undefined
}

export function toUserDto(user: Utilisateur): UtilisateurDto {
  return {
    id: user.id,
    organisation_id: user.organisation_id,
    email: user.email,
    nom: user.nom,
    role: user.role,
    actif: user.actif,
    created_at: user.created_at.toISOString(),
    updated_at: user.updated_at.toISOString(),
  }
}
