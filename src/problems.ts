import { randomUUID } from 'node:crypto'
import type { Socket } from 'node:net'
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import FindMyWay, { type HTTPMethod } from 'find-my-way'
import type { Problem } from '../openapi/common.ts'
import { isStorageFull } from './blob/store.ts'
import { isDatabaseUnavailable } from './db.ts'
import { type ErrorCode, Errors } from './errors.ts'
import { validationProblem } from './validation.ts'

/** Every problem's title is French, by status. */
const TITLES: Record<number, string> = {
  400: 'Requête invalide',
  401: 'Authentification requise',
  403: 'Accès refusé',
  404: 'Introuvable',
  405: 'Méthode non autorisée',
  406: 'Format de réponse non disponible',
  408: 'Délai de requête dépassé',
  409: 'Conflit',
  410: 'Disparu',
  411: 'Longueur requise',
  412: 'Précondition non remplie',
  413: 'Contenu trop volumineux',
  414: 'Adresse trop longue',
  415: 'Type de contenu non pris en charge',
  416: 'Plage non satisfiable',
  422: 'Requête non traitable',
  423: 'Ressource verrouillée',
  428: 'Précondition requise',
  429: 'Trop de requêtes',
  431: 'En-têtes trop volumineux',
  500: 'Erreur interne du serveur',
  501: 'Non implémenté',
  502: 'Service tiers défaillant',
  503: 'Service indisponible',
  504: 'Service tiers trop lent',
  507: 'Stockage insuffisant',
}

export function titleOf(status: number): string {
  return TITLES[status] ?? (status >= 500 ? 'Erreur du serveur' : 'Requête refusée')
}

interface Translation {
  code: ErrorCode
  status?: number
  detail: (request: FastifyRequest) => string
}

const contentType = (request: FastifyRequest) => request.headers['content-type'] ?? 'aucun'

/** Fastify's and its plugins' own refusals, in the catalogue's codes and in French. */
const FOREIGN: Record<string, Translation> = {
  FST_ERR_CTP_BODY_TOO_LARGE: { code: 'PAYLOAD_TOO_LARGE', detail: () => new Errors.PAYLOAD_TOO_LARGE().message },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: {
    code: 'UNSUPPORTED_MEDIA_TYPE',
    detail: (r) =>
      new Errors.UNSUPPORTED_MEDIA_TYPE(
        `${contentType(r)} (un corps JSON s’envoie avec l’en-tête Content-Type: application/json)`,
      ).message,
  },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: {
    code: 'BAD_REQUEST',
    detail: () => new Errors.BAD_REQUEST('la longueur annoncée (Content-Length) ne correspond pas au corps reçu').message,
  },
  FST_ERR_CTP_EMPTY_JSON_BODY: {
    code: 'BAD_REQUEST',
    detail: () => new Errors.BAD_REQUEST('le corps est vide alors que Content-Type annonce du JSON').message,
  },
  FST_ERR_CTP_INVALID_JSON_BODY: { code: 'BAD_REQUEST', detail: () => new Errors.BAD_REQUEST('le corps n’est pas du JSON valide').message },
  FST_ERR_BAD_URL: {
    code: 'URL_INVALID',
    detail: () => new Errors.URL_INVALID().message,
  },
  FST_ERR_MAX_PARAM_LENGTH: { code: 'URI_TOO_LONG', status: 414, detail: () => new Errors.URI_TOO_LONG().message },
  // @fastify/multipart
  FST_INVALID_MULTIPART_CONTENT_TYPE: {
    code: 'UNSUPPORTED_MEDIA_TYPE',
    status: 415,
    detail: (r) => new Errors.UNSUPPORTED_MEDIA_TYPE(`${contentType(r)} (un dépôt s’envoie en multipart/form-data)`).message,
  },
  FST_REQ_FILE_TOO_LARGE: { code: 'PAYLOAD_TOO_LARGE', detail: () => 'Le fichier dépasse la taille autorisée' },
  FST_PARTS_LIMIT: { code: 'PAYLOAD_TOO_LARGE', detail: () => 'Le formulaire multipart a trop de parties' },
  FST_FILES_LIMIT: { code: 'PAYLOAD_TOO_LARGE', detail: () => 'Un seul fichier par dépôt' },
  FST_FIELDS_LIMIT: { code: 'PAYLOAD_TOO_LARGE', detail: () => 'Le formulaire multipart a trop de champs' },
  FST_PROTO_VIOLATION: { code: 'MULTIPART_INVALID', detail: () => new Errors.MULTIPART_INVALID('un nom de champ est réservé (__proto__, constructor)').message },
  FST_INVALID_JSON_FIELD_ERROR: {
    code: 'MULTIPART_INVALID',
    status: 400,
    detail: () => new Errors.MULTIPART_INVALID('un champ annoncé en JSON n’est pas du JSON valide').message,
  },
  FST_MP_PREMATURE_CLOSE: { code: 'MULTIPART_INVALID', detail: () => new Errors.MULTIPART_INVALID('la requête s’est terminée avant la fin du formulaire').message },
}

