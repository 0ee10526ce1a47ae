import createClient, { type Client, type ClientOptions, type MaybeOptionalInit, type Middleware } from 'openapi-fetch'
import { type Content, dispositionFilename, multipartBody } from './files.ts'
import { ArmoireProblem, unwrap } from './problem.ts'
import type { paths } from './schema.ts'

export type { components, operations, paths } from './schema.ts'
export { ArmoireProblem, type Problem, unwrap } from './problem.ts'
export { type Content, dispositionFilename } from './files.ts'

/** What the client needs of a session: the pair /auth/login, /auth/register and /auth/refresh answer. */
export interface ArmoireTokens {
  access_token: string
  refresh_token?: string
}
export type Receipt = paths['/dossiers/{id}/fichiers']['post']['responses'][201]['content']['application/json']

export interface ArmoireClientOptions extends Omit<ClientOptions, 'baseUrl' | 'fetch'> {
  baseUrl: string
  fetch?: (input: Request) => Promise<Response>
  /** A session kept from before (say, in storage); sign-ins through the client set it too. */
  tokens?: ArmoireTokens | null
  /** Told of every new pair (sign-in, refresh) and of the session's end (`null`: logout, refresh refused). */
  onTokens?: (tokens: ArmoireTokens | null) => void | Promise<void>
  /**
   * For a front end that keeps the session itself (an auth library, a shared store): asked for
   * the access token before every request, instead of the tokens the client keeps; the client
   * then neither keeps nor renews any.
   */
  getToken?: () => string | null | undefined | Promise<string | null | undefined>
}

export interface UploadOptions {
  /** The document's name; by default the file's name. */
  nom?: string
  /** The file name of the part (a File's own name, else `nom`, else "fichier"). */
  filename?: string
  /** The content type (a Blob's own type, else application/octet-stream). */
  type?: string
  /** The SHA-256 (hex) the content must have: the upload is refused, and nothing kept, if it differs. */
  sha256?: string
  signal?: AbortSignal
}

export interface DownloadOptions {
  /** A version number; the current version by default. */
  version?: number
  /** One range, `bytes=0-1023`: the answer is a 206 with that slice. */
  range?: string
  signal?: AbortSignal
}

export interface Download {
  /** The content, decrypted as it streams: read it once. */
  body: ReadableStream<Uint8Array>
  filename: string | null
  type: string | null
  /** The length of this body (the slice's, for a range). */
  size: number | null
  /** The content's SHA-256, quoted: send it back as If-Range to resume safely. */
  etag: string | null
  /** 200, or 206 for a range (`contentRange` says which bytes). */
  status: number
  contentRange: string | null
  response: Response
}

// The paths whose GET answers a page: `{ items, next_cursor }`.
type GetOf<P extends keyof paths> = paths[P] extends { get: infer O } ? O : never
type JsonOf<O> = O extends { responses: { 200: { content: { 'application/json': infer B } } } } ? B : never
type PageLike = { items: unknown[]; next_cursor: string | null }
export type ListPath = { [P in keyof paths]: JsonOf<GetOf<P>> extends PageLike ? P : never }[keyof paths]
export type PageOf<P extends ListPath> = JsonOf<GetOf<P>> & PageLike
export type ItemOf<P extends ListPath> = JsonOf<GetOf<P>> extends { items: (infer I)[] } ? I : never
type Params<P extends ListPath> = NonNullable<MaybeOptionalInit<paths[P], 'get'>>['params']
/** A list's options: its path parameters, and any query parameter (every one has a server default). */
export type ListInit<P extends ListPath> = {
  params?: Omit<NonNullable<Params<P>>, 'query'> & { query?: Partial<NonNullable<NonNullable<Params<P>>['query']>> }
  signal?: AbortSignal
}

/** Paths whose 2xx answer opens a session; the client keeps the tokens they carry. */
const SIGN_IN = new Set([
  '/auth/register',
  '/auth/login',
  '/auth/2fa/challenge',
  '/auth/invitation/accepter',
  '/auth/sso/{fournisseur}/callback',
  '/auth/refresh',
])

