import { connect as netConnect, isIP, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from 'node:tls';
import {
  bodyLines,
  decodeOAuthChallenge,
  oauthbearerResponse,
  parseCapabilities,
  parseScanListing,
  parseUidlListing,
  plainResponse,
  Pop3ProtocolError,
  ResponseReader,
  saslMechanisms,
  xoauth2Response,
  type Expect,
  type OAuthErrorChallenge,
  type Pop3Response,
} from './protocol.js';

/**
 * A small POP3 client (RFC 1939 + CAPA RFC 2449 + STLS RFC 2595 + AUTH
 * RFC 5034) with SASL XOAUTH2 and OAUTHBEARER, because no maintained npm
 * POP3 library speaks OAuth. One command in flight at a time, each with a
 * deadline; RETR returns raw bytes.
 */

export const DEFAULT_COMMAND_TIMEOUT_MS = 30_000;
export const DEFAULT_CONNECT_TIMEOUT_MS = 15_000;
/** RFC 2449 §4 / RFC 5034 §4: a command line, CRLF included, must fit in 255 octets. */
export const MAX_COMMAND_LINE_OCTETS = 255;

export type Pop3Security = 'tls' | 'starttls' | 'none';
export type Pop3Auth =
  | { mechanism: 'XOAUTH2' | 'OAUTHBEARER'; user: string; accessToken: string }
  | { mechanism: 'PLAIN' | 'USER'; user: string; password: string };
export interface Pop3Options {
  host: string;
  port: number;
  security: Pop3Security;
  /** passed to tls.connect / tls.connect({socket}) for STLS */
  tls?: { rejectUnauthorized?: boolean; servername?: string; ca?: string | Buffer };
  auth: Pop3Auth;
  /** deadline for each command's full response, default 30_000 */
  commandTimeoutMs?: number;
  /** deadline for TCP/TLS connect + greeting, default 15_000 */
  connectTimeoutMs?: number;
}

export type Pop3ErrorKind = 'auth' | 'protocol' | 'timeout' | 'connection' | 'tls';

export class Pop3Error extends Error {
  readonly kind: Pop3ErrorKind;
  /** the server's words after -ERR, if any */
  readonly serverText: string | null;
  /** for a SASL OAuth error challenge: the decoded JSON {status, schemes, scope} */
  readonly oauth: OAuthErrorChallenge | null;
  /**
   * RFC 2449 §8 response code of the -ERR, upper-cased: `SYS/TEMP`, `IN-USE`
   * and `LOGIN-DELAY` mark a failed login as transient, `AUTH` and `SYS/PERM`
   * as the credentials' or the account's fault.
   */
  readonly responseCode: string | null;

  constructor(
    kind: Pop3ErrorKind,
    message: string,
    options: { serverText?: string | null; oauth?: OAuthErrorChallenge | null; responseCode?: string | null; cause?: unknown } = {},
  ) {
    super(message, options.cause !== undefined ? { cause: options.cause } : undefined);
    this.name = 'Pop3Error';
    this.kind = kind;
    this.serverText = options.serverText ?? null;
    this.oauth = options.oauth ?? null;
    this.responseCode = options.responseCode ?? null;
  }
}

/** A Pop3Error for an -ERR answer; the message names only the verb, never the arguments (secrets). */
function serverError(kind: Pop3ErrorKind, verb: string, response: Pop3Response, oauth: OAuthErrorChallenge | null = null): Pop3Error {
  const said = response.text === '' ? '' : `: ${response.text}`;
  return new Pop3Error(kind, `POP3 ${verb} failed${said}`, { serverText: response.text, oauth, responseCode: response.code });
}

interface Pending {
  /** null: send nothing, just read (the greeting). */
  line: string | null;
  verb: string;
  expect: Expect;
  timeoutMs: number;
  resolve: (response: Pop3Response) => void;
  reject: (err: Pop3Error) => void;
  timer: NodeJS.Timeout | null;
}

/** One socket, one reader, a queue of commands of which one is in flight. */
class Connection {
  private readonly reader = new ResponseReader();
  private readonly queue: Pending[] = [];
  private current: Pending | null = null;
  private failure: Pop3Error | null = null;
  private socketError: Error | null = null;
  private readonly onData = (chunk: Buffer): void => this.handleData(chunk);
  private readonly onError = (err: Error): void => {
    this.socketError = err;
  };
  private readonly onClose = (): void => {
    const cause = this.socketError;
    const why = cause ? `: ${cause.message}` : '';
    this.fail(new Pop3Error('connection', `POP3 connection closed${why}`, cause ? { cause } : {}));
  };

  constructor(readonly socket: Socket) {
    socket.on('data', this.onData);
    socket.on('error', this.onError);
    socket.on('close', this.onClose);
  }

  /**
   * Queues a command; resolves with the server's response, whatever its
   * status. `verb` names the command in errors: the line itself may hold a
   * password or token, so it never goes into a message.
   */
  request(line: string | null, verb: string, expect: Expect, timeoutMs: number): Promise<Pop3Response> {
    if (line !== null && /[\r\n]/.test(line)) {
      return Promise.reject(new Pop3Error('protocol', `POP3 ${verb}: a line break inside a command argument`));
    }
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.queue.push({ line, verb, expect, timeoutMs, resolve, reject, timer: null });
      this.pump();
    });
  }

  /** True when the server sent bytes no response has consumed. */
  hasBuffered(): boolean {
    return this.reader.hasBuffered();
  }

  /** Hands the socket over (STLS); this connection is unusable afterwards. */
  detach(): Socket {
    this.socket.off('data', this.onData);
    this.socket.off('error', this.onError);
    this.socket.off('close', this.onClose);
    this.failure = new Pop3Error('connection', 'POP3 connection was handed over to TLS');
    return this.socket;
  }

  /** Destroys the socket; everything pending fails with `err`. */
  destroy(err: Pop3Error = new Pop3Error('connection', 'POP3 connection closed by the client')): void {
    this.fail(err);
    this.socket.destroy();
  }

  private pump(): void {
    if (this.current || this.failure) return;
    const next = this.queue.shift();
    if (!next) return;
    this.current = next;
    next.timer = setTimeout(() => {
      this.destroy(new Pop3Error('timeout', `POP3 ${next.verb}: no complete answer within ${next.timeoutMs} ms`));
    }, next.timeoutMs);
    if (next.line !== null) this.socket.write(`${next.line}\r\n`);
    this.deliver(() => this.reader.start(next.expect));
  }

  private handleData(chunk: Buffer): void {
    this.deliver(() => this.reader.push(chunk));
  }

  /** Runs one reader step; settles the command in flight when it completes or the stream is garbage. */
  private deliver(step: () => Pop3Response | null): void {
    let response: Pop3Response | null;
    try {
      response = step();
    } catch (err) {
      if (!(err instanceof Pop3ProtocolError)) throw err;
      // The stream is out of step with our commands; nothing after this can be trusted.
      this.destroy(new Pop3Error('protocol', `POP3 ${this.current?.verb ?? 'response'}: ${err.message}`, { cause: err }));
      return;
    }
    const current = this.current;
    if (!response || !current) return;
    this.current = null;
    if (current.timer) clearTimeout(current.timer);
    current.resolve(response);
    this.pump();
  }

  private fail(err: Pop3Error): void {
    if (this.failure) return;
    this.failure = err;
    const current = this.current;
    this.current = null;
    if (current?.timer) clearTimeout(current.timer);
    current?.reject(err);
    // Queued commands were never sent; they fail because the connection is gone, whatever killed it.
    const rest = err.kind === 'connection' ? err : new Pop3Error('connection', `POP3 connection closed after: ${err.message}`, { cause: err });
    for (const queued of this.queue.splice(0)) queued.reject(rest);
  }
}

