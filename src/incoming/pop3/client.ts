import { Connection, DEFAULT_COMMAND_TIMEOUT_MS, DEFAULT_CONNECT_TIMEOUT_MS, startTls, type RequestOptions, type TransportOptions } from './connection.js';
import { Pop3Error, Pop3ProtocolError, serverError } from './errors.js';
import { bodyLines, parseCapabilities, parseScanListing, parseUidlListing, type Pop3Response } from './protocol.js';
import { authenticate, type Pop3Auth } from './sasl.js';

/**
 * A small POP3 client (RFC 1939 + CAPA RFC 2449 + STLS RFC 2595 + AUTH
 * RFC 5034) with SASL XOAUTH2 and OAUTHBEARER, because no maintained npm
 * POP3 library speaks OAuth. One command in flight at a time; every answer
 * has a size limit and deadlines; RETR and TOP return raw bytes.
 */

export { DEFAULT_COMMAND_TIMEOUT_MS, DEFAULT_CONNECT_TIMEOUT_MS } from './connection.js';
export type { Pop3Security } from './connection.js';
export { Pop3Error } from './errors.js';
export type { OAuthErrorChallenge, Pop3ErrorKind } from './errors.js';
export { MAX_COMMAND_LINE_OCTETS } from './sasl.js';
export type { Pop3Auth } from './sasl.js';

export interface Pop3Options extends TransportOptions {
  auth: Pop3Auth;
}

/**
 * A backstop for `retr` without `maxBytes`; callers pass the account's
 * `maxMessageSize` instead.
 */
export const DEFAULT_RETR_MAX_BYTES = 256 * 1024 * 1024;
/** TOP's default limit: headers beyond this are hostile or broken, not mail. */
export const DEFAULT_TOP_MAX_BYTES = 256 * 1024;
/** UIDL/LIST: about a million messages' worth of lines. */
export const MAX_LISTING_BYTES = 64 * 1024 * 1024;
export const MAX_CAPA_BYTES = 64 * 1024;
/** The slowest transfer `transferDeadlineMs` allows for; slower than this, a message is a trickle attack or a dead link. */
export const MIN_TRANSFER_BYTES_PER_SECOND = 32 * 1024;

export interface BodyOptions {
  /**
   * The largest body accepted, counted after dot-unstuffing. Beyond it the
   * command fails with kind `too_large` and the connection is closed. Note
   * that RETR may return a little more than LIST announced (Dovecot adds a
   * CRLF to an unterminated last line; bare LFs can become CRLF).
   */
  maxBytes?: number;
  /** A cap on the whole answer, however steadily it arrives (see `transferDeadlineMs`); none by default. */
  overallTimeoutMs?: number;
}

/**
 * An overall deadline for an answer of about `sizeBytes` (e.g. its LIST
 * size): the no-progress allowance plus the time at `minBytesPerSecond`.
 */
export function transferDeadlineMs(sizeBytes: number, minBytesPerSecond = MIN_TRANSFER_BYTES_PER_SECOND, baseMs = DEFAULT_COMMAND_TIMEOUT_MS): number {
  return baseMs + Math.ceil((Math.max(0, sizeBytes) / minBytesPerSecond) * 1000);
}

function remaining(deadline: number): number {
  return Math.max(1, deadline - Date.now());
}

export class Pop3Client {
  private constructor(
    private readonly conn: Connection,
    readonly capabilities: string[],
    private readonly commandTimeoutMs: number,
  ) {}

  /** connect (implicit TLS or plain), read greeting, CAPA, STLS if security==='starttls' (fail with kind 'tls' if not offered), CAPA again, authenticate. */
  static async connect(opts: Pop3Options): Promise<Pop3Client> {
    const commandTimeoutMs = opts.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
    const connectTimeoutMs = opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    const deadline = Date.now() + connectTimeoutMs;
    let conn = await Connection.open(opts, connectTimeoutMs);
    try {
      const greeting = await conn.request(null, 'greeting', { expect: 'single', timeoutMs: remaining(deadline) });
      // "-ERR" instead of a greeting: the server turns us away (busy, blocked), not a login problem.
      if (greeting.status !== 'ok') throw serverError('connection', 'greeting', greeting);
      let capabilities = await readCapabilities(conn, commandTimeoutMs);
      if (opts.security === 'starttls') {
        conn = await startTls(conn, opts, capabilities, commandTimeoutMs, connectTimeoutMs);
        // RFC 2595 §4: capabilities learnt before TLS must be discarded.
        capabilities = await readCapabilities(conn, commandTimeoutMs);
      }
      await authenticate(conn, opts.auth, capabilities, commandTimeoutMs);
      return new Pop3Client(conn, capabilities, commandTimeoutMs);
    } catch (err) {
      conn.destroy();
      throw err;
    }
  }

