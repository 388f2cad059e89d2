import { createServer, connect, type Server, type Socket } from 'node:net';

/**
 * A fault-injecting TCP proxy for tests: listens on 127.0.0.1 and forwards
 * each accepted connection to a target host:port, byte for byte, until a
 * test tells it to misbehave. Faults a real server will not produce on
 * demand: a connection cut inside a FETCH literal, a TCP RST after DATA, a
 * peer that goes silent, a slow link, a port that refuses.
 *
 *   const proxy = await FaultProxy.start({ port: dovecotImapPort });
 *   proxy.inject({ kind: 'cut', after: { direction: 'toClient', pattern: 'BODY[] {', bytes: 1_000_000 } }, 'once');
 *   ... proxy.fired('cut') ...
 *   proxy.clear();
 *   await proxy.close();
 */

/** `toClient`: upstream → client; `toServer`: client → upstream. */
export type Direction = 'toClient' | 'toServer';

/**
 * Where a fault fires: once `pattern` (if any) has passed in `direction`,
 * and then `bytes` more (default 0). Counting starts when the fault is
 * attached to the connection (at accept, or at inject() for live ones).
 */
export interface Trigger {
  direction: Direction;
  pattern?: string | Buffer;
  bytes?: number;
}

export type Fault =
  /** Forwards up to the trigger point, then closes both sides (the bytes before the cut are flushed). */
  | { kind: 'cut'; after: Trigger }
  /** A TCP RST on both sides (socket.resetAndDestroy), at once or at the trigger point. */
  | { kind: 'reset'; after?: Trigger }
  /** Stops forwarding (sockets stay open) for `forMs`, or until resume() / clear(). */
  | { kind: 'stall'; after?: Trigger; direction?: Direction | 'both'; forMs?: number }
  /** Forwards at most `bytes` per `intervalMs` in `direction`, until clear(). */
  | { kind: 'drip'; direction: Direction; bytes: number; intervalMs: number; after?: Trigger }
  /**
   * New connections: `close` accepts and closes at once, `reset` accepts and
   * sends RST, `unlisten` stops listening (ECONNREFUSED) until clear().
   */
  | { kind: 'refuse'; how?: 'close' | 'reset' | 'unlisten' };

export type FaultKind = Fault['kind'];

/**
 * `next`: the next accepted connection only. `all`: every live and future
 * connection until clear(). `once`: like `all`, but gone everywhere as soon
 * as it fired on one connection (the one to use with pooled or keep-alive
 * clients, whose next request may ride an existing connection).
 */
export type Scope = 'next' | 'all' | 'once';

export interface FiredFault {
  kind: FaultKind;
  connection: number;
  at: number;
  /** Bytes forwarded on that connection when the fault fired. */
  toClient: number;
  toServer: number;
}

export interface ConnectionStats {
  id: number;
  openedAt: number;
  closedAt: number | null;
  /** Bytes forwarded upstream → client. */
  toClient: number;
  /** Bytes forwarded client → upstream. */
  toServer: number;
  faults: FaultKind[];
  error: string | null;
  /** When the client ended its side (FIN, RST or close), as read by the proxy. */
  clientEndedAt: number | null;
  /** The same for the upstream server. */
  upstreamEndedAt: number | null;
}

export type TapListener = (connection: number, direction: Direction, bytes: Buffer) => void;

export interface ProxyStats {
  accepted: number;
  refused: number;
  connections: ConnectionStats[];
  fired: FiredFault[];
}

/** Held bytes per direction above which the source is paused (stall, drip, slow peer). */
const HIGH_WATER_BYTES = 256 * 1024;
/** A cut waits this long for the bytes before it to flush, then destroys anyway (a stalled peer). */
const CUT_FLUSH_MS = 1_000;

interface Entry {
  fault: Exclude<Fault, { kind: 'refuse' }>;
  scope: Scope;
}

/** A fault attached to one connection, with its trigger's progress. */
class Armed {
  readonly pattern: Buffer | null;
  matched: boolean;
  remaining: number;
  tail: Buffer = Buffer.alloc(0);
  done = false;

  constructor(
    readonly entry: Entry,
    readonly trigger: Trigger | null,
  ) {
    const p = trigger?.pattern;
    this.pattern = p === undefined ? null : Buffer.isBuffer(p) ? p : Buffer.from(p, 'latin1');
    this.matched = this.pattern === null || this.pattern.length === 0;
    this.remaining = Math.max(0, trigger?.bytes ?? 0);
  }