/** The expiry of a JWT, read without verifying it (the server verifies): only to refresh before sending. */
function expiresAt(jwt: string): number | null {
  try {
    const payload = jwt.split('.')[1]
    if (!payload) return null
    const claims = JSON.parse(atob(payload.replace(/-/g, '+').replace(/_/g, '/'))) as { exp?: unknown }
    return typeof claims.exp === 'number' ? claims.exp * 1000 : null
  } catch {
    return null
  }
}

const isTokens = (value: unknown): value is ArmoireTokens & { refresh_token: string } =>
  typeof value === 'object' && value !== null &&
  typeof (value as Record<string, unknown>).access_token === 'string' &&
  typeof (value as Record<string, unknown>).refresh_token === 'string'

/**
 * A typed client of the Armoire API (openapi-fetch): every path, parameter and answer of the
 * contract, plus the session (bearer token, refreshed when it expires) and helpers for files
 * and pages.
 */
export function createArmoireClient(options: ArmoireClientOptions) {
  const { tokens: initial, onTokens, getToken, ...clientOptions } = options
  const client: Client<paths> = createClient<paths>(clientOptions)
  // The refresh goes around the middleware: it must not carry, nor try to renew, a bearer token.
  const bare = createClient<paths>(clientOptions)
  let tokens: ArmoireTokens | null = initial ?? null
  let refreshing: Promise<boolean> | null = null
  /** Requests that can be sent again after a refresh, with the token they were sent with. */
  const replays = new WeakMap<Request, { copy: Request; token: string; refreshed: boolean }>()

  async function setTokens(next: ArmoireTokens | null): Promise<void> {
    tokens = next ? { access_token: next.access_token, refresh_token: next.refresh_token ?? tokens?.refresh_token } : null
    await onTokens?.(tokens)
  }

  /** One refresh at a time, whoever asks: concurrent requests that meet an expired token share it. */
  function refresh(): Promise<boolean> {
    refreshing ??= (async () => {
      const refreshToken = tokens?.refresh_token
      if (!refreshToken) return false
      const { data, response } = await bare.POST('/auth/refresh', { body: { refresh_token: refreshToken } })
      if (data) await setTokens(data)
      // A refused refresh token ends the session; a 429 or a 503 does not.
      else if (response.status === 401) await setTokens(null)
      return data !== undefined
    })().finally(() => {
      refreshing = null
    })
    return refreshing
  }

  const session: Middleware = {
    async onRequest({ request, schemaPath }) {
      if (schemaPath === '/auth/refresh' || request.headers.has('authorization')) return
      if (getToken) {
        const token = await getToken()
        if (token) request.headers.set('authorization', `Bearer ${token}`)
        return
      }
      if (refreshing) await refreshing.catch(() => false)
      if (!tokens) return
      const expiry = expiresAt(tokens.access_token)
      const refreshed = expiry !== null && expiry <= Date.now() && tokens.refresh_token !== undefined
      if (refreshed) await refresh()
      if (!tokens) return
      request.headers.set('authorization', `Bearer ${tokens.access_token}`)
      // A multipart body may be a stream read once, or a large file: it is not kept for a second
      // try. The check above already renews a token known to have expired before it is sent.
      if (!request.headers.get('content-type')?.startsWith('multipart/')) {
        replays.set(request, { copy: request.clone(), token: tokens.access_token, refreshed })
      }
    },
    async onResponse({ request, response, schemaPath, options: merged }) {
      if (getToken) return
      if (response.ok && SIGN_IN.has(schemaPath)) {
        const body: unknown = await response.clone().json().catch(() => null)
        if (isTokens(body)) await setTokens(body)
        return
      }
      if (response.ok && schemaPath === '/auth/logout') return void (await setTokens(null))
      const replay = replays.get(request)
      if (response.status !== 401 || !replay) return
      const problem = (await response.clone().json().catch(() => null)) as { code?: unknown } | null
      if (problem?.code !== 'TOKEN_INVALID') return
      // Another request may have renewed the session meanwhile: then only the retry is left.
      // A refresh already tried for this request, and refused, is not tried again.
      if (tokens?.access_token === replay.token && (replay.refreshed || !(await refresh()))) return
      if (!tokens) return
      replay.copy.headers.set('authorization', `Bearer ${tokens.access_token}`)
      return merged.fetch(replay.copy)
    },
  }
  client.use(session)

  async function upload(target: { dossier: string } | { fichier: string }, content: Content, opts: UploadOptions = {}): Promise<Receipt> {
    const ownName = typeof File !== 'undefined' && content instanceof File ? content.name : undefined
    const nom = opts.nom ?? ownName ?? opts.filename
    const filename = opts.filename ?? ownName ?? nom ?? 'fichier'
    const fields: Record<string, string> = {}
    // The name travels as a field, not only as the part's file name, whose charset servers guess.
    if ('dossier' in target && nom !== undefined) fields.nom = nom
    if (opts.sha256) fields.sha256 = opts.sha256
    const { body, contentType } = multipartBody(fields, content, filename, opts.type)
    // The form is built above; openapi-fetch sends it as it is, with the typed path and answer.
    const init = {
      body: { fichier: filename, ...fields },
      bodySerializer: () => body,
      headers: contentType ? { 'content-type': contentType } : {},
      signal: opts.signal,
      // A redirected upload could not be sent again anyway; and following redirects makes
      // Node's fetch (undici) tee the body and keep the whole file in memory (nodejs/undici#4058).
      redirect: 'error' as const,
      // Node's fetch sends a stream only half-duplex, and says so.
      ...(body instanceof ReadableStream ? { duplex: 'half' as const } : {}),
    }
    const result =
      'dossier' in target
        ? await client.POST('/dossiers/{id}/fichiers', { ...init, params: { path: { id: target.dossier } } })
        : await client.POST('/fichiers/{id}/version', { ...init, params: { path: { id: target.fichier } } })
    return unwrap(result)
  }

  async function download(fichier: string, opts: DownloadOptions = {}): Promise<Download> {
    const header = opts.range ? { range: opts.range } : undefined
    const init = { parseAs: 'stream', signal: opts.signal } as const
    const result =
      opts.version === undefined
        ? await client.GET('/fichiers/{id}/contenu', { ...init, params: { path: { id: fichier }, header } })
        : await client.GET('/fichiers/{id}/versions/{n}/contenu', { ...init, params: { path: { id: fichier, n: opts.version }, header } })
    const { response } = result
    if (!response.ok) throw ArmoireProblem.fromAnswer(response, result.error)
    const length = response.headers.get('content-length')
    return {
      body: response.body ?? new ReadableStream({ start: (c) => c.close() }),
      filename: dispositionFilename(response.headers.get('content-disposition')),
      type: response.headers.get('content-type'),
      size: length === null ? null : Number(length),
      etag: response.headers.get('etag'),
      status: response.status,
      contentRange: response.headers.get('content-range'),
      response,
    }
  }

  // A path of the union cannot pick one overload of GET: pages are fetched through this view of it.
  const getPage = client.GET as unknown as (path: string, init: object) => Promise<{ data?: PageLike; error?: unknown; response: Response }>

  /** Every page of a list, following `next_cursor` until the last. */
  async function* pages<P extends ListPath>(path: P, init: ListInit<P> = {}): AsyncGenerator<PageOf<P>, void, undefined> {
    let cursor: string | null = null
    do {
      const query: Record<string, unknown> = { ...init.params?.query, ...(cursor === null ? {} : { cursor }) }
      const page = unwrap(await getPage(path, { ...init, params: { ...init.params, query } }))
      yield page as PageOf<P>
      cursor = page.next_cursor
    } while (cursor !== null)
  }

  /** Every item of a list, page after page. */
  async function* items<P extends ListPath>(path: P, init: ListInit<P> = {}): AsyncGenerator<ItemOf<P>, void, undefined> {
    for await (const page of pages(path, init)) yield* page.items as ItemOf<P>[]
  }

  return Object.assign(client, {
    /** The session's tokens, as last renewed. */
    tokens: (): ArmoireTokens | null => tokens,
    setTokens,
    /** Renews the tokens now with the refresh token; false when the server refused. */
    refresh,
    /** Uploads a file into a dossier (`{ dossier }`) or a new version of a file (`{ fichier }`); answers the receipt. */
    upload,
    download,
    pages,
    items,
  })
}

export type ArmoireClient = ReturnType<typeof createArmoireClient>

/** The same, under the name the issue and openapi-fetch's users look for. */
export { createArmoireClient as createClient }