  /** UIDL: message number → unique id, in server order */
  async uidl(): Promise<Array<{ n: number; uidl: string }>> {
    return parseListing('UIDL', parseUidlListing, await this.multi('UIDL', { maxBytes: MAX_LISTING_BYTES }));
  }

  async list(): Promise<Array<{ n: number; size: number }>> {
    return parseListing('LIST', parseScanListing, await this.multi('LIST', { maxBytes: MAX_LISTING_BYTES }));
  }

  /**
   * RETR n: the message bytes, dot-unstuffed, lines ending as sent,
   * terminating ".\r\n" removed. Larger than `maxBytes` (default
   * DEFAULT_RETR_MAX_BYTES): kind `too_large`, and this client is closed.
   */
  async retr(n: number, opts: BodyOptions = {}): Promise<Buffer> {
    const response = await this.multi(`RETR ${messageNumber(n)}`, { maxBytes: DEFAULT_RETR_MAX_BYTES, ...opts });
    return response.body ?? Buffer.alloc(0);
  }

  /**
   * RFC 1939 §7 TOP n lines (optional; CAPA lists `TOP`): the header block,
   * the blank line after it, and the first `lines` lines of the body.
   * `top(n, 0)` reads the headers of a message too large to RETR. Larger than
   * `maxBytes` (default DEFAULT_TOP_MAX_BYTES): kind `too_large`, and this
   * client is closed. A server without TOP answers -ERR: kind `protocol`.
   */
  async top(n: number, lines: number, opts: BodyOptions = {}): Promise<Buffer> {
    if (!Number.isSafeInteger(lines) || lines < 0) throw new RangeError(`POP3 TOP takes a line count of 0 or more, got ${lines}`);
    const response = await this.multi(`TOP ${messageNumber(n)} ${lines}`, { maxBytes: DEFAULT_TOP_MAX_BYTES, ...opts });
    return response.body ?? Buffer.alloc(0);
  }

  async dele(n: number): Promise<void> {
    await this.ok(`DELE ${messageNumber(n)}`, { expect: 'single', timeoutMs: this.commandTimeoutMs });
  }

  async noop(): Promise<void> {
    await this.ok('NOOP', { expect: 'single', timeoutMs: this.commandTimeoutMs });
  }

  /**
   * QUIT (commits DELEs on the server, UPDATE state); then closes the socket.
   * RFC 1939 §6: the server answers only after the UPDATE state, so its +OK
   * means the deletions are done and the socket can go at once. An -ERR
   * ("some deleted messages not removed") rejects with kind 'protocol'.
   */
  async quit(): Promise<void> {
    try {
      await this.ok('QUIT', { expect: 'single', timeoutMs: this.commandTimeoutMs });
    } finally {
      this.close();
    }
  }

  /** destroy the socket without QUIT (DELEs are NOT committed) */
  close(): void {
    this.conn.destroy();
  }

  private multi(line: string, opts: BodyOptions): Promise<Pop3Response> {
    const request: RequestOptions = { expect: 'multi', timeoutMs: this.commandTimeoutMs };
    if (opts.maxBytes !== undefined) request.maxBodyBytes = opts.maxBytes;
    if (opts.overallTimeoutMs !== undefined) request.overallTimeoutMs = opts.overallTimeoutMs;
    return this.ok(line, request);
  }

  /** Sends `line` (its first word names it in errors) and insists on +OK. */
  private async ok(line: string, request: RequestOptions): Promise<Pop3Response> {
    const verb = line.split(' ', 1)[0] ?? line;
    const response = await this.conn.request(line, verb, request);
    if (response.status === 'ok') return response;
    if (response.status === 'cont') throw new Pop3Error('protocol', `POP3 ${verb}: unexpected continuation "+"`);
    throw serverError('protocol', verb, response);
  }
}

function messageNumber(n: number): number {
  if (!Number.isSafeInteger(n) || n < 1) throw new RangeError(`POP3 message numbers are positive integers, got ${n}`);
  return n;
}

function parseListing<T>(verb: string, parse: (lines: string[]) => T[], response: Pop3Response): T[] {
  try {
    return parse(bodyLines(response.body ?? Buffer.alloc(0)));
  } catch (err) {
    if (err instanceof Pop3ProtocolError) throw new Pop3Error('protocol', `POP3 ${verb}: ${err.message}`, { cause: err });
    throw err;
  }
}

/** CAPA (RFC 2449); a server without it (-ERR) simply has no listed capabilities. */
async function readCapabilities(conn: Connection, timeoutMs: number): Promise<string[]> {
  const response = await conn.request('CAPA', 'CAPA', { expect: 'multi', timeoutMs, maxBodyBytes: MAX_CAPA_BYTES });
  if (response.status !== 'ok') return [];
  return parseCapabilities(bodyLines(response.body ?? Buffer.alloc(0)));
}