  get due(): boolean {
    return this.matched && this.remaining === 0;
  }

  /** Bytes of `chunk` that may pass before this fires, or null when it does not fire within it. */
  offsetIn(chunk: Buffer): number | null {
    if (this.matched) return this.remaining <= chunk.length ? this.remaining : null;
    const pattern = this.pattern as Buffer;
    const joined = Buffer.concat([this.tail, chunk]);
    const at = joined.indexOf(pattern);
    if (at < 0) return null;
    const end = at + pattern.length - this.tail.length + this.remaining;
    return end <= chunk.length ? end : null;
  }

  /** Counts bytes that passed (never past the firing point: the caller cut the chunk at offsetIn). */
  advance(slice: Buffer): void {
    if (this.matched) {
      this.remaining -= slice.length;
      return;
    }
    const pattern = this.pattern as Buffer;
    const joined = Buffer.concat([this.tail, slice]);
    const at = joined.indexOf(pattern);
    if (at >= 0) {
      this.matched = true;
      this.remaining -= joined.length - (at + pattern.length);
      this.tail = Buffer.alloc(0);
    } else {
      this.tail = joined.subarray(Math.max(0, joined.length - (pattern.length - 1)));
    }
  }
}

/** One direction of a connection. */
class Pipe {
  readonly held: Buffer[] = [];
  heldBytes = 0;
  stalled = false;
  srcEnded = false;
  waitingDrain = false;
  drip: { bytes: number; tokens: number; timer: NodeJS.Timeout } | null = null;

  constructor(
    readonly link: Link,
    readonly direction: Direction,
    readonly src: Socket,
    readonly dst: Socket,
  ) {}

  push(chunk: Buffer): void {
    this.held.push(chunk);
    this.heldBytes += chunk.length;
    this.flush();
  }

  /** Forwards what it may: up to the next trigger point, within the drip budget, unless stalled. */
  flush(): void {
    while (this.held.length > 0 && !this.stalled && !this.link.dead) {
      const head = this.held[0] as Buffer;
      let n = head.length;
      if (this.drip) n = Math.min(n, this.drip.tokens);
      const armed = this.link.armedFor(this.direction);
      for (const a of armed) {
        const off = a.offsetIn(head.subarray(0, n));
        if (off !== null) n = Math.min(n, off);
      }
      if (n === 0 && !armed.some((a) => a.due)) break; // drip budget spent
      const slice = head.subarray(0, n);
      if (n > 0) {
        if (n === head.length) this.held.shift();
        else this.held[0] = head.subarray(n);
        this.heldBytes -= n;
        if (this.drip) this.drip.tokens -= n;
        this.link.stats[this.direction] += n;
        if (!this.dst.write(slice)) this.waitingDrain = true;
        this.link.proxy.tapped(this.link.stats.id, this.direction, slice);
      }
      for (const a of armed) a.advance(slice);
      for (const a of armed) if (a.due && !a.done) this.link.fire(a);
    }
    // A FIN is forwarded like the bytes before it: not while stalled.
    if (this.held.length === 0 && this.srcEnded && !this.stalled && !this.link.dead && !this.dst.writableEnded) this.dst.end();
    this.updateFlow();
  }

  /**
   * The source reads while its bytes can go somewhere, and while stalled up
   * to HIGH_WATER_BYTES: so a peer that gives up on a stalled connection is
   * still seen closing it (ConnectionStats.clientEndedAt).
   */
  updateFlow(): void {
    if (this.link.dead) return;
    const hold = this.waitingDrain || this.heldBytes >= HIGH_WATER_BYTES || !this.link.wired;
    if (hold && !this.src.isPaused()) this.src.pause();
    else if (!hold && this.src.isPaused()) this.src.resume();
  }

  stall(): void {
    this.stalled = true;
    this.updateFlow();
  }

  unstall(): void {
    if (!this.stalled) return;
    this.stalled = false;
    this.flush();
  }

  startDrip(bytes: number, intervalMs: number): void {
    this.stopDrip();
    const timer = setInterval(() => {
      if (!this.drip) return;
      this.drip.tokens = bytes;
      this.flush();
    }, intervalMs);
    this.drip = { bytes, tokens: bytes, timer };
    this.flush();
  }

