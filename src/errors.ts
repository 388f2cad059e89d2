/**
 * One catalogue of mailgate's error codes. Every error the daemon reports to
 * an admin, a pipeline or a log carries one of these codes, so that logs,
 * API answers and docs speak the same words. `permanent` errors must never be
 * retried automatically (bullmq's UnrecoverableError idea): an account or a
 * delivery is marked and an admin is told instead of hammering the peer.
 */
export const ERRORS = {
  CONFIG_INVALID: { message: 'configuration is invalid', permanent: true, status: 400 },
  BAD_REQUEST: { message: 'bad request', permanent: true, status: 400 },
  UNAUTHORIZED: { message: 'missing or wrong admin token', permanent: true, status: 401 },
  NOT_FOUND: { message: 'not found', permanent: true, status: 404 },
  CONFLICT: { message: 'conflict', permanent: true, status: 409 },
  GONE: { message: 'removed after the retention period', permanent: true, status: 410 },
  SECRET_KEY_INVALID: { message: 'secret key is invalid', permanent: true, status: 500 },
  SECRET_DECRYPT_FAILED: { message: 'a stored secret could not be decrypted', permanent: true, status: 500 },
  DB_TOO_NEW: { message: 'database schema is newer than this mailgate', permanent: true, status: 500 },
  OAUTH_REAUTH_REQUIRED: { message: 'the refresh token was rejected; authorize the account again', permanent: true, status: 409 },
  OAUTH_MISSING_TOKEN: { message: 'the account has no token; authorize it first', permanent: true, status: 409 },
  OAUTH_TRANSIENT: { message: 'the token endpoint failed temporarily', permanent: false, status: 503 },
  OAUTH_STATE_INVALID: { message: 'unknown, expired or already used authorization state', permanent: true, status: 400 },
  AUTH_FAILED: { message: 'the mail server refused the login', permanent: true, status: 502 },
  AUTH_UNAVAILABLE: { message: 'the mail server could not check the login right now', permanent: false, status: 503 },
  CONNECTION_FAILED: { message: 'could not talk to the server', permanent: false, status: 503 },
  TIMEOUT: { message: 'the operation timed out', permanent: false, status: 504 },
  WEBHOOK_REJECTED: { message: 'the webhook refused the delivery', permanent: true, status: 502 },
  WEBHOOK_FAILED: { message: 'the webhook did not acknowledge the delivery', permanent: false, status: 502 },
  PARSE_FAILED: { message: 'the message could not be parsed', permanent: true, status: 422 },
  RENDER_FAILED: { message: 'the webhook body could not be built this time (parse thread died or ran out of time)', permanent: false, status: 500 },
  SEND_REJECTED: { message: 'the SMTP server refused the message', permanent: true, status: 502 },
  SEND_FAILED: { message: 'the message could not be sent yet', permanent: false, status: 503 },
  LOOP_GUARD: { message: 'refused to send: it would create a mail loop', permanent: true, status: 409 },
  STORAGE_FULL: { message: 'the database disk is full; no new mail is taken until space is freed', permanent: false, status: 507 },
  INTERNAL: { message: 'internal error', permanent: false, status: 500 },
} as const satisfies Record<string, { message: string; permanent: boolean; status: number }>;

export type ErrorCode = keyof typeof ERRORS;

export class MailgateError extends Error {
  readonly code: ErrorCode;
  readonly permanent: boolean;
  readonly status: number;
  readonly details: Record<string, unknown> | undefined;

  constructor(
    code: ErrorCode,
    message?: string,
    options: { cause?: unknown; details?: Record<string, unknown>; permanent?: boolean } = {},
  ) {
    const entry = ERRORS[code];
    super(message ?? entry.message, options.cause !== undefined ? { cause: options.cause } : undefined);
    this.name = 'MailgateError';
    this.code = code;
    this.permanent = options.permanent ?? entry.permanent;
    this.status = entry.status;
    this.details = options.details;
  }
}

export function isPermanent(err: unknown): boolean {
  return err instanceof MailgateError && err.permanent;
}

/** A short, single-line description of any thrown value, for status fields. */
export function describeError(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
