import nodemailer, { type SendMailOptions, type Transporter } from 'nodemailer';
import type SMTPPool from 'nodemailer/lib/smtp-pool';
import type { AccountConfig, OutgoingConfig } from '../config/types.js';
import { describeError, explainSystemError, MailgateError, type FailureClass } from '../errors.js';
import { oauthbearerResponse, OAUTHBEARER_ERROR_ACK } from '../oauth/sasl.js';
import { withAccessToken, type TokenProvider } from '../oauth/token-provider.js';

/** Named deadlines (nodemailer's defaults wait up to 10 minutes on a silent socket). */
export const CONNECTION_TIMEOUT_MS = 30_000;
export const GREETING_TIMEOUT_MS = 16_000;
export const SOCKET_TIMEOUT_MS = 2 * 60_000;
/** Connections per account: Gmail and Microsoft 365 throttle more than a few concurrent sessions. */
export const POOL_CONNECTIONS = 3;

export interface SmtpFailure {
  /** In the shared vocabulary (src/errors.ts); SMTP has no wait hint, so never `throttled` from a reply. */
  kind: FailureClass;
  /** The server's reply when there was one, else what went wrong. */
  message: string;
}

interface NodemailerError {
  code?: string;
  responseCode?: number;
  response?: string;
  message?: string;
}

/**
 * What a failed SMTP exchange means for the message: a refused login (try a
 * fresh token once), a 5xx reply (the server will never take it), or
 * anything else — connection trouble, 4xx including 421 throttling — which is
 * worth trying again later.
 */
export function classifySmtpError(err: unknown): SmtpFailure {
  if (err instanceof MailgateError) {
    // Only the server's 5xx says a message can never be sent; the token service's or the config's errors are worth another try.
    const kind = err.code === 'SEND_REJECTED' ? 'permanent' : err.failure === 'auth' ? 'auth' : 'transient';
    return { kind, message: err.message };
  }
  const e = (typeof err === 'object' && err !== null ? err : {}) as NodemailerError;
  const message = e.response && !(e.message ?? '').includes(e.response) ? `${e.message ?? ''}: ${e.response}` : (e.message ?? describeError(err));
  if (e.code === 'EAUTH') return { kind: 'auth', message };
  // requireTLS and the upgrade failed (not offered, refused): nothing was sent; retried with backoff like a connection problem.
  if (e.code === 'ETLS') return { kind: 'transient', message: `refused to send without TLS (requireTLS): ${message}` };
  const code = e.responseCode ?? 0;
  if (code >= 500 && code < 600) return { kind: 'permanent', message };
  return { kind: 'transient', message };
}

/** What the admin reads an account's outgoing side talks to. */
export function smtpTarget(out: { host: string; port: number }): string {
  return `the SMTP server ${out.host}:${out.port}`;
}

/**
 * A failed SMTP exchange as the catalogue error it is, with the server's
 * words (or a socket, DNS or TLS failure in plain words, its system code in
 * `details.systemCode`) and the original as cause.
 */
function raiseSmtpError(err: unknown, target: string): never {
  if (err instanceof MailgateError) throw err;
  const f = classifySmtpError(err);
  const plain = f.kind === 'auth' ? null : explainSystemError(err, target);
  const code = f.kind === 'auth' ? 'AUTH_FAILED' : f.kind === 'permanent' ? 'SEND_REJECTED' : 'SEND_FAILED';
  throw new MailgateError(code, plain?.message ?? f.message, { cause: err, ...(plain ? { details: { systemCode: plain.code } } : {}) });
}

type Secret = { accessToken: string } | { password: string };

/**
 * A pooled nodemailer transport for one account's outgoing server. XOAUTH2
 * goes through nodemailer's `{type: 'OAuth2', user, accessToken}` with no
 * refresh credentials, so nodemailer can never refresh on its own; OAUTHBEARER
 * (which nodemailer lacks) through a small custom SASL handler.
 */
