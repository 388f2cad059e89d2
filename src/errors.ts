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

/**
 * A socket, DNS, TLS or file failure in an admin's words: what happened, to
 * what, what to check. `code` is the system's own code (`ECONNREFUSED`,
 * `ENOENT`, `CERT_HAS_EXPIRED`, …), kept apart for scripts; `message` never
 * carries it.
 */
export interface PlainFailure {
  code: string;
  message: string;
}

type Words = { what: (target: string) => string; check: string };

const CONNECTION_WORDS: Words = {
  what: (t) => `${t} refused the connection (nothing accepts connections on that port)`,
  check: 'the host and port in the config, and that the server is running',
};
const TIMEOUT_WORDS: Words = {
  what: (t) => `${t} did not answer in time`,
  check: 'that the server is up and that no firewall drops the connection',
};
const RESET_WORDS: Words = {
  what: (t) => `${t} closed the connection unexpectedly`,
  check: 'the port and the tls setting (TLS spoken to a plain port, or the reverse, ends like this) and the server log',
};
const UNREACHABLE_WORDS: Words = {
  what: (t) => `${t} cannot be reached from this machine (no route to it)`,
  check: 'the network, VPN or firewall between mailgate and the server',
};
const UNTRUSTED_CA_WORDS: Words = {
  what: (t) => `the certificate of ${t} is signed by an authority this machine does not trust`,
  check: 'that the host is the right server; a private CA goes in NODE_EXTRA_CA_CERTS',
};
const SELF_SIGNED_WORDS: Words = {
  what: (t) => `${t} presented a self-signed certificate, which is not trusted`,
  check: 'that the host is the right server; a private CA goes in NODE_EXTRA_CA_CERTS',
};
const NO_TLS_WORDS: Words = {
  what: (t) => `the TLS handshake with ${t} failed (the other side does not speak TLS on that port)`,
  check: 'the port and the tls setting: tls: true is for implicit-TLS ports (993, 995, 465), tls: false for STARTTLS ports (143, 110, 587)',
};
const PERMISSION_WORDS: Words = {
  what: (t) => `mailgate is not allowed to open ${t} (permission denied)`,
  check: 'the owner and mode of the file or directory and the user mailgate runs as (a port below 1024 needs privileges: use a higher one)',
};

/** The one table of system codes an admin may meet. */
const SYSTEM_ERRORS: Record<string, Words> = {
  ECONNREFUSED: CONNECTION_WORDS,
  ENOTFOUND: { what: (t) => `the host name of ${t} could not be found (DNS has no such name)`, check: 'the host name for typos, and the DNS of this machine' },
  EAI_AGAIN: { what: (t) => `the host name of ${t} could not be looked up right now (DNS did not answer)`, check: 'the DNS and network of this machine' },
  ETIMEDOUT: TIMEOUT_WORDS,
  ESOCKETTIMEDOUT: TIMEOUT_WORDS,
  UND_ERR_CONNECT_TIMEOUT: TIMEOUT_WORDS,
  UND_ERR_HEADERS_TIMEOUT: TIMEOUT_WORDS,
  ECONNRESET: RESET_WORDS,
  EPIPE: RESET_WORDS,
  UND_ERR_SOCKET: RESET_WORDS,
  EHOSTUNREACH: UNREACHABLE_WORDS,
  ENETUNREACH: UNREACHABLE_WORDS,
  EHOSTDOWN: UNREACHABLE_WORDS,
  EADDRINUSE: { what: (t) => `another program already listens on ${t}`, check: 'server.listen, or stop the other program' },
  EADDRNOTAVAIL: { what: (t) => `${t} is not an address of this machine`, check: 'the address in server.listen (0.0.0.0 listens on all of them)' },
  EACCES: PERMISSION_WORDS,
  EPERM: PERMISSION_WORDS,
  ENOENT: { what: (t) => `${t} does not exist`, check: 'the path for typos (a relative path in the config file is relative to the folder of that file)' },
  EISDIR: { what: (t) => `${t} is a directory, not a file`, check: 'the path: it must name a file' },
  ENOTDIR: { what: (t) => `a part of the path of ${t} is a file, not a directory`, check: 'the path' },
  EROFS: { what: (t) => `${t} is on a read-only file system`, check: 'the volume mount (the data directory must be writable)' },
  ENOSPC: { what: (t) => `the disk holding ${t} is full`, check: 'free space on that disk' },
  EMFILE: { what: (t) => `too many files are open to open ${t}`, check: 'the open-files limit (ulimit -n) of mailgate' },
  ENFILE: { what: (t) => `too many files are open on this machine to open ${t}`, check: 'the system-wide open-files limit' },
  CERT_HAS_EXPIRED: { what: (t) => `the certificate of ${t} has expired`, check: 'the certificate on the server (and the clock of this machine)' },
  CERT_NOT_YET_VALID: { what: (t) => `the certificate of ${t} is not valid yet`, check: 'the clock of this machine' },
  ERR_TLS_CERT_ALTNAME_INVALID: { what: (t) => `the certificate of ${t} is for another host name`, check: 'that the host in the config is the name on the certificate' },
  DEPTH_ZERO_SELF_SIGNED_CERT: SELF_SIGNED_WORDS,
  SELF_SIGNED_CERT_IN_CHAIN: SELF_SIGNED_WORDS,
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: UNTRUSTED_CA_WORDS,
  UNABLE_TO_GET_ISSUER_CERT: UNTRUSTED_CA_WORDS,
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: UNTRUSTED_CA_WORDS,
  ERR_SSL_WRONG_VERSION_NUMBER: NO_TLS_WORDS,
  ERR_SSL_PACKET_LENGTH_TOO_LONG: NO_TLS_WORDS,
  EPROTO: NO_TLS_WORDS,
};

