import { connect as netConnect, isIP, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from 'node:tls';
import { Pop3Error, Pop3ProtocolError, ResponseTooLargeError, serverError, type Pop3ErrorKind } from './errors.js';
import { ResponseReader, type Expect, type Pop3Response } from './protocol.js';

/**
 * The transport half of the POP3 client: one socket (plain, implicit TLS, or
 * upgraded by STLS, RFC 2595), one response reader, and a queue of commands
 * of which one is in flight, each with its deadlines.
 */

/** The longest wait for a single-line answer, and the longest silence inside a multi-line one. */
export const DEFAULT_COMMAND_TIMEOUT_MS = 30_000;
export const DEFAULT_CONNECT_TIMEOUT_MS = 15_000;

export type Pop3Security = 'tls' | 'starttls' | 'none';

export interface TransportOptions {
  host: string;
  port: number;
  security: Pop3Security;
  /** passed to tls.connect / tls.connect({socket}) for STLS */
  tls?: { rejectUnauthorized?: boolean; servername?: string; ca?: string | Buffer };
  /**
   * Default 30_000. A single-line answer must be complete within this; a
   * multi-line answer (RETR, TOP, UIDL, LIST, CAPA) may not go silent for
   * longer, however long it takes as a whole (see `overallTimeoutMs` of retr/top).
   */
  commandTimeoutMs?: number;
  /** deadline for TCP/TLS connect + greeting, default 15_000 */
  connectTimeoutMs?: number;
}

export interface RequestOptions {
  expect: Expect;
  /** `single`: the whole answer's deadline; `multi`: the no-progress deadline, restarted by every chunk. */
  timeoutMs: number;
  /** `multi` only: a cap on the whole answer, however steadily it arrives. */
  overallTimeoutMs?: number;
  /** `multi` only: the largest body accepted (dot-unstuffed); beyond it the connection is closed. */
  maxBodyBytes?: number;
}

interface Pending {
  /** null: send nothing, just read (the greeting). */
  line: string | null;
  verb: string;
  opts: RequestOptions;
  resolve: (response: Pop3Response) => void;
  reject: (err: Pop3Error) => void;
  /** The answer deadline (`single`) or the no-progress deadline (`multi`). */
  timer: NodeJS.Timeout | null;
  overallTimer: NodeJS.Timeout | null;
}

/** One socket, one reader, a queue of commands of which one is in flight. */
export class Connection {
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

  /** Opens plain TCP or implicit TLS, within `timeoutMs`. */
  static async open(opts: TransportOptions, timeoutMs: number): Promise<Connection> {
    return new Connection(await openSocket(opts, timeoutMs));
  }

  /**
   * Queues a command; resolves with the server's response, whatever its
   * status. `verb` names the command in errors: the line itself may hold a
   * password or token, so it never goes into a message.
   */
  request(line: string | null, verb: string, opts: RequestOptions): Promise<Pop3Response> {
    if (line !== null && /[\r\n]/.test(line)) {
      return Promise.reject(new Pop3Error('protocol', `POP3 ${verb}: a line break inside a command argument`));
    }
    if (this.failure) return Promise.reject(closedAfter(this.failure));
    return new Promise((resolve, reject) => {
      this.queue.push({ line, verb, opts, resolve, reject, timer: null, overallTimer: null });
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
    const { expect, timeoutMs, overallTimeoutMs, maxBodyBytes } = next.opts;
    next.timer = setTimeout(() => this.destroy(this.deadlineError(next, expect === 'single' ? 'answer' : 'silence', timeoutMs)), timeoutMs);
    if (expect === 'multi' && overallTimeoutMs !== undefined) {
      next.overallTimer = setTimeout(() => this.destroy(this.deadlineError(next, 'overall', overallTimeoutMs)), overallTimeoutMs);
    }
    if (next.line !== null) this.socket.write(`${next.line}\r\n`);
    this.deliver(() => this.reader.start(expect, maxBodyBytes));
  }

  private deadlineError(pending: Pending, which: 'answer' | 'silence' | 'overall', ms: number): Pop3Error {
    const read = `${this.reader.progress()} bytes of the answer read`;
    const what =
      which === 'answer'
        ? `no complete answer within ${ms} ms`
        : which === 'silence'
          ? `no data for ${ms} ms (no-progress deadline; ${read})`
          : `the answer took longer than its overall deadline of ${ms} ms (${read})`;
    return new Pop3Error('timeout', `POP3 ${pending.verb}: ${what}`);
  }

  private handleData(chunk: Buffer): void {
    const current = this.current;
    // A multi-line answer may take as long as it keeps coming; refresh() re-arms the timer without a new one.
    if (current?.opts.expect === 'multi') current.timer?.refresh();
    this.deliver(() => this.reader.push(chunk));
  }

  /** Runs one reader step; settles the command in flight when it completes or the stream is garbage. */
  private deliver(step: () => Pop3Response | null): void {
    let response: Pop3Response | null;
    try {
      response = step();
    } catch (err) {
      // The stream is out of step with our commands, or the rest of a too-large answer is unread; nothing after this can be trusted.
      const verb = this.current?.verb ?? 'response';
      if (err instanceof ResponseTooLargeError) {
        const message = `POP3 ${verb}: the answer is larger than the limit of ${err.limitBytes} bytes; the connection was closed (the rest cannot be skipped safely)`;
        this.destroy(new Pop3Error('too_large', message, { limitBytes: err.limitBytes, cause: err }));
        return;
      }
      if (!(err instanceof Pop3ProtocolError)) throw err;
      this.destroy(new Pop3Error('protocol', `POP3 ${verb}: ${err.message}`, { cause: err }));
      return;
    }
    const current = this.current;
    if (!response || !current) return;
    this.current = null;
    clearTimers(current);
    current.resolve(response);
    this.pump();
  }

  private fail(err: Pop3Error): void {
    if (this.failure) return;
    this.failure = err;
    const current = this.current;
    this.current = null;
    if (current) clearTimers(current);
    current?.reject(err);
    const rest = closedAfter(err);
    for (const queued of this.queue.splice(0)) queued.reject(rest);
  }
}

/**
 * The error for a command never sent (queued, or asked for later): it fails
 * because the connection is gone, whatever killed it, so a `too_large` or
 * `timeout` is not blamed on the next message.
 */
function closedAfter(err: Pop3Error): Pop3Error {
  return err.kind === 'connection' ? err : new Pop3Error('connection', `POP3 connection closed after: ${err.message}`, { cause: err });
}

function clearTimers(pending: Pending): void {
  if (pending.timer) clearTimeout(pending.timer);
  if (pending.overallTimer) clearTimeout(pending.overallTimer);
  pending.timer = pending.overallTimer = null;
}

/**
 * RFC 2595 §4 STLS; returns a new connection over the TLS socket. Fails with
 * kind `tls` when the server does not offer it (the connector looks for
 * "does not offer STLS" to fall back to a plain session when the admin allows it).
 */
export async function startTls(conn: Connection, opts: TransportOptions, capabilities: string[], commandTimeoutMs: number, connectTimeoutMs: number): Promise<Connection> {
  if (!capabilities.includes('STLS')) {
    throw new Pop3Error('tls', `POP3 server ${opts.host}:${opts.port} does not offer STLS, and security is 'starttls'`);
  }
  const response = await conn.request('STLS', 'STLS', { expect: 'single', timeoutMs: commandTimeoutMs });
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

/** TLS options for implicit TLS and STLS; no SNI for IP literals (RFC 6066 §3 forbids them). */
function tlsOptions(opts: TransportOptions): ConnectionOptions {
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
function openSocket(opts: TransportOptions, timeoutMs: number, upgrade?: Socket): Promise<Socket> {
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
