import { createHmac } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import type { Member } from './auth.ts'

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'

export function base32Decode(text: string): Buffer {
  let bits = 0
  let value = 0
  const out: number[] = []
  for (const char of text.replace(/=+$/, '').toUpperCase()) {
    const index = BASE32.indexOf(char)
    if (index < 0) throw new Error(`not base32: ${char}`)
    value = (value << 5) | index
    bits += 5
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff)
      bits -= 8
    }
  }
  return Buffer.from(out)
}

/**
 * RFC 6238 written again from the RFC, apart from the server's code, so that the tests
 * check the server against the standard rather than against itself.
 */
export function totpAt(secret: Buffer, at: number, opts: { digits?: number; period?: number; algorithm?: 'sha1' | 'sha256' | 'sha512' } = {}): string {
  const { digits = 6, period = 30, algorithm = 'sha1' } = opts
  const counter = Buffer.alloc(8)
  counter.writeBigUInt64BE(BigInt(Math.floor(at / 1000 / period)))
  const mac = createHmac(algorithm, secret).update(counter).digest()
  const offset = (mac[mac.length - 1] as number) & 0x0f
  const binary = mac.readUInt32BE(offset) & 0x7fffffff
  return String(binary % 10 ** digits).padStart(digits, '0')
}

/** The code of the time step `steps` away from now. */
export function totpNow(secretBase32: string, steps = 0): string {
  return totpAt(base32Decode(secretBase32), Date.now() + steps * 30_000)
}

/** The newest mail of a kind sent to an address, from the outbox. */
export async function lastMail(app: FastifyInstance, email: string, kind: string): Promise<string> {
  const mail = await app.db
    .selectFrom('courriels')
    .select('texte')
    .where('destinataire', '=', email)
    .where('kind', '=', kind)
    .orderBy('created_at', 'desc')
    .executeTakeFirstOrThrow()
  return mail.texte
}

/** The token of the newest link of a kind (password_reset, email_verification) mailed to an address. */
export async function mailedToken(app: FastifyInstance, email: string, kind: string): Promise<string> {
  const token = /token=([\w%-]+)/.exec(await lastMail(app, email, kind))?.[1]
  if (!token) throw new Error(`no link in the ${kind} mail`)
  return decodeURIComponent(token)
}

/** The newest 6-digit code mailed to an address. */
export async function mailedCode(app: FastifyInstance, email: string): Promise<string> {
  const code = /:\s(\d{6})\b/.exec(await lastMail(app, email, 'mfa_code'))?.[1]
  if (!code) throw new Error('no code in the mail')
  return code
}

/** Enrols and verifies an authenticator app for a signed-in member; answers its secret and backup codes. */
export async function enrollTotp(app: FastifyInstance, member: Pick<Member, 'headers'>): Promise<{ secret: string; backupCodes: string[] }> {
  const enabled = await app.inject({ method: 'POST', url: '/auth/2fa/enable', headers: member.headers, payload: { methode: 'totp' } })
  if (enabled.statusCode !== 200) throw new Error(`enable failed: ${enabled.statusCode} ${enabled.body}`)
  const { secret } = enabled.json() as { secret: string }
  const verified = await app.inject({ method: 'POST', url: '/auth/2fa/verify', headers: member.headers, payload: { code: totpNow(secret) } })
  if (verified.statusCode !== 200) throw new Error(`verify failed: ${verified.statusCode} ${verified.body}`)
  return { secret, backupCodes: verified.json().codes_secours as string[] }
}

/** Signs in with the password; answers the body (tokens, or the 2FA step). */
export async function login(app: FastifyInstance, member: Pick<Member, 'email' | 'password'>, remoteAddress?: string) {
  const res = await app.inject({
    method: 'POST',
    url: '/auth/login',
    payload: { email: member.email, mot_de_passe: member.password },
    ...(remoteAddress ? { remoteAddress } : {}),
  })
  if (res.statusCode !== 200) throw new Error(`login failed: ${res.statusCode} ${res.body}`)
  return res.json() as Record<string, unknown> & { mfa_token?: string; access_token?: string }
}
