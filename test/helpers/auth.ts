import { randomBytes } from 'node:crypto'
import type { FastifyInstance } from 'fastify'

export interface Member {
  token: string
  refreshToken: string
  headers: { authorization: string }
  userId: string
  organisationId: string
  email: string
  password: string
  role: 'admin' | 'contributeur' | 'lecteur'
}

export const strongPassword = () => `Armoire-${randomBytes(6).toString('hex')}-Cle`

function member(body: Record<string, unknown>, email: string, password: string): Member {
  const user = body.utilisateur as { id: string; organisation_id: string; role: Member['role'] }
  return {
    token: body.access_token as string,
    refreshToken: body.refresh_token as string,
    headers: { authorization: `Bearer ${body.access_token}` },
    userId: user.id,
    organisationId: user.organisation_id,
    email,
    password,
    role: user.role,
  }
}

/** Registers a new organisation through the API; answers its first admin, signed in. */
export async function signUp(app: FastifyInstance, opts: { organisation?: string; email?: string } = {}): Promise<Member> {
  const email = opts.email ?? `admin-${randomBytes(5).toString('hex')}@exemple.fr`
  const password = strongPassword()
  const res = await app.inject({
    method: 'POST',
    url: '/auth/register',
    payload: { email, mot_de_passe: password, nom: 'Admin Test', organisation: opts.organisation ?? 'Organisation Test' },
  })
  if (res.statusCode !== 201) throw new Error(`register failed: ${res.statusCode} ${res.body}`)
  return member(res.json(), email, password)
}

/** The invitation token of the last invitation mail sent to an address, read from the outbox. */
export async function invitationToken(app: Pick<FastifyInstance, 'db'>, email: string): Promise<string> {
  const mail = await app.db
    .selectFrom('courriels')
    .select('texte')
    .where('destinataire', '=', email)
    .where('kind', '=', 'invitation')
    .orderBy('created_at', 'desc')
    .executeTakeFirstOrThrow()
  const token = /token=([\w%-]+)/.exec(mail.texte)?.[1]
  if (!token) throw new Error('no invitation link in the mail')
  return decodeURIComponent(token)
}

/** An admin invites a member with a role; the member accepts and is signed in. */
export async function addMember(app: FastifyInstance, admin: Member, role: Member['role']): Promise<Member> {
  const email = `${role}-${randomBytes(5).toString('hex')}@exemple.fr`
  const created = await app.inject({ method: 'POST', url: '/users', headers: admin.headers, payload: { email, nom: `Membre ${role}`, role } })
  if (created.statusCode !== 201) throw new Error(`invite failed: ${created.statusCode} ${created.body}`)
  const password = strongPassword()
  const accepted = await app.inject({
    method: 'POST',
    url: '/auth/invitation/accepter',
    payload: { token: await invitationToken(app, email), mot_de_passe: password },
  })
  if (accepted.statusCode !== 200) throw new Error(`accept failed: ${accepted.statusCode} ${accepted.body}`)
  return member(accepted.json(), email, password)
}

/**
 * Puts the organisation on the paid plan without a members quota, as if it had paid: for tests
 * that need more members than the trial's three seats.
 */
export async function onUnlimitedPlan(app: FastifyInstance, admin: Member): Promise<void> {
  await app.db
    .updateTable('abonnements')
    .set({ plan_code: 'entreprise', statut: 'actif', periode_debut: new Date(), periode_fin: new Date(Date.now() + 30 * 86_400_000) })
    .where('organisation_id', '=', admin.organisationId)
    .execute()
}
