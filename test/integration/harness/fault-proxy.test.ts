import { connect, createServer, type Server, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { FaultProxy } from '../../harness/fault-proxy.js';
import { until } from '../../harness/until.js';

/*
 * The fault proxy against tiny real servers on loopback: an echo server and
 * a "stream" server that sends a given payload on connect. Every fault is
 * checked from the peers' side (what arrived, how the socket ended) and in
 * the proxy's stats.
 */

interface Peer {
  socket: Socket;
  received: () => Buffer;
  /** Arrival times and sizes of chunks. */
  chunks: { at: number; n: number }[];
  ended: Promise<{ error: string | null }>;
}

function peer(socket: Socket): Peer {
  const parts: Buffer[] = [];
  const chunks: { at: number; n: number }[] = [];
  socket.on('data', (c: Buffer) => {
    parts.push(c);
    chunks.push({ at: Date.now(), n: c.length });
  });
  let error: string | null = null;
  socket.on('error', (err: NodeJS.ErrnoException) => (error = err.code ?? err.message));
  const ended = new Promise<{ error: string | null }>((r) => socket.once('close', () => r({ error })));
  return { socket, received: () => Buffer.concat(parts), chunks, ended };
}

async function dial(port: number): Promise<Peer> {
  const s = connect({ port, host: '127.0.0.1' });
  const p = peer(s);
  await Promise.race([new Promise((r) => s.once('connect', r)), p.ended]);
  return p;
}

const servers: Server[] = [];
const proxies: FaultProxy[] = [];
/** What each server-side connection received, and the sockets (to write later). */
const serverSide: Peer[] = [];

async function listen(onConnection: (s: Socket) => void): Promise<number> {
  const srv = createServer((s) => {
    serverSide.push(peer(s));
    onConnection(s);
  });
  servers.push(srv);
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const addr = srv.address();
  return typeof addr === 'object' && addr ? addr.port : 0;
}

const echoServer = () => listen((s) => s.pipe(s));
/** Sends `payload` (in pieces of `piece` bytes, `gapMs` apart) and then FIN. */
const streamServer = (payload: Buffer, piece = payload.length, gapMs = 0) =>
  listen((s) => {
    void (async () => {
      for (let i = 0; i < payload.length && !s.destroyed; i += piece) {
        s.write(payload.subarray(i, i + piece));
        if (gapMs) await sleep(gapMs);
      }
      if (!s.destroyed) s.end();
    })();
  });
/** Records what it receives and never answers. */
const sinkServer = () => listen(() => undefined);

async function proxyTo(port: number): Promise<FaultProxy> {
  const p = await FaultProxy.start({ port });
  proxies.push(p);
  return p;
}

function payloadOf(n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = 97 + (i % 26);
  return b;
}

afterEach(async () => {
  for (const p of proxies.splice(0)) await p.close();
  for (const s of serverSide.splice(0)) s.socket.destroy();
  for (const s of servers.splice(0)) await new Promise((r) => s.close(r));
});

describe('fault proxy', () => {
  it('passes bytes both ways by default and counts them per connection', async () => {
    const proxy = await proxyTo(await echoServer());
    const c = await dial(proxy.port);
    const data = payloadOf(300_000);
    c.socket.write(data);
    await until(() => c.received().length === data.length, 5_000, 'the echo');
    expect(c.received().equals(data)).toBe(true);
    c.socket.end();
    await c.ended;
    await until(() => proxy.open === 0, 5_000, 'the link to close');
    expect(proxy.stats.accepted).toBe(1);
    expect(proxy.stats.connections[0]).toMatchObject({ id: 1, toServer: 300_000, toClient: 300_000, faults: [] });
    expect(proxy.stats.connections[0]?.closedAt).not.toBeNull();
    expect(proxy.fired()).toEqual([]);
  });

  it('cut: closes both sides after exactly N more bytes toward the client', async () => {
    const payload = payloadOf(1_000_000);
    const proxy = await proxyTo(await streamServer(payload, 64 * 1024));
    proxy.inject({ kind: 'cut', after: { direction: 'toClient', bytes: 123_457 } });
    const c = await dial(proxy.port);
    await c.ended;
    expect(c.received().length).toBe(123_457);
    expect(c.received().equals(payload.subarray(0, 123_457))).toBe(true);
    expect(proxy.fired('cut')).toEqual([expect.objectContaining({ connection: 1, toClient: 123_457, toServer: 0 })]);
    await until(() => serverSide[0]?.socket.destroyed === true, 5_000, 'the server side to be closed');
  });

  it('cut: after a pattern (split across writes) and N more bytes', async () => {
    // The pattern arrives in two TCP segments: "BODY[" then "] {1000000}\r\n".
    const head = Buffer.from('* 1 FETCH (UID 7 BODY[');
    const rest = Buffer.from('] {1000000}\r\n');
    const literal = payloadOf(1_000_000);
    const port = await listen((s) => {
      s.write(head);
      setTimeout(() => {
        s.write(rest);
        s.write(literal);
      }, 50);
    });
    const proxy = await proxyTo(port);
    proxy.inject({ kind: 'cut', after: { direction: 'toClient', pattern: 'BODY[] {', bytes: 1000 } });
    const c = await dial(proxy.port);
    await c.ended;
    const want = head.length + Buffer.from('] {').length + 1000;
    expect(c.received().length).toBe(want);
    expect(c.received().subarray(0, head.length).equals(head)).toBe(true);
    expect(proxy.fired('cut')[0]?.toClient).toBe(want);
  });

  it('cut: toward the server after the client sent DATA\\r\\n and 500 bytes', async () => {
    const proxy = await proxyTo(await sinkServer());
    proxy.inject({ kind: 'cut', after: { direction: 'toServer', pattern: 'DATA\r\n', bytes: 500 } });
    const c = await dial(proxy.port);
    c.socket.write('MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n');
    await sleep(30);
    c.socket.write(Buffer.concat([Buffer.from('DATA\r\n'), payloadOf(5_000)]));
    const end = await c.ended;
    expect(end.error).toBeNull();
    await until(() => serverSide[0]?.socket.destroyed === true, 5_000, 'the server side to close');
    const got = serverSide[0]?.received().toString('latin1') ?? '';
    expect(got.length).toBe('MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n'.length + 500);
    expect(got.endsWith(payloadOf(500).toString('latin1'))).toBe(true);
  });

  it('reset: a TCP RST at once, or after a pattern', async () => {
    const proxy = await proxyTo(await echoServer());
    const live = await dial(proxy.port);
    proxy.inject({ kind: 'reset' }, 'once');
    expect((await live.ended).error).toBe('ECONNRESET');

    proxy.inject({ kind: 'reset', after: { direction: 'toServer', pattern: 'QUIT' } }, 'next');
    const c = await dial(proxy.port);
    c.socket.write('NOOP\r\n');
    await until(() => c.received().toString() === 'NOOP\r\n', 5_000, 'the echo of NOOP');
    c.socket.write('QUIT\r\nmore');
    expect((await c.ended).error).toBe('ECONNRESET');
    expect(proxy.fired('reset').map((f) => f.connection)).toEqual([1, 2]);
    // Nothing after the pattern went through.
    await until(() => serverSide[1]?.socket.destroyed === true, 5_000, 'the server side to be reset');
    expect(serverSide[1]?.received().toString()).toBe('NOOP\r\nQUIT');

    // Both were one-shot: the next connection passes.
    const after = await dial(proxy.port);
    after.socket.write('hi');
    await until(() => after.received().toString() === 'hi', 5_000, 'the echo after the resets');
    after.socket.destroy();
  });

  it('stall: forwards nothing for forMs while the sockets stay open, then delivers everything', async () => {
    const proxy = await proxyTo(await echoServer());
    const c = await dial(proxy.port);
    c.socket.write('before');
    await until(() => c.received().toString() === 'before', 5_000, 'the first echo');
    proxy.inject({ kind: 'stall', forMs: 600 }, 'all');
    const t0 = Date.now();
    c.socket.write('during');
    await sleep(400);
    expect(c.received().toString()).toBe('before');
    expect(c.socket.destroyed).toBe(false);
    await until(() => c.received().toString() === 'beforeduring', 5_000, 'the stalled bytes');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(550);
    expect(proxy.fired('stall')).toHaveLength(1);
    c.socket.destroy();
  });

  it('stall: after a pattern, until resume()', async () => {
    const payload = Buffer.concat([Buffer.from('+OK 200000 octets\r\n'), payloadOf(200_000)]);
    const proxy = await proxyTo(await streamServer(payload, 16 * 1024, 5));
    proxy.inject({ kind: 'stall', after: { direction: 'toClient', pattern: 'octets\r\n', bytes: 50_000 } });
    const c = await dial(proxy.port);
    await proxy.waitForFired('stall');
    await sleep(300);
    const stalledAt = Buffer.from('+OK 200000 octets\r\n').length + 50_000;
    expect(c.received().length).toBe(stalledAt);
    proxy.resume();
    await c.ended;
    expect(c.received().equals(payload)).toBe(true);
    expect(proxy.fired('stall')[0]?.toClient).toBe(stalledAt);
  });

  it('drip: at most K bytes per interval', async () => {
    const payload = payloadOf(20_000);
    const proxy = await proxyTo(await streamServer(payload));
    proxy.inject({ kind: 'drip', direction: 'toClient', bytes: 2_000, intervalMs: 50 });
    const t0 = Date.now();
    const c = await dial(proxy.port);
    await c.ended;
    const ms = Date.now() - t0;
    expect(c.received().equals(payload)).toBe(true);
    // 10 intervals' worth: the first 2,000 go at once, the last after the 9th tick.
    expect(ms).toBeGreaterThanOrEqual(9 * 50 - 20);
    for (const ch of c.chunks) expect(ch.n).toBeLessThanOrEqual(2_000);
    // No 50 ms window got more than two intervals' worth (timer jitter may merge two ticks).
    for (const ch of c.chunks) {
      const inWindow = c.chunks.filter((x) => x.at >= ch.at && x.at < ch.at + 45).reduce((a, x) => a + x.n, 0);
      expect(inWindow).toBeLessThanOrEqual(4_000);
    }
  });

  it('drip toward the server, then clear() lets the rest through at once', async () => {
    const proxy = await proxyTo(await sinkServer());
    proxy.inject({ kind: 'drip', direction: 'toServer', bytes: 100, intervalMs: 100 });
    const c = await dial(proxy.port);
    c.socket.write(payloadOf(10_000));
    await sleep(350);
    const early = serverSide[0]?.received().length ?? 0;
    expect(early).toBeGreaterThanOrEqual(100);
    expect(early).toBeLessThanOrEqual(500);
    await proxy.clear();
    await until(() => serverSide[0]?.received().length === 10_000, 2_000, 'the rest after clear()');
    c.socket.destroy();
  });

  it('refuse: close, reset, or not listening, until clear()', async () => {
    const proxy = await proxyTo(await echoServer());
    proxy.inject({ kind: 'refuse', how: 'close' });
    const closed = await dial(proxy.port);
    expect(await closed.ended).toEqual({ error: null });
    expect(closed.received().length).toBe(0);

    await proxy.clear();
    proxy.inject({ kind: 'refuse', how: 'reset' });
    expect((await (await dial(proxy.port)).ended).error).toBe('ECONNRESET');
    expect((await (await dial(proxy.port)).ended).error).toBe('ECONNRESET');

    await proxy.clear();
    proxy.inject({ kind: 'refuse', how: 'unlisten' });
    expect((await (await dial(proxy.port)).ended).error).toBe('ECONNREFUSED');

    await proxy.clear();
    const ok = await dial(proxy.port);
    ok.socket.write('back');
    await until(() => ok.received().toString() === 'back', 5_000, 'the echo after clear()');
    ok.socket.destroy();
    expect(proxy.stats.refused).toBe(3);
    expect(serverSide).toHaveLength(1); // refused connections never reached the server
  });

  it('scopes: next hits one new connection, all hits live and new ones, once fires a single time', async () => {
    const proxy = await proxyTo(await echoServer());
    const cutAfter2 = { kind: 'cut', after: { direction: 'toServer', bytes: 2 } } as const;

    const live = await dial(proxy.port);
    proxy.inject(cutAfter2, 'next');
    live.socket.write('live-untouched');
    await until(() => live.received().toString() === 'live-untouched', 5_000, 'the live echo');
    const hit = await dial(proxy.port);
    hit.socket.write('abcdef');
    await hit.ended;
    // The cut is toward the server: 'ab' reached it, its echo had no way back.
    await until(() => serverSide[1]?.socket.destroyed === true, 5_000, 'the cut server side');
    expect(serverSide[1]?.received().toString()).toBe('ab');
    expect(hit.received().toString()).toBe('');
    const spared = await dial(proxy.port);
    spared.socket.write('abcdef');
    await until(() => spared.received().toString() === 'abcdef', 5_000, 'the echo after the next-scope cut');

    proxy.inject(cutAfter2, 'all');
    live.socket.write('xyz');
    spared.socket.write('xyz');
    const fresh = await dial(proxy.port);
    fresh.socket.write('xyz');
    await Promise.all([live.ended, spared.ended, fresh.ended]);
    await until(() => serverSide[3]?.socket.destroyed === true, 5_000, 'the cut server side');
    expect(serverSide[3]?.received().toString()).toBe('xy');
    expect(proxy.fired('cut')).toHaveLength(4);

    await proxy.clear();
    const a = await dial(proxy.port);
    const b = await dial(proxy.port);
    proxy.inject({ kind: 'cut', after: { direction: 'toServer', pattern: 'X' } }, 'once');
    b.socket.write('..X..');
    await b.ended;
    a.socket.write('..X..');
    await until(() => a.received().toString() === '..X..', 5_000, 'the untouched echo after a once-scope cut');
    expect(proxy.fired('cut')).toHaveLength(5);
    a.socket.destroy();
  });

  it('close() ends every connection and timer and stops listening', async () => {
    const proxy = await proxyTo(await echoServer());
    const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const before = timers();
    const c1 = await dial(proxy.port);
    const c2 = await dial(proxy.port);
    proxy.inject({ kind: 'drip', direction: 'toClient', bytes: 1, intervalMs: 1_000 });
    proxy.inject({ kind: 'stall', direction: 'toServer', forMs: 60_000 });
    c1.socket.write('hello');
    await sleep(50);
    expect(timers()).toBeGreaterThan(before);
    await proxy.close();
    await Promise.all([c1.ended, c2.ended]);
    expect(proxy.open).toBe(0);
    expect(timers()).toBeLessThanOrEqual(before);
    expect((await (await dial(proxy.port)).ended).error).toBe('ECONNREFUSED');
  });

  it('a stalled connection still sees its client give up, and tap() reports every forwarded byte in order', async () => {
    const proxy = await proxyTo(await echoServer());
    const seen: string[] = [];
    proxy.tap((conn, dir, bytes) => seen.push(`${conn}:${dir}:${bytes.toString()}`));
    const c = await dial(proxy.port);
    c.socket.write('one');
    await until(() => c.received().toString() === 'one', 5_000, 'the echo');
    proxy.inject({ kind: 'stall' });
    c.socket.write('two');
    await sleep(100);
    c.socket.end();
    await until(() => proxy.connection(1)?.clientEndedAt != null, 5_000, 'the client FIN to be seen');
    // Stalled: neither "two" nor the FIN went on to the server.
    expect(serverSide[0]?.received().toString()).toBe('one');
    expect(proxy.connection(1)?.upstreamEndedAt).toBeNull();
    expect(seen).toEqual(['1:toServer:one', '1:toClient:one']);
    proxy.resume();
    await until(() => serverSide[0]?.received().toString() === 'onetwo', 5_000, 'the held bytes after resume()');
    await until(() => proxy.open === 0, 5_000, 'the link to close after the FIN went through');
    expect(seen.join('|')).toContain('1:toServer:two');
  });
});
