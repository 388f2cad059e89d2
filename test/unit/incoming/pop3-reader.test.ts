import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import { describe, expect, it } from 'vitest';
import { Pop3ProtocolError, ResponseTooLargeError } from '../../../src/incoming/pop3/errors.js';
import { MAX_UNSOLICITED_BYTES, ResponseReader, type Pop3Response } from '../../../src/incoming/pop3/protocol.js';

/**
 * The body scan of ResponseReader against a line-by-line reference of
 * RFC 1939 §3, over every split that matters: the scan keeps its state
 * across chunks ("LF" | ".", "." | "CR LF", ".CR" | "LF"), so each cut
 * position is its own code path.
 */

const b = (s: string) => Buffer.from(s, 'latin1');
const NEXT = '+OK next\r\n';

/** RFC 1939 §3 the slow way: split at LF, stop at ".CRLF" (or ".LF"), drop a leading dot. */
function reference(wire: Buffer): { body: Buffer; consumed: number } {
  const out: Buffer[] = [];
  let pos = 0;
  while (pos < wire.length) {
    const lf = wire.indexOf(0x0a, pos);
    if (lf === -1) break;
    const line = wire.subarray(pos, lf + 1);
    pos = lf + 1;
    if (line.equals(b('.\r\n')) || line.equals(b('.\n'))) return { body: Buffer.concat(out), consumed: pos };
    out.push(line[0] === 0x2e ? line.subarray(1) : line);
  }
  throw new Error('reference: no terminator');
}

/** Feeds `pieces`; returns the multi-line response and the single-line one after it. */
function readTwo(pieces: Buffer[], maxBodyBytes?: number): [Pop3Response, Pop3Response] {
  const reader = new ResponseReader();
  let first = reader.start('multi', maxBodyBytes);
  let second: Pop3Response | null = null;
  for (const piece of pieces) {
    const got = reader.push(piece);
    if (!got) continue;
    if (first) second = got;
    else first = got;
    if (first && !second) second = reader.start('single');
  }
  if (!first || !second) throw new Error('incomplete');
  expect(reader.hasBuffered()).toBe(false);
  return [first, second];
}

function cut(wire: Buffer, at: number[]): Buffer[] {
  const bounds = [0, ...at, wire.length];
  // Fresh copies: the reader must not depend on pieces sharing memory.
  return bounds.slice(1).map((end, i) => Buffer.from(wire.subarray(bounds[i], end)));
}

function expectBody(wire: Buffer, body: Buffer, pieces: Buffer[]): void {
  const [first, second] = readTwo(pieces);
  expect(first.status).toBe('ok');
  const same = first.body?.equals(body) ?? false;
  if (!same) throw new Error(`split ${JSON.stringify(pieces.map((p) => p.toString('latin1')))}: got ${JSON.stringify(first.body?.toString('latin1'))}`);
  expect(second.text).toBe('next');
}

describe('ResponseReader body scan across chunk splits', () => {
  // Empty lines, stuffed dots, ".CR" not followed by LF, ".CR CR LF", bare LFs, a stuffed bare-LF line.
  const lines = '\r\n..\r\n...\r\n.\rX\r\n.\r\r\n.a\nb\r\n\n..\n\r\n';
  const terminators = ['.\r\n', '.\n'];

  it('matches the line-by-line reference for every cut into two and three pieces', { timeout: 30_000 }, () => {
    for (const terminator of terminators) {
      const wire = b(`+OK\r\n${lines}${terminator}${NEXT}`);
      const { body } = reference(wire.subarray(5));
      expect(body.toString('latin1')).toBe('\r\n.\r\n..\r\n\rX\r\n\r\r\na\nb\r\n\n.\n\r\n');
      for (let i = 1; i < wire.length; i++) {
        expectBody(wire, body, cut(wire, [i]));
        for (let j = i + 1; j < wire.length; j++) expectBody(wire, body, cut(wire, [i, j]));
      }
    }
  });

  it('matches the reference on random bodies of dots, CRs and LFs, randomly split', () => {
    let seed = 0x9e3779b9;
    const random = (n: number): number => {
      // xorshift32: deterministic, so a failure replays.
      seed ^= seed << 13;
      seed ^= seed >>> 17;
      seed ^= seed << 5;
      return (seed >>> 0) % n;
    };
    const alphabet = ['.', '\r', '\n', 'a', '\r\n', '.\r'];
    let checked = 0;
    while (checked < 3_000) {
      let text = '';
      for (let k = random(40); k > 0; k--) text += alphabet[random(alphabet.length)];
      const terminator = ['\r\n.\r\n', '\n.\n', '\r\n.\n'][random(3)] ?? '';
      const afterStatus = b(`${text}${terminator}`);
      const { body, consumed } = reference(afterStatus);
      if (consumed !== afterStatus.length) continue; // the random text ended the body early; not this case
      const wire = Buffer.concat([b('+OK\r\n'), afterStatus, b(NEXT)]);
      const at = [...new Set(Array.from({ length: random(6) }, () => 1 + random(wire.length - 1)))].sort((x, y) => x - y);
      expectBody(wire, body, cut(wire, at));
      checked++;
    }
  });

  it('joins plain chunks and dot-split chunks in order', () => {
    const reader = new ResponseReader();
    reader.start('multi');
    reader.push(b('+OK\r\n'));
    const plain = b('a\r\nb\r\n');
    reader.push(plain);
    reader.push(b('..c\r\n..d\r\n'));
    const response = reader.push(b('.\r\n'));
    expect(response?.body?.toString()).toBe('a\r\nb\r\n.c\r\n.d\r\n');
  });
});

