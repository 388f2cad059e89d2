/**
 * The pure half of the POP3 client: an incremental response reader over raw
 * socket bytes, parsers for CAPA/UIDL/LIST listings, and the SASL initial
 * responses. No I/O here, so every byte-split case is unit-testable.
 *
 * RFC 1939 (POP3), RFC 2449 (CAPA, extended response codes), RFC 5034 (AUTH).
 */

/** What the command in flight answers: one status line, or a status line plus a dot-terminated body. */
export type Expect = 'single' | 'multi';

export interface Pop3Response {
  /** `+OK`, `-ERR`, or a SASL continuation `+ <base64>` (RFC 5034 §4). */
  status: 'ok' | 'err' | 'cont';
  /** The words after the status indicator (for `cont`: the base64 challenge, maybe empty). */
  text: string;
  /** RFC 2449 §8 extended response code of an `-ERR`, e.g. `IN-USE`, `SYS/TEMP`, `AUTH`. */
  code: string | null;
  /** Multi-line `+OK` only: the body, dot-unstuffed, line ends as sent, terminator removed. */
  body: Buffer | null;
}

/**
 * A status line longer than this is not POP3 (RFC 2449 §4 caps responses at
 * 512 octets; servers exceed it with long texts, hence the headroom). Bodies
 * have no cap: a message line can be as long as the message.
 */
export const MAX_STATUS_LINE_BYTES = 64 * 1024;

const LF = 0x0a;
const CR = 0x0d;
const DOT = 0x2e;

export class Pop3ProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'Pop3ProtocolError';
  }
}

/**
 * Reads one response at a time from socket chunks, in one pass. Lines are kept
 * as subarrays of the chunks they arrived in; a body is copied once, by the
 * final Buffer.concat. A response may be split anywhere (inside CRLF, inside
 * the `CRLF.CRLF` terminator). Bytes after a complete response stay buffered
 * for the next `start`.
 */
export class ResponseReader {
  private expect: Expect | null = null;
  /** Chunks that arrived while no response was expected (invariant: empty while `expect` is set). */
  private pending: Buffer[] = [];
  /** The current, not yet LF-terminated line. */
  private line: Buffer[] = [];
  private lineBytes = 0;
  private status: Omit<Pop3Response, 'body'> | null = null;
  private body: Buffer[] = [];
  private bodyBytes = 0;

  /** Begins reading the next response; returns it at once if already buffered. */
  start(expect: Expect): Pop3Response | null {
    if (this.expect !== null) throw new Error('ResponseReader: a response is already being read');
    this.expect = expect;
    const buffered = this.pending;
    this.pending = [];
    for (let i = 0; i < buffered.length; i++) {
      const chunk = buffered[i];
      if (chunk === undefined) continue;
      const response = this.push(chunk);
      if (response) {
        // push() re-buffered the rest of this chunk; keep the later ones behind it.
        this.pending.push(...buffered.slice(i + 1));
        return response;
      }
    }
    return null;
  }

  /** Feeds bytes; returns the response when it completes (at most one per call). */
  push(chunk: Buffer): Pop3Response | null {
    if (this.expect === null) {
      if (chunk.length > 0) this.pending.push(chunk);
      return null;
    }
    let pos = 0;
    while (pos < chunk.length) {
      const lf = chunk.indexOf(LF, pos);
      if (lf === -1) {
        this.appendToLine(chunk.subarray(pos));
        return null;
      }
      this.appendToLine(chunk.subarray(pos, lf + 1));
      pos = lf + 1;
      const response = this.endLine();
      if (response) {
        if (pos < chunk.length) this.pending.push(chunk.subarray(pos));
        return response;
      }
    }
    return null;
  }

  /** True when bytes arrived that no response has consumed (after STLS this means injection). */
  hasBuffered(): boolean {
    return this.pending.length > 0 || this.lineBytes > 0;
  }

  private appendToLine(piece: Buffer): void {
    this.line.push(piece);
    this.lineBytes += piece.length;
    if (this.status === null && this.lineBytes > MAX_STATUS_LINE_BYTES) {
      throw new Pop3ProtocolError(`status line longer than ${MAX_STATUS_LINE_BYTES} bytes`);
    }
  }

  private endLine(): Pop3Response | null {
    const pieces = this.line;
    const length = this.lineBytes;
    this.line = [];
    this.lineBytes = 0;
    if (this.status === null) return this.onStatusLine(Buffer.concat(pieces, length));
    if (isTerminator(pieces, length)) return this.finish(Buffer.concat(this.body, this.bodyBytes));
    this.appendBodyLine(pieces);
    return null;
  }

  private onStatusLine(raw: Buffer): Pop3Response | null {
    const status = parseStatusLine(stripLineEnd(raw).toString('utf8'));
    if (status.status === 'ok' && this.expect === 'multi') {
      this.status = status;
      return null;
    }
    this.status = status;
    return this.finish(null);
  }

