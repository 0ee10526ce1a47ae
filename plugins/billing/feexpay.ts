/**
 * FeexPay's v2 API as ../shared/FEEXPAY.md describes it: Bearer key, `shop` in the body,
 * `requesttopay/{network}` for mobile money, `requesttopay/init` for cards, the status by
 * reference. 4xx answers are refusals, 5xx, 429 and network errors are outages, and a
 * timeout is neither: the customer may still confirm on the phone.
 */

export interface FeexPayConfig {
  baseUrl: string
  apiKey: string
  shopId: string
  timeoutMs: number
}

export type FeexStatus = 'PENDING' | 'SUCCESSFUL' | 'FAILED'

export interface FeexTransaction {
  reference: string
  status: FeexStatus
  amount: number | null
  callbackInfo: string | null
  reason: string | null
  paymentUrl: string | null
}

/** FeexPay said no (invalid number, low balance…): final for this request. */
export class FeexPayRefused extends Error {
  override name = 'FeexPayRefused'
  constructor(
    readonly httpStatus: number,
    readonly feexCode: string | null,
    readonly reason: string,
  ) {
    super(`FeexPay refused (${httpStatus} ${feexCode ?? ''}): ${reason}`)
  }
}

/** FeexPay could not be asked: unreachable, 5xx, 429, or an answer we cannot read. */
export class FeexPayUnavailable extends Error {
  override name = 'FeexPayUnavailable'
}

/** No answer in time: the request may still succeed, so this is never a failure. */
export class FeexPayTimeout extends FeexPayUnavailable {
  override name = 'FeexPayTimeout'
}

/** Operators that answer a `payment_url` the customer must open (FEEXPAY.md). */
export const REDIRECT_NETWORKS: ReadonlySet<string> = new Set(['orange_ci', 'wave_ci', 'moov_ci', 'orange_sn', 'free_sn', 'wave_sn', 'orange_bf', 'wave_bf', 'orange_ml'])

/** Country code and national number length per network's country: the number is `code` + `digits` digits. */
const COUNTRY: Record<string, { code: string; digits: number; pattern?: RegExp; country: string }> = {
  bj: { code: '229', digits: 10, pattern: /^01\d{8}$/, country: 'Bénin' },
  tg: { code: '228', digits: 8, country: 'Togo' },
  ci: { code: '225', digits: 10, country: 'Côte d’Ivoire' },
  sn: { code: '221', digits: 9, country: 'Sénégal' },
  bf: { code: '226', digits: 8, country: 'Burkina Faso' },
  cg: { code: '242', digits: 9, country: 'Congo' },
  ml: { code: '223', digits: 8, country: 'Mali' },
}

function countryOf(network: string): (typeof COUNTRY)[string] {
  const suffix = /_(\w\w)$/.exec(network)?.[1]
  // mtn, moov, celtiis_bj, coris: Benin's operators carry no suffix or _bj.
  return COUNTRY[suffix && suffix in COUNTRY ? suffix : 'bj'] as (typeof COUNTRY)[string]
}

/**
 * The phone number as FeexPay takes it (digits, country code first), or a French sentence
 * saying what is wrong with it for that network.
 */
export function normalisePhone(network: string, raw: string): { ok: true; phone: string } | { ok: false; reason: string } {
  const digits = raw.replace(/[\s+]/g, '')
  const c = countryOf(network)
  if (!/^\d+$/.test(digits)) return { ok: false, reason: 'le numéro ne doit contenir que des chiffres' }
  const national = digits.startsWith(c.code) ? digits.slice(c.code.length) : digits
  if (national.length !== c.digits || (c.pattern && !c.pattern.test(national))) {
    const example = c.pattern ? ` (${c.code} puis 10 chiffres commençant par 01)` : ` (${c.code} puis ${c.digits} chiffres)`
    return { ok: false, reason: `numéro invalide pour ${network} : ${c.country}${example}` }
  }
  return { ok: true, phone: `${c.code}${national}` }
}

/** FeexPay's spellings of a status, to the three that matter. Anything unknown is still pending. */
export function normaliseStatus(value: unknown): FeexStatus {
  const s = String(value ?? '').trim().toUpperCase()
  if (s === 'SUCCESSFUL' || s === 'SUCCESS') return 'SUCCESSFUL'
  if (s === 'FAILED') return 'FAILED'
  return 'PENDING'
}

/** MTN accepts letters, digits and spaces only. */
export function cleanDescription(text: string): string {
  return text
    .normalize('NFKD')
    .replace(/\p{M}/gu, '')
    .replace(/[^A-Za-z0-9 ]+/g, ' ')
    .replace(/\s+/g, ' ')
    .trim()
    .slice(0, 100)
}

function messageOf(body: unknown): string {
  const m = (body as { message?: unknown } | null)?.message
  if (Array.isArray(m)) return m.map(String).join(' ; ')
  return typeof m === 'string' && m ? m : 'refus sans motif'
}

