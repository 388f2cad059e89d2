/**
 * Paces the logins of every incoming connector on the instance.
 *
 * Without it, N accounts open N connections in the same tick: a server that
 * logs in 30 accounts a second leaves the rest waiting past the greeting
 * timeout, and the retries come back as waves (issue 18). Providers limit
 * concurrent connections per tenant and per IP as well (Gmail "Too many
 * simultaneous connections", Exchange Online "User is authenticated but not
 * connected"). So every connector asks the pacer before it opens a
 * connection and releases the slot once the login succeeded or failed:
 *
 * - at most `loginsInFlight` logins at once on the instance, and at most
 *   `perHostInFlight` against one server host;
 * - at most `loginsPerSecond` login starts per second (a token bucket that
 *   holds `burst` tokens, 1 by default: one start every 1/rate seconds);
 * - the first login of each account (`first: true`) waits a random delay in
 *   [0, accounts / loginsPerSecond) before it queues, so N accounts begin
 *   over the pacing window in a random order instead of in config order;
 * - `slowHost(host, ms)`: a throttling answer pauses every login to that host.
 *
 * Waiters are served first come, first served per host, and round robin
 * between hosts, so a host at its limit never holds back the others. Queueing,
 * granting, releasing and cancelling are O(1) (linked lists); a first-login
 * delay is O(log n) (one heap, one timer). One timer at most is armed, and
 * none while nothing waits. Timeouts of a connection start after acquire()
 * resolved: the time spent queued here is not the server's.
 */

/** Defaults of `limits.loginsPerSecond` and `limits.loginsInFlight`. */
export const DEFAULT_LOGINS_PER_SECOND = 10;
export const DEFAULT_LOGINS_IN_FLIGHT = 20;
/** Concurrent logins against one server host (providers count connections per tenant and per IP). */
export const DEFAULT_PER_HOST_IN_FLIGHT = 10;
/** A server's backoff hint is honoured up to this long (a hostile or broken hint must not park an instance for days). */
export const SLOW_HOST_MAX_MS = 15 * 60_000;
/** How long to slow a host that said it throttles without saying for how long. */
export const SLOW_HOST_DEFAULT_MS = 60_000;

export interface LoginPacerOptions {
  loginsPerSecond?: number;
  loginsInFlight?: number;
  perHostInFlight?: number;
  /** Tokens the bucket holds: how many logins may start at once after a quiet spell. */
  burst?: number;
  /** Accounts on the instance; sets the window first logins are spread over (see setAccountCount). */
  accounts?: number;
  /** For tests: a source of time in ms and of randomness in [0, 1). */
  now?: () => number;
  random?: () => number;
}

export interface LoginRequest {
  /** The server host (as configured): the per-host limit and slowHost() apply by it. */
  host: string;
  account: string;
  /** The account's very first login since the connector started: spread over the pacing window. */
  first?: boolean;
  /** Aborting (the connector stops) rejects the wait with the signal's reason and gives up the place. */
  signal?: AbortSignal;
}

export interface LoginSlot {
  /** Gives the slot back; call it once the login succeeded or failed. Safe to call twice. */
  release(): void;
  /** How long the request waited for its slot, in ms. */
  readonly waitedMs: number;
}

export interface LoginPacerStats {
  inFlight: number;
  waiting: number;
  /** First logins still in their random delay. */
  delayed: number;
}

interface Waiter {
  request: LoginRequest;
  host: HostState;
  queuedAt: number;
  resolve: (slot: LoginSlot) => void;
  reject: (err: unknown) => void;
  onAbort: (() => void) | null;
  /** In a host queue. */
  prev: Waiter | null;
  next: Waiter | null;
  queued: boolean;
  /** Still in the first-login delay (in the heap); false once it left, by due time or abort. */
  delayed: boolean;
  dueAt: number;
  done: boolean;
}

interface HostState {
  name: string;
  inFlight: number;
  head: Waiter | null;
  tail: Waiter | null;
  size: number;
  /** slowHost(): no login starts before this time. */
  pausedUntil: number;
  /** In the ready ring (has waiters); prev/next of the ring. */
  inRing: boolean;
  ringPrev: HostState | null;
  ringNext: HostState | null;
}

/** The random delay of an account's first login: uniform over the time `accounts` logins take at `loginsPerSecond`. */
export function firstLoginDelayMs(accounts: number, loginsPerSecond: number, random: () => number = Math.random): number {
  if (accounts <= 1 || loginsPerSecond <= 0) return 0;
  return Math.floor(random() * (accounts / loginsPerSecond) * 1000);
}

