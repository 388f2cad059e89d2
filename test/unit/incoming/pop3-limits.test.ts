import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterEach, describe, expect, it } from 'vitest';
import { DEFAULT_TOP_MAX_BYTES, Pop3Client, Pop3Error, transferDeadlineMs, type Pop3Options } from '../../../src/incoming/pop3/client.js';

/**
 * Size and time budgets of multi-line answers, against a POP3 server on
 * loopback that logs anyone in (USER/PASS) and hands every other command to
 * the test. Deadlines are short real ones, never fake timers: the sockets
 * are real. Nothing here asserts on elapsed time.
 */

type Handler = (command: string, socket: Socket) => Promise<void> | void;

interface FakeServer {
  port: number;
  commands: string[];
  /** Resolves when the client's connection is closed. */
  closed: Promise<void>;
}

const servers: Server[] = [];
const sockets = new Set<Socket>();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const MiB = 1024 * 1024;

afterEach(async () => {
  for (const socket of sockets) socket.destroy();
  sockets.clear();
  await Promise.all(servers.splice(0).map((s) => new Promise((resolve) => s.close(resolve))));
});

async function fakeServer(handle: Handler, capa = 'CAPA\r\nTOP\r\nUIDL\r\nUSER\r\n'): Promise<FakeServer> {
  const commands: string[] = [];
  let markClosed: () => void = () => undefined;
  const closed = new Promise<void>((resolve) => {
    markClosed = resolve;
  });
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.setNoDelay(true);
    socket.on('error', () => undefined);
    socket.on('close', markClosed);
    let text = '';
    let chain = Promise.resolve();
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1');
      for (let i = text.indexOf('\r\n'); i !== -1; i = text.indexOf('\r\n')) {
        const command = text.slice(0, i);
        text = text.slice(i + 2);
        commands.push(command);
        // One command at a time, in order, as the client sends them.
        chain = chain.then(() => answer(command, socket)).catch(() => void socket.destroy());
      }
    });
    socket.write('+OK ready\r\n');
  });
  const answer = async (command: string, socket: Socket): Promise<void> => {
    if (command === 'CAPA') socket.write(`+OK\r\n${capa}.\r\n`);
    else if (/^(USER|PASS) /.test(command)) socket.write('+OK\r\n');
    else await handle(command, socket);
  };
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: (server.address() as AddressInfo).port, commands, closed };
}

function connect(port: number, extra: Partial<Pop3Options> = {}): Promise<Pop3Client> {
  return Pop3Client.connect({
    host: '127.0.0.1',
    port,
    security: 'none',
    auth: { mechanism: 'USER', user: 'u', password: 'p' },
    commandTimeoutMs: 2_000,
    connectTimeoutMs: 2_000,
    ...extra,
  });
}