/**
 * Busboy's parse errors carry no code: a body that does not follow its own multipart framing
 * (no boundary, an empty or oversized one, no closing boundary).
 */
const MULTIPART_SYNTAX: ReadonlyArray<[RegExp, string]> = [
  [/^Multipart: Boundary not found$|^Boundary required$/, 'l’en-tête Content-Type ne donne pas de boundary'],
  [/^The needle cannot/, 'le boundary doit compter de 1 à 70 caractères'],
  [/unexpected end of multipart data/i, 'le corps s’arrête avant le boundary de fin'],
]

function multipartSyntax(error: Error): string | null {
  if ('statusCode' in error || 'code' in error) return null
  for (const [pattern, reason] of MULTIPART_SYNTAX) if (pattern.test(error.message)) return reason
  return null
}

const BY_STATUS: Record<number, ErrorCode> = {
  400: 'BAD_REQUEST',
  401: 'UNAUTHENTICATED',
  403: 'FORBIDDEN',
  404: 'NOT_FOUND',
  405: 'METHOD_NOT_ALLOWED',
  408: 'REQUEST_TIMEOUT',
  409: 'CONFLICT',
  413: 'PAYLOAD_TOO_LARGE',
  414: 'URI_TOO_LONG',
  415: 'UNSUPPORTED_MEDIA_TYPE',
  429: 'RATE_LIMITED',
  431: 'HEADERS_TOO_LARGE',
  503: 'SERVICE_UNAVAILABLE',
}

/** What to say of a refusal nobody translated: its status, in French. */
const GENERIC_DETAIL: Record<number, string> = {
  400: 'La requête est mal formée',
  401: 'Authentification requise',
  403: 'Cette action n’est pas permise',
  404: 'Ressource introuvable',
  405: 'Méthode non autorisée',
  406: 'Aucun format de réponse acceptable n’est disponible',
  408: 'La requête n’est pas arrivée à temps',
  413: 'Le corps de la requête dépasse la taille autorisée',
  414: 'L’adresse demandée est trop longue',
  415: 'Type de contenu non pris en charge',
  429: 'Trop de requêtes',
  431: 'Les en-têtes de la requête sont trop volumineux',
}

export function problemBody(
  request: FastifyRequest | { id: string },
  status: number,
  code: string,
  detail: string,
  errors?: Problem['errors'],
): Problem {
  return {
    type: `urn:armoire:problem:${code.toLowerCase().replaceAll('_', '-')}`,
    title: titleOf(status),
    status,
    detail,
    code,
    request_id: request.id,
    ...(errors ? { errors } : {}),
  }
}

declare module 'fastify' {
  interface FastifyReply {
    /** The code of the problem this reply answers, for the metrics; null when it is no problem. */
    problemCode: string | null
  }
}

export function sendProblem(reply: FastifyReply, problem: Problem): FastifyReply {
  reply.problemCode = problem.code
  return reply.code(problem.status).type('application/problem+json').send(problem)
}

interface Answer {
  status: number
  code: string
  detail: string
  errors?: Problem['errors']
  /** Seconds, for a 503 or a 429. */
  retryAfter?: number
}

/** PostgreSQL restarting or failing over takes seconds: clients come back soon, not all at once a minute later. */
const DATABASE_RETRY_AFTER_S = 5
const STORAGE_RETRY_AFTER_S = 30

/** An outage behind `error` (or its causes): the request was sound and may be sent again. */
function outageOf(error: Error): Answer | null {
  for (let e: unknown = error, depth = 0; e instanceof Error && depth < 4; e = e.cause, depth++) {
    if (isDatabaseUnavailable(e)) {
      return { status: 503, code: 'DATABASE_UNAVAILABLE', detail: new Errors.DATABASE_UNAVAILABLE().message, retryAfter: DATABASE_RETRY_AFTER_S }
    }
    if (isStorageFull(e)) return { status: 507, code: 'STORAGE_FULL', detail: new Errors.STORAGE_FULL().message }
  }
  return null
}