  stopDrip(): void {
    if (!this.drip) return;
    clearInterval(this.drip.timer);
    this.drip = null;
    this.flush();
  }

  dispose(): void {
    if (this.drip) clearInterval(this.drip.timer);
    this.drip = null;
    this.held.length = 0;
    this.heldBytes = 0;
  }
}

class Link {
  dead = false;
  wired = false;
  readonly armed: Armed[] = [];
  readonly pipes: Record<Direction, Pipe>;
  readonly stallTimers = new Set<NodeJS.Timeout>();
  cutTimer: NodeJS.Timeout | null = null;

  constructor(
    readonly proxy: FaultProxy,
    readonly client: Socket,
    readonly upstream: Socket,
    readonly stats: ConnectionStats,
  ) {
    this.pipes = {
      toServer: new Pipe(this, 'toServer', client, upstream),
      toClient: new Pipe(this, 'toClient', upstream, client),
    };
  }

  armedFor(direction: Direction): Armed[] {
    return this.armed.filter((a) => !a.done && a.trigger !== null && a.trigger.direction === direction);
  }

  arm(entry: Entry): void {
    if (this.dead) return;
    const trigger = 'after' in entry.fault && entry.fault.after ? entry.fault.after : null;
    const a = new Armed(entry, trigger);
    this.armed.push(a);
    this.stats.faults.push(entry.fault.kind);
    if (a.due) this.fire(a);
    else this.pipes[(a.trigger as Trigger).direction].flush();
  }

  /** Removes faults of these entries; stalls and drips they caused end. */
  disarm(entries: Set<Entry>): void {
    for (const a of this.armed) {
      if (!entries.has(a.entry)) continue;
      a.done = true;
      const f = a.entry.fault;
      if (f.kind === 'stall') this.unstall();
      if (f.kind === 'drip') this.pipes[f.direction].stopDrip();
    }
  }

  /** Every fault gone, including fired `once` ones: stalls and drips end. */
  disarmAll(): void {
    for (const a of this.armed) a.done = true;
    this.unstall();
    for (const p of Object.values(this.pipes)) p.stopDrip();
  }

  fire(a: Armed): void {
    a.done = true;
    const f = a.entry.fault;
    this.proxy.recordFired(this, a.entry);
    switch (f.kind) {
      case 'cut':
        this.cut();
        break;
      case 'reset':
        this.reset();
        break;
      case 'stall': {
        const dir = f.direction ?? 'both';
        for (const p of Object.values(this.pipes)) if (dir === 'both' || dir === p.direction) p.stall();
        if (f.forMs !== undefined) {
          const t = setTimeout(() => {
            this.stallTimers.delete(t);
            this.unstall();
          }, f.forMs);
          this.stallTimers.add(t);
        }
        break;
      }
      case 'drip':
        this.pipes[f.direction].startDrip(f.bytes, f.intervalMs);
        break;
    }
  }

  unstall(): void {
    for (const t of this.stallTimers) clearTimeout(t);
    this.stallTimers.clear();
    for (const p of Object.values(this.pipes)) p.unstall();
  }

  /** Both sides closed once the bytes already forwarded are flushed (or after CUT_FLUSH_MS). */
  cut(): void {
    if (this.dead) return;
    this.kill();
    let open = 2;
    const finish = () => {
      if (--open > 0) return;
      if (this.cutTimer) clearTimeout(this.cutTimer);
      this.cutTimer = null;
    };
    for (const s of [this.client, this.upstream]) {
      if (s.destroyed) {
        finish();
        continue;
      }
      s.end(() => {
        s.destroy();
        finish();
      });
    }
    this.cutTimer = setTimeout(() => {
      this.cutTimer = null;
      this.client.destroy();
      this.upstream.destroy();
    }, CUT_FLUSH_MS);
  }

  /** RST on both sides, after the bytes already written reached the kernel. */
  reset(): void {
    if (this.dead) return;
    this.kill();
    for (const s of [this.client, this.upstream]) {
      if (s.destroyed) continue;
      if (s.connecting || s.pending) {
        s.destroy();
        continue;
      }
      s.write(Buffer.alloc(0), () => {
        if (!s.destroyed) s.resetAndDestroy();
      });
    }
  }

