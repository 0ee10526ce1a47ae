import createError, { type FastifyErrorConstructor } from '@fastify/error'

/**
 * The one catalogue of error codes Armoire answers with. Each code is stable: clients
 * branch on it. Messages are French, like the product; `%s` takes a detail.
 */
function define(code: string, message: string, status: number): FastifyErrorConstructor {
  return createError(code, message, status)
}

export const Errors = {
  BAD_REQUEST: define('BAD_REQUEST', 'Requête invalide : %s', 400),
  VALIDATION_ERROR: define('VALIDATION_ERROR', 'Les données envoyées sont invalides', 400),
  UNAUTHENTICATED: define('UNAUTHENTICATED', 'Authentification requise', 401),
  TOKEN_INVALID: define('TOKEN_INVALID', 'Jeton d’accès invalide ou expiré', 401),
  SESSION_REVOKED: define('SESSION_REVOKED', 'Session révoquée ou expirée', 401),
  FORBIDDEN: define('FORBIDDEN', 'Votre rôle ne permet pas cette action', 403),
  NOT_FOUND: define('NOT_FOUND', '%s introuvable', 404),
  ROUTE_NOT_FOUND: define('ROUTE_NOT_FOUND', 'Aucune opération %s %s', 404),
  METHOD_NOT_ALLOWED: define('METHOD_NOT_ALLOWED', 'Méthode non autorisée', 405),
  CONFLICT: define('CONFLICT', '%s', 409),
  PAYLOAD_TOO_LARGE: define('PAYLOAD_TOO_LARGE', 'Le corps de la requête dépasse la taille autorisée', 413),
  UNSUPPORTED_MEDIA_TYPE: define('UNSUPPORTED_MEDIA_TYPE', 'Type de contenu non pris en charge : %s', 415),
  RATE_LIMITED: define('RATE_LIMITED', 'Trop de requêtes, réessayez dans %s', 429),
  INTERNAL_ERROR: define('INTERNAL_ERROR', 'Erreur interne du serveur', 500),
  SERVICE_UNAVAILABLE: define('SERVICE_UNAVAILABLE', 'Service momentanément indisponible', 503),
} as const

export type ErrorCode = keyof typeof Errors

/** Problem codes that `defineOperation` may list as a documented outcome of an operation. */
export const ErrorStatus = Object.fromEntries(
  Object.entries(Errors).map(([code, E]) => [code, new E().statusCode as number]),
) as Record<ErrorCode, number>