/** TLS options for implicit TLS and STLS; no SNI for IP literals (RFC 6066 §3 forbids them). */
function tlsOptions(opts: Pop3Options): ConnectionOptions {
  const servername = opts.tls?.servername ?? (isIP(opts.host) ? undefined : opts.host);
  return {
    host: opts.host,
    ...(servername !== undefined ? { servername } : {}),
    ...(opts.tls?.rejectUnauthorized !== undefined ? { rejectUnauthorized: opts.tls.rejectUnauthorized } : {}),
    ...(opts.tls?.ca !== undefined ? { ca: opts.tls.ca } : {}),
  };
}

const NETWORK_ERRORS = new Set(['ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH']);

/** A failure once TCP is up but before TLS is: a certificate or handshake problem, unless the network broke. */
function socketFailure(err: Error, tcpUp: boolean, tlsPending: boolean): Pop3Error {
  const code = (err as NodeJS.ErrnoException).code ?? '';
  const kind: Pop3ErrorKind = tcpUp && tlsPending && !NETWORK_ERRORS.has(code) ? 'tls' : 'connection';
  return new Pop3Error(kind, `POP3 ${kind === 'tls' ? 'TLS handshake' : 'connection'} failed: ${err.message}`, { cause: err });
}

/**
 * Resolves with a connected socket: plain TCP, implicit TLS, or (with
 * `upgrade`) TLS over an existing socket after STLS. One deadline for all of it.
 */