async function rejection(promise: Promise<unknown>): Promise<Pop3Error> {
  const err = await promise.then(
    () => new Error('expected a rejection'),
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(Pop3Error);
  return err as Pop3Error;
}

/** Writes with backpressure, so the server side holds no more than a socket buffer. */
async function write(socket: Socket, bytes: Buffer | string): Promise<void> {
  if (socket.write(bytes) || socket.destroyed) return;
  await new Promise<void>((resolve) => {
    const done = (): void => {
      socket.off('drain', done).off('close', done);
      resolve();
    };
    socket.on('drain', done).on('close', done);
  });
}

/** `gc()` for memory assertions; vitest workers do not run with --expose-gc. */
function collector(): () => void {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

/** Collects until freed ArrayBuffers are accounted for: V8 releases their memory after gc() returns. */
async function settle(gc: () => void): Promise<void> {
  for (let i = 0; i < 5; i++) {
    gc();
    await sleep(20);
  }
}

describe('RETR of a 100 MB body of empty lines', () => {
  it('completes, with heap and arrayBuffers growth bounded by the body, not by its 50 M lines', { timeout: 120_000 }, async () => {
    const gc = collector();
    const BODY_BYTES = 100 * MiB;
    const WRITE_BYTES = 4 * 1024;
    const block = Buffer.alloc(WRITE_BYTES, '\r\n');
    const peak = { heapUsed: 0, arrayBuffers: 0, rss: 0 };
    const sample = (): void => {
      const now = process.memoryUsage();
      peak.heapUsed = Math.max(peak.heapUsed, now.heapUsed);
      peak.arrayBuffers = Math.max(peak.arrayBuffers, now.arrayBuffers);
      peak.rss = Math.max(peak.rss, now.rss);
    };
    const server = await fakeServer(async (command, socket) => {
      expect(command).toBe('RETR 1');
      await write(socket, '+OK 104857600 octets\r\n');
      for (let sent = 0; sent < BODY_BYTES; sent += WRITE_BYTES) {
        await write(socket, block);
        if (sent % MiB === 0) sample();
      }
      await write(socket, '.\r\n');
    });
    const client = await connect(server.port);
    await settle(gc);
    const before = process.memoryUsage();
    const body = await client.retr(1, { maxBytes: BODY_BYTES });
    sample();
    await settle(gc);
    const after = process.memoryUsage();
    expect(body.length).toBe(BODY_BYTES);
    for (let offset = 0; offset < BODY_BYTES; offset += WRITE_BYTES) {
      if (!body.subarray(offset, offset + WRITE_BYTES).equals(block)) throw new Error(`body differs at ${offset}`);
    }
    client.close();
    const grew = (now: number, then: number) => (now - then) / MiB;
    if (process.env.POP3_MEMORY_REPORT) {
      const f = (n: number) => `${(n / MiB).toFixed(1)} MiB`;
      console.log(
        `before: heap ${f(before.heapUsed)}, arrayBuffers ${f(before.arrayBuffers)}, rss ${f(before.rss)}\n` +
          `peak while reading: heap ${f(peak.heapUsed)}, arrayBuffers ${f(peak.arrayBuffers)}, rss ${f(peak.rss)}\n` +
          `after (body held, gc): heap ${f(after.heapUsed)}, arrayBuffers ${f(after.arrayBuffers)}, rss ${f(after.rss)}`,
      );
    }
    // The old reader kept a Buffer view per line (~113 bytes of heap each): 5.6 GB here.
    expect(grew(peak.heapUsed, before.heapUsed)).toBeLessThan(32);
    expect(grew(after.heapUsed, before.heapUsed)).toBeLessThan(16);
    // While reading: the body once (socket chunks) plus the final concatenation.
    expect(grew(peak.arrayBuffers, before.arrayBuffers)).toBeLessThan(2 * 100 + 32);
    // Afterwards the chunks are gone: just the one body Buffer (still held here).
    expect(grew(after.arrayBuffers, before.arrayBuffers)).toBeLessThan(100 + 16);
  });
});

describe('RETR maxBytes', () => {
  const body = `Subject: x\r\n\r\n${'y'.repeat(984)}\r\n`; // 1000 bytes

  it('accepts a body of exactly maxBytes', async () => {
    const server = await fakeServer((_, socket) => void socket.write(`+OK\r\n${body}.\r\n`));
    const client = await connect(server.port);
    expect((await client.retr(1, { maxBytes: 1000 })).length).toBe(1000);
    client.close();
  });

  it('refuses a body one byte larger with kind too_large, naming the limit, and closes the connection', async () => {
    const server = await fakeServer((_, socket) => void socket.write(`+OK\r\n${body}.\r\n`));
    const client = await connect(server.port);
    const err = await rejection(client.retr(1, { maxBytes: 999 }));
    expect([err.kind, err.limitBytes]).toEqual(['too_large', 999]);
    expect(err.message).toMatch(/RETR: .*limit of 999 bytes/);
    await server.closed;
    expect((await rejection(client.noop())).kind).toBe('connection');
  });

  it('stops reading an endless body at the limit', async () => {
    const server = await fakeServer(async (_, socket) => {
      await write(socket, '+OK\r\n');
      const line = Buffer.alloc(64 * 1024, 'z');
      while (!socket.destroyed) await write(socket, line);
    });
    const client = await connect(server.port);
    const err = await rejection(client.retr(1, { maxBytes: 4 * MiB }));
    expect(err.kind).toBe('too_large');
    await server.closed;
  });
});

describe('TOP', () => {
  it('reads the header block of a message: TOP n 0, dot-unstuffed', async () => {
    const server = await fakeServer((command, socket) => {
      expect(command).toBe('TOP 3 0');
      socket.write('+OK\r\nSubject: big one\r\nX-Dot:\r\n ..folded\r\n\r\n.\r\n');
    });
    const client = await connect(server.port);
    expect(client.capabilities).toContain('TOP');
    expect((await client.top(3, 0)).toString()).toBe('Subject: big one\r\nX-Dot:\r\n ..folded\r\n\r\n');
    client.close();
  });

  it('refuses headers beyond its default limit with kind too_large', async () => {
    const server = await fakeServer(async (_, socket) => {
      await write(socket, '+OK\r\n');
      for (let i = 0; i < 5_000; i++) await write(socket, `X-Filler-${i}: ${'h'.repeat(90)}\r\n`);
      await write(socket, '\r\n.\r\n');
    });
    const client = await connect(server.port);
    const err = await rejection(client.top(1, 0));
    expect([err.kind, err.limitBytes]).toEqual(['too_large', DEFAULT_TOP_MAX_BYTES]);
    expect(err.message).toMatch(/TOP: .*limit of 262144 bytes/);
  });

  it('reports a server without TOP as kind protocol, and checks its arguments', async () => {
    const server = await fakeServer((_, socket) => void socket.write('-ERR Unknown command: TOP\r\n'));
    const client = await connect(server.port);
    expect((await rejection(client.top(1, 0))).kind).toBe('protocol');
    await expect(client.top(1, -1)).rejects.toThrow(RangeError);
    client.close();
  });
});

describe('deadlines of multi-line answers', () => {
  const lines = Array.from({ length: 16 }, (_, i) => `line ${i}\r\n`);
  const trickle = (gapMs: number) => async (_: string, socket: Socket) => {
    await write(socket, '+OK\r\n');
    for (const line of lines) {
      await sleep(gapMs);
      await write(socket, line);
    }
    await write(socket, '.\r\n');
  };

  it('fires the no-progress deadline on a body that stalls', async () => {
    const server = await fakeServer((_, socket) => void socket.write('+OK\r\nSubject: stalled\r\n'));
    const client = await connect(server.port, { commandTimeoutMs: 150 });
    const err = await rejection(client.retr(1));
    expect(err.kind).toBe('timeout');
    expect(err.message).toMatch(/RETR: no data for 150 ms \(no-progress deadline; 18 bytes of the answer read\)/);
  });

  it('does not fire on a slow body that keeps coming, longer in all than the deadline', async () => {
    // 16 gaps of 25 ms: about 400 ms in all, never 250 ms of silence.
    const server = await fakeServer(trickle(25));
    const client = await connect(server.port, { commandTimeoutMs: 250 });
    expect((await client.retr(1)).toString()).toBe(lines.join(''));
    client.close();
  });

  it('fires the overall deadline the caller passes, however steady the body', async () => {
    const server = await fakeServer(trickle(25));
    const client = await connect(server.port, { commandTimeoutMs: 2_000 });
    const err = await rejection(client.retr(1, { overallTimeoutMs: 100 }));
    expect(err.kind).toBe('timeout');
    expect(err.message).toMatch(/RETR: the answer took longer than its overall deadline of 100 ms/);
  });

  it('keeps the whole-answer deadline for single-line commands', async () => {
    const server = await fakeServer(async (_, socket) => {
      for (const byte of '+OK still here\r\n') {
        await write(socket, byte);
        await sleep(25);
      }
    });
    const client = await connect(server.port, { commandTimeoutMs: 150 });
    const err = await rejection(client.noop());
    expect(err.kind).toBe('timeout');
    expect(err.message).toMatch(/NOOP: no complete answer within 150 ms/);
  });

  it('scales an overall deadline from a LIST size', () => {
    expect(transferDeadlineMs(0)).toBe(30_000);
    expect(transferDeadlineMs(32 * 1024 * 10)).toBe(40_000);
    expect(transferDeadlineMs(1000, 1000, 0)).toBe(1000);
  });
});

describe('limits of the other multi-line answers', () => {
  it('refuses a CAPA listing larger than 64 KiB at connect', async () => {
    const server = await fakeServer(() => undefined, `USER\r\n${'X-HUGE\r\n'.repeat(9_000)}`);
    const err = await rejection(connect(server.port));
    expect(err.kind).toBe('too_large');
  });
});
