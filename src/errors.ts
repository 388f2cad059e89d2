/**
 * What a failure means for the next try, in the same words for every peer
 * mailgate talks to: mail servers (IMAP, POP3, SMTP), webhooks and token
 * endpoints. Each reader of a peer's errors (classifyImapError,
 * classifyPop3Error, classifySmtpError, postWebhook, tokenRequest) answers
 * with one of these.
 * - `auth`: the peer refused our credentials (a login, a grant). Only an
 *   admin can fix it: the account is marked, retries are rare, the peer is
 *   never hammered.
 * - `throttled`: the peer asked us to wait (Retry-After, Microsoft's
 *   "Suggested Backoff Time"): the next try waits at least that long.
 * - `transient`: worth trying again with backoff (connection trouble,
 *   timeouts, 5xx from a webhook, 4xx replies from SMTP).
 * - `permanent`: this item will never succeed (an SMTP 5xx, a webhook 4xx
 *   other than 408/425/429, bad input): it is parked, never retried by itself.
 */
export type FailureClass = 'auth' | 'throttled' | 'transient' | 'permanent';

/**
 * One catalogue of mailgate's error codes. Every error the daemon reports to
 * an admin, a pipeline or a log carries one of these codes, so that logs,
 * API answers and docs speak the same words. `failure` is the retry rule
 * (bullmq's UnrecoverableError idea): an `auth` or `permanent` error is
 * never retried automatically; an account or a delivery is marked and an
 * admin is told instead of hammering the peer.
 */
export const ERRORS = {
  CONFIG_INVALID: { message: 'configuration is invalid', failure: 'permanent', status: 400 },
  BAD_REQUEST: { message: 'bad request', failure: 'permanent', status: 400 },
  UNAUTHORIZED: { message: 'missing or wrong admin token', failure: 'permanent', status: 401 },
  NOT_FOUND: { message: 'not found', failure: 'permanent', status: 404 },
  CONFLICT: { message: 'conflict', failure: 'permanent', status: 409 },
  GONE: { message: 'removed after the retention period', failure: 'permanent', status: 410 },
  SECRET_KEY_INVALID: { message: 'secret key is invalid', failure: 'permanent', status: 500 },
  SECRET_DECRYPT_FAILED: { message: 'a stored secret could not be decrypted', failure: 'permanent', status: 500 },
  DB_TOO_NEW: { message: 'database schema is newer than this mailgate', failure: 'permanent', status: 500 },
  OAUTH_REAUTH_REQUIRED: { message: 'the refresh token was rejected; authorize the account again', failure: 'auth', status: 409 },
  OAUTH_MISSING_TOKEN: { message: 'the account has no token; authorize it first', failure: 'auth', status: 409 },
  OAUTH_GRANT_REJECTED: { message: 'the token endpoint refused the grant or the client', failure: 'auth', status: 502 },
  OAUTH_PENDING: { message: 'the authorization is not approved yet', failure: 'transient', status: 409 },
  OAUTH_TRANSIENT: { message: 'the token endpoint failed temporarily', failure: 'transient', status: 503 },
  OAUTH_STATE_INVALID: { message: 'unknown, expired or already used authorization state', failure: 'permanent', status: 400 },
  AUTH_FAILED: { message: 'the mail server refused the login', failure: 'auth', status: 502 },
  AUTH_UNAVAILABLE: { message: 'the mail server could not check the login right now', failure: 'transient', status: 503 },
  CONNECTION_FAILED: { message: 'could not talk to the server', failure: 'transient', status: 503 },
  TLS_FAILED: { message: 'a TLS connection to the server could not be set up', failure: 'transient', status: 502 },
  TIMEOUT: { message: 'the operation timed out', failure: 'transient', status: 504 },
  PROTOCOL_ERROR: { message: 'the server answered outside its protocol', failure: 'transient', status: 502 },
  RESPONSE_TOO_LARGE: { message: 'the server sent more than the limit for this answer', failure: 'transient', status: 502 },
  PARSE_FAILED: { message: 'the message could not be parsed', failure: 'permanent', status: 422 },
  RENDER_FAILED: { message: 'the webhook body could not be built this time (parse thread died or ran out of time)', failure: 'transient', status: 500 },
  SEND_REJECTED: { message: 'the SMTP server refused the message', failure: 'permanent', status: 502 },
  SEND_FAILED: { message: 'the message could not be sent yet', failure: 'transient', status: 503 },
  LOOP_GUARD: { message: 'refused to send: it would create a mail loop', failure: 'permanent', status: 409 },
  STORAGE_FULL: { message: 'the database disk is full; no new mail is taken until space is freed', failure: 'transient', status: 507 },
  LEASE_LOST: { message: 'this node no longer holds the account\'s lease; another replica works it now', failure: 'transient', status: 409 },
  INTERNAL: { message: 'internal error', failure: 'transient', status: 500 },
} as const satisfies Record<string, { message: string; failure: FailureClass; status: number }>;

export type ErrorCode = keyof typeof ERRORS;

export class MailgateError extends Error {
  readonly code: ErrorCode;
  /** What this failure means for the next try (the catalogue's, unless the raiser knows better). */
  readonly failure: FailureClass;
  readonly status: number;
  readonly details: Record<string, unknown> | undefined;

  constructor(
    code: ErrorCode,
    message?: string,
    options: { cause?: unknown; details?: Record<string, unknown>; failure?: FailureClass } = {},
  ) {
    const entry = ERRORS[code];
    super(message ?? entry.message, options.cause !== undefined ? { cause: options.cause } : undefined);
    this.name = 'MailgateError';
    this.code = code;
    this.failure = options.failure ?? entry.failure;
    this.status = entry.status;
    this.details = options.details;
  }

  /** Never retried automatically: an admin must act (auth), or it can never succeed (permanent). */
  get permanent(): boolean {
    return this.failure === 'auth' || this.failure === 'permanent';
  }
}

/** A short, single-line description of any thrown value, for status fields. */
export function describeError(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