  /** A socket error or close on one side ends the other the same way. */
  abort(err: NodeJS.ErrnoException | null): void {
    if (this.dead) return;
    if (err) this.stats.error = err.code ?? err.message;
    this.kill();
    for (const s of [this.client, this.upstream]) {
      if (s.destroyed) continue;
      if (err?.code === 'ECONNRESET' && !s.connecting && !s.pending) s.resetAndDestroy();
      else s.destroy();
    }
  }

  /** Stops forwarding and all timers; the sockets are then closed by the caller. */
  kill(): void {
    this.dead = true;
    for (const t of this.stallTimers) clearTimeout(t);
    this.stallTimers.clear();
    for (const p of Object.values(this.pipes)) p.dispose();
    this.client.pause();
    this.upstream.pause();
  }

  destroy(): void {
    this.kill();
    if (this.cutTimer) clearTimeout(this.cutTimer);
    this.cutTimer = null;
    this.client.destroy();
    this.upstream.destroy();
  }
}

export class FaultProxy {
  readonly target: { host: string; port: number };
  port = 0;
  readonly #server: Server;
  readonly #links = new Set<Link>();
  readonly #taps: TapListener[] = [];
  readonly #entries: Entry[] = [];
  #next: Entry[] = [];
  #refuse: { how: 'close' | 'reset'; scope: Scope } | null = null;
  #unlistened = false;
  #closed = false;
  #ids = 0;
  readonly #stats: ProxyStats = { accepted: 0, refused: 0, connections: [], fired: [] };

  private constructor(target: { host: string; port: number }) {
    this.target = target;
    this.#server = createServer({ allowHalfOpen: true, pauseOnConnect: true }, (socket) => this.#accept(socket));
  }

  /** Starts listening on 127.0.0.1 (`listenPort` 0 = a random free port). */
  static async start(target: { host?: string; port: number }, listenPort = 0): Promise<FaultProxy> {
    const proxy = new FaultProxy({ host: target.host ?? '127.0.0.1', port: target.port });
    await proxy.#listen(listenPort);
    return proxy;
  }

  /** `http://127.0.0.1:<port><path>`, for HTTP peers (webhook, token endpoint). */
  url(path = ''): string {
    return `http://127.0.0.1:${this.port}${path}`;
  }

