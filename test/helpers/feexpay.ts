import { randomBytes } from 'node:crypto'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { TestContext } from './build.ts'

/**
 * A local FeexPay speaking the v2 protocol of ../shared/FEEXPAY.md: Bearer key, `shop` in the
 * body, `requesttopay/{network}`, `requesttopay/init`, `single/status/{reference}`, statuses
 * PENDING / SUCCESSFUL / FAILED, errors as `{statusCode, message, code}`. Tests script it.
 */
export interface FakeTransaction {
  reference: string
  network: string
  phoneNumber: string
  amount: number
  status: 'PENDING' | 'SUCCESSFUL' | 'FAILED'
  reason: string | null
  callback_info: string | null
  description: string | null
  payment_url: string | null
  date: string
}

/** How the next payment request is answered. */
export type Behaviour =
  | { kind: 'pending' }
  /** Moov's immediate final answer. */
  | { kind: 'final'; status: 'SUCCESSFUL' | 'FAILED'; reason?: string }
  | { kind: 'refuse'; status: number; code: string; message: string | string[] }
  /** Answers (pending) after `ms`: FeexPay waiting for the customer's confirmation. */
  | { kind: 'slow'; ms: number }

export interface FakeFeexPay {
  url: string
  apiKey: string
  shopId: string
  transactions: Map<string, FakeTransaction>
  /** Every request received, in order. */
  requests: { method: string; path: string; authorization: string | undefined; body: Record<string, unknown> | null }[]
  next(behaviour: Behaviour): void
  /** The customer confirmed or refused on the phone. */
  settle(reference: string, status: 'SUCCESSFUL' | 'FAILED', reason?: string): void
  /** While down, every call answers 503 (or the socket is cut with `reset`). */
  down(mode: 'http503' | 'reset' | false): void
  /** The body FeexPay's webhook posts for a transaction, with overrides (a forger's). */
  webhookBody(reference: string, overrides?: Record<string, unknown>): Record<string, unknown>
  byCallback(callbackInfo: string): FakeTransaction | undefined
}

const REDIRECT = new Set(['orange_ci', 'wave_ci', 'moov_ci', 'orange_sn', 'free_sn', 'wave_sn', 'orange_bf', 'wave_bf', 'orange_ml'])

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body))
}

function error(res: ServerResponse, status: number, code: string, message: string | string[]): void {
  send(res, status, { statusCode: status, message, code })
}

async function readJson(req: IncomingMessage): Promise<Record<string, unknown> | null> {
  const chunks: Buffer[] = []
  for await (const chunk of req) chunks.push(chunk as Buffer)
  if (chunks.length === 0) return null
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>
  } catch {
    return null
  }
}