export class LoginPacer {
  #rate: number;
  #maxInFlight: number;
  #perHost: number;
  readonly #burst: number;
  readonly #now: () => number;
  readonly #random: () => number;
  #accounts: number;
  #tokens: number;
  #refilledAt: number;
  #inFlight = 0;
  #waiting = 0;
  readonly #hosts = new Map<string, HostState>();
  /** Ring of hosts with waiters; #cursor is the next one served. */
  #cursor: HostState | null = null;
  readonly #delayed: Waiter[] = [];
  #delayedLive = 0;
  #timer: NodeJS.Timeout | null = null;
  #timerAt = Infinity;
  #closed: unknown = null;

  constructor(opts: LoginPacerOptions = {}) {
    this.#rate = positive(opts.loginsPerSecond ?? DEFAULT_LOGINS_PER_SECOND, 'loginsPerSecond');
    this.#maxInFlight = positiveInt(opts.loginsInFlight ?? DEFAULT_LOGINS_IN_FLIGHT, 'loginsInFlight');
    this.#perHost = positiveInt(opts.perHostInFlight ?? DEFAULT_PER_HOST_IN_FLIGHT, 'perHostInFlight');
    this.#burst = positiveInt(opts.burst ?? 1, 'burst');
    this.#now = opts.now ?? Date.now;
    this.#random = opts.random ?? Math.random;
    this.#accounts = opts.accounts ?? 0;
    this.#tokens = this.#burst;
    this.#refilledAt = this.#now();
  }

  /** The number of accounts first logins are spread over (the manager sets it on start and reload). */
  setAccountCount(n: number): void {
    this.#accounts = Math.max(0, Math.floor(n));
  }

  /** New limits (a config reload); logins already granted keep their slots. */
  setLimits(opts: Pick<LoginPacerOptions, 'loginsPerSecond' | 'loginsInFlight' | 'perHostInFlight'>): void {
    if (opts.loginsPerSecond !== undefined) this.#rate = positive(opts.loginsPerSecond, 'loginsPerSecond');
    if (opts.loginsInFlight !== undefined) this.#maxInFlight = positiveInt(opts.loginsInFlight, 'loginsInFlight');
    if (opts.perHostInFlight !== undefined) this.#perHost = positiveInt(opts.perHostInFlight, 'perHostInFlight');
    this.#pump();
  }

