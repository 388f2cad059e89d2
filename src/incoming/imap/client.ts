import { ImapFlow, type ImapFlowOptions } from 'imapflow';
import type { IncomingConfig } from '../../config/types.js';
import { MailgateError } from '../../errors.js';
import { throttlingAnswer } from '../login-pacer.js';

/** Named deadlines (imapflow's own defaults are longer than an admin waits). */
export const CONNECTION_TIMEOUT_MS = 30_000;
export const GREETING_TIMEOUT_MS = 16_000;
export const SOCKET_TIMEOUT_MS = 5 * 60_000;

type Capabilities = Map<string, unknown>;
interface ImapFlowInternals {
  capabilities: Capabilities;
  authenticate: () => Promise<boolean>;
}

/** Headroom over maxMessageSize for one literal (a size that differs by a few bytes is no attack). */
export function literalLimit(maxMessageSize: number): number {
  return Math.ceil(maxMessageSize * 1.05) + 64 * 1024;
}

/** The SASL capabilities each configured method must NOT see, so imapflow uses ours. */
const HIDE: Record<'xoauth2' | 'oauthbearer', string[]> = {
  xoauth2: ['AUTH=OAUTHBEARER'],
  oauthbearer: ['AUTH=XOAUTH2', 'AUTH=XOAUTH'],
};
const NEED: Record<'xoauth2' | 'oauthbearer', string> = { xoauth2: 'AUTH=XOAUTH2', oauthbearer: 'AUTH=OAUTHBEARER' };

/**
 * An imapflow client that authenticates with exactly the configured SASL
 * mechanism. imapflow picks OAUTHBEARER whenever a server offers it
 * (commands/authenticate.js) and has no option to choose, while our contract
 * says `auth.method` is the mechanism on the wire (Gmail and Dovecot offer
 * both). So, just before authenticating, we hide the other mechanism from the
 * capability map imapflow consults; if the server does not offer ours, the
 * login fails with a clear error instead of silently using another one.
 */
export function createImapClient(incoming: IncomingConfig, secret: { accessToken?: string; password?: string }): ImapFlow {
  const options: ImapFlowOptions = {
    host: incoming.host,
    port: incoming.port,
    // tls: false: imapflow upgrades when the server offers STARTTLS (contract);
    // requireTLS makes it refuse to log in over a connection that stayed plain.
    secure: incoming.tls,
    ...(!incoming.tls && incoming.requireTLS ? { doSTARTTLS: true } : {}),
    auth: secret.accessToken ? { user: incoming.user, accessToken: secret.accessToken } : { user: incoming.user, pass: secret.password ?? '' },
    logger: false,
    disableAutoIdle: true,
    connectionTimeout: CONNECTION_TIMEOUT_MS,
    greetingTimeout: GREETING_TIMEOUT_MS,
    socketTimeout: SOCKET_TIMEOUT_MS,
    // A server that sends more than maxMessageSize for one message (its RFC822.SIZE lied)
    // is cut off instead of filling memory: imapflow's own limit is 1 GiB.
    maxLiteralSize: literalLimit(incoming.maxMessageSizeBytes),
    maxResponseSize: 2 * literalLimit(incoming.maxMessageSizeBytes) + 1024 * 1024,
  };
  const client = new ImapFlow(options);
  const method = incoming.auth.method;
  if (method === 'xoauth2' || method === 'oauthbearer') {
    const internals = client as unknown as ImapFlowInternals;
    const original = internals.authenticate.bind(client);
    internals.authenticate = async () => {
      if (!internals.capabilities.has(NEED[method])) {
        throw new MailgateError('AUTH_FAILED', `the server does not offer SASL ${method.toUpperCase()} (${NEED[method]})`);
      }
      for (const cap of HIDE[method]) internals.capabilities.delete(cap);
      return original();
    };
  }
  return client;
}

/**
 * How imapflow reports a failure: a refused login (`auth`), a login the
 * server could not check now (`auth-transient`, RFC 5530 UNAVAILABLE),
 * Microsoft's throttling (`throttled`, with its hint), anything else.
 * The connector maps these onto the shared failure classes.
 */
export type ImapErrorKind = 'auth' | 'auth-transient' | 'throttled' | 'other';

/** What kind of failure an imapflow error is. */
export function classifyImapError(err: unknown): { kind: ImapErrorKind; message: string; retryAfterMs: number | null; code?: string } {
  const e = err as {
    authenticationFailed?: boolean;
    serverResponseCode?: string;
    responseText?: string;
    response?: string;
    message?: string;
    code?: string;
    throttleReset?: number;
  };
  const text = e.responseText ?? e.response ?? e.message ?? String(err);
  if (e.serverResponseCode === 'UNAVAILABLE') {
    return { kind: 'auth-transient', message: `the server could not check the login right now: ${text}`, retryAfterMs: null };
  }
  if (err instanceof MailgateError && err.code === 'AUTH_FAILED') return { kind: 'auth', message: err.message, retryAfterMs: null };
  // doSTARTTLS: true and no STARTTLS: nothing was sent; a retry will not change the server, so wait as for a refused login.
  if ((err as { tlsFailed?: boolean }).tlsFailed === true) {
    return { kind: 'auth', message: `refused to log in without TLS (requireTLS): ${text}`, retryAfterMs: null };
  }
  // Microsoft 365 throttling: imapflow parses "Suggested Backoff Time" into throttleReset.
  if (typeof e.throttleReset === 'number') return { kind: 'throttled', message: `throttled by the server: ${text}`, retryAfterMs: e.throttleReset };
  // "Too many simultaneous connections" (Gmail answers it to the login), "User is authenticated but
  // not connected" (Exchange Online): the host is at its limit, the credentials may be fine.
  const throttled = throttlingAnswer(text);
  if (throttled.throttled) return { kind: 'throttled', message: `throttled by the server: ${text}`, retryAfterMs: throttled.retryAfterMs };
  if (e.authenticationFailed || e.serverResponseCode === 'AUTHENTICATIONFAILED') {
    return { kind: 'auth', message: `the server refused the login: ${text}`, retryAfterMs: null };
  }
  // imapflow's own words suggest TLS ("Maybe should use TLS?"): under load the likelier cause is a busy or throttling server.
  if (e.code === 'GREETING_TIMEOUT') {
    return { kind: 'other', message: `the server did not greet within ${GREETING_TIMEOUT_MS / 1000} s (it may be overloaded or throttling)`, retryAfterMs: null };
  }
  if (e.code === 'CONNECT_TIMEOUT') {
    return { kind: 'other', message: `could not connect to the server within ${CONNECTION_TIMEOUT_MS / 1000} s (is it up, and is the port open from here?)`, retryAfterMs: null };
  }
  // The code is for scripts (SessionFailure.code); the admin reads the words.
  return { kind: 'other', message: text, retryAfterMs: null, ...(e.code ? { code: e.code } : {}) };
}
