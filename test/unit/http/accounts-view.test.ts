import { describe, expect, it } from 'vitest';
import type { Config } from '../../../src/config/types.js';
import { accountsView, parseAccountsQuery, type AccountRouteDeps } from '../../../src/http/routes/accounts.js';
import type { ConnectorStatus } from '../../../src/incoming/source.js';
import type { TokenStatus } from '../../../src/oauth/token-service.js';
import type { AccountStatusRecord } from '../../../src/store/meta.js';

const N = 5_000;

/** 5,000 accounts: every 1,000th in error, the rest idle; the store parts count their calls. */
function deps() {
  const calls = { sides: 0, tokens: 0 };
  const accounts = Array.from({ length: N }, (_, i) => ({ name: `acct-${i}`, email: `acct-${i}@example.com`, enabled: i !== 42, incoming: { protocol: 'imap' } }));
  const config = { accounts } as unknown as Config;
  const live = new Map<string, ConnectorStatus>(
    accounts.map((a, i) => [a.name, { state: i % 1_000 === 7 ? 'error' : 'idle', lastSuccessAt: null, lastError: i % 1_000 === 7 ? 'the server refused the login' : null }]),
  );
  const rows: AccountStatusRecord[] = accounts.map((a) => ({ account: a.name, side: 'outgoing', state: 'stopped', lastSuccessAt: 1, lastError: null, updatedAt: 1 }) as AccountStatusRecord);
  const token: TokenStatus = { state: 'ok', expiresAt: null, lastRefreshAt: null, refreshTokenIssuedAt: null, lastError: null };
  const d: AccountRouteDeps = {
    config: () => config,
    incoming: (name) => live.get(name) ?? null,
    sideStatus: async () => {
      calls.sides++;
      return rows;
    },
    tokens: async () => {
      calls.tokens++;
      return new Map(accounts.map((a) => [a.name, token]));
    },
    testIncoming: async () => ({ ok: true, error: null, code: null }),
    testOutgoing: async () => null,
  };
  return { d, calls };
}

describe('accountsView at 5,000 accounts', () => {
  it('reads the store once per kind of row, not once per account', async () => {
    const { d, calls } = deps();
    const all = await accountsView(d);
    expect(all.accounts).toHaveLength(N);
    expect(all.total).toBe(N);
    expect(calls).toEqual({ sides: 1, tokens: 1 });
    expect(all.accounts[3]?.outgoing.lastSuccessAt).toBe(new Date(1).toISOString());
    expect(all.counts).toEqual({ idle: N - 6, error: 5, paused: 1 });
  });

  it('finds the 5 in error, and pages', async () => {
    const { d } = deps();
    const errors = await accountsView(d, parseAccountsQuery({ state: 'error' }));
    expect(errors.accounts.map((a) => a.name)).toEqual(['acct-7', 'acct-1007', 'acct-2007', 'acct-3007', 'acct-4007']);
    expect((await accountsView(d, parseAccountsQuery({ state: 'paused' }))).accounts.map((a) => a.name)).toEqual(['acct-42']);
    const page = await accountsView(d, parseAccountsQuery({ state: 'idle,error', limit: '100', offset: '4949' }));
    expect(page.accounts).toHaveLength(50);
    expect(page.nextOffset).toBeNull();
    expect(page.accounts[0]?.name).toBe('acct-4950');
    const middle = await accountsView(d, parseAccountsQuery({ limit: '100', offset: '100' }));
    expect(middle.nextOffset).toBe(200);
  });

  it('refuses what it cannot read', () => {
    expect(() => parseAccountsQuery({ state: 'error,bogus' })).toThrow(/not bogus/);
    expect(() => parseAccountsQuery({ state: '' })).toThrow(/state must be/);
    expect(() => parseAccountsQuery({ limit: '1001' })).toThrow(/limit must be an integer from 1 to 1000/);
    expect(() => parseAccountsQuery({ offset: '1.5' })).toThrow(/offset/);
    expect(parseAccountsQuery({ state: 'error, backoff' }).states).toEqual(['error', 'backoff']);
  });
});