describe('ResponseReader limits', () => {
  const wire = b('+OK\r\n0123456789\r\n..\r\n.\r\n'); // body: 12 + 3 bytes

  it('accepts a body of exactly maxBodyBytes and refuses one byte more', () => {
    expect(readTwo([wire, b(NEXT)], 15)[0].body?.length).toBe(15);
    for (let i = 1; i < wire.length; i++) {
      const reader = new ResponseReader();
      reader.start('multi', 14);
      const feed = () => cut(wire, [i]).forEach((piece) => reader.push(piece));
      expect(feed).toThrow(ResponseTooLargeError);
    }
  });

  it('names the limit, and forgets the body it refused', () => {
    const reader = new ResponseReader();
    reader.start('multi', 4);
    let thrown: unknown = null;
    try {
      reader.push(wire);
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(ResponseTooLargeError);
    expect((thrown as ResponseTooLargeError).limitBytes).toBe(4);
    expect((thrown as Error).message).toMatch(/limit of 4 bytes/);
    expect(reader.progress()).toBe(0);
  });

  it('refuses a flood of bytes while no command is in flight', () => {
    const reader = new ResponseReader();
    reader.push(Buffer.alloc(MAX_UNSOLICITED_BYTES, 0x41));
    expect(() => reader.push(b('x'))).toThrow(Pop3ProtocolError);
  });
});

/** `gc()` for memory assertions; vitest workers do not run with --expose-gc. */
function collector(): () => void {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

/** Collects until freed ArrayBuffers are accounted for: V8 releases their memory after gc() returns. */
async function settle(gc: () => void): Promise<void> {
  for (let i = 0; i < 5; i++) {
    gc();
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('ResponseReader memory', () => {
  const MiB = 1024 * 1024;

  it('holds a body of millions of stuffed-dot lines in about its size, not an object per line', { timeout: 60_000 }, async () => {
    const gc = collector();
    const BODY_WIRE_BYTES = 32 * MiB;
    const CHUNK_BYTES = 16 * 1024;
    const reader = new ResponseReader();
    reader.start('multi');
    reader.push(b('+OK\r\n'));
    await settle(gc);
    const before = process.memoryUsage();
    // "..CRLF" is a stuffed "." line: every line splits its chunk (8 M lines in all).
    for (let sent = 0; sent < BODY_WIRE_BYTES; sent += CHUNK_BYTES) expect(reader.push(Buffer.alloc(CHUNK_BYTES, '..\r\n'))).toBeNull();
    await settle(gc);
    const during = process.memoryUsage();
    const body = reader.push(b('.\r\n'))?.body;
    expect(body?.length).toBe((BODY_WIRE_BYTES / 4) * 3);
    expect(body?.subarray(0, 6).toString()).toBe('.\r\n.\r\n');
    // Per line, the old reader kept a Buffer view (~110 bytes of heap): 900 MB here.
    expect(during.heapUsed - before.heapUsed).toBeLessThan(8 * MiB);
    // The chunks are not kept, only their bytes without the dropped dots (3/4 of the wire).
    expect(during.arrayBuffers - before.arrayBuffers).toBeLessThan((BODY_WIRE_BYTES / 4) * 3 + 2 * MiB);
  });

  it('packs a trickle of tiny chunks into blocks instead of keeping a Buffer per chunk', { timeout: 60_000 }, async () => {
    const gc = collector();
    const BODY_BYTES = 8 * MiB;
    const CHUNK_BYTES = 16;
    const reader = new ResponseReader();
    reader.start('multi');
    reader.push(b('+OK\r\n'));
    await settle(gc);
    const before = process.memoryUsage();
    for (let sent = 0; sent < BODY_BYTES; sent += CHUNK_BYTES) reader.push(Buffer.alloc(CHUNK_BYTES, '\r\n'));
    await settle(gc);
    const during = process.memoryUsage();
    expect(reader.push(b('.\r\n'))?.body?.length).toBe(BODY_BYTES);
    // Half a million chunks: kept as views they would cost ~100 MB of heap.
    expect(during.heapUsed - before.heapUsed).toBeLessThan(4 * MiB);
    expect(during.arrayBuffers - before.arrayBuffers).toBeLessThan(BODY_BYTES + 2 * MiB);
  });
});
