import { describe, expect, it } from 'vitest';
import type { OAuthStateRecord, StoredCredential, TokenRecord } from '../../../src/store/oauth.js';
import { type StoreFactory, useStore } from './harness.js';

export function credential(name: string, over: Partial<StoredCredential> = {}): Omit<StoredCredential, 'createdAt' | 'updatedAt'> {
  return {
    name,
    provider: 'google',
    clientId: `${name}.apps.googleusercontent.com`,
    clientSecret: `secret-of-${name}`,
    settings: { scopes: ['https://mail.google.com/'], tenant: null, nested: { deviceAuthorizationEndpoint: 'https://x/device' } },
    ...over,
  };
}

export function token(account: string, over: Partial<TokenRecord> = {}): Omit<TokenRecord, 'updatedAt'> {
  return {
    account,
    credential: 'google-prod',
    refreshToken: `refresh-of-${account}`,
    accessToken: `access-of-${account}`,
    accessExpiresAt: 1_700_003_600_000,
    scope: 'https://mail.google.com/',
    state: 'ok',
    lastRefreshAt: 1_700_000_000_000,
    refreshTokenIssuedAt: 1_690_000_000_000,
    lastError: null,
    ...over,
  };
}

export function oauthState(state: string, over: Partial<OAuthStateRecord> = {}): OAuthStateRecord {
  return {
    state,
    account: 'support',
    credential: 'google-prod',
    codeVerifier: `verifier-${state}-${'v'.repeat(43)}`,
    redirectUri: 'http://127.0.0.1:8025/oauth2/callback',
    createdAt: 1_000,
    expiresAt: 601_000,
    ...over,
  };
}

