import { createHash, randomInt, timingSafeEqual } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import { type Kysely, sql, type Transaction } from 'kysely'
import type { FacteurMfa, MethodeMfa, Utilisateur } from '../../db/tables/security.ts'
import type { DB } from '../../db/types.ts'
import { KeyUnwrapError, type WrappedKey } from '../../src/crypto/keys.ts'
import { Errors } from '../../src/errors.ts'
import { mfaCodeMail } from './mails.ts'
import { matchTotp, openTotpSecret, sealTotpSecret } from './totp.ts'

export const EMAIL_CODE_MINUTES = 10
export const BACKUP_CODE_COUNT = 10
// Crockford's base32: no I, L, O or U to misread; 12 characters are 60 bits.
const BACKUP_ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ'
const BACKUP_LENGTH = 12

export type ProofMethod = MethodeMfa | 'code_secours'
export interface Proof {
  code?: string | undefined
  code_secours?: string | undefined
}

export function activeFactors(db: Kysely<DB>, userId: string): Promise<FacteurMfa[]> {
  return db.selectFrom('facteurs_mfa').selectAll().where('utilisateur_id', '=', userId).where('active_at', 'is not', null).orderBy('active_at').execute()
}

export function factorDtos(factors: readonly FacteurMfa[]): Array<{ methode: MethodeMfa; active_depuis: string }> {
  return factors.filter((f) => f.active_at).map((f) => ({ methode: f.methode, active_depuis: (f.active_at as Date).toISOString() }))
}

function emailCodeHash(factorId: string, code: string): Buffer {
  return createHash('sha256').update(`${factorId}:${code}`).digest()
}

/** Sends a fresh 6-digit code for an e-mail factor; the previous one stops working. */
export async function sendEmailCode(
  app: FastifyInstance,
  trx: Transaction<DB>,
  user: Pick<Utilisateur, 'id' | 'email' | 'nom' | 'organisation_id'>,
  factor: Pick<FacteurMfa, 'id'>,
  motif: 'activation' | 'connexion' | 'confirmation',
): Promise<Date> {
  const code = String(randomInt(0, 1_000_000)).padStart(6, '0')
  const expires = new Date(Date.now() + EMAIL_CODE_MINUTES * 60_000)
  await trx.updateTable('facteurs_mfa').set({ code_hash: emailCodeHash(factor.id, code), code_expire_at: expires }).where('id', '=', factor.id).execute()
  await app.mailer.queue(trx, {
    organisationId: user.organisation_id,
    to: user.email,
    kind: 'mfa_code',
    ...mfaCodeMail({ nom: user.nom, code, minutes: EMAIL_CODE_MINUTES, motif }),
  })
  return expires
}

export function normalizeBackupCode(code: string): string {
  return code
    .toUpperCase()
    .replace(/[\s-]+/g, '')
    .replace(/O/g, '0')
    .replace(/[IL]/g, '1')
}

/** Salted with the user, so one guess cannot be tried against every account's codes at once. */
function backupCodeHash(userId: string, code: string): Buffer {
  return createHash('sha256').update(`${userId}:${normalizeBackupCode(code)}`).digest()
}

/** Ten fresh backup codes, shown once; the user's previous codes die. */
export async function replaceBackupCodes(trx: Transaction<DB>, user: Pick<Utilisateur, 'id' | 'organisation_id'>): Promise<string[]> {
  const codes = Array.from({ length: BACKUP_CODE_COUNT }, () => {
    let raw = ''
    for (let i = 0; i < BACKUP_LENGTH; i++) raw += BACKUP_ALPHABET[randomInt(BACKUP_ALPHABET.length)]
    return raw.match(/.{4}/g)!.join('-')
  })
  await trx.deleteFrom('codes_secours').where('utilisateur_id', '=', user.id).execute()
  await trx
    .insertInto('codes_secours')
    .values(codes.map((code) => ({ utilisateur_id: user.id, organisation_id: user.organisation_id, hash: backupCodeHash(user.id, code) })))
    .execute()
  return codes
}

/** Puts a TOTP secret under the master key (re-sealed under the newest version on use). */
export async function storeTotpSecret(app: FastifyInstance, trx: Transaction<DB>, factorId: string, secret: Buffer): Promise<void> {
  const sealed = await sealTotpSecret(app.keys, factorId, secret)
  await trx.updateTable('facteurs_mfa').set({ secret_chiffre: sealed.wrapped, version_cle_maitre: sealed.masterKeyVersion }).where('id', '=', factorId).execute()
}

/**
 * Checks a proof of the second factor against the given factors (active ones, or the one
 * being enrolled) and uses it up inside `trx`: the TOTP step is recorded, the e-mail code
 * cleared, the backup code marked used. Answers how it was proved, or null. Changes
 * nothing when it fails, so the caller may count the failure on its own. A TOTP secret that
 * no longer unwraps (its master key version is gone) is journaled and answers
 * MFA_SECRET_UNAVAILABLE, unless another factor matched.
 */
