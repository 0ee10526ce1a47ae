import type { components } from './schema.ts'

/** An RFC 9457 problem as Armoire answers it: `code` is stable, `title` and `detail` are for people. */
export type Problem = components['schemas']['Problem']

/** A non-2xx answer, thrown with its problem: `catch (e) { if (e instanceof ArmoireProblem && e.code === 'NAME_CONFLICT') … }`. */
export class ArmoireProblem extends Error {
  override name = 'ArmoireProblem'
  readonly status: number
  readonly code: string
  readonly title: string
  readonly detail: string
  /** The fields a 400 found wrong, when it names them. */
  readonly errors: Problem['errors']
  /** The problem as received; an answer that was not problem+json (a proxy's 502) has a synthesised one. */
  readonly body: Problem

  constructor(body: Problem) {
    super(`${body.status} ${body.code}: ${body.detail || body.title}`)
    this.body = body
    this.status = body.status
    this.code = body.code
    this.title = body.title
    this.detail = body.detail
    this.errors = body.errors
  }

  /** The problem of an answer: its problem+json body, or one made from the status when it has none. */
  static fromAnswer(response: Response, error: unknown): ArmoireProblem {
    if (isProblem(error)) return new ArmoireProblem(error)
    return new ArmoireProblem({
      type: 'about:blank',
      title: response.statusText || `HTTP ${response.status}`,
      status: response.status,
      detail: typeof error === 'string' ? error.slice(0, 500) : '',
      code: `HTTP_${response.status}`,
      request_id: response.headers.get('x-request-id') ?? '',
    })
  }
}

function isProblem(value: unknown): value is Problem {
  if (typeof value !== 'object' || value === null) return false
  const v = value as Record<string, unknown>
  return typeof v.code === 'string' && typeof v.status === 'number' && typeof v.title === 'string'
}

/**
 * The data of a 2xx answer from any client call; anything else throws its ArmoireProblem.
 * `const armoire = unwrap(await client.POST('/armoires', { body: { nom: 'RH' } }))`
 */
export function unwrap<T>(result: { data?: T; error?: unknown; response: Response }): T {
  if (!result.response.ok) throw ArmoireProblem.fromAnswer(result.response, result.error)
  return result.data as T
}