export function createSmtpTransport(out: OutgoingConfig, secret: Secret): Transporter<SMTPPool.SentMessageInfo> {
  const common = {
    pool: true as const,
    host: out.host,
    port: out.port,
    // tls: false = plain connect, upgraded with STARTTLS when offered (nodemailer's default);
    // requireTLS: refuse to authenticate if the upgrade does not happen.
    secure: out.tls,
    requireTLS: !out.tls && out.requireTLS,
    maxConnections: POOL_CONNECTIONS,
    maxMessages: 100,
    connectionTimeout: CONNECTION_TIMEOUT_MS,
    greetingTimeout: GREETING_TIMEOUT_MS,
    socketTimeout: SOCKET_TIMEOUT_MS,
    logger: false,
  };
  if ('password' in secret) {
    return nodemailer.createTransport({ ...common, auth: { user: out.user, pass: secret.password } });
  }
  if (out.auth.method === 'oauthbearer') {
    return nodemailer.createTransport({
      ...common,
      auth: { type: 'custom', method: 'OAUTHBEARER', user: out.user, pass: secret.accessToken },
      customAuth: {
        OAUTHBEARER: async (ctx) => {
          let r = await ctx.sendCommand(`AUTH OAUTHBEARER ${oauthbearerResponse(out.user, secret.accessToken)}`);
          // A 334 carries the server's JSON error; RFC 7628 §3.2.3: answer ^A, then the final reply follows.
          if (r.status === 334) r = await ctx.sendCommand(OAUTHBEARER_ERROR_ACK);
          if (r.status !== 235) throw Object.assign(new Error(`Invalid login: ${r.response}`), { code: 'EAUTH', response: r.response });
        },
      },
    });
  }
  return nodemailer.createTransport({ ...common, auth: { type: 'OAuth2', user: out.user, accessToken: secret.accessToken } });
}

/**
 * Sends for one account: keeps one pooled transport per access token (a new
 * token from the token service replaces the pool), and on a refused OAuth2
 * login asks the token service once for a fresh token.
 */
export class SmtpSender {
  readonly #account: string;
  readonly #out: OutgoingConfig;
  readonly #tokens: TokenProvider;
  #current: { key: string; transport: Transporter<SMTPPool.SentMessageInfo> } | null = null;

  constructor(account: string, out: OutgoingConfig, tokens: TokenProvider) {
    this.#account = account;
    this.#out = out;
    this.#tokens = tokens;
  }

  /**
   * Sends; resolves with the server's final reply. Throws a MailgateError:
   * AUTH_FAILED (login refused even with a fresh token), SEND_REJECTED (a
   * 5xx: the server will never take it), SEND_FAILED (anything else: try
   * later), or the token service's own errors.
   */
  async send(mail: SendMailOptions): Promise<string> {
    return this.#withFreshTokenRetry(async (t) => (await t.sendMail(mail)).response).catch((err: unknown) => raiseSmtpError(err, smtpTarget(this.#out)));
  }

  /** Connects, authenticates and says goodbye: `mailgate test`. Throws as send() does. */
  async verify(): Promise<void> {
    await this.#withFreshTokenRetry(async (t) => {
      await t.verify();
    }).catch((err: unknown) => raiseSmtpError(err, smtpTarget(this.#out)));
  }

  close(): void {
    this.#current?.transport.close();
    this.#current = null;
  }

  async #withFreshTokenRetry<T>(op: (t: Transporter<SMTPPool.SentMessageInfo>) => Promise<T>): Promise<T> {
    const auth = this.#out.auth;
    if (auth.method === 'password') return op(this.#transport(auth.password, { password: auth.password }));
    return withAccessToken(
      this.#tokens,
      this.#account,
      (accessToken) => op(this.#transport(accessToken, { accessToken })),
      (err) => classifySmtpError(err).kind === 'auth',
    );
  }

  #transport(key: string, secret: Secret): Transporter<SMTPPool.SentMessageInfo> {
    if (this.#current?.key === key) return this.#current.transport;
    this.#current?.transport.close();
    const transport = createSmtpTransport(this.#out, secret);
    // A pooled transport emits 'error' for idle-connection failures; without a listener that would crash the process.
    transport.on('error', () => undefined);
    this.#current = { key, transport };
    return transport;
  }
}

/** Logs in to an account's outgoing server and out again (`mailgate test`), with the server's words on failure. */
export async function testSmtp(account: AccountConfig, tokens: TokenProvider): Promise<{ ok: boolean; error: string | null; code: string | null }> {
  if (!account.outgoing) return { ok: false, error: 'no outgoing server configured for this account', code: null };
  const sender = new SmtpSender(account.name, account.outgoing, tokens);
  try {
    await sender.verify();
    return { ok: true, error: null, code: null };
  } catch (err) {
    const systemCode = err instanceof MailgateError ? err.details?.systemCode : undefined;
    return { ok: false, error: classifySmtpError(err).message, code: typeof systemCode === 'string' ? systemCode : err instanceof MailgateError ? err.code : null };
  } finally {
    sender.close();
  }
}
