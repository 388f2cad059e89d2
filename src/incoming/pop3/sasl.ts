import { OAUTHBEARER_ERROR_ACK, oauthbearerResponse, plainResponse, xoauth2Response } from '../../oauth/sasl.js';
import type { Connection } from './connection.js';
import { Pop3Error, serverError, type OAuthErrorChallenge } from './errors.js';
import type { Pop3Response } from './protocol.js';

/**
 * POP3 login: RFC 1939 §7 USER/PASS, and RFC 5034 AUTH with PLAIN, Google's
 * XOAUTH2 and RFC 7628 OAUTHBEARER, including the error challenge a server
 * sends for a refused token.
 */

/** RFC 2449 §4 / RFC 5034 §4: a command line, CRLF included, must fit in 255 octets. */
export const MAX_COMMAND_LINE_OCTETS = 255;

export type Pop3Auth =
  | { mechanism: 'XOAUTH2' | 'OAUTHBEARER'; user: string; accessToken: string }
  | { mechanism: 'PLAIN' | 'USER'; user: string; password: string };

type SaslMechanism = 'PLAIN' | 'XOAUTH2' | 'OAUTHBEARER';

/** Logs in; every failure is a Pop3Error whose message holds no secret. */
export async function authenticate(conn: Connection, auth: Pop3Auth, capabilities: string[], timeoutMs: number): Promise<void> {
  if (auth.mechanism === 'USER') return userPass(conn, auth.user, auth.password, timeoutMs);
  const offered = saslMechanisms(capabilities);
  // Only when the server lists its mechanisms do we know it lacks ours; otherwise try.
  if (offered !== null && !offered.includes(auth.mechanism)) {
    throw new Pop3Error('auth', `POP3 server does not offer SASL ${auth.mechanism} (CAPA SASL: ${offered.join(' ') || 'none'})`);
  }
  switch (auth.mechanism) {
    case 'PLAIN':
      return sasl(conn, 'PLAIN', plainResponse(auth.user, auth.password), timeoutMs);
    case 'XOAUTH2':
      return sasl(conn, 'XOAUTH2', xoauth2Response(auth.user, auth.accessToken), timeoutMs);
    case 'OAUTHBEARER':
      return sasl(conn, 'OAUTHBEARER', oauthbearerResponse(auth.user, auth.accessToken), timeoutMs);
  }
}

/** The SASL mechanisms of the CAPA `SASL` line (upper-cased), or null when the server lists none. */
export function saslMechanisms(capabilities: string[]): string[] | null {
  const line = capabilities.find((c) => c === 'SASL' || c.startsWith('SASL '));
  if (line === undefined) return null;
  return line.split(/\s+/).slice(1).filter(Boolean).map((m) => m.toUpperCase());
}

/**
 * The JSON a server sends as a SASL challenge when an OAuth token is refused
 * (RFC 7628 §3.2.2; Google's XOAUTH2 does the same). Null when it is not JSON.
 */
export function decodeOAuthChallenge(base64: string): OAuthErrorChallenge | null {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(base64, 'base64').toString('utf8'));
  } catch {
    return null;
  }
  if (typeof parsed !== 'object' || parsed === null) return null;
  const out: OAuthErrorChallenge = {};
  for (const key of ['status', 'schemes', 'scope'] as const) {
    const value: unknown = (parsed as Record<string, unknown>)[key];
    if (typeof value === 'string') out[key] = value;
    else if (typeof value === 'number') out[key] = String(value);
  }
  return out;
}

function single(conn: Connection, line: string, verb: string, timeoutMs: number): Promise<Pop3Response> {
  return conn.request(line, verb, { expect: 'single', timeoutMs });
}

/** RFC 1939 §7 USER/PASS. */
async function userPass(conn: Connection, user: string, password: string, timeoutMs: number): Promise<void> {
  for (const [verb, arg] of [['USER', user], ['PASS', password]] as const) {
    if (/[\r\n]/.test(arg)) throw new Pop3Error('auth', `POP3 ${verb}: the ${verb === 'USER' ? 'user name' : 'password'} contains a line break`);
    const response = await single(conn, `${verb} ${arg}`, verb, timeoutMs);
    if (response.status !== 'ok') throw serverError('auth', verb, response);
  }
}

/**
 * RFC 5034 AUTH with one client response. The initial response goes on the
 * AUTH line only when that line fits in 255 octets (RFC 5034 §4 forbids
 * longer); OAuth tokens rarely fit, so they usually follow the server's empty
 * "+ " challenge, as Microsoft documents for POP3 XOAUTH2.
 */
async function sasl(conn: Connection, mechanism: SaslMechanism, clientResponse: string, timeoutMs: number): Promise<void> {
  const withInitial = `AUTH ${mechanism} ${clientResponse}`;
  let response: Pop3Response;
  if (Buffer.byteLength(withInitial) + 2 <= MAX_COMMAND_LINE_OCTETS) {
    response = await single(conn, withInitial, 'AUTH', timeoutMs);
  } else {
    response = await single(conn, `AUTH ${mechanism}`, 'AUTH', timeoutMs);
    if (response.status === 'err') throw serverError('auth', 'AUTH', response);
    if (response.status === 'ok') throw new Pop3Error('protocol', `POP3 AUTH ${mechanism}: +OK before any credentials were sent`);
    response = await single(conn, clientResponse, 'AUTH', timeoutMs);
  }
  if (response.status === 'ok') return;
  if (response.status === 'err') throw serverError('auth', 'AUTH', response);
  throw await failedChallenge(conn, mechanism, response.text, timeoutMs);
}

/**
 * A challenge after our only response is a refusal. For the OAuth mechanisms
 * it carries JSON {status, schemes, scope}; the exchange must be finished
 * before the server sends its -ERR: RFC 7628 §3.2.3 answers with a single
 * 0x01 ("AQ=="), Google's XOAUTH2 with an empty response. Other mechanisms
 * cancel with "*" (RFC 5034 §4).
 */
async function failedChallenge(conn: Connection, mechanism: SaslMechanism, challenge: string, timeoutMs: number): Promise<Pop3Error> {
  const oauth = mechanism === 'PLAIN' ? null : decodeOAuthChallenge(challenge);
  const answer = mechanism === 'OAUTHBEARER' ? OAUTHBEARER_ERROR_ACK : mechanism === 'XOAUTH2' ? '' : '*';
  const final = await single(conn, answer, 'AUTH', timeoutMs);
  if (final.status === 'err') return serverError('auth', 'AUTH', final, oauth);
  const detail = oauth?.status !== undefined ? ` (OAuth status ${oauth.status})` : '';
  return new Pop3Error(final.status === 'ok' ? 'auth' : 'protocol', `POP3 AUTH ${mechanism}: the server challenged our credentials${detail} and did not end with -ERR`, {
    oauth,
  });
}