  /** Adds a fault (see Scope). Faults add up: call clear() to go back to passing bytes through. */
  inject(fault: Fault, scope: Scope = 'all'): void {
    if (fault.kind === 'refuse') {
      const how = fault.how ?? 'close';
      if (how === 'unlisten') {
        if (!this.#unlistened) {
          this.#unlistened = true;
          this.#server.close();
        }
      } else {
        this.#refuse = { how, scope };
      }
      return;
    }
    const entry: Entry = { fault, scope };
    if (scope === 'next') {
      this.#next.push(entry);
      return;
    }
    this.#entries.push(entry);
    // Links still connecting upstream get it with the others when they are wired.
    for (const link of this.#links) if (link.wired) link.arm(entry);
  }

  /** Back to `pass`: faults removed, stalls and drips ended, refusing stopped, listening again. */
  async clear(): Promise<void> {
    this.#entries.length = 0;
    this.#next = [];
    this.#refuse = null;
    for (const link of this.#links) link.disarmAll();
    if (this.#unlistened && !this.#closed) {
      this.#unlistened = false;
      await this.#listen(this.port);
    }
  }

  /** Ends every stall now, and removes stall faults so new connections are not stalled. */
  resume(): void {
    const stalls = new Set([...this.#entries, ...this.#next].filter((e) => e.fault.kind === 'stall'));
    this.#drop(stalls);
    for (const link of this.#links) {
      link.disarm(stalls);
      link.unstall();
    }
  }

  /**
   * Calls `listener` with every slice forwarded, in order, per connection:
   * lets a test read the protocol as it passes (e.g. when a DELE or a STORE
   * went to the server).
   */
  tap(listener: TapListener): void {
    this.#taps.push(listener);
  }

  tapped(connection: number, direction: Direction, bytes: Buffer): void {
    for (const t of this.#taps) t(connection, direction, bytes);
  }

  get stats(): ProxyStats {
    return this.#stats;
  }

  /** Faults that fired, optionally of one kind. */
  fired(kind?: FaultKind): FiredFault[] {
    return this.#stats.fired.filter((f) => kind === undefined || f.kind === kind);
  }

  connection(id: number): ConnectionStats | undefined {
    return this.#stats.connections.find((c) => c.id === id);
  }

  /** Connections still open. */
  get open(): number {
    return this.#links.size;
  }

  async waitForFired(kind: FaultKind, timeoutMs = 20_000, count = 1): Promise<FiredFault> {
    const deadline = Date.now() + timeoutMs;
    while (this.fired(kind).length < count) {
      if (Date.now() > deadline) throw new Error(`fault proxy → ${this.target.port}: no ${kind} fired within ${timeoutMs} ms (${this.#stats.accepted} connections)`);
      await new Promise((r) => setTimeout(r, 20));
    }
    return this.fired(kind)[count - 1] as FiredFault;
  }

  /** Closes everything: the listener, every connection, every timer. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#entries.length = 0;
    this.#next = [];
    for (const link of [...this.#links]) link.destroy();
    this.#links.clear();
    if (this.#unlistened) return;
    await new Promise<void>((r) => this.#server.close(() => r()));
  }

  recordFired(link: Link, entry: Entry): void {
    this.#stats.fired.push({ kind: entry.fault.kind, connection: link.stats.id, at: Date.now(), toClient: link.stats.toClient, toServer: link.stats.toServer });
    if (entry.scope === 'once') {
      const gone = new Set([entry]);
      this.#drop(gone);
      for (const l of this.#links) if (l !== link) l.disarm(gone);
    }
  }

  #drop(entries: Set<Entry>): void {
    for (let i = this.#entries.length - 1; i >= 0; i--) if (entries.has(this.#entries[i] as Entry)) this.#entries.splice(i, 1);
    this.#next = this.#next.filter((e) => !entries.has(e));
  }

  #listen(port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => reject(err);
      this.#server.once('error', onError);
      this.#server.listen(port, '127.0.0.1', () => {
        this.#server.off('error', onError);
        const addr = this.#server.address();
        this.port = typeof addr === 'object' && addr ? addr.port : port;
        resolve();
      });
    });
  }

  #accept(client: Socket): void {
    if (this.#closed) {
      client.destroy();
      return;
    }
    client.on('error', () => undefined);
    const refuse = this.#refuse;
    if (refuse) {
      if (refuse.scope !== 'all') this.#refuse = null;
      this.#stats.refused++;
      if (refuse.how === 'reset') client.resetAndDestroy();
      else client.destroy();
      return;
    }
    this.#stats.accepted++;
    const stats: ConnectionStats = { id: ++this.#ids, openedAt: Date.now(), closedAt: null, toClient: 0, toServer: 0, faults: [], error: null, clientEndedAt: null, upstreamEndedAt: null };
    this.#stats.connections.push(stats);
    const upstream = connect({ host: this.target.host, port: this.target.port, allowHalfOpen: true });
    const link = new Link(this, client, upstream, stats);
    this.#links.add(link);

    let closed = 0;
    const onClose = () => {
      if (++closed < 2) return;
      stats.closedAt = Date.now();
      link.kill();
      if (link.cutTimer) clearTimeout(link.cutTimer);
      this.#links.delete(link);
    };
    for (const [socket, pipe, side] of [
      [client, link.pipes.toServer, 'clientEndedAt'],
      [upstream, link.pipes.toClient, 'upstreamEndedAt'],
    ] as const) {
      const ended = () => {
        stats[side] ??= Date.now();
      };
      socket.on('data', (chunk: Buffer) => {
        if (!link.dead) pipe.push(chunk);
      });
      socket.on('end', () => {
        ended();
        pipe.srcEnded = true;
        pipe.flush();
      });
      socket.on('error', (err: NodeJS.ErrnoException) => {
        ended();
        link.abort(err);
      });
      socket.on('close', () => {
        ended();
        onClose();
      });
    }
    link.pipes.toServer.dst.on('drain', () => {
      link.pipes.toServer.waitingDrain = false;
      link.pipes.toServer.flush();
    });
    link.pipes.toClient.dst.on('drain', () => {
      link.pipes.toClient.waitingDrain = false;
      link.pipes.toClient.flush();
    });
    // `next` means the next connection accepted, even if its upstream connects after later inject() calls.
    const mine = this.#next.splice(0);
    upstream.once('connect', () => {
      link.wired = true;
      for (const e of mine) link.arm(e);
      for (const e of this.#entries) link.arm(e);
      link.pipes.toServer.updateFlow();
      link.pipes.toClient.updateFlow();
    });
  }
}