export async function startFakeFeexPay(t: TestContext): Promise<FakeFeexPay> {
  const apiKey = `fp_test_${randomBytes(12).toString('hex')}`
  const shopId = randomBytes(12).toString('hex')
  const transactions = new Map<string, FakeTransaction>()
  const requests: FakeFeexPay['requests'] = []
  const script: Behaviour[] = []
  let outage: 'http503' | 'reset' | false = false
  let url = ''
  const timers = new Set<NodeJS.Timeout>()

  const server = createServer(async (req, res) => {
    const path = (req.url ?? '').split('?')[0] ?? ''
    const body = req.method === 'POST' ? await readJson(req) : null
    requests.push({ method: req.method ?? '', path, authorization: req.headers.authorization, body })
    if (outage === 'reset') return req.socket.destroy()
    if (outage === 'http503') return error(res, 503, 'ERR_SERVICE_UNAVAILABLE', 'Service Unavailable')
    const authorised = req.headers.authorization === `Bearer ${apiKey}`

    const status = /^\/api\/transactions\/public\/single\/status\/([^/]+)$/.exec(path)
    if (req.method === 'GET' && status) {
      // Without the Bearer token FeexPay "fails quietly": nothing useful comes back.
      if (!authorised) return send(res, 200, {})
      const tx = transactions.get(decodeURIComponent(status[1] as string))
      if (!tx) return error(res, 404, 'ERR_TRANSACTION_NOT_FOUND', 'Transaction not found')
      return send(res, 200, {
        reference: tx.reference,
        amount: tx.amount,
        phoneNumber: tx.phoneNumber,
        status: tx.status,
        callback_info: tx.callback_info,
        reason: tx.reason,
        date: tx.date,
      })
    }

    const pay = /^\/api\/transactions\/public\/requesttopay\/([^/]+)$/.exec(path)
    if (req.method !== 'POST' || !pay) return error(res, 404, 'ERR_NOT_FOUND', `Cannot ${req.method} ${path}`)
    if (!authorised) return error(res, 401, 'ERR_INVALID_API_KEY', 'Invalid API key')
    if (!body) return error(res, 400, 'ERR_BAD_REQUEST', 'Invalid JSON body')
    if (body.shop !== shopId) return error(res, 400, 'ERR_INVALID_SHOP', 'Unknown shop')
    const amount = body.amount
    if (typeof amount !== 'number' || !Number.isInteger(amount) || amount < 100 || amount > 2_000_000) {
      return error(res, 400, 'ERR_INVALID_AMOUNT', ['amount must be an integer between 100 and 2000000'])
    }
    const network = decodeURIComponent(pay[1] as string)
    const card = network === 'init'
    const phone = String(body.phoneNumber ?? '')
    if (!/^\d{8,15}$/.test(phone)) return error(res, 400, 'ERR_INVALID_PHONE_NUMBER', 'Invalid phone number')
    if (!card && typeof body.description === 'string' && !/^[A-Za-z0-9 ]*$/.test(body.description)) {
      return error(res, 400, 'ERR_INVALID_DESCRIPTION', 'description must contain letters, digits and spaces only')
    }
    const behaviour = script.shift() ?? { kind: 'pending' }
    if (behaviour.kind === 'refuse') return error(res, behaviour.status, behaviour.code, behaviour.message)
    const reference = `FP-${randomBytes(8).toString('hex').toUpperCase()}`
    const tx: FakeTransaction = {
      reference,
      network,
      phoneNumber: phone,
      amount,
      status: behaviour.kind === 'final' ? behaviour.status : 'PENDING',
      reason: behaviour.kind === 'final' ? (behaviour.reason ?? null) : null,
      callback_info: typeof body.callback_info === 'string' ? body.callback_info : null,
      description: typeof body.description === 'string' ? body.description : null,
      payment_url: card || REDIRECT.has(network) ? `${url}/pay/${reference}` : null,
      date: new Date().toISOString(),
    }
    transactions.set(reference, tx)
    const answer = () =>
      send(res, 200, {
        reference,
        status: tx.status,
        amount,
        callback_info: tx.callback_info,
        ...(tx.payment_url ? { payment_url: tx.payment_url } : {}),
        ...(tx.reason ? { reason: tx.reason } : {}),
      })
    if (behaviour.kind === 'slow') {
      const timer = setTimeout(() => {
        timers.delete(timer)
        if (!res.destroyed) answer()
      }, behaviour.ms)
      timers.add(timer)
      return
    }
    answer()
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  url = `http://127.0.0.1:${port}`
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        for (const timer of timers) clearTimeout(timer)
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  )

  return {
    url,
    apiKey,
    shopId,
    transactions,
    requests,
    next: (behaviour) => void script.push(behaviour),
    settle(reference, status, reason) {
      const tx = transactions.get(reference)
      if (!tx) throw new Error(`no fake transaction ${reference}`)
      tx.status = status
      tx.reason = reason ?? null
    },
    down: (mode) => void (outage = mode),
    webhookBody(reference, overrides = {}) {
      const tx = transactions.get(reference)
      return {
        reference,
        order_id: null,
        status: tx?.status ?? 'SUCCESSFUL',
        amount: tx?.amount ?? 0,
        callback_info: tx?.callback_info ?? null,
        first_name: 'Client',
        last_name: 'Test',
        email: null,
        type: 'Paiement',
        phoneNumber: tx?.phoneNumber ?? null,
        date: new Date().toISOString(),
        reseau: tx?.network ?? null,
        description: tx?.description ?? null,
        reason: tx?.reason ?? null,
        ...overrides,
      }
    },
    byCallback: (callbackInfo) => [...transactions.values()].find((tx) => tx.callback_info === callbackInfo),
  }
}

/** The configuration pointing the app at a fake FeexPay. */
export function feexpayEnv(fake: FakeFeexPay, extra: Record<string, string> = {}): Record<string, string> {
  return {
    FEEXPAY_BASE_URL: fake.url,
    FEEXPAY_API_KEY: fake.apiKey,
    FEEXPAY_SHOP_ID: fake.shopId,
    FEEXPAY_WEBHOOK_SECRET: 'secret-de-notification-de-test-0123456789',
    ...extra,
  }
}
