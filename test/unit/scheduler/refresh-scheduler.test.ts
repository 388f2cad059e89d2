import { describe, expect, it } from 'vitest';
import type { Config } from '../../../src/config/types.js';
import type { TokenService, TokenStatus } from '../../../src/oauth/token-service.js';
import { RefreshScheduler } from '../../../src/scheduler/refresh-scheduler.js';
import type { Store } from '../../../src/store/store.js';

const DAY_MS = 86_400_000;
const TICK_MS = 15_000;

/** A scheduler over three accounts with nothing due; one of them near a provider cliff. */
function setup() {
  const statusCalls: string[] = [];
  const warnings: string[] = [];
  const status = (warning: string | null): TokenStatus => ({ state: 'ok', expiresAt: null, lastRefreshAt: null, refreshTokenIssuedAt: null, lastError: null, warning });
  const tokens = {
    status: async (account: string) => {
      statusCalls.push(account);
      return status(account === 'testing-app' ? 'refresh token is 6.0 days old' : null);
    },
  } as unknown as TokenService;
  const store = { tokens: { list: async () => [] } } as unknown as Store;
  const config = { accounts: ['a', 'b', 'testing-app'].map((name) => ({ name })), tokens: { refreshBeforeMs: 600_000, refreshConcurrency: 2 } } as unknown as Config;
  const logger = { warn: (_: unknown, msg: string) => warnings.push(msg), info: () => undefined, debug: () => undefined } as never;
  return { scheduler: new RefreshScheduler({ store, tokens, config: () => config, logger }), statusCalls, warnings };
}

describe('refresh scheduler cliff warnings', () => {
  it('look at each account once a day, not on every tick, and warn once a day', async () => {
    const { scheduler, statusCalls, warnings } = setup();
    const t0 = 1_000_000_000_000;
    for (let t = t0; t < t0 + 10 * TICK_MS; t += TICK_MS) await scheduler.tick(t);
    expect(statusCalls.sort()).toEqual(['a', 'b', 'testing-app']);
    expect(warnings).toEqual(['refresh token is 6.0 days old']);
    await scheduler.tick(t0 + DAY_MS - 1);
    expect(statusCalls).toHaveLength(3);
    await scheduler.tick(t0 + DAY_MS);
    expect(statusCalls).toHaveLength(6);
    expect(warnings).toHaveLength(2);
  });
});

describe('phased refresh leads', () => {
  it('lie between half of refreshBefore and all of it, stable per account, and spread over that window', async () => {
    const { phasedRefreshBefore } = await import('../../../src/scheduler/refresh-scheduler.js');
    const lead = 600_000;
    const leads = Array.from({ length: 2_000 }, (_, i) => phasedRefreshBefore(`acct-${i}`, lead));
    for (const l of leads) {
      expect(l).toBeGreaterThan(lead / 2);
      expect(l).toBeLessThanOrEqual(lead);
    }
    expect(phasedRefreshBefore('acct-7', lead)).toBe(leads[7]);
    // Ten one-minute bins over the window each hold some accounts: not all on one tick.
    const bins = new Set(leads.map((l) => Math.floor((lead - l) / 30_000)));
    expect(bins.size).toBe(10);
  });

  it('tokens that expire together are refreshed on different ticks', async () => {
    const t0 = 1_000_000_000_000;
    const names = Array.from({ length: 200 }, (_, i) => `acct-${i}`);
    const expiresAt = t0 + 600_000; // all expire 10 minutes from t0
    const refreshed = new Map<string, number>();
    let now = t0;
    const rec = (account: string) => ({ account, state: 'ok', refreshToken: 'r', accessExpiresAt: refreshed.has(account) ? expiresAt + 3_600_000 : expiresAt, lastRefreshAt: t0 - 3_000_000 });
    const store = { tokens: { list: async () => names.map(rec) } } as unknown as Store;
    const tokens = { refresh: async (account: string) => void refreshed.set(account, now), status: async () => ({ state: 'ok', warning: null }) } as unknown as TokenService;
    const config = { accounts: names.map((name) => ({ name })), tokens: { refreshBeforeMs: 600_000, refreshConcurrency: 8 } } as unknown as Config;
    const logger = { warn: () => undefined, info: () => undefined, debug: () => undefined } as never;
    const scheduler = new RefreshScheduler({ store, tokens, config: () => config, logger, random: () => 0 });
    const perTick: number[] = [];
    for (; now < expiresAt; now += TICK_MS) {
      const r = await scheduler.tick(now);
      perTick.push(r.refreshed);
    }
    expect(refreshed.size).toBe(200);
    // Spread over the 5 minutes from refreshBefore to refreshBefore / 2 before expiry.
    expect(Math.max(...perTick)).toBeLessThan(40);
    expect(perTick.filter((n) => n > 0).length).toBeGreaterThanOrEqual(15);
    for (const t of refreshed.values()) expect(expiresAt - t).toBeGreaterThanOrEqual(300_000 - TICK_MS);
  });
});

describe('a scheduled pass that fails', () => {
  it('is logged and does not reject unheard (a database that cannot be reached must not end the daemon)', async () => {
    const warnings: string[] = [];
    const unheard: unknown[] = [];
    const onUnhandled = (err: unknown): void => void unheard.push(err);
    process.on('unhandledRejection', onUnhandled);
    const store = { tokens: { list: () => Promise.reject(new Error('the PostgreSQL database cannot be reached')) } } as unknown as Store;
    const config = { accounts: [{ name: 'a' }], tokens: { refreshBeforeMs: 600_000, refreshConcurrency: 2 } } as unknown as Config;
    const logger = { warn: (_: unknown, msg: string) => warnings.push(msg), info: () => undefined, debug: () => undefined } as never;
    const scheduler = new RefreshScheduler({ store, tokens: {} as TokenService, config: () => config, logger });
    try {
      await scheduler.start();
      for (let i = 0; i < 50 && warnings.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
      await new Promise((r) => setTimeout(r, 20));
      expect(warnings).toEqual(['token refresh pass failed; the next one tries again']);
      expect(unheard).toEqual([]);
    } finally {
      await scheduler.stop();
      process.off('unhandledRejection', onUnhandled);
    }
  });
});
