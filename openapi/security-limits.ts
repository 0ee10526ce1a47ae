import type { RateLimit } from './operation.ts'

// Every /auth operation has a much stricter limit than the global one; operations that can be
// abused against one account (sign-in, reset requests, codes, e-mails) are also limited per
// account or address, whatever address the requests come from.

export const AUTH = { max: 'AUTH_RATE_LIMIT_MAX', window: '1 minute' } as const satisfies RateLimit
export const PER_LOGIN_EMAIL = { max: 'LOGIN_EMAIL_RATE_LIMIT_MAX', window: '15 minutes', per: { body: 'email' }, counter: 'login-email' } as const satisfies RateLimit
export const PER_RESET_EMAIL = { max: 'PASSWORD_RESET_RATE_LIMIT_MAX', window: '1 hour', per: { body: 'email' }, counter: 'forgot-email' } as const satisfies RateLimit
export const PER_MFA_STEP = { max: 'MFA_RATE_LIMIT_MAX', window: '15 minutes', per: { body: 'mfa_token', secret: true }, counter: 'mfa-step' } as const satisfies RateLimit
export const PER_MFA_USER = { max: 'MFA_RATE_LIMIT_MAX', window: '15 minutes', per: 'user', counter: 'mfa-user' } as const satisfies RateLimit
export const PER_PASSWORD_USER = { max: 'LOGIN_EMAIL_RATE_LIMIT_MAX', window: '15 minutes', per: 'user', counter: 'password-user' } as const satisfies RateLimit
/** One counter for every mail a user can trigger. */
export const PER_MAILED_USER = { max: 'EMAIL_CODE_RATE_LIMIT_MAX', window: '1 hour', per: 'user', counter: 'email-code' } as const satisfies RateLimit
