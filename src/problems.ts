import { STATUS_CODES } from 'node:http'
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { Problem } from '../openapi/common.ts'
import { type ErrorCode, Errors } from './errors.ts'

/** Fastify's and its plugins' own codes, translated to the catalogue. */
const FOREIGN_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  FST_REQ_FILE_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'BAD_REQUEST',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'BAD_REQUEST',
  FST_ERR_CTP_INVALID_JSON_BODY: 'BAD_REQUEST',
  FST_INVALID_MULTIPART_CONTENT_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
}

const BY_STATUS: Record<number, ErrorCode> = {
  400: 'BAD_REQUEST',
  401: 'UNAUTHENTICATED',
  403: 'FORBIDDEN',
  404: 'NOT_FOUND',
  405: 'METHOD_NOT_ALLOWED',
  409: 'CONFLICT',
  413: 'PAYLOAD_TOO_LARGE',
  415: 'UNSUPPORTED_MEDIA_TYPE',
  429: 'RATE_LIMITED',
  503: 'SERVICE_UNAVAILABLE',
}

function codeOf(error: FastifyError, status: number): ErrorCode {
  if (error.code && error.code in Errors) return error.code as ErrorCode
  if (error.code && FOREIGN_CODES[error.code]) return FOREIGN_CODES[error.code] as ErrorCode
  return BY_STATUS[status] ?? (status >= 500 ? 'INTERNAL_ERROR' : 'BAD_REQUEST')
}

export function problemBody(
  request: FastifyRequest,
  status: number,
  code: string,
  detail: string,
  errors?: Problem['errors'],
): Problem {
  return {
    type: `urn:armoire:problem:${code.toLowerCase().replaceAll('_', '-')}`,
    title: STATUS_CODES[status] ?? 'Error',
    status,
    detail,
    code,
    request_id: request.id,
    ...(errors ? { errors } : {}),
  }
}

export function sendProblem(reply: FastifyReply, problem: Problem): FastifyReply {
  return reply.code(problem.status).type('application/problem+json').send(problem)
}

/** Every error becomes an RFC 9457 problem; a 5xx says nothing of its cause to the client. */
export const problems = fp(
  async (app: FastifyInstance) => {
    app.setErrorHandler((error: FastifyError, request, reply) => {
      if (error.validation) {
        const errors = error.validation.map((v) => {
          const missing = (v.params as { missingProperty?: string }).missingProperty
          const path = `${v.instancePath}${missing ? `/${missing}` : ''}`.split('/').filter(Boolean)
          return { field: [error.validationContext ?? 'body', ...path].join('.'), message: v.message ?? 'invalide' }
        })
        return sendProblem(
          reply,
          problemBody(request, 400, 'VALIDATION_ERROR', new Errors.VALIDATION_ERROR().message, errors),
        )
      }
      const raw = error.statusCode ?? 500
      const status = raw >= 400 && raw < 600 ? raw : 500
      const code = codeOf(error, status)
      if (status >= 500) {
        request.log.error({ err: error }, 'request failed')
        const E = Errors[code] ?? Errors.INTERNAL_ERROR
        return sendProblem(reply, problemBody(request, status, code, new E().message))
      }
      request.log.info({ code, status, msg: error.message }, 'request refused')
      const { retryAfter, fields } = error as { retryAfter?: number; fields?: Problem['errors'] }
      if (status === 429 || status === 503) reply.header('retry-after', String(retryAfter ?? 60))
      return sendProblem(reply, problemBody(request, status, code, error.message, fields))
    })

    app.setNotFoundHandler((request, reply) => {
      const error = new Errors.ROUTE_NOT_FOUND(request.method, request.url.split('?')[0])
      return sendProblem(reply, problemBody(request, 404, error.code, error.message))
    })
  },
  { name: 'problems', fastify: '5.x' },
)
