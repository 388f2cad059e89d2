/**
 * The pure half of the POP3 client: an incremental response reader over raw
 * socket bytes and parsers for CAPA/UIDL/LIST listings. No I/O here, so
 * every byte-split case is unit-testable.
 *
 * RFC 1939 (POP3), RFC 2449 (CAPA, extended response codes).
 */

import { Pop3ProtocolError, ResponseTooLargeError } from './errors.js';

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
 * 512 octets; servers exceed it with long texts, hence the headroom). Body
 * lines have no cap: a body has a size limit per command instead.
 */
export const MAX_STATUS_LINE_BYTES = 64 * 1024;
/** Bytes the server may send while no command is in flight (we never pipeline: all unsolicited). */
export const MAX_UNSOLICITED_BYTES = 64 * 1024;

const LF = 0x0a;
const CR = 0x0d;
const DOT = 0x2e;
const CR_BYTE = Buffer.from('\r', 'latin1');
/** Body pieces shorter than this are copied into a shared block instead of kept as views of their chunks. */
const COALESCE_BELOW_BYTES = 4 * 1024;
const COALESCE_BLOCK_BYTES = 64 * 1024;
const SMALL_COPY_BYTES = 64;

/**
 * Where the body scan stands: `inLine` (only a dot after an LF matters next), `lineStart`,
 * `afterDot` (a line-leading "." was dropped: LF ends the body, CR may, else it was stuffing),
 * `afterDotCr` (".CR" seen: LF ends the body, else the CR is body).
 */
type ScanState = 'inLine' | 'lineStart' | 'afterDot' | 'afterDotCr';

/**
 * Reads one response at a time from socket chunks. A body is scanned in
 * place: a chunk without a line-leading dot adds one view of itself, a
 * chunk split by dropped dots is copied compactly, and small pieces are
 * packed into shared blocks, so a hostile body (millions of empty or
 * dot-led lines, a trickle of tiny chunks) costs about its bytes, never an
 * object per line. The scan state survives chunk boundaries, so a response
 * may be split anywhere (inside CRLF, between LF and ".", inside ".CRLF").
 * Bytes after a complete response stay buffered for the next `start`.
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
  private body: BodyBuilder | null = null;
  private state: ScanState = 'lineStart';
  /** The last chunk ended in ".CR": that CR is body unless the next chunk starts with LF. */
  private heldCr = false;

  /**
   * Begins reading the next response; returns it at once if already buffered. A body longer than
   * `maxBodyBytes` (unstuffed) throws ResponseTooLargeError: drop the reader with its stream.
   */
  start(expect: Expect, maxBodyBytes = Infinity): Pop3Response | null {
    if (this.expect !== null) throw new Error('ResponseReader: a response is already being read');
    this.expect = expect;
    this.maxBodyBytes = maxBodyBytes;
    const buffered = this.pending;
    this.pending = [];
    this.pendingBytes = 0;
    for (const [i, chunk] of buffered.entries()) {
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
      if (this.pendingBytes > MAX_UNSOLICITED_BYTES) throw new Pop3ProtocolError(`more than ${MAX_UNSOLICITED_BYTES} bytes arrived while no command was in flight`);
      return null;
    }
    try {
      if (this.body !== null) return this.scanBody(this.body, chunk, 0);
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
    return this.statusBytes + (this.body?.bytes ?? 0);
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
    const status = parseStatusLine(raw.toString('utf8').replace(/\r?\n$/, ''));
    if (status.status !== 'ok' || this.expect !== 'multi') return this.finish(status, null, chunk, lf + 1);
    this.body = new BodyBuilder(status, this.maxBodyBytes);
    this.state = 'lineStart';
    return lf + 1 < chunk.length ? this.scanBody(this.body, chunk, lf + 1) : null;
  }

  /** One pass over a chunk, from `from`; only a line-leading dot costs JS work per line. */
  private scanBody(body: BodyBuilder, chunk: Buffer, from: number): Pop3Response | null {
    const end = chunk.length;
    let state = this.state;
    /** Start of the body bytes of this chunk not yet added. */
    let seg = from;
    let pos = from;
    while (pos < end) {
      if (state === 'inLine') {
        const dot = lineLeadingDot(chunk, pos);
        if (dot === -1) {
          state = chunk[end - 1] === LF ? 'lineStart' : 'inLine';
          break;
        }
        pos = dot;
        state = 'lineStart';
      }
      const byte = chunk[pos];
      if (state === 'lineStart') {
        if (byte !== DOT) {
          state = 'inLine';
          continue;
        }
        // RFC 1939 §3: a line-leading dot is dropped, whether it stuffs a line or starts the terminator.
        body.add(chunk, seg, pos);
        seg = ++pos;
        state = 'afterDot';
        continue;
      }
      // `.CRLF` ends the body; a bare `.LF` is accepted from sloppy servers.
      if (byte === LF) return this.endBody(body, chunk, pos + 1);
      if (state === 'afterDot' && byte === CR) {
        pos++;
        state = 'afterDotCr';
        continue;
      }
      // A stuffed line (".x", or ".CR" without LF): its bytes from `seg` on are body.
      if (this.heldCr) {
        // Nothing of this chunk is added yet (its first byte settles the held CR), so order holds.
        body.addCr();
        this.heldCr = false;
      }
      state = 'inLine';
    }
    if (state === 'afterDotCr' && !this.heldCr) {
      // The chunk ends in ".CR"; keep the CR back until we know whether LF follows.
      body.add(chunk, seg, end - 1);
      this.heldCr = true;
    } else {
      body.add(chunk, seg, end);
    }
    body.endChunk(chunk);
    this.state = state;
    return null;
  }

  /** The body ends; a held CR belonged to the terminator. */
  private endBody(body: BodyBuilder, chunk: Buffer, rest: number): Pop3Response {
    body.endChunk(chunk);
    return this.finish(body.status, body.concat(), chunk, rest);
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
    this.statusPieces = [];
    this.statusBytes = 0;
    this.body = null;
    this.state = 'lineStart';
    this.heldCr = false;
  }
}