function openSocket(opts: Pop3Options, timeoutMs: number, upgrade?: Socket): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const useTls = upgrade !== undefined || opts.security === 'tls';
    const socket: Socket | TLSSocket = upgrade
      ? tlsConnect({ ...tlsOptions(opts), socket: upgrade })
      : useTls
        ? tlsConnect({ ...tlsOptions(opts), port: opts.port })
        : netConnect({ host: opts.host, port: opts.port });
    let tcpUp = upgrade !== undefined;
    const done = (err: Pop3Error | null): void => {
      clearTimeout(timer);
      socket.off('error', onError);
      socket.off('connect', onTcp);
      socket.off(useTls ? 'secureConnect' : 'connect', onReady);
      if (err) {
        // A TLS socket can report a second error while it is torn down; without a listener it would crash the process.
        socket.on('error', () => undefined);
        socket.destroy();
        reject(err);
      } else {
        resolve(socket);
      }
    };
    const onError = (err: Error): void => done(socketFailure(err, tcpUp, useTls));
    const onTcp = (): void => {
      tcpUp = true;
    };
    const onReady = (): void => done(null);
    const timer = setTimeout(() => {
      const what = upgrade ? 'TLS handshake after STLS' : useTls ? 'TLS connect' : 'connect';
      done(new Pop3Error('timeout', `POP3 ${what} to ${opts.host}:${opts.port} took longer than ${timeoutMs} ms`));
    }, timeoutMs);
    socket.on('error', onError);
    socket.once('connect', onTcp);
    socket.once(useTls ? 'secureConnect' : 'connect', onReady);
  });
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
    let conn = new Connection(await openSocket(opts, connectTimeoutMs));
    try {
      const greeting = await conn.request(null, 'greeting', 'single', remaining(deadline));
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
    return parseListing('UIDL', parseUidlListing, await this.ok('UIDL', 'multi'));
  }

  async list(): Promise<Array<{ n: number; size: number }>> {
    return parseListing('LIST', parseScanListing, await this.ok('LIST', 'multi'));
  }

  /** RETR n: the message bytes, dot-unstuffed, lines ending CRLF, terminating ".\r\n" removed */
  async retr(n: number): Promise<Buffer> {
    const response = await this.ok('RETR', 'multi', messageNumber(n));
    return response.body ?? Buffer.alloc(0);
  }

  async dele(n: number): Promise<void> {
    await this.ok('DELE', 'single', messageNumber(n));
  }

  async noop(): Promise<void> {
    await this.ok('NOOP', 'single');
  }

  /**
   * QUIT (commits DELEs on the server, UPDATE state); then closes the socket.
   * RFC 1939 §6: the server answers only after the UPDATE state, so its +OK
   * means the deletions are done and the socket can go at once. An -ERR
   * ("some deleted messages not removed") rejects with kind 'protocol'.
   */
  async quit(): Promise<void> {
    try {
      await this.ok('QUIT', 'single');
    } finally {
      this.close();
    }
  }

  /** destroy the socket without QUIT (DELEs are NOT committed) */
  close(): void {
    this.conn.destroy();
  }

  private async ok(verb: string, expect: Expect, arg?: number): Promise<Pop3Response> {
    const line = arg === undefined ? verb : `${verb} ${arg}`;
    const response = await this.conn.request(line, verb, expect, this.commandTimeoutMs);
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
  const response = await conn.request('CAPA', 'CAPA', 'multi', timeoutMs);
  if (response.status !== 'ok') return [];
  return parseCapabilities(bodyLines(response.body ?? Buffer.alloc(0)));
}