/** The system codes explainSystemError knows (for the docs and their test). */
export const SYSTEM_ERROR_CODES: readonly string[] = Object.keys(SYSTEM_ERRORS);

const CODE_IN_TEXT = new RegExp(`\\b(${SYSTEM_ERROR_CODES.join('|')})\\b`);

/**
 * The system code behind a failure: on the error, on its causes, on an
 * AggregateError's members (fetch and happy-eyeballs connects wrap them), or
 * named in its text (nodemailer keeps only `ESOCKET` and the socket's
 * message). A `TimeoutError` (AbortSignal.timeout) is `ETIMEDOUT`.
 */
export function systemCodeOf(err: unknown, depth = 0): string | null {
  if (depth > 6 || typeof err !== 'object' || err === null) return null;
  const e = err as { code?: unknown; name?: unknown; cause?: unknown; errors?: unknown; message?: unknown };
  if (typeof e.code === 'string' && e.code in SYSTEM_ERRORS) return e.code;
  const inner = systemCodeOf(e.cause, depth + 1);
  if (inner) return inner;
  if (Array.isArray(e.errors)) {
    for (const m of e.errors as unknown[]) {
      const c = systemCodeOf(m, depth + 1);
      if (c) return c;
    }
  }
  if (e.name === 'TimeoutError') return 'ETIMEDOUT';
  if (typeof e.message === 'string') return CODE_IN_TEXT.exec(e.message)?.[1] ?? null;
  return null;
}

/**
 * What a socket, DNS, TLS or file failure means for `target` ("the IMAP
 * server imap.example.com:993", "the file ./secrets/x"): one sentence with
 * what to check, and the system code apart. Null when `err` carries no code
 * of the table.
 */
export function explainSystemError(err: unknown, target: string): PlainFailure | null {
  const code = systemCodeOf(err);
  if (!code) return null;
  const words = SYSTEM_ERRORS[code];
  if (!words) return null;
  return { code, message: `${capitalise(words.what(target))}. Check ${words.check}.` };
}

/** Any failure for an admin: a system failure in plain words, else the error's own message; the code apart. */
export function plainFailure(err: unknown, target: string): { message: string; code: string | null } {
  const sys = explainSystemError(err, target);
  if (sys) return sys;
  return { message: describeError(err), code: err instanceof MailgateError ? err.code : null };
}

/** The file a Node file system error is about, for plainFailure's target. */
export function fileTarget(err: unknown, fallback = 'a file'): string {
  const p = (err as { path?: unknown } | null)?.path;
  return typeof p === 'string' ? `the file ${p}` : fallback;
}

function capitalise(s: string): string {
  return s.startsWith('mailgate') ? s : s.charAt(0).toUpperCase() + s.slice(1);
}
