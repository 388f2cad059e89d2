import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { aadstsCodes, classifyTokenError, PROVIDER_ERROR_TABLE, RETRY_SLOWLY_MS, type TokenAction, type TokenErrorInput } from '../../../src/oauth/provider-errors.js';

const DAY = 86_400_000;
const NOW = Date.UTC(2026, 11, 1);

/** A Microsoft error body as Entra sends it: the AADSTS number first, then trace lines. */
function ms(code: number, error = 'invalid_grant', extra: Partial<TokenErrorInput> = {}): TokenErrorInput {
  return {
    status: 400,
    error,
    error_description: `AADSTS${code}: something happened.\r\nTrace ID: 0000aaaa-11bb-cccc-dd22-eeeeee333333\r\nCorrelation ID: aaaa0000\r\nTimestamp: 2026-12-01 10:00:00Z`,
    error_codes: [code],
    provider: 'microsoft',
    grant: 'refresh_token',
    ...extra,
  };
}

describe('classifyTokenError: Microsoft Entra, by AADSTS number', () => {
  const cases: [number, string, TokenAction, RegExp][] = [
    [50173, 'invalid_grant', 'reauth', /revoked this account's tokens/],
    [700082, 'invalid_grant', 'reauth', /unused too long/],
    [70043, 'invalid_grant', 'reauth', /sign-in frequency/],
    [50076, 'invalid_grant', 'reauth', /Multifactor authentication is now required/],
    [50079, 'invalid_grant', 'reauth', /register for multifactor/],
    [65001, 'invalid_grant', 'reauth', /consented/],
    [53003, 'invalid_grant', 'retry_slowly', /Conditional Access policy blocks/],
    [7000222, 'invalid_client', 'fix_config', /client secret has expired/],
    [7000215, 'invalid_client', 'fix_config', /Value .* not its Secret ID/],
    [700016, 'unauthorized_client', 'fix_config', /No app with this clientId/],
    [50194, 'invalid_request', 'fix_config', /single-tenant/],
  ];
  for (const [code, error, action, words] of cases) {
    it(`AADSTS${code} → ${action}`, () => {
      const c = classifyTokenError(ms(code, error));
      expect(c.id).toBe(`AADSTS${code}`);
      expect(c.action).toBe(action);
      expect(c.words).toMatch(words);
      expect(c.transient).toBe(action === 'retry' || action === 'retry_slowly');
      expect(c.detail).toBe(`${error}: AADSTS${code}: something happened.`);
      expect(c.source).toMatch(/^https:\/\/learn\.microsoft\.com\//);
    });
  }

  it('finds the number in the description when error_codes is absent, and in GCC High', () => {
    const c = classifyTokenError({ ...ms(50173), error_codes: undefined, provider: 'microsoft-gcc-high' });
    expect(c.id).toBe('AADSTS50173');
    expect(aadstsCodes({ error_description: 'AADSTS7000222: The provided client secret keys for app are expired.' })).toEqual([7000222]);
  });

  it('tells a missing user consent from a missing admin consent for app-only', () => {
    expect(classifyTokenError(ms(65001, 'invalid_grant', { grant: 'authorization_code' })).action).toBe('reauth');
    const app = classifyTokenError(ms(65001, 'invalid_grant', { grant: 'client_credentials' }));
    expect(app.id).toBe('AADSTS65001.app_only');
    expect(app.action).toBe('fix_config');
    expect(app.words).toMatch(/Grant admin consent/);
  });

  it('retries transient Entra errors, slowly under throttling', () => {
    expect(classifyTokenError(ms(90033, 'temporarily_unavailable')).action).toBe('retry');
    const slow = classifyTokenError(ms(50196, 'invalid_request'));
    expect(slow.action).toBe('retry_slowly');
    expect(slow.retryAfterMs).toBe(RETRY_SLOWLY_MS);
  });

  it('an AADSTS number it does not know falls back to the RFC error', () => {
    const c = classifyTokenError(ms(12345678, 'invalid_grant'));
    expect(c.id).toBe('oauth.invalid_grant');
    expect(c.action).toBe('reauth');
  });
});

describe('classifyTokenError: Google', () => {
  const revoked: TokenErrorInput = { status: 400, error: 'invalid_grant', error_description: 'Token has been expired or revoked.', provider: 'google', grant: 'refresh_token', now: NOW };

  it('a revoked or expired refresh token needs a new authorization, and says why without guessing Testing', () => {
    const c = classifyTokenError({ ...revoked, refreshTokenIssuedAt: NOW - 30 * DAY });
    expect(c.id).toBe('google.refresh.expired_or_revoked');
    expect(c.action).toBe('reauth');
    expect(c.words).toMatch(/access was removed/);
    expect(c.words).not.toMatch(/Testing/);
    expect(classifyTokenError({ ...revoked, error_description: 'Token has been revoked.' }).id).toBe('google.refresh.expired_or_revoked');
  });

  it('names the Testing-app cliff only with evidence: a rejection at about 7 days, or the admin said so', () => {
    expect(classifyTokenError({ ...revoked, refreshTokenIssuedAt: NOW - 7 * DAY - 3_600_000 }).id).toBe('google.refresh.testing_app');
    expect(classifyTokenError({ ...revoked, refreshTokenIssuedAt: NOW - 6 * DAY }).id).toBe('google.refresh.expired_or_revoked');
    expect(classifyTokenError({ ...revoked, refreshTokenIssuedAt: NOW - 9 * DAY }).id).toBe('google.refresh.expired_or_revoked');
    const marked = classifyTokenError({ ...revoked, refreshTokenIssuedAt: null, testingApp: true });
    expect(marked.id).toBe('google.refresh.testing_app');
    expect(marked.words).toMatch(/Publish the app/);
    expect(marked.action).toBe('reauth');
  });

  it('a JWT grant without delegation is not reauth: plain words and a slow retry', () => {
    const c = classifyTokenError({
      status: 401,
      error: 'unauthorized_client',
      error_description: 'Client is unauthorized to retrieve access tokens using this method, or client not authorized for any of the scopes requested.',
      provider: 'google',
      grant: 'jwt_bearer',
      clientId: '113456789012345678901',
      scopes: ['https://mail.google.com/'],
      subject: 'support@example.com',
    });
    expect(c.id).toBe('google.jwt.delegation_scope');
    expect(c.action).toBe('retry_slowly');
    expect(c.transient).toBe(true);
    expect(c.retryAfterMs).toBe(RETRY_SLOWLY_MS);
    expect(c.words).toMatch(/^Domain-wide delegation for client 113456789012345678901 is missing the scope https:\/\/mail\.google\.com\//);
    expect(c.words).toContain('add client ID 113456789012345678901 with https://mail.google.com/');
  });

  it('tells the other JWT refusals apart', () => {
    const jwt = (error: string, error_description: string | null) =>
      classifyTokenError({ status: 400, error, error_description, provider: 'google', grant: 'jwt_bearer', subject: 'ghost@example.com', clientId: '1', scopes: ['https://mail.google.com/'] });
    expect(jwt('unauthorized_client', 'Unauthorized client or scope in request.')).toMatchObject({ id: 'google.jwt.delegation_missing', action: 'retry_slowly' });
    expect(jwt('access_denied', 'Requested client not authorized.')).toMatchObject({ id: 'google.jwt.scope_denied', action: 'retry_slowly' });
    expect(jwt('admin_policy_enforced', null)).toMatchObject({ id: 'google.jwt.admin_policy', action: 'retry_slowly' });
    expect(jwt('invalid_grant', 'Invalid email or User ID')).toMatchObject({ id: 'google.jwt.unknown_user', action: 'fix_config', words: expect.stringMatching(/^ghost@example\.com is not a user/) });
    expect(jwt('invalid_grant', 'Not a valid email.')).toMatchObject({ id: 'google.jwt.unknown_user' });
    expect(jwt('invalid_grant', "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your 'iat' and 'exp' values")).toMatchObject({ id: 'google.jwt.clock', action: 'retry_slowly' });
    expect(jwt('invalid_grant', 'Invalid JWT Signature.')).toMatchObject({ id: 'google.jwt.signature', action: 'fix_config' });
    expect(jwt('disabled_client', 'The OAuth client was disabled.')).toMatchObject({ id: 'google.jwt.disabled_client', action: 'fix_config' });
    expect(jwt('invalid_grant', 'something new')).toMatchObject({ id: 'oauth.invalid_grant.jwt', action: 'fix_config' });
  });

  it("says plainly that Google's device flow refuses the Gmail scope", () => {
    const c = classifyTokenError({ status: 400, error: 'invalid_scope', error_description: 'Invalid device flow scope: https://mail.google.com/', provider: 'google', grant: 'device_code' });
    expect(c.id).toBe('google.device.scope');
    expect(c.words).toMatch(/without --device/);
  });
});

describe('classifyTokenError: generic and transport', () => {
  const base = { error_description: null, provider: 'custom' } as const;
  it('network failures, 5xx and 429 are retried', () => {
    expect(classifyTokenError({ ...base, status: null, error: null, grant: 'refresh_token' }).action).toBe('retry');
    expect(classifyTokenError({ ...base, status: 503, error: null, grant: 'refresh_token' }).action).toBe('retry');
    expect(classifyTokenError({ ...base, status: 429, error: null, grant: 'client_credentials' })).toMatchObject({ action: 'retry', id: 'http.429' });
    expect(classifyTokenError({ ...base, status: 503, error: 'temporarily_unavailable', grant: 'refresh_token' }).id).toBe('oauth.temporarily_unavailable');
  });

  it('RFC 6749 errors by grant', () => {
    expect(classifyTokenError({ ...base, status: 400, error: 'invalid_grant', grant: 'refresh_token' }).action).toBe('reauth');
    expect(classifyTokenError({ ...base, status: 400, error: 'invalid_grant', grant: 'client_credentials' }).action).toBe('fix_config');
    expect(classifyTokenError({ ...base, status: 401, error: 'invalid_client', grant: 'refresh_token' }).action).toBe('fix_config');
    expect(classifyTokenError({ ...base, status: 400, error: 'unauthorized_client', grant: 'jwt_bearer' }).action).toBe('retry_slowly');
    expect(classifyTokenError({ ...base, status: 400, error: 'slow_down', grant: 'device_code' }).action).toBe('retry');
    expect(classifyTokenError({ ...base, status: 400, error: 'expired_token', grant: 'device_code' }).action).toBe('reauth');
    expect(classifyTokenError({ ...base, status: 401, error: null, grant: 'refresh_token' }).action).toBe('fix_config');
  });

  it('an undocumented 4xx is neither hammered nor taken for a dead grant', () => {
    const c = classifyTokenError({ ...base, status: 400, error: 'weird_thing', error_description: 'who knows', grant: 'refresh_token' });
    expect(c).toMatchObject({ action: 'retry_slowly', id: 'unknown', detail: 'weird_thing: who knows' });
  });
});

describe('the table', () => {
  it('has unique ids, an action and an https source for every entry', () => {
    const ids = PROVIDER_ERROR_TABLE.map((e) => e.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const e of PROVIDER_ERROR_TABLE) {
      expect(e.source, e.id).toMatch(/^https:\/\/(learn\.microsoft\.com|developers\.google\.com|www\.rfc-editor\.org)\//);
      expect(['reauth', 'retry_slowly', 'retry', 'fix_config']).toContain(e.action);
      expect(e.words.length, e.id).toBeGreaterThan(20);
      if (e.provider === 'microsoft') expect(e.id.startsWith(`AADSTS${e.aadsts}`)).toBe(true);
    }
  });

  it('covers every code the issue names', () => {
    const ids = new Set(PROVIDER_ERROR_TABLE.map((e) => e.id));
    for (const n of [50173, 700082, 7000222, 70043, 50076, 50079, 65001, 53003, 50194, 700016, 7000215]) expect(ids.has(`AADSTS${n}`)).toBe(true);
    for (const id of ['google.refresh.expired_or_revoked', 'google.refresh.testing_app', 'google.jwt.delegation_scope']) expect(ids.has(id)).toBe(true);
  });

  it('is the table docs/providers.md shows: every entry, its action and its words', () => {
    const doc = readFileSync(join(import.meta.dirname, '../../../docs/providers.md'), 'utf8');
    const rows = new Map<string, string[]>();
    for (const line of doc.split('\n')) {
      const m = /^\| `([^`]+)` \|(.*)\|$/.exec(line);
      if (m) rows.set(m[1]!, m[2]!.split(' | ').map((c) => c.trim()));
    }
    for (const e of PROVIDER_ERROR_TABLE) {
      const row = rows.get(e.id);
      expect(row, `docs/providers.md has no row for ${e.id}`).toBeDefined();
      expect(row![1], e.id).toBe(e.action);
      expect(row![2]!.replace(/\\\|/g, '|'), e.id).toBe(e.words);
      expect(row![3], e.id).toContain(`(${e.source})`);
    }
  });
});
