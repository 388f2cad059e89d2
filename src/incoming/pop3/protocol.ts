/**
 * The pure half of the POP3 client: an incremental response reader over raw
 * socket bytes and parsers for CAPA/UIDL/LIST listings. No I/O here, so
 * every byte-split case is unit-testable.
 *
 * RFC 1939 (POP3), RFC 2449 (CAPA, extended response codes).
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

type StatusLine = Omit<Pop3Response, 'body'>;

/**
 * A status line longer than this is not POP3 (RFC 2449 §4 caps responses at
 * 512 octets; servers exceed it with long texts, hence the headroom). A body
 * line has no cap of its own (a line can be as long as the message); bodies
 * have a size limit per command instead.
 */
export const MAX_STATUS_LINE_BYTES = 64 * 1024;
/**
 * Bytes the server may send while no command is in flight (we never
 * pipeline, so any such byte is unsolicited); beyond this the stream is
 * hostile, not late.
 */
export const MAX_UNSOLICITED_BYTES = 64 * 1024;

const LF = 0x0a;
const CR = 0x0d;
const DOT = 0x2e;
/** A dot at the start of a line: either byte-stuffing or the terminator. */
const LF_DOT = Buffer.from('\n.', 'latin1');
/** The CR of ".CR" held back at the end of a chunk, emitted when no LF follows. */
const CR_BYTE = Buffer.from('\r', 'latin1');

export class Pop3ProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'Pop3ProtocolError';
  }
}

/** A multi-line body grew past the limit its command set; the rest of the stream is unread. */
export class ResponseTooLargeError extends Error {
  constructor(readonly limitBytes: number) {
    super(`the answer is larger than the limit of ${limitBytes} bytes`);
    this.name = 'ResponseTooLargeError';
  }
}

/**
 * Where the body scan stands between two bytes:
 * - `inLine`: inside a line; only "LF ." can matter next;
 * - `lineStart`: the next byte starts a line;
 * - `afterDot`: a line began with "." (dropped): LF ends the body, CR may, anything else was stuffing;
 * - `afterDotCr`: ".CR" seen: LF ends the body, anything else makes the CR body.
 */
type ScanState = 'inLine' | 'lineStart' | 'afterDot' | 'afterDotCr';

/**
 * Reads one response at a time from socket chunks. A body is scanned in
 * place: each chunk contributes one Buffer to it, a view of the chunk when
 * no stuffed dot sits inside, else one compact copy with the dots left out,
 * so a hostile body (millions of empty or dot-led lines) costs its bytes
 * plus a constant per chunk, never an object per line. The scan state
 * survives chunk boundaries, so a response may be split anywhere (inside
 * CRLF, between "LF" and ".", inside ".CRLF"). Bytes after a complete
 * response stay buffered for the next `start`.
 */
export class ResponseReader {
  private expect: Expect | null = null;
  private maxBodyBytes = Infinity;
  /** Chunks that arrived while no response was expected (invariant: empty while `expect` is set). */
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** The status line so far (it may arrive in pieces). */
  private statusPieces: Buffer[] = [];
  private statusBytes = 0;
  /** Set once the status line of a multi-line `+OK` is read: the body follows. */
  private status: StatusLine | null = null;
  private body: Buffer[] = [];
  private bodyBytes = 0;
  private state: ScanState = 'lineStart';
  /** The last chunk ended in ".CR": that CR is body unless the next chunk starts with LF. */
  private heldCr = false;
  /** This chunk's contribution to the body: a view [outStart, outEnd), or a copy once a dot splits it. */
  private outStart = 0;
  private outEnd = 0;
  private outCopy: Buffer | null = null;
  private outCopyBytes = 0;

  /**
   * Begins reading the next response; returns it at once if already buffered.
   * A multi-line body longer than `maxBodyBytes` (after unstuffing) throws
   * ResponseTooLargeError; the reader must then be dropped with its stream.
   */
  start(expect: Expect, maxBodyBytes = Infinity): Pop3Response | null {
    if (this.expect !== null) throw new Error('ResponseReader: a response is already being read');
    this.expect = expect;
    this.maxBodyBytes = maxBodyBytes;
    const buffered = this.pending;
    this.pending = [];
    this.pendingBytes = 0;
    for (let i = 0; i < buffered.length; i++) {
      const chunk = buffered[i];
      if (chunk === undefined) continue;
      const response = this.push(chunk);
      if (response) {
        // push() re-buffered the rest of this chunk; keep the later ones behind it.
        for (const later of buffered.slice(i + 1)) this.keep(later);
        return response;
      }
    }
    return null;
  }

  /** Feeds bytes; returns the response when it completes (at most one per call). */
  push(chunk: Buffer): Pop3Response | null {
    if (chunk.length === 0) return null;
    if (this.expect === null) {
      this.keep(chunk);
      if (this.pendingBytes > MAX_UNSOLICITED_BYTES) {
        throw new Pop3ProtocolError(`the server sent more than ${MAX_UNSOLICITED_BYTES} bytes while no command was in flight`);
      }
      return null;
    }
    try {
      if (this.status !== null) return this.scanBody(chunk, 0);
      return this.readStatus(chunk);
    } catch (err) {
      this.reset();
      throw err;
    }
  }

  /** True when bytes arrived that no response has consumed (after STLS this means injection). */
  hasBuffered(): boolean {
    return this.pendingBytes > 0 || this.statusBytes > 0;
  }

  /** Bytes of the response in flight read so far: status line, then unstuffed body. */
  progress(): number {
    return this.statusBytes + this.bodyBytes;
  }

  private keep(chunk: Buffer): void {
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
  }

