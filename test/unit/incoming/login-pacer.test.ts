import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  DEFAULT_LOGINS_IN_FLIGHT,
  DEFAULT_LOGINS_PER_SECOND,
  firstLoginDelayMs,
  LoginPacer,
  SLOW_HOST_MAX_MS,
  throttlingAnswer,
  type LoginSlot,
} from '../../../src/incoming/login-pacer.js';

/** Acquires and records when each request was granted (ms since the start) and its slot. */
function track(pacer: LoginPacer, requests: { host: string; account: string; first?: boolean; signal?: AbortSignal }[]) {
  const t0 = Date.now();
  const granted: { account: string; at: number; slot: LoginSlot }[] = [];
  const rejected: { account: string; reason: unknown }[] = [];
  for (const r of requests) {
    pacer.acquire(r).then(
      (slot) => granted.push({ account: r.account, at: Date.now() - t0, slot }),
      (reason: unknown) => rejected.push({ account: r.account, reason }),
    );
  }
  return { granted, rejected };
}

const many = (n: number, host = 'imap.example.com', prefix = 'a') => Array.from({ length: n }, (_, i) => ({ host, account: `${prefix}${i}` }));

/** Lets promise callbacks run without moving the clock. */
const flush = () => vi.advanceTimersByTimeAsync(0);

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('LoginPacer', () => {
  it('defaults to 10 logins a second and 20 in flight', () => {
    expect(DEFAULT_LOGINS_PER_SECOND).toBe(10);
    expect(DEFAULT_LOGINS_IN_FLIGHT).toBe(20);
  });

  it('starts at most loginsPerSecond logins a second, one every 1/rate seconds', async () => {
    const pacer = new LoginPacer({ loginsPerSecond: 10, loginsInFlight: 1000, perHostInFlight: 1000 });
    const { granted } = track(pacer, many(35));
    await flush();
    expect(granted).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(999);
    expect(granted).toHaveLength(10);
    await vi.advanceTimersByTimeAsync(1000);
    expect(granted).toHaveLength(20);
    await vi.advanceTimersByTimeAsync(1500);
    expect(granted).toHaveLength(35);
    // No second of the run saw more than the rate.
    const perSecond = new Map<number, number>();
    for (const g of granted) perSecond.set(Math.floor(g.at / 1000), (perSecond.get(Math.floor(g.at / 1000)) ?? 0) + 1);
    expect(Math.max(...perSecond.values())).toBeLessThanOrEqual(10);
  });

  it('lets `burst` logins start at once after a quiet spell', async () => {
    const pacer = new LoginPacer({ loginsPerSecond: 2, loginsInFlight: 100, burst: 5 });
    const { granted } = track(pacer, many(7));
    await flush();
    expect(granted).toHaveLength(5);
    await vi.advanceTimersByTimeAsync(500);
    expect(granted).toHaveLength(6);
  });

  it('keeps at most loginsInFlight logins in flight; a release lets the next one start', async () => {
    const pacer = new LoginPacer({ loginsPerSecond: 1000, loginsInFlight: 3, perHostInFlight: 100 });
    const { granted } = track(pacer, many(5));
    await vi.advanceTimersByTimeAsync(1000);
    expect(granted.map((g) => g.account)).toEqual(['a0', 'a1', 'a2']);
    expect(pacer.stats()).toEqual({ inFlight: 3, waiting: 2, delayed: 0 });
    granted[1]?.slot.release();
    granted[1]?.slot.release(); // twice is once
    await vi.advanceTimersByTimeAsync(10);
    expect(granted.map((g) => g.account)).toEqual(['a0', 'a1', 'a2', 'a3']);
    expect(pacer.stats().inFlight).toBe(3);
  });

  it('serves each host first come first served, and round robin between hosts', async () => {
    const pacer = new LoginPacer({ loginsPerSecond: 1000, loginsInFlight: 100, perHostInFlight: 2 });
    const { granted } = track(pacer, [...many(4, 'imap.gmail.com', 'g'), ...many(4, 'outlook.office365.com', 'm')]);
    await vi.advanceTimersByTimeAsync(100);
    // Two each: the per-host limit, and Gmail at its limit does not hold Microsoft back.
    expect(granted.map((g) => g.account).sort()).toEqual(['g0', 'g1', 'm0', 'm1']);
    granted.find((g) => g.account === 'g0')?.slot.release();
    await vi.advanceTimersByTimeAsync(10);
    expect(granted.map((g) => g.account)).toContain('g2');
    expect(granted.map((g) => g.account)).not.toContain('m2');
  });

  it('treats host names case-insensitively', async () => {
    const pacer = new LoginPacer({ loginsPerSecond: 1000, perHostInFlight: 1 });
    const { granted } = track(pacer, [
      { host: 'IMAP.Example.com', account: 'a' },
      { host: 'imap.example.com', account: 'b' },
    ]);
    await vi.advanceTimersByTimeAsync(100);
    expect(granted.map((g) => g.account)).toEqual(['a']);
  });

  it('spreads first logins over accounts / loginsPerSecond seconds, in a random order', async () => {
    let seed = 7;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
    const pacer = new LoginPacer({ loginsPerSecond: 10, loginsInFlight: 1000, perHostInFlight: 1000, accounts: 100, random });
    const { granted } = track(
      pacer,
      many(100).map((r) => ({ ...r, first: true })),
    );
    await flush();
    expect(granted.length).toBeLessThan(3);
    expect(pacer.stats().delayed).toBeGreaterThan(95);
    await vi.advanceTimersByTimeAsync(5_000);
    expect(granted.length).toBeGreaterThan(30);
    expect(granted.length).toBeLessThan(70);
    await vi.advanceTimersByTimeAsync(6_000);
    expect(granted).toHaveLength(100);
    // Not in config order.
    expect(granted.map((g) => g.account)).not.toEqual(many(100).map((r) => r.account));
    expect(vi.getTimerCount()).toBe(0);
  });

  it('gives reconnects (not first) no extra delay', async () => {
    const pacer = new LoginPacer({ accounts: 5000 });
    const { granted } = track(pacer, [{ host: 'h', account: 'a' }]);
    await flush();
    expect(granted).toHaveLength(1);
  });

  it('slowHost pauses every login to that host, and only that host', async () => {
    const pacer = new LoginPacer({ loginsPerSecond: 1000, loginsInFlight: 100 });
    pacer.slowHost('outlook.office365.com', 5_000);
    const { granted } = track(pacer, [...many(3, 'outlook.office365.com', 'm'), ...many(2, 'imap.gmail.com', 'g')]);
    await vi.advanceTimersByTimeAsync(100);
    expect(granted.map((g) => g.account)).toEqual(['g0', 'g1']);
    await vi.advanceTimersByTimeAsync(4_800);
    expect(granted).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(200);
    expect(granted.map((g) => g.account)).toEqual(['g0', 'g1', 'm0', 'm1', 'm2']);
  });

  it('keeps the longer of two pauses and caps a server hint', async () => {
    const pacer = new LoginPacer({ loginsPerSecond: 1000 });
    pacer.slowHost('h', 10_000);
    pacer.slowHost('h', 1_000);
    const { granted } = track(pacer, many(1, 'h'));
    await vi.advanceTimersByTimeAsync(9_000);
    expect(granted).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(granted).toHaveLength(1);

    pacer.slowHost('x', 1e12);
    const late = track(pacer, many(1, 'x'));
    await vi.advanceTimersByTimeAsync(SLOW_HOST_MAX_MS);
    expect(late.granted).toHaveLength(1);
  });

  it('rejects with the reason and gives up the place when the signal aborts', async () => {
    const pacer = new LoginPacer({ loginsPerSecond: 1, loginsInFlight: 100 });
    const ac = new AbortController();
    const { granted, rejected } = track(pacer, [
      { host: 'h', account: 'a' },
      { host: 'h', account: 'b', signal: ac.signal },
      { host: 'h', account: 'c' },
    ]);
    await flush();
    ac.abort(new Error('stopped'));
    await flush();
    expect(rejected).toEqual([{ account: 'b', reason: new Error('stopped') }]);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(granted.map((g) => g.account)).toEqual(['a', 'c']);
    expect(pacer.stats().waiting).toBe(0);
  });

  it('rejects at once for a signal already aborted, and during a first-login delay', async () => {
    const pacer = new LoginPacer({ accounts: 1000 });
    await expect(pacer.acquire({ host: 'h', account: 'a', signal: AbortSignal.abort('gone') })).rejects.toBe('gone');
    const ac = new AbortController();
    const p = pacer.acquire({ host: 'h', account: 'b', first: true, signal: ac.signal });
    p.catch(() => undefined);
    await flush();
    expect(pacer.stats().delayed).toBe(1);
    ac.abort('stop');
    await expect(p).rejects.toBe('stop');
    expect(pacer.stats()).toEqual({ inFlight: 0, waiting: 0, delayed: 0 });
    expect(vi.getTimerCount()).toBe(0);
  });

  it('leaves no timer behind when nothing waits', async () => {
    const pacer = new LoginPacer({ loginsPerSecond: 5, perHostInFlight: 20 });
    const { granted } = track(pacer, many(12));
    await vi.advanceTimersByTimeAsync(3_000);
    expect(granted).toHaveLength(12);
    for (const g of granted) g.slot.release();
    await flush();
    expect(vi.getTimerCount()).toBe(0);
    expect(pacer.stats()).toEqual({ inFlight: 0, waiting: 0, delayed: 0 });
  });

  it('run() releases the slot whether the login succeeds or throws', async () => {
    const pacer = new LoginPacer({ loginsInFlight: 1 });
    const ok = pacer.run({ host: 'h', account: 'a' }, async () => 'ok');
    const refused = pacer.run({ host: 'h', account: 'a' }, async () => Promise.reject(new Error('refused')));
    refused.catch(() => undefined);
    await vi.advanceTimersByTimeAsync(200);
    await expect(ok).resolves.toBe('ok');
    await expect(refused).rejects.toThrow('refused');
    expect(pacer.stats().inFlight).toBe(0);
  });

  it('reports how long a request waited', async () => {
    const pacer = new LoginPacer({ loginsPerSecond: 2 });
    const { granted } = track(pacer, many(3));
    await vi.advanceTimersByTimeAsync(1_000);
    expect(granted.map((g) => g.slot.waitedMs)).toEqual([0, 500, 1000]);
  });

  it('close() rejects every waiter and refuses new requests; slots handed out stay valid', async () => {
    const pacer = new LoginPacer({ loginsPerSecond: 1, accounts: 100 });
    const { granted, rejected } = track(pacer, [...many(3), { host: 'h', account: 'first', first: true }]);
    await flush();
    pacer.close(new Error('shutting down'));
    await flush();
    expect(granted).toHaveLength(1);
    expect(rejected.map((r) => r.account).sort()).toEqual(['a1', 'a2', 'first']);
    await expect(pacer.acquire({ host: 'h', account: 'z' })).rejects.toThrow('shutting down');
    granted[0]?.slot.release();
    expect(vi.getTimerCount()).toBe(0);
  });

  it('carries 10,000 waiters through with cancellations in the middle', async () => {
    const pacer = new LoginPacer({ loginsPerSecond: 1000, loginsInFlight: 50, perHostInFlight: 50 });
    const controllers = Array.from({ length: 10_000 }, () => new AbortController());
    const hosts = ['a', 'b', 'c'];
    const { granted, rejected } = track(
      pacer,
      controllers.map((ac, i) => ({ host: hosts[i % 3] as string, account: `x${i}`, signal: ac.signal })),
    );
    for (let i = 1; i < 10_000; i += 7) controllers[i]?.abort('cancelled');
    // Each granted login finishes at once.
    let done = 0;
    while (granted.length + rejected.length < 10_000) {
      await vi.advanceTimersByTimeAsync(50);
      for (; done < granted.length; done++) granted[done]?.slot.release();
    }
    expect(rejected).toHaveLength(1429);
    expect(granted).toHaveLength(10_000 - 1429);
    for (; done < granted.length; done++) granted[done]?.slot.release();
    await flush();
    expect(pacer.stats()).toEqual({ inFlight: 0, waiting: 0, delayed: 0 });
    // First come first served within each host.
    for (const host of hosts) {
      const order = granted.filter((g) => hosts[Number(g.account.slice(1)) % 3] === host).map((g) => Number(g.account.slice(1)));
      expect(order).toEqual([...order].sort((x, y) => x - y));
    }
  });

  it('refuses limits that are not positive', () => {
    expect(() => new LoginPacer({ loginsPerSecond: 0 })).toThrow(/loginsPerSecond/);
    expect(() => new LoginPacer({ loginsInFlight: 1.5 })).toThrow(/loginsInFlight/);
  });
});

