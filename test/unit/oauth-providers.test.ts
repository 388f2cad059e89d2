import { describe, expect, it } from 'vitest';
import type { CredentialConfig } from '../../src/config/types.js';
import { resolveCredential } from '../../src/oauth/providers.js';
import { cliffWarning, GOOGLE_TESTING_CLIFF_MS, MICROSOFT_IDLE_CLIFF_MS } from '../../src/oauth/token-service.js';
import { isDue } from '../../src/oauth/token-timing.js';

const base: CredentialConfig = {
  name: 'c', provider: 'google', clientId: 'id', clientSecret: 's', authorizationEndpoint: undefined, tokenEndpoint: undefined,
  deviceAuthorizationEndpoint: undefined, scopes: undefined, tenant: 'common', grant: 'authorization_code',
};

describe('provider presets', () => {
  it('Google asks for offline access with forced consent', () => {
    const g = resolveCredential(base);
    expect(g.authorizationEndpoint).toBe('https://accounts.google.com/o/oauth2/auth');
    expect(g.tokenEndpoint).toBe('https://oauth2.googleapis.com/token');
    expect(g.scopes).toEqual(['https://mail.google.com/']);
    expect(g.authorizationParams).toEqual({ access_type: 'offline', prompt: 'consent' });
  });
  it('Microsoft uses the tenant, mail scopes and offline_access; app-only uses .default', () => {
    const m = resolveCredential({ ...base, provider: 'microsoft', tenant: 'contoso.onmicrosoft.com' });
    expect(m.tokenEndpoint).toBe('https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token');
    expect(m.scopes).toEqual([
      'https://outlook.office.com/IMAP.AccessAsUser.All',
      'https://outlook.office.com/POP.AccessAsUser.All',
      'https://outlook.office.com/SMTP.Send',
      'offline_access',
    ]);
    expect(resolveCredential({ ...base, provider: 'microsoft', grant: 'client_credentials' }).scopes).toEqual(['https://outlook.office365.com/.default']);
    const gcc = resolveCredential({ ...base, provider: 'microsoft-gcc-high', grant: 'client_credentials' });
    expect(gcc.tokenEndpoint).toBe('https://login.microsoftonline.us/common/oauth2/v2.0/token');
    expect(gcc.scopes).toEqual(['https://outlook.office365.us/.default']);
    // GCC High delegated scopes name Exchange Online's GCC High host, not the outlook.office.us the old preset derived.
    const gccUser = resolveCredential({ ...base, provider: 'microsoft-gcc-high', tenant: 'contoso.us' });
    expect(gccUser.authorizationEndpoint).toBe('https://login.microsoftonline.us/contoso.us/oauth2/v2.0/authorize');
    expect(gccUser.scopes).toEqual([
      'https://outlook.office365.us/IMAP.AccessAsUser.All',
      'https://outlook.office365.us/POP.AccessAsUser.All',
      'https://outlook.office365.us/SMTP.Send',
      'offline_access',
    ]);
  });
  it('custom takes what the config says', () => {
    const c = resolveCredential({ ...base, provider: 'custom', tokenEndpoint: 'https://idp/t', authorizationEndpoint: 'https://idp/a', scopes: ['mail'] });
    expect([c.tokenEndpoint, c.authorizationEndpoint, c.scopes, c.authorizationParams]).toEqual(['https://idp/t', 'https://idp/a', ['mail'], {}]);
  });
});

describe('refresh timing and cliffs', () => {
  const now = 1_000_000_000_000;
  it('is due within refreshBefore, or past half of a short lifetime', () => {
    const tok = (expiresIn: number, lifetime: number) => ({ state: 'ok', refreshToken: 'r', accessExpiresAt: now + expiresIn, lastRefreshAt: now + expiresIn - lifetime });
    expect(isDue(tok(5 * 60_000, 3_600_000), 10 * 60_000, now)).toBe(true);
    expect(isDue(tok(20 * 60_000, 3_600_000), 10 * 60_000, now)).toBe(false);
    expect(isDue(tok(4 * 60_000, 10 * 60_000), 10 * 60_000, now)).toBe(true);
    expect(isDue(tok(6 * 60_000, 10 * 60_000), 10 * 60_000, now)).toBe(false);
    expect(isDue({ ...tok(0, 1), state: 'reauth_required' }, 10 * 60_000, now)).toBe(false);
  });
  it('warns before the Google testing and Microsoft idle cliffs', () => {
    // Google never rotates refresh tokens: age alone is no evidence (the old false warning from day 6).
    expect(cliffWarning('google', now - GOOGLE_TESTING_CLIFF_MS * 0.9, now, now)).toBeNull();
    expect(cliffWarning('google', now - 30 * 86_400_000, now, now, { testingApp: false })).toBeNull();
    // The admin marked the app as in Testing: then the consent date is the cliff.
    expect(cliffWarning('google', now - GOOGLE_TESTING_CLIFF_MS * 0.9, now, now, { testingApp: true })).toMatch(/Google expires it 7 days after consent/);
    expect(cliffWarning('google', now - GOOGLE_TESTING_CLIFF_MS * 0.5, now, now, { testingApp: true })).toBeNull();
    expect(cliffWarning('microsoft', now, now - MICROSOFT_IDLE_CLIFF_MS * 0.85, now)).toMatch(/unused for 77 days/);
    expect(cliffWarning('microsoft', now, now - 86_400_000, now)).toBeNull();
  });
});
