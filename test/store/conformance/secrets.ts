import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ACCOUNT, type StoreFactory, useStore } from './harness.js';
import { adminSession } from './admin-sessions.js';

/** Random, so that a hit can only mean the secret itself was written out. */
function secret(label: string): string {
  return `${label}-${randomBytes(18).toString('hex')}`;
}

/** The spellings a careless backend might write a secret in. */
function spellings(s: string): Buffer[] {
  const utf8 = Buffer.from(s, 'utf8');
  return [utf8, Buffer.from(utf8.toString('base64')), Buffer.from(utf8.toString('hex')), Buffer.from(s, 'utf16le')];
}

function leaks(bytes: Buffer, secrets: Record<string, string>): string[] {
  return Object.entries(secrets)
    .filter(([, s]) => spellings(s).some((b) => bytes.includes(b)))
    .map(([name]) => name);
}

/** The product's promise: secrets encrypted at rest, and only a hash of a session id. */
export function defineSecretsConformance(factory: StoreFactory): void {
  const ctx = useStore(factory);

  describe('secrets at rest', () => {
    it('never persists a client secret, refresh or access token, PKCE verifier or session id in clear', async ({ skip }) => {
      const rawBytes = ctx.sut.rawBytes?.bind(ctx.sut);
      if (!rawBytes) return skip('the factory cannot show the backend’s bytes');
      const marker = `conformance-marker-${randomBytes(8).toString('hex')}`;
      const s = {
        clientSecret: secret('client-secret'),
        refreshToken: secret('refresh'),
        rotatedRefreshToken: secret('rotated-refresh'),
        accessToken: secret('access'),
        newAccessToken: secret('new-access'),
        codeVerifier: secret('pkce').padEnd(64, 'x'),
        unusedVerifier: secret('pkce-unused').padEnd(64, 'y'),
        sessionId: randomBytes(32).toString('base64url'),
      };

      await ctx.store.credentials.upsert({ name: marker, provider: 'google', clientId: 'cid', clientSecret: s.clientSecret, settings: {} }, 1);
      const tok = {
        account: ACCOUNT,
        credential: marker,
        refreshToken: s.refreshToken,
        accessToken: s.accessToken,
        accessExpiresAt: 1,
        scope: 'mail',
        state: 'ok' as const,
        lastRefreshAt: 1,
        refreshTokenIssuedAt: 1,
        lastError: null,
      };
      await ctx.store.tokens.save(tok, 1);
      await ctx.store.tokens.save({ ...tok, refreshToken: s.rotatedRefreshToken, accessToken: s.newAccessToken }, 2);
      const state = { account: ACCOUNT, credential: marker, redirectUri: 'http://127.0.0.1/cb', createdAt: 1, expiresAt: 10_000 };
      await ctx.store.oauthStates.create({ ...state, state: `st-${marker}`, codeVerifier: s.codeVerifier });
      await ctx.store.oauthStates.create({ ...state, state: `st2-${marker}`, codeVerifier: s.unusedVerifier });
      await ctx.store.oauthStates.consume(`st-${marker}`, 5);
      await ctx.store.adminSessions.create(adminSession({ id: s.sessionId, csrf: marker }));

      // Everything still reads back in clear through the interface...
      expect((await ctx.store.credentials.get(marker))?.clientSecret).toBe(s.clientSecret);
      expect(await ctx.store.tokens.get(ACCOUNT)).toMatchObject({ refreshToken: s.rotatedRefreshToken, accessToken: s.newAccessToken });
      expect(await ctx.store.adminSessions.get(s.sessionId, 5_000)).toMatchObject({ id: s.sessionId, csrf: marker });

      // ...but not from the bytes at rest, while open and after close.
      const open = await rawBytes();
      expect(open.includes(Buffer.from(marker))).toBe(true); // the bytes are really the store's
      expect(leaks(open, s)).toEqual([]);
      await ctx.store.close();
      const closed = await rawBytes();
      expect(closed.includes(Buffer.from(marker))).toBe(true);
      expect(leaks(closed, s)).toEqual([]);
    });
  });
}
