import { randomBytes } from 'node:crypto'
import { HOTP, Secret, TOTP } from 'otpauth'
import QRCode from 'qrcode'
import type { KeySource, WrappedKey } from '../../src/crypto/keys.ts'
import { registerWrappedColumn } from '../../src/keys.ts'

export interface TotpParams {
  algorithm: 'SHA1' | 'SHA256' | 'SHA512'
  digits: number
  period: number
}

/** What every authenticator app understands: RFC 6238's defaults. */
export const TOTP_PARAMS: TotpParams = { algorithm: 'SHA1', digits: 6, period: 30 }
/** Steps accepted either side of now, for clocks that drift a little. */
export const TOTP_WINDOW = 1
/** 160 bits, the HMAC-SHA1 block RFC 4226 recommends. */
const SECRET_BYTES = 20

export function newTotpSecret(): Buffer {
  return randomBytes(SECRET_BYTES)
}

export function totpUri(secret: Uint8Array, opts: { issuer: string; label: string }, params: TotpParams = TOTP_PARAMS): string {
  return new TOTP({ issuer: opts.issuer, label: opts.label, secret: new Secret({ buffer: toArrayBuffer(secret) }), ...params }).toString()
}

export function base32(secret: Uint8Array): string {
  return new Secret({ buffer: toArrayBuffer(secret) }).base32
}

export function qrCodeDataUrl(text: string): Promise<string> {
  return QRCode.toDataURL(text, { errorCorrectionLevel: 'M', margin: 2, scale: 6 })
}

/**
 * The time step a code belongs to, if it is valid now (± the window) and later than
 * `lastStep`: the server records the step it answers, so a code is accepted only once,
 * and an older code is never accepted after a newer one. This is the one check the server
 * makes; tests run RFC 6238's vectors through it with their parameters.
 */
export function matchTotp(
  secret: Uint8Array,
  code: string,
  opts: { at: number; lastStep: number | null; params?: TotpParams; window?: number },
): number | null {
  const params = opts.params ?? TOTP_PARAMS
  const token = code.replace(/\s+/g, '')
  if (!new RegExp(`^\\d{${params.digits}}$`).test(token)) return null
  const key = new Secret({ buffer: toArrayBuffer(secret) })
  const now = TOTP.counter({ period: params.period, timestamp: opts.at })
  const window = opts.window ?? TOTP_WINDOW
  const steps = [now]
  for (let i = 1; i <= window; i++) steps.push(now - i, now + i)
  for (const step of steps) {
    if (step < 0 || (opts.lastStep !== null && step <= opts.lastStep)) continue
    // HOTP at the step's counter is TOTP at that step; otpauth compares in constant time.
    const delta = HOTP.validate({ token, secret: key, algorithm: params.algorithm, digits: params.digits, counter: step, window: 0 })
    if (delta === 0) return step
  }
  return null
}

/** Additional data binding a sealed secret to its factor: a ciphertext moved to another row does not open. */
const aad = (factorId: string) => `totp:${factorId}`

registerWrappedColumn({
  kind: 'totp',
  table: 'facteurs_mfa',
  id: 'id',
  organisation: 'organisation_id',
  wrapped: 'secret_chiffre',
  version: 'version_cle_maitre',
  aad,
})

/**
 * TOTP secrets are sealed by the master key itself (`app.keys`, AES-256-GCM, or a KMS),
 * like file data keys: no key material of our own to manage, and master-key rotation
 * re-wraps them the same way (the column is registered above).
 */
export function sealTotpSecret(keys: KeySource, factorId: string, secret: Buffer): Promise<WrappedKey> {
  return keys.wrap(secret, aad(factorId))
}

export function openTotpSecret(keys: KeySource, factorId: string, sealed: Buffer, masterKeyVersion: number): Promise<Buffer> {
  return keys.unwrap(sealed, masterKeyVersion, aad(factorId))
}

function toArrayBuffer(bytes: Uint8Array): ArrayBuffer {
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer
}