/** RFC 2595 §4 STLS; returns a new connection over the TLS socket. */
async function startTls(conn: Connection, opts: Pop3Options, capabilities: string[], commandTimeoutMs: number, connectTimeoutMs: number): Promise<Connection> {
  if (!capabilities.includes('STLS')) {
    throw new Pop3Error('tls', `POP3 server ${opts.host}:${opts.port} does not offer STLS, and security is 'starttls'`);
  }
  const response = await conn.request('STLS', 'STLS', 'single', commandTimeoutMs);
  if (response.status !== 'ok') throw serverError('tls', 'STLS', response);
  // Bytes after "+OK" and before the handshake were not protected by TLS;
  // accepting them would let a man in the middle inject responses (CVE-2011-0411).
  if (conn.hasBuffered()) throw new Pop3Error('tls', 'POP3 server sent data after +OK to STLS, before TLS; refusing it');
  const plain = conn.detach();
  try {
    return new Connection(await openSocket(opts, connectTimeoutMs, plain));
  } catch (err) {
    plain.destroy();
    throw err;
  }
}

type OAuthMechanism = 'XOAUTH2' | 'OAUTHBEARER';

async function authenticate(conn: Connection, auth: Pop3Auth, capabilities: string[], timeoutMs: number): Promise<void> {
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

/** RFC 1939 §7 USER/PASS. */
async function userPass(conn: Connection, user: string, password: string, timeoutMs: number): Promise<void> {
  for (const [verb, arg] of [['USER', user], ['PASS', password]] as const) {
    if (/[\r\n]/.test(arg)) throw new Pop3Error('auth', `POP3 ${verb}: the ${verb === 'USER' ? 'user name' : 'password'} contains a line break`);
    const response = await conn.request(`${verb} ${arg}`, verb, 'single', timeoutMs);
    if (response.status !== 'ok') throw serverError('auth', verb, response);
  }
}

/**
 * RFC 5034 AUTH with one client response. The initial response goes on the
 * AUTH line only when that line fits in 255 octets (RFC 5034 §4 forbids
 * longer); OAuth tokens rarely fit, so they usually follow the server's empty
 * "+ " challenge, as Microsoft documents for POP3 XOAUTH2.
 */
async function sasl(conn: Connection, mechanism: 'PLAIN' | OAuthMechanism, clientResponse: string, timeoutMs: number): Promise<void> {
  const withInitial = `AUTH ${mechanism} ${clientResponse}`;
  let response: Pop3Response;
  if (Buffer.byteLength(withInitial) + 2 <= MAX_COMMAND_LINE_OCTETS) {
    response = await conn.request(withInitial, 'AUTH', 'single', timeoutMs);
  } else {
    response = await conn.request(`AUTH ${mechanism}`, 'AUTH', 'single', timeoutMs);
    if (response.status === 'err') throw serverError('auth', 'AUTH', response);
    if (response.status === 'ok') throw new Pop3Error('protocol', `POP3 AUTH ${mechanism}: +OK before any credentials were sent`);
    response = await conn.request(clientResponse, 'AUTH', 'single', timeoutMs);
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
async function failedChallenge(conn: Connection, mechanism: 'PLAIN' | OAuthMechanism, challenge: string, timeoutMs: number): Promise<Pop3Error> {
  const oauth = mechanism === 'PLAIN' ? null : decodeOAuthChallenge(challenge);
  const answer = mechanism === 'OAUTHBEARER' ? 'AQ==' : mechanism === 'XOAUTH2' ? '' : '*';
  const final = await conn.request(answer, 'AUTH', 'single', timeoutMs);
  if (final.status === 'err') return serverError('auth', 'AUTH', final, oauth);
  const detail = oauth?.status !== undefined ? ` (OAuth status ${oauth.status})` : '';
  return new Pop3Error(final.status === 'ok' ? 'auth' : 'protocol', `POP3 AUTH ${mechanism}: the server challenged our credentials${detail} and did not end with -ERR`, {
    oauth,
  });
}