/**
 * The body of a multi-line `+OK` under construction, within its size limit. Each chunk adds one
 * view of itself, unless dropped dots split it: then its pieces are copied.
 * Copies and views shorter than COALESCE_BELOW_BYTES go into shared blocks,
 * so tiny chunks and dot-split ones cost their bytes, not a Buffer each.
 */
class BodyBuilder {
  bytes = 0;
  private readonly parts: Buffer[] = [];
  private block: Buffer | null = null;
  /** block[blockStart, blockEnd) is filled but not yet a part. */
  private blockStart = 0;
  private blockEnd = 0;
  /** The chunk being scanned adds chunk[viewStart, viewEnd), until a second piece makes it copy. */
  private viewStart = 0;
  private viewEnd = 0;
  private copying = false;

  constructor(
    readonly status: StatusLine,
    private readonly maxBytes: number,
  ) {}

  /** Adds chunk[start, end): the next body bytes of the chunk being scanned. */
  add(chunk: Buffer, start: number, end: number): void {
    if (end <= start) return;
    this.count(end - start);
    if (!this.copying && this.viewEnd === this.viewStart) {
      this.viewStart = start;
      this.viewEnd = end;
      return;
    }
    if (!this.copying) {
      this.copying = true;
      this.copy(chunk, this.viewStart, this.viewEnd);
    }
    this.copy(chunk, start, end);
  }

  /** The CR of a ".CR" that ended the previous chunk and turned out not to start the terminator. */
  addCr(): void {
    this.count(1);
    this.copy(CR_BYTE, 0, 1);
  }

  endChunk(chunk: Buffer): void {
    if (!this.copying && this.viewEnd > this.viewStart) this.keep(chunk.subarray(this.viewStart, this.viewEnd));
    this.copying = false;
    this.viewStart = this.viewEnd = 0;
  }

  /** The one copy of the body: the caller owns it, and the chunks can go. */
  concat(): Buffer {
    this.seal();
    return Buffer.concat(this.parts, this.bytes);
  }

  private count(bytes: number): void {
    if (this.bytes + bytes > this.maxBytes) throw new ResponseTooLargeError(this.maxBytes);
    this.bytes += bytes;
  }

  private keep(piece: Buffer): void {
    if (piece.length < COALESCE_BELOW_BYTES) return this.copy(piece, 0, piece.length);
    this.seal();
    this.parts.push(piece);
  }

  private copy(source: Buffer, start: number, end: number): void {
    const block = this.block;
    if (block !== null && end - start <= SMALL_COPY_BYTES && this.blockEnd + (end - start) <= block.length) {
      // A stuffed line's few bytes: a loop is cheaper than a call into Buffer.copy.
      for (let i = start; i < end; i++) block[this.blockEnd++] = source[i] as number;
      return;
    }
    while (start < end) {
      if (this.block === null || this.blockEnd === this.block.length) {
        this.seal();
        this.block = Buffer.allocUnsafeSlow(COALESCE_BLOCK_BYTES);
        this.blockStart = this.blockEnd = 0;
      }
      const copied = source.copy(this.block, this.blockEnd, start, end);
      this.blockEnd += copied;
      start += copied;
    }
  }

  /** Makes the filled bytes of the block a part; the rest of the block stays in use. */
  private seal(): void {
    if (this.block !== null && this.blockEnd > this.blockStart) this.parts.push(this.block.subarray(this.blockStart, this.blockEnd));
    this.blockStart = this.blockEnd;
  }
}

/**
 * The next dot after `pos` (inside a line) that starts a line, or -1. A native search for the dot
 * alone, not for "LF .": LFs are everywhere in a body of empty lines, dots rarely start a line.
 */
function lineLeadingDot(chunk: Buffer, pos: number): number {
  for (let dot = chunk.indexOf(DOT, pos + 1); dot !== -1; dot = chunk.indexOf(DOT, dot + 1)) {
    if (chunk[dot - 1] === LF) return dot;
  }
  return -1;
}

/** Splits a status line into indicator, RFC 2449 response code and text. */
export function parseStatusLine(line: string): StatusLine {
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