  /** RFC 1939 §3: a line starting with "." was byte-stuffed; drop that first dot. */
  private appendBodyLine(pieces: Buffer[]): void {
    const first = pieces[0];
    if (first !== undefined && first[0] === DOT) pieces[0] = first.subarray(1);
    for (const piece of pieces) {
      if (piece.length === 0) continue;
      this.body.push(piece);
      this.bodyBytes += piece.length;
    }
  }

  private finish(body: Buffer | null): Pop3Response {
    const status = this.status;
    if (status === null) throw new Error('ResponseReader: finish without a status line');
    this.expect = null;
    this.status = null;
    this.body = [];
    this.bodyBytes = 0;
    return { ...status, body };
  }
}

/** `.CRLF` ends a multi-line response; a bare `.LF` is accepted from sloppy servers. */
function isTerminator(pieces: Buffer[], length: number): boolean {
  if (length !== 3 && length !== 2) return false;
  const bytes = pieces.length === 1 && pieces[0] ? pieces[0] : Buffer.concat(pieces, length);
  return bytes[0] === DOT && (length === 2 || bytes[1] === CR);
}

function stripLineEnd(line: Buffer): Buffer {
  let end = line.length;
  if (end > 0 && line[end - 1] === LF) end--;
  if (end > 0 && line[end - 1] === CR) end--;
  return line.subarray(0, end);
}

/** Splits a status line into indicator, RFC 2449 response code and text. */
export function parseStatusLine(line: string): Omit<Pop3Response, 'body'> {
  const ok = /^\+OK(?:\s+(.*))?$/is.exec(line);
  if (ok) return { status: 'ok', text: ok[1] ?? '', code: null };
  const err = /^-ERR(?:\s+(.*))?$/is.exec(line);
  if (err) {
    const text = err[1] ?? '';
    const code = /^\[([^\]\s]+)\]/.exec(text);
    return { status: 'err', text, code: code?.[1]?.toUpperCase() ?? null };
  }
  // RFC 5034 §4: a server challenge is "+" SP base64; some servers send a lone "+" for an empty one.
  const cont = /^\+(?:\s+(.*))?$/s.exec(line);
  if (cont) return { status: 'cont', text: (cont[1] ?? '').trim(), code: null };
  throw new Pop3ProtocolError(`not a POP3 status line: ${JSON.stringify(line.slice(0, 80))}`);
}

/** A multi-line body's lines as text, without line ends (for CAPA/UIDL/LIST, never for RETR). */
export function bodyLines(body: Buffer): string[] {
  const text = body.toString('utf8');
  if (text === '') return [];
  const lines = text.split(/\r?\n/);
  if (lines.at(-1) === '') lines.pop();
  return lines;
}

/** RFC 2449 CAPA lines with the keyword upper-cased (keywords are case-insensitive, arguments may not be). */
export function parseCapabilities(lines: string[]): string[] {
  return lines
    .map((line) => line.trim())
    .filter((line) => line !== '')
    .map((line) => {
      const space = line.indexOf(' ');
      return space === -1 ? line.toUpperCase() : line.slice(0, space).toUpperCase() + line.slice(space);
    });
}

/** The SASL mechanisms of the CAPA `SASL` line (upper-cased), or null when the server lists none. */
export function saslMechanisms(capabilities: string[]): string[] | null {
  const line = capabilities.find((c) => c === 'SASL' || c.startsWith('SASL '));
  if (line === undefined) return null;
  return line.split(/\s+/).slice(1).filter(Boolean).map((m) => m.toUpperCase());
}

/** RFC 1939 §7 unique-id listing: `n uid` per line; uid is 1–70 printable characters. */
export function parseUidlListing(lines: string[]): Array<{ n: number; uidl: string }> {
  return lines.map((line) => {
    const m = /^(\d+)\s+([\x21-\x7e]+)\s*$/.exec(line);
    if (!m?.[1] || !m[2]) throw new Pop3ProtocolError(`malformed UIDL line: ${JSON.stringify(line.slice(0, 80))}`);
    return { n: Number(m[1]), uidl: m[2] };
  });
}

/** RFC 1939 §5 scan listing: `n size`, servers may append more after the size. */
export function parseScanListing(lines: string[]): Array<{ n: number; size: number }> {
  return lines.map((line) => {
    const m = /^(\d+)\s+(\d+)(?:\s.*)?$/.exec(line);
    if (!m?.[1] || !m[2]) throw new Pop3ProtocolError(`malformed LIST line: ${JSON.stringify(line.slice(0, 80))}`);
    return { n: Number(m[1]), size: Number(m[2]) };
  });
}

// The SASL builders live with the other OAuth code; re-exported for the client and its tests.
export { oauthbearerResponse, plainResponse, xoauth2Response } from '../../oauth/sasl.js';

export interface OAuthErrorChallenge {
  status?: string;
  schemes?: string;
  scope?: string;
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