  stats(): LoginPacerStats {
    return { inFlight: this.#inFlight, waiting: this.#waiting, delayed: this.#delayedLive };
  }

  /** Resolves with a slot when this login may start; rejects if `signal` aborts or the pacer is closed. */
  acquire(request: LoginRequest): Promise<LoginSlot> {
    if (this.#closed !== null) return Promise.reject(this.#closed);
    const signal = request.signal;
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise<LoginSlot>((resolve, reject) => {
      const now = this.#now();
      const w: Waiter = {
        request,
        host: this.#host(request.host),
        queuedAt: now,
        resolve,
        reject,
        onAbort: null,
        prev: null,
        next: null,
        queued: false,
        delayed: false,
        dueAt: 0,
        done: false,
      };
      if (signal) {
        w.onAbort = () => this.#cancel(w, signal.reason);
        signal.addEventListener('abort', w.onAbort, { once: true });
      }
      const delay = request.first ? firstLoginDelayMs(this.#accounts, this.#rate, this.#random) : 0;
      if (delay > 0) {
        w.delayed = true;
        w.dueAt = now + delay;
        heapPush(this.#delayed, w);
        this.#delayedLive++;
      } else {
        this.#enqueue(w);
      }
      this.#pump();
    });
  }

  /** Acquires a slot, runs `login`, and releases the slot however it ends. */
  async run<T>(request: LoginRequest, login: () => Promise<T>): Promise<T> {
    const slot = await this.acquire(request);
    try {
      return await login();
    } finally {
      slot.release();
    }
  }

  /**
   * A server throttled (Microsoft's "Suggested Backoff Time", too many
   * connections): no login to `host` starts for `ms` (capped at
   * SLOW_HOST_MAX_MS), whichever account asks. A longer pause already in
   * force is kept.
   */
  slowHost(host: string, ms: number = SLOW_HOST_DEFAULT_MS): void {
    const h = this.#host(host);
    const until = this.#now() + Math.min(Math.max(0, ms), SLOW_HOST_MAX_MS);
    if (until > h.pausedUntil) h.pausedUntil = until;
    this.#pump();
  }

  /** Rejects every waiter with `reason` and refuses new requests (shutdown). Slots already handed out stay valid. */
  close(reason: unknown = new Error('the login pacer was closed')): void {
    if (this.#closed !== null) return;
    this.#closed = reason;
    this.#disarm();
    for (const w of this.#delayed) if (w.delayed) this.#cancel(w, reason);
    this.#delayed.length = 0;
    for (const h of [...this.#hosts.values()]) while (h.head) this.#cancel(h.head, reason);
  }

  #host(name: string): HostState {
    const key = name.toLowerCase();
    let h = this.#hosts.get(key);
    if (!h) {
      h = { name: key, inFlight: 0, head: null, tail: null, size: 0, pausedUntil: 0, inRing: false, ringPrev: null, ringNext: null };
      this.#hosts.set(key, h);
    }
    return h;
  }

  #enqueue(w: Waiter): void {
    const h = w.host;
    w.queued = true;
    w.prev = h.tail;
    w.next = null;
    if (h.tail) h.tail.next = w;
    else h.head = w;
    h.tail = w;
    h.size++;
    this.#waiting++;
    if (!h.inRing) this.#ringAdd(h);
  }

  #dequeue(w: Waiter): void {
    const h = w.host;
    if (w.prev) w.prev.next = w.next;
    else h.head = w.next;
    if (w.next) w.next.prev = w.prev;
    else h.tail = w.prev;
    w.prev = w.next = null;
    w.queued = false;
    h.size--;
    this.#waiting--;
    if (h.size === 0) this.#ringRemove(h);
  }

  #ringAdd(h: HostState): void {
    h.inRing = true;
    const c = this.#cursor;
    if (!c) {
      h.ringPrev = h.ringNext = h;
      this.#cursor = h;
      return;
    }
    // Just before the cursor: the newcomer is served after every host already waiting.
    const last = c.ringPrev as HostState;
    h.ringPrev = last;
    h.ringNext = c;
    last.ringNext = h;
    c.ringPrev = h;
  }

  #ringRemove(h: HostState): void {
    h.inRing = false;
    if (h.ringNext === h) {
      this.#cursor = null;
    } else {
      (h.ringPrev as HostState).ringNext = h.ringNext;
      (h.ringNext as HostState).ringPrev = h.ringPrev;
      if (this.#cursor === h) this.#cursor = h.ringNext;
    }
    h.ringPrev = h.ringNext = null;
  }

  /** A host nobody waits for or logs in to is forgotten, unless it is paused. */
  #forgetIdle(h: HostState): void {
    if (h.inFlight === 0 && h.size === 0 && h.pausedUntil <= this.#now()) this.#hosts.delete(h.name);
  }

  #cancel(w: Waiter, reason: unknown): void {
    if (w.done) return;
    if (w.queued) {
      this.#dequeue(w);
      this.#forgetIdle(w.host);
    }
    if (w.delayed) {
      // Left in the heap and skipped when it comes up (O(1) here).
      w.delayed = false;
      this.#delayedLive--;
    }
    this.#finish(w);
    w.reject(reason);
    this.#pump();
  }

  #finish(w: Waiter): void {
    w.done = true;
    if (w.onAbort) w.request.signal?.removeEventListener('abort', w.onAbort);
    w.onAbort = null;
  }

  #refill(now: number): void {
    if (this.#tokens >= this.#burst) {
      this.#refilledAt = now;
      return;
    }
    const earned = ((now - this.#refilledAt) * this.#rate) / 1000;
    if (earned <= 0) return;
    this.#tokens = Math.min(this.#burst, this.#tokens + earned);
    this.#refilledAt = now;
  }

  /** Grants what may start now and arms one timer for the next moment something could. */
  #pump(): void {
    if (this.#closed !== null) return;
    const now = this.#now();
    // First logins whose delay is over join their host's queue.
    while (this.#delayed.length > 0 && (this.#delayed[0] as Waiter).dueAt <= now) {
      const w = heapPop(this.#delayed) as Waiter;
      if (!w.delayed) continue; // cancelled meanwhile
      w.delayed = false;
      this.#delayedLive--;
      this.#enqueue(w);
    }
    if (this.#delayedLive === 0) this.#delayed.length = 0; // only cancelled ones were left
    this.#refill(now);
    let wakeAt = this.#delayed.length > 0 ? (this.#delayed[0] as Waiter).dueAt : Infinity;
    // Round robin over the hosts with waiters; a full turn of blocked hosts ends it.
    let skipped = 0;
    let ring = -1;
    while (this.#cursor && this.#inFlight < this.#maxInFlight) {
      const h = this.#cursor;
      if (h.pausedUntil > now || h.inFlight >= this.#perHost) {
        if (h.pausedUntil > now) wakeAt = Math.min(wakeAt, h.pausedUntil);
        if (ring < 0) ring = this.#ringSize();
        this.#cursor = h.ringNext;
        if (++skipped >= ring) break;
        continue;
      }
      if (this.#tokens < 1) {
        wakeAt = Math.min(wakeAt, now + Math.ceil(((1 - this.#tokens) * 1000) / this.#rate));
        break;
      }
      this.#tokens -= 1;
      const w = h.head as Waiter;
      this.#cursor = h.ringNext;
      this.#dequeue(w);
      this.#grant(w, now);
      skipped = 0;
      ring = -1;
    }
    this.#arm(wakeAt, now);
  }

  /** Hosts in the ring, counted only when one is blocked: O(hosts), and servers are few. */
  #ringSize(): number {
    const start = this.#cursor;
    if (!start) return 0;
    let n = 1;
    for (let h = start.ringNext; h && h !== start; h = h.ringNext) n++;
    return n;
  }

  #grant(w: Waiter, now: number): void {
    const h = w.host;
    this.#inFlight++;
    h.inFlight++;
    this.#finish(w);
    let released = false;
    const slot: LoginSlot = {
      waitedMs: now - w.queuedAt,
      release: () => {
        if (released) return;
        released = true;
        this.#inFlight--;
        h.inFlight--;
        this.#forgetIdle(h);
        this.#pump();
      },
    };
    w.resolve(slot);
  }

  #arm(at: number, now: number): void {
    if (at === Infinity || (this.#waiting === 0 && this.#delayedLive === 0)) {
      this.#disarm();
      return;
    }
    if (this.#timer && this.#timerAt === at) return;
    this.#disarm();
    this.#timerAt = at;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.#timerAt = Infinity;
      this.#pump();
    }, Math.max(0, at - now));
  }

  #disarm(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    this.#timerAt = Infinity;
  }
}

/**
 * Whether a server's answer says it throttles us, and for how long if it
 * says so. Then slowHost() that host for every account on it, not just the
 * one that was told.
 */
export function throttlingAnswer(text: string): { throttled: boolean; retryAfterMs: number | null } {
  // Microsoft 365: "Request is throttled. Suggested Backoff Time: 299 milliseconds".
  const backoff = /Suggested Backoff Time:\s*(\d+)\s*milli/i.exec(text);
  if (backoff) return { throttled: true, retryAfterMs: Number(backoff[1]) };
  return { throttled: THROTTLING.some((re) => re.test(text)), retryAfterMs: null };
}

/** Words servers use when they refuse for load or too many connections, with where each comes from. */
const THROTTLING: RegExp[] = [
  /\[LIMIT\]/i, // RFC 5530 response code: an operation or connection limit was hit
  /too many (simultaneous |concurrent )?connections/i, // Gmail "[ALERT] Too many simultaneous connections. (Failure)"
  /User is authenticated but not connected/i, // Exchange Online, when the tenant or mailbox is over its connection limit
  /Maximum number of connections from user\+IP exceeded/i, // Dovecot mail_max_userip_connections
  /\bthrottl/i,
];

function positive(n: number, what: string): number {
  if (!Number.isFinite(n) || n <= 0) throw new RangeError(`${what} must be a positive number, not ${n}`);
  return n;
}

function positiveInt(n: number, what: string): number {
  if (!Number.isInteger(n) || n <= 0) throw new RangeError(`${what} must be a positive whole number, not ${n}`);
  return n;
}

/** A binary min-heap of waiters by dueAt (first-login delays). */
function heapPush(heap: Waiter[], w: Waiter): void {
  heap.push(w);
  let i = heap.length - 1;
  while (i > 0) {
    const parent = (i - 1) >> 1;
    if ((heap[parent] as Waiter).dueAt <= w.dueAt) break;
    heap[i] = heap[parent] as Waiter;
    i = parent;
  }
  heap[i] = w;
}

function heapPop(heap: Waiter[]): Waiter | undefined {
  const top = heap[0];
  const last = heap.pop();
  if (heap.length === 0 || !last) return top;
  let i = 0;
  for (;;) {
    const l = 2 * i + 1;
    if (l >= heap.length) break;
    const r = l + 1;
    const c = r < heap.length && (heap[r] as Waiter).dueAt < (heap[l] as Waiter).dueAt ? r : l;
    if ((heap[c] as Waiter).dueAt >= last.dueAt) break;
    heap[i] = heap[c] as Waiter;
    i = c;
  }
  heap[i] = last;
  return top;
}