export async function useProof(
  app: FastifyInstance,
  trx: Transaction<DB>,
  user: Pick<Utilisateur, 'id' | 'organisation_id' | 'email'>,
  factors: readonly FacteurMfa[],
  proof: Proof,
  at = Date.now(),
): Promise<ProofMethod | null> {
  if (proof.code_secours !== undefined) {
    const used = await trx
      .updateTable('codes_secours')
      .set({ used_at: sql`now()` })
      .where('utilisateur_id', '=', user.id)
      .where('hash', '=', backupCodeHash(user.id, proof.code_secours))
      .where('used_at', 'is', null)
      .returning('hash')
      .executeTakeFirst()
    return used ? 'code_secours' : null
  }
  const code = (proof.code ?? '').replace(/\s+/g, '')
  if (!/^\d{6}$/.test(code)) return null
  let unreadable: { factor: FacteurMfa; error: KeyUnwrapError } | null = null
  for (const factor of factors) {
    if (factor.methode === 'totp' && factor.secret_chiffre && factor.version_cle_maitre !== null) {
      let secret: Buffer
      try {
        secret = await openTotpSecret(app.keys, factor.id, factor.secret_chiffre, factor.version_cle_maitre)
      } catch (error) {
        // Its master key version was removed before rotation re-wrapped it (or the row was altered).
        if (!(error instanceof KeyUnwrapError)) throw error
        unreadable = { factor, error }
        continue
      }
      try {
        const step = matchTotp(secret, code, { at, lastStep: factor.dernier_pas })
        if (step === null) continue
        // Two requests with the same code race here: the row decides which one wins.
        const won = await trx
          .updateTable('facteurs_mfa')
          .set({ dernier_pas: step })
          .where('id', '=', factor.id)
          .where((eb) => eb.or([eb('dernier_pas', 'is', null), eb('dernier_pas', '<', step)]))
          .returning('id')
          .executeTakeFirst()
        if (!won) continue
        if (factor.version_cle_maitre !== app.keys.currentVersion) await storeTotpSecret(app, trx, factor.id, secret)
        return 'totp'
      } finally {
        secret.fill(0)
      }
    }
    if (factor.methode === 'email' && factor.code_hash && factor.code_expire_at && factor.code_expire_at.getTime() > at) {
      const expected = emailCodeHash(factor.id, code)
      if (!timingSafeEqual(expected, factor.code_hash)) continue
      const won = await trx
        .updateTable('facteurs_mfa')
        .set({ code_hash: null, code_expire_at: null })
        .where('id', '=', factor.id)
        .where('code_hash', '=', expected)
        .returning('id')
        .executeTakeFirst()
      if (won) return 'email'
    }
  }
  if (unreadable) {
    const { factor, error } = unreadable
    await app.audit.recordAlone({
      organisationId: user.organisation_id,
      userId: user.id,
      action: 'MFA_SECRET_UNREADABLE',
      target: { type: 'utilisateur', id: user.id, nom: user.email },
      result: 'echec',
      details: { methode: factor.methode, facteur_id: factor.id, version_cle_maitre: factor.version_cle_maitre, erreur: error.message },
    })
    throw new Errors.MFA_SECRET_UNAVAILABLE()
  }
  return null
}

/** The methods a 2FA step offers for these factors. */
export async function stepMethods(db: Kysely<DB>, userId: string, factors: readonly FacteurMfa[]): Promise<ProofMethod[]> {
  const methods: ProofMethod[] = [...new Set(factors.map((f) => f.methode))]
  const left = await db
    .selectFrom('codes_secours')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('utilisateur_id', '=', userId)
    .where('used_at', 'is', null)
    .executeTakeFirstOrThrow()
  if (Number(left.n) > 0) methods.push('code_secours')
  return methods
}

/** When the user's factor of this method became active (null while pending), or undefined without one. */
export function findFactorOfMethod(db: Kysely<DB>, userId: string, methode: MethodeMfa): Promise<{ active_at: Date | null } | undefined> {
  return db.selectFrom('facteurs_mfa').select(['active_at']).where('utilisateur_id', '=', userId).where('methode', '=', methode).executeTakeFirst()
}

/** Stores a pending factor in place of any pending one of that method: a secret never verified is dropped. */
export async function replacePendingFactor(
  trx: Transaction<DB>,
  user: Pick<Utilisateur, 'id' | 'organisation_id'>,
  factor: { id: string; methode: MethodeMfa; sealed: WrappedKey | null },
): Promise<void> {
  await trx.deleteFrom('facteurs_mfa').where('utilisateur_id', '=', user.id).where('methode', '=', factor.methode).where('active_at', 'is', null).execute()
  await trx
    .insertInto('facteurs_mfa')
    .values({
      id: factor.id,
      organisation_id: user.organisation_id,
      utilisateur_id: user.id,
      methode: factor.methode,
      secret_chiffre: factor.sealed?.wrapped ?? null,
      version_cle_maitre: factor.sealed?.masterKeyVersion ?? null,
    })
    .execute()
}

/** The user's newest pending factor (of that method, if given). */
export function findPendingFactor(db: Kysely<DB>, userId: string, methode: MethodeMfa | undefined): Promise<FacteurMfa | undefined> {
  let query = db.selectFrom('facteurs_mfa').selectAll().where('utilisateur_id', '=', userId).where('active_at', 'is', null)
  if (methode) query = query.where('methode', '=', methode)
  return query.orderBy('created_at', 'desc').limit(1).executeTakeFirst()
}

/** Makes a pending factor active from now. */
export async function activateFactor(trx: Transaction<DB>, factorId: string): Promise<void> {
  await trx.updateTable('facteurs_mfa').set({ active_at: sql`now()` }).where('id', '=', factorId).execute()
}

/** Clears a user's second-factor failure count and lock. */
export async function clearMfaFailures(trx: Transaction<DB>, userId: string): Promise<void> {
  await trx.updateTable('utilisateurs').set({ echecs_mfa: 0, mfa_bloque_jusqua: null }).where('id', '=', userId).execute()
}

/** A session that has proved a factor: no longer confined to enrolment. */
export async function markSessionProved(trx: Transaction<DB>, sessionId: string): Promise<void> {
  await trx.updateTable('sessions').set({ second_facteur: true, enrolement_mfa: false }).where('id', '=', sessionId).execute()
}
