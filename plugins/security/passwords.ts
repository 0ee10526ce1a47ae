import { dictionary } from '@zxcvbn-ts/language-common'
import argon2 from 'argon2'
import { Errors } from '../../src/errors.ts'
import { HashError, hasher } from './hasher.ts'

/** OWASP's argon2id baseline: 19 MiB, 2 passes, 1 lane. */
export const ARGON2_OPTIONS = { type: argon2.argon2id, memoryCost: 19_456, timeCost: 2, parallelism: 1 } as const

/** Hashes run in the hashing process (`hasher.ts`), off the event loop and off the API's thread pool. */
export async function hashPassword(password: string): Promise<string> {
  return (await hasher.run({ op: 'hash', password, options: ARGON2_OPTIONS })) as string
}

/** A hash of nothing anyone knows, verified when the account does not exist so timing tells nothing. */
let dummy: Promise<string> | undefined

/**
 * Checks a password against a stored hash (or against a dummy when there is none, taking
 * the same time). Answers whether it matched and whether the hash should be upgraded. A
 * stored hash argon2 cannot read matches nothing; a hashing process gone is an error.
 */
export async function verifyPassword(hash: string | null, password: string): Promise<{ ok: boolean; rehash: boolean }> {
  dummy ??= hashPassword('armoire-dummy-password-never-valid').catch((error: unknown) => {
    dummy = undefined // made again by the next caller
    throw error
  })
  const stored = hash ?? (await dummy)
  let ok = false
  try {
    ok = (await hasher.run({ op: 'verify', hash: stored, password })) === true
  } catch (error) {
    if (!(error instanceof HashError)) throw error
  }
  return { ok: ok && hash !== null, rehash: ok && hash !== null && argon2.needsRehash(stored, ARGON2_OPTIONS) }
}

let common: Set<string> | undefined
function commonPasswords(): Set<string> {
  // 49 000 passwords from leaks, from zxcvbn-ts's public dictionary export; a set built on first use.
  common ??= new Set(dictionary['passwords-common'])
  return common
}

export const MIN_PASSWORD_LENGTH = 12

/** What is wrong with a password, in French; empty when it is acceptable. */
export function passwordProblems(password: string, email: string): string[] {
  const problems: string[] = []
  if ([...password].length < MIN_PASSWORD_LENGTH) problems.push(`au moins ${MIN_PASSWORD_LENGTH} caractères`)
  const lower = password.toLowerCase()
  // "sunshine2024!" is "sunshine" with decorations: strip digits and symbols at both ends.
  const core = lower.replace(/^[^\p{L}]+|[^\p{L}]+$/gu, '')
  const list = commonPasswords()
  if (list.has(lower) || (core.length >= 4 && list.has(core)) || /^(.)\1+$/u.test(lower)) {
    problems.push('ce mot de passe est trop courant')
  }
  const address = email.toLowerCase()
  const local = address.split('@')[0] ?? ''
  if (lower.includes(address) || (local.length >= 3 && lower.includes(local))) {
    problems.push('ne doit pas contenir l’adresse e-mail')
  }
  return problems
}

/** Refuses a password that breaks the policy, listing every failure on `body.mot_de_passe`. */
export function assertPassword(password: string, email: string): void {
  const problems = passwordProblems(password, email)
  if (problems.length === 0) return
  const error = new Errors.WEAK_PASSWORD(problems.join(', '))
  throw Object.assign(error, { fields: problems.map((message) => ({ field: 'body.mot_de_passe', message })) })
}
