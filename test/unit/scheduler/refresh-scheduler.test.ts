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