/** Credentials, tokens and OAuth authorization states. */
export function defineOAuthConformance(factory: StoreFactory): void {
  const ctx = useStore(factory);

  describe('credentials', () => {
    it('upsert creates, returns the stored record, and get/list read it back', async () => {
      expect(await ctx.store.credentials.list()).toEqual([]);
      const before = Date.now();
      const saved = await ctx.store.credentials.upsert(credential('google-prod'), Date.now());
      expect(saved).toEqual({ ...credential('google-prod'), createdAt: expect.any(Number), updatedAt: saved.createdAt });
      expect(saved.createdAt).toBeGreaterThanOrEqual(before);
      expect(saved.createdAt).toBeLessThanOrEqual(Date.now());
      expect(await ctx.store.credentials.get('google-prod')).toEqual(saved);
      expect(await ctx.store.credentials.get('nope')).toBeNull();
    });

    it('upsert of an existing name replaces every field but keeps createdAt', async () => {
      const first = await ctx.store.credentials.upsert(credential('c'), 1_000);
      const second = await ctx.store.credentials.upsert(
        credential('c', { provider: 'custom', clientId: 'other', clientSecret: null, settings: { tokenEndpoint: 'https://t' } }),
        2_000,
      );
      expect(second).toMatchObject({ provider: 'custom', clientId: 'other', clientSecret: null, settings: { tokenEndpoint: 'https://t' } });
      expect(second.createdAt).toBe(first.createdAt);
      expect(second.updatedAt).toBeGreaterThanOrEqual(first.updatedAt);
      expect(await ctx.store.credentials.list()).toEqual([second]);
    });

    it('upsert records the time it is given', async () => {
      expect(await ctx.store.credentials.upsert(credential('c'), 5_000)).toMatchObject({ createdAt: 5_000, updatedAt: 5_000 });
      expect(await ctx.store.credentials.upsert(credential('c'), 9_000)).toMatchObject({ createdAt: 5_000, updatedAt: 9_000 });
    });

    it('list returns every credential, ordered by name', async () => {
      for (const n of ['m365', 'custom-idp', 'google']) await ctx.store.credentials.upsert(credential(n, { clientSecret: null }), 1_000);
      expect((await ctx.store.credentials.list()).map((c) => c.name)).toEqual(['custom-idp', 'google', 'm365']);
    });

    it('remove deletes and says whether there was one', async () => {
      await ctx.store.credentials.upsert(credential('c'), 1_000);
      expect(await ctx.store.credentials.remove('c')).toBe(true);
      expect(await ctx.store.credentials.remove('c')).toBe(false);
      expect(await ctx.store.credentials.get('c')).toBeNull();
    });
  });

  describe('tokens', () => {
    it('save then get returns the whole record with an updatedAt', async () => {
      expect(await ctx.store.tokens.get('support')).toBeNull();
      const before = Date.now();
      await ctx.store.tokens.save(token('support'), Date.now());
      const got = await ctx.store.tokens.get('support');
      expect(got).toEqual({ ...token('support'), updatedAt: expect.any(Number) });
      expect(got?.updatedAt).toBeGreaterThanOrEqual(before);
    });

    it('save records the time it is given', async () => {
      await ctx.store.tokens.save(token('support'), 7_000);
      expect((await ctx.store.tokens.get('support'))?.updatedAt).toBe(7_000);
      await ctx.store.tokens.save(token('support'), 8_000);
      expect((await ctx.store.tokens.get('support'))?.updatedAt).toBe(8_000);
    });

    it('save replaces the whole record: a rotated refresh token lands together with the new access token', async () => {
      await ctx.store.tokens.save(token('support', { lastError: 'old error' }), 1_000);
      const rotated = token('support', {
        refreshToken: 'rotated-refresh',
        accessToken: 'new-access',
        accessExpiresAt: 1_700_007_200_000,
        lastRefreshAt: 1_700_003_000_000,
        refreshTokenIssuedAt: 1_700_003_000_000,
        lastError: null,
      });
      await ctx.store.tokens.save(rotated, 2_000);
      expect(await ctx.store.tokens.get('support')).toEqual({ ...rotated, updatedAt: expect.any(Number) });
    });

    it('save with nulls clears fields (no merge with the previous record)', async () => {
      await ctx.store.tokens.save(token('support'), 1_000);
      const dropped = token('support', {
        credential: 'm365',
        refreshToken: null,
        accessToken: null,
        accessExpiresAt: null,
        scope: null,
        state: 'reauth_required',
        lastRefreshAt: null,
        refreshTokenIssuedAt: null,
        lastError: 'invalid_grant: Token has been expired or revoked.',
      });
      await ctx.store.tokens.save(dropped, 2_000);
      expect(await ctx.store.tokens.get('support')).toEqual({ ...dropped, updatedAt: expect.any(Number) });
    });

    it('list returns every account, ordered by account; delete says whether there was one', async () => {
      await ctx.store.tokens.save(token('sales'), 1_000);
      await ctx.store.tokens.save(token('billing', { state: 'missing', refreshToken: null, accessToken: null }), 1_000);
      expect((await ctx.store.tokens.list()).map((t) => [t.account, t.state])).toEqual([
        ['billing', 'missing'],
        ['sales', 'ok'],
      ]);
      expect(await ctx.store.tokens.delete('sales')).toBe(true);
      expect(await ctx.store.tokens.delete('sales')).toBe(false);
      expect((await ctx.store.tokens.list()).map((t) => t.account)).toEqual(['billing']);
    });
  });

  describe('OAuth states', () => {
    it('consume returns the record once; the second consume is used', async () => {
      const rec = oauthState('s1');
      await ctx.store.oauthStates.create(rec);
      expect(await ctx.store.oauthStates.consume('s1', 2_000)).toEqual({ ok: true, record: rec });
      expect(await ctx.store.oauthStates.consume('s1', 2_001)).toEqual({ ok: false, reason: 'used' });
    });

    it('consume of an unknown state is unknown; of an expired one (expiresAt <= now) expired, and it is never usable later', async () => {
      await ctx.store.oauthStates.create(oauthState('s1', { expiresAt: 5_000 }));
      expect(await ctx.store.oauthStates.consume('nope', 2_000)).toEqual({ ok: false, reason: 'unknown' });
      expect(await ctx.store.oauthStates.consume('s1', 5_000)).toEqual({ ok: false, reason: 'expired' });
      expect((await ctx.store.oauthStates.consume('s1', 2_000)).ok).toBe(false); // not with an earlier clock either
    });

    it('concurrent consumes of one state: exactly one wins, the others are used', async () => {
      await ctx.store.oauthStates.create(oauthState('race'));
      const results = await Promise.all(Array.from({ length: 10 }, () => ctx.store.oauthStates.consume('race', 2_000)));
      expect(results.filter((r) => r.ok)).toHaveLength(1);
      expect(results.filter((r) => !r.ok)).toEqual(Array.from({ length: 9 }, () => ({ ok: false, reason: 'used' })));
    });

    it('concurrent consumes from two stores on the same storage (two replicas): exactly one wins', async () => {
      const peer = await ctx.sut.openPeer();
      for (let i = 0; i < 5; i++) await ctx.store.oauthStates.create(oauthState(`s${i}`));
      const results = await Promise.all(
        Array.from({ length: 5 }, (_, i) => [ctx.store.oauthStates.consume(`s${i}`, 2_000), peer.oauthStates.consume(`s${i}`, 2_000)]).flat(),
      );
      for (let i = 0; i < 5; i++) {
        const pair = results.slice(2 * i, 2 * i + 2);
        expect(pair.filter((r) => r.ok)).toHaveLength(1);
      }
    });

    it('a state created on one store is consumable on another (authorization started on one replica, completed on any)', async () => {
      const peer = await ctx.sut.openPeer();
      await ctx.store.oauthStates.create(oauthState('s1'));
      expect(await peer.oauthStates.consume('s1', 2_000)).toEqual({ ok: true, record: oauthState('s1') });
      expect(await ctx.store.oauthStates.consume('s1', 2_000)).toEqual({ ok: false, reason: 'used' });
    });

    it('prune removes states that expired before the cutoff, used or not, and says how many', async () => {
      await ctx.store.oauthStates.create(oauthState('old', { expiresAt: 3_000 }));
      await ctx.store.oauthStates.create(oauthState('old-used', { expiresAt: 3_500 }));
      await ctx.store.oauthStates.create(oauthState('edge', { expiresAt: 4_000 }));
      await ctx.store.oauthStates.create(oauthState('live', { expiresAt: 9_000 }));
      await ctx.store.oauthStates.consume('old-used', 2_000);
      expect(await ctx.store.oauthStates.prune(4_000)).toBe(2);
      expect(await ctx.store.oauthStates.consume('old', 2_000)).toEqual({ ok: false, reason: 'unknown' });
      expect((await ctx.store.oauthStates.consume('edge', 3_999)).ok).toBe(true);
      expect((await ctx.store.oauthStates.consume('live', 5_000)).ok).toBe(true);
    });
  });
}