function transactionOf(body: Record<string, unknown>, fallbackReference?: string): FeexTransaction {
  const reference = typeof body.reference === 'string' && body.reference ? body.reference : fallbackReference
  if (!reference) throw new FeexPayUnavailable('FeexPay answered without a reference')
  const amount = Number(body.amount)
  return {
    reference,
    status: normaliseStatus(body.status),
    amount: Number.isFinite(amount) && body.amount !== null && body.amount !== undefined ? amount : null,
    callbackInfo: typeof body.callback_info === 'string' ? body.callback_info : null,
    reason: typeof body.reason === 'string' && body.reason ? body.reason : null,
    paymentUrl: typeof body.payment_url === 'string' && body.payment_url ? body.payment_url : null,
  }
}

export interface MobileMoneyRequest {
  network: string
  phoneNumber: string
  amount: number
  description: string
  callbackInfo: string
  firstName?: string
  lastName?: string
  returnUrl?: string
  cancelUrl?: string
}

export interface CardRequest {
  amount: number
  currency: 'XOF'
  firstName: string
  lastName: string
  email: string
  phoneNumber: string
  city: string
  zip: string
  country: string
  callbackInfo: string
}

export function createFeexPay(config: FeexPayConfig) {
  const base = config.baseUrl.replace(/\/+$/, '')

  async function call(method: 'GET' | 'POST', path: string, body?: Record<string, unknown>, timeoutMs = config.timeoutMs): Promise<Record<string, unknown>> {
    if (!config.apiKey || !config.shopId) throw new FeexPayUnavailable('FeexPay is not configured (FEEXPAY_API_KEY, FEEXPAY_SHOP_ID)')
    let res: Response
    try {
      res = await fetch(`${base}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${config.apiKey}`,
          accept: 'application/json',
          ...(body ? { 'content-type': 'application/json' } : {}),
        },
        ...(body ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(timeoutMs),
        redirect: 'error',
      })
    } catch (error) {
      const name = (error as Error).name
      if (name === 'TimeoutError' || name === 'AbortError') throw new FeexPayTimeout(`FeexPay did not answer within ${timeoutMs} ms`)
      throw new FeexPayUnavailable(`FeexPay unreachable: ${(error as Error).message}`, { cause: error })
    }
    let parsed: unknown
    try {
      parsed = await res.json()
    } catch {
      parsed = null
    }
    if (res.status >= 500 || res.status === 429) throw new FeexPayUnavailable(`FeexPay answered ${res.status}`)
    if (res.status >= 400) {
      const code = (parsed as { code?: unknown } | null)?.code
      throw new FeexPayRefused(res.status, typeof code === 'string' ? code : null, messageOf(parsed))
    }
    if (!parsed || typeof parsed !== 'object') throw new FeexPayUnavailable(`FeexPay answered ${res.status} without JSON`)
    return parsed as Record<string, unknown>
  }

  return {
    /** Mobile money: may block until the customer confirms (or FEEXPAY_TIMEOUT_MS passes). */
    async requestToPay(req: MobileMoneyRequest): Promise<FeexTransaction> {
      const body = await call('POST', `/api/transactions/public/requesttopay/${encodeURIComponent(req.network)}`, {
        phoneNumber: req.phoneNumber,
        amount: req.amount,
        shop: config.shopId,
        description: cleanDescription(req.description),
        callback_info: req.callbackInfo,
        ...(req.firstName ? { first_name: req.firstName } : {}),
        ...(req.lastName ? { last_name: req.lastName } : {}),
        ...(req.returnUrl ? { return_url: req.returnUrl } : {}),
        ...(req.cancelUrl ? { cancel_url: req.cancelUrl } : {}),
      })
      return transactionOf(body)
    },
    async cardInit(req: CardRequest): Promise<FeexTransaction> {
      const body = await call('POST', '/api/transactions/public/requesttopay/init', {
        shop: config.shopId,
        amount: req.amount,
        currency: req.currency,
        first_name: req.firstName,
        last_name: req.lastName,
        email: req.email,
        phoneNumber: req.phoneNumber,
        city: req.city,
        zip: req.zip,
        country: req.country,
        callback_info: req.callbackInfo,
      })
      return transactionOf({ status: 'PENDING', ...body })
    },
    /** The status FeexPay holds for a reference: the only status Armoire believes. */
    async status(reference: string): Promise<FeexTransaction> {
      // A status read is quick; only the payment request may block for minutes.
      const body = await call('GET', `/api/transactions/public/single/status/${encodeURIComponent(reference)}`, undefined, Math.min(config.timeoutMs, 20_000))
      return transactionOf(body, reference)
    },
  }
}

export type FeexPay = ReturnType<typeof createFeexPay>