describe('firstLoginDelayMs', () => {
  it('is uniform over accounts / rate seconds', () => {
    expect(firstLoginDelayMs(5000, 10, () => 0)).toBe(0);
    expect(firstLoginDelayMs(5000, 10, () => 0.5)).toBe(250_000);
    expect(firstLoginDelayMs(5000, 10, () => 0.999999)).toBeLessThan(500_000);
    expect(firstLoginDelayMs(1, 10, () => 0.9)).toBe(0);
  });
});

describe('throttlingAnswer', () => {
  it.each([
    ['Request is throttled. Suggested Backoff Time: 299 milliseconds', { throttled: true, retryAfterMs: 299 }],
    ['[ALERT] Too many simultaneous connections. (Failure)', { throttled: true, retryAfterMs: null }],
    ['User is authenticated but not connected.', { throttled: true, retryAfterMs: null }],
    ['Maximum number of connections from user+IP exceeded (mail_max_userip_connections=10)', { throttled: true, retryAfterMs: null }],
    ['[LIMIT] Too many commands', { throttled: true, retryAfterMs: null }],
    // One mailbox locked is no reason to slow every account on the host.
    ['-ERR [IN-USE] Mailbox is locked by another POP3 session', { throttled: false, retryAfterMs: null }],
    ['[AUTHENTICATIONFAILED] Authentication failed.', { throttled: false, retryAfterMs: null }],
    ['Invalid credentials (Failure)', { throttled: false, retryAfterMs: null }],
  ])('%s', (text, expected) => {
    expect(throttlingAnswer(text)).toEqual(expected);
  });
});