  private readStatus(chunk: Buffer): Pop3Response | null {
    const lf = chunk.indexOf(LF);
    const piece = lf === -1 ? chunk : chunk.subarray(0, lf + 1);
    this.statusPieces.push(piece);
    this.statusBytes += piece.length;
    if (this.statusBytes > MAX_STATUS_LINE_BYTES) throw new Pop3ProtocolError(`status line longer than ${MAX_STATUS_LINE_BYTES} bytes`);
    if (lf === -1) return null;
    const raw = Buffer.concat(this.statusPieces, this.statusBytes);
    this.statusPieces = [];
    this.statusBytes = 0;
    const status = parseStatusLine(stripLineEnd(raw).toString('utf8'));
    if (status.status !== 'ok' || this.expect !== 'multi') return this.finish(status, null, chunk, lf + 1);
    this.status = status;
    this.state = 'lineStart';
    return lf + 1 < chunk.length ? this.scanBody(chunk, lf + 1) : null;
  }

  /**
   * One pass over a chunk, from `from`. Between dots the scan is a native
   * search for "LF ."; only a dot at the start of a line costs JS work.
   */
  private scanBody(chunk: Buffer, from: number): Pop3Response | null {
    const end = chunk.length;
    let state = this.state;
    /** Start of the body bytes of this chunk not yet emitted. */
    let seg = from;
    let pos = from;
    this.outStart = this.outEnd = from;
    while (pos < end) {
      if (state === 'inLine') {
        const found = chunk.indexOf(LF_DOT, pos);
        if (found === -1) {
          state = chunk[end - 1] === LF ? 'lineStart' : 'inLine';
          break;
        }
        pos = found + 1;
        state = 'lineStart';
      }
      const byte = chunk[pos];
      if (state === 'lineStart') {
        if (byte !== DOT) {
          state = 'inLine';
          continue;
        }
        // RFC 1939 §3: a line-leading dot is dropped, whether it stuffs a line or starts the terminator.
        this.emit(chunk, seg, pos);
        seg = ++pos;
        state = 'afterDot';
        continue;
      }
      // `.CRLF` ends the body; a bare `.LF` is accepted from sloppy servers.
      if (byte === LF) return this.endBody(chunk, pos + 1);
      if (state === 'afterDot' && byte === CR) {
        pos++;
        state = 'afterDotCr';
        continue;
      }
      // A stuffed line (".x", or ".CR" without LF): its bytes from `seg` on are body.
      if (this.heldCr) this.emitHeldCr();
      state = 'inLine';
    }
    if (state === 'afterDotCr' && !this.heldCr) {
      // The chunk ends in ".CR"; keep the CR back until we know whether LF follows.
      this.emit(chunk, seg, end - 1);
      this.heldCr = true;
    } else {
      this.emit(chunk, seg, end);
    }
    this.flushChunk(chunk);
    this.state = state;
    return null;
  }

  /** Adds chunk[start, end) to this chunk's contribution. */
  private emit(chunk: Buffer, start: number, end: number): void {
    const length = end - start;
    if (length <= 0) return;
    if (this.bodyBytes + length > this.maxBodyBytes) throw new ResponseTooLargeError(this.maxBodyBytes);
    this.bodyBytes += length;
    if (this.outCopy === null && this.outEnd === this.outStart) {
      this.outStart = start;
      this.outEnd = end;
      return;
    }
    if (this.outCopy === null) {
      // A dropped dot splits the chunk: from here on it is copied, compactly, into one buffer.
      this.outCopy = Buffer.allocUnsafe(chunk.length - this.outStart);
      this.outCopyBytes = chunk.copy(this.outCopy, 0, this.outStart, this.outEnd);
    }
    this.outCopyBytes += chunk.copy(this.outCopy, this.outCopyBytes, start, end);
  }

  private emitHeldCr(): void {
    this.heldCr = false;
    if (this.bodyBytes + 1 > this.maxBodyBytes) throw new ResponseTooLargeError(this.maxBodyBytes);
    this.bodyBytes += 1;
    // Nothing of this chunk is emitted yet (the held CR is settled by its first byte), so order holds.
    this.body.push(CR_BYTE);
  }

  private flushChunk(chunk: Buffer): void {
    if (this.outCopy !== null) this.body.push(this.outCopy.subarray(0, this.outCopyBytes));
    else if (this.outEnd > this.outStart) this.body.push(chunk.subarray(this.outStart, this.outEnd));
    this.outCopy = null;
    this.outCopyBytes = 0;
    this.outStart = this.outEnd = 0;
  }

  private endBody(chunk: Buffer, rest: number): Pop3Response {
    this.flushChunk(chunk);
    // A held CR belonged to the terminator.
    this.heldCr = false;
    // The one copy of the body: the caller gets a Buffer of its own, and the chunks can go.
    const body = Buffer.concat(this.body, this.bodyBytes);
    const status = this.status;
    if (status === null) throw new Error('ResponseReader: a body without a status line');
    return this.finish(status, body, chunk, rest);
  }

  private finish(status: StatusLine, body: Buffer | null, chunk: Buffer, rest: number): Pop3Response {
    this.reset();
    if (rest < chunk.length) this.keep(chunk.subarray(rest));
    return { ...status, body };
  }

  /** Forgets the response in flight (done, or the stream is being dropped). */
  private reset(): void {
    this.expect = null;
    this.maxBodyBytes = Infinity;
    this.status = null;
    this.statusPieces = [];
    this.statusBytes = 0;
    this.body = [];
    this.bodyBytes = 0;
    this.state = 'lineStart';
    this.heldCr = false;
    this.outCopy = null;
    this.outCopyBytes = 0;
    this.outStart = this.outEnd = 0;
  }
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