/** What the client is told of an error: its status, stable code and French detail. */
function answerOf(error: FastifyError, request: FastifyRequest): Answer {
  if (error.validation) {
    const { detail, errors } = validationProblem(error.validation, error.validationContext ?? 'body')
    return { status: 400, code: 'VALIDATION_ERROR', detail, errors }
  }
  const foreign = error.code ? FOREIGN[error.code] : undefined
  if (foreign) {
    const status = foreign.status ?? (error.statusCode && error.statusCode >= 400 ? error.statusCode : 400)
    return { status, code: foreign.code, detail: foreign.detail(request) }
  }
  const multipart = multipartSyntax(error)
  if (multipart) return { status: 400, code: 'MULTIPART_INVALID', detail: new Errors.MULTIPART_INVALID(multipart).message }
  const outage = outageOf(error)
  if (outage) return outage
  const raw = error.statusCode ?? 500
  const status = raw >= 400 && raw < 600 ? raw : 500
  if (error.code && error.code in Errors) {
    const { fields } = error as { fields?: Problem['errors'] }
    if (status >= 500) {
      const retryAfter = error.code === 'STORAGE_UNAVAILABLE' ? STORAGE_RETRY_AFTER_S : undefined
      return { status, code: error.code, detail: new Errors[error.code as ErrorCode]().message, ...(retryAfter ? { retryAfter } : {}) }
    }
    if (!fields) return { status, code: error.code, detail: error.message }
    const said = fields.map((f) => `${f.field} : ${f.message}`).join(' ; ')
    return { status, code: error.code, detail: `${error.message} — ${said}`, errors: fields }
  }
  if (status >= 500) return { status, code: 'INTERNAL_ERROR', detail: new Errors.INTERNAL_ERROR().message }
  // A 4xx from a library, in its own words: the words are English, the status is what matters.
  if (error instanceof SyntaxError) return { status, code: 'BAD_REQUEST', detail: new Errors.BAD_REQUEST('le corps n’est pas du JSON valide').message }
  return { status, code: BY_STATUS[status] ?? 'BAD_REQUEST', detail: GENERIC_DETAIL[status] ?? 'La requête est refusée' }
}

const METHODS: readonly HTTPMethod[] = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']

/**
 * A client error the HTTP parser refused before any request existed (oversized headers, a
 * malformed request line, a request too slow to arrive): answered as a problem on the raw
 * socket, logged at info like every other refusal.
 */
export function clientErrorHandler(this: FastifyInstance, error: NodeJS.ErrnoException, socket: Socket): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return
  const [status, code, detail] =
    error.code === 'HPE_HEADER_OVERFLOW'
      ? [431, 'HEADERS_TOO_LARGE', new Errors.HEADERS_TOO_LARGE().message]
      : error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? [408, 'REQUEST_TIMEOUT', new Errors.REQUEST_TIMEOUT().message]
        : [400, 'BAD_REQUEST', new Errors.BAD_REQUEST('la requête HTTP est mal formée').message]
  const id = randomUUID()
  this.log.info({ request_id: id, code, status, reason: error.code }, 'request refused by the HTTP parser')
  if (socket.writable) {
    const body = JSON.stringify(problemBody({ id }, status, code, detail))
    socket.write(
      `HTTP/1.1 ${status} ${code}\r\nContent-Type: application/problem+json; charset=utf-8\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nX-Request-Id: ${id}\r\nX-Content-Type-Options: nosniff\r\n` +
        `Connection: close\r\n\r\n${body}`,
    )
  }
  socket.destroy()
}

/** Fastify's refusals before routing (a URL that does not decode, a path parameter too long). */
export function frameworkErrors(error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  const { status, code, detail } = answerOf(error, request)
  request.log.info({ code, status, reason: error.message }, 'request refused')
  void sendProblem(reply, problemBody(request, status, code, detail))
}

/** Every error becomes an RFC 9457 problem; a 5xx says nothing of its cause to the client. */
export const problems = fp(
  async (app: FastifyInstance) => {
    // The routes, method by method, to tell "no such operation" (404) from "not with this method" (405).
    app.decorateReply('problemCode', null)
    const routes = FindMyWay()
    const noop = () => {}
    app.addHook('onRoute', (route) => {
      for (const method of [route.method].flat() as HTTPMethod[]) if (!routes.hasRoute(method, route.url)) routes.on(method, route.url, noop)
    })

    app.setErrorHandler((error: FastifyError, request, reply) => {
      const { status, code, detail, errors, retryAfter: due } = answerOf(error, request)
      // Logged once, here, with the request id its logger carries; a refusal is not an error.
      if (status >= 500) request.log.error({ err: error, code, status }, 'request failed')
      else request.log.info({ code, status, reason: error.message }, 'request refused')
      const { retryAfter } = error as { retryAfter?: number }
      if (status === 429 || status === 503) reply.header('retry-after', String(retryAfter ?? due ?? 60))
      return sendProblem(reply, problemBody(request, status, code, detail, errors))
    })

    app.setNotFoundHandler((request, reply) => {
      const path = request.url.split('?')[0] ?? '/'
      const allowed = METHODS.filter((m) => m !== request.method && routes.find(m, path) !== null)
      if (allowed.length > 0) {
        const error = new Errors.METHOD_NOT_ALLOWED(request.method, allowed.join(', '))
        return sendProblem(reply.header('allow', allowed.join(', ')), problemBody(request, 405, error.code, error.message))
      }
      const error = new Errors.ROUTE_NOT_FOUND(request.method, path)
      return sendProblem(reply, problemBody(request, 404, error.code, error.message))
    })
  },
  { name: 'problems', fastify: '5.x' },
)
