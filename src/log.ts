import { pino, type Logger, type LoggerOptions } from 'pino';

export type { Logger } from 'pino';

/**
 * Secrets are masked where they are made (never passed to a logger); this
 * list is the backstop, so that a stray object carrying one is still censored.
 */
export const REDACT_PATHS = [
  'password',
  'pass',
  'clientSecret',
  'client_secret',
  'secret',
  'accessToken',
  'access_token',
  'refreshToken',
  'refresh_token',
  'token',
  // An OAuth2 authorization code travels in the callback's query. A bare
  // `code` is not masked: it is how errors and exit codes are reported.
  'query.code',
  'req.query.code',
  'code_verifier',
  'authorization',
  'adminToken',
  'headers.authorization',
  'req.headers.authorization',
  'req.headers.cookie',
  '*.password',
  '*.pass',
  '*.clientSecret',
  '*.client_secret',
  '*.secret',
  '*.accessToken',
  '*.access_token',
  '*.refreshToken',
  '*.refresh_token',
  '*.token',
  '*.adminToken',
  'auth.pass',
  'auth.accessToken',
  // A PostgreSQL URL may carry a password (store.url); it is shown only through redactUrl.
  'store.url',
  '*.store.url',
  'connectionString',
  '*.connectionString',
];

export interface LogOptions {
  level?: string;
  /** Where to write; defaults to stdout. Tests pass a stream to inspect output. */
  destination?: NodeJS.WritableStream;
}

export function createLogger(opts: LogOptions = {}): Logger {
  const options: LoggerOptions = {
    level: opts.level ?? process.env.MAILGATE_LOG_LEVEL ?? 'info',
    base: { service: 'mailgate' },
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  return opts.destination ? pino(options, opts.destination) : pino(options);
}

/** A logger that drops everything, for unit tests and tooling. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
