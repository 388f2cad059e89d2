import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../../../src/config/types.js';
import { loadConfig, formatIssue } from '../../../src/config/load.js';
import { createLogger } from '../../../src/log.js';
import { createMetrics } from '../../../src/metrics.js';
import { OAuthFlows } from '../../../src/oauth/flows.js';
import { TokenService } from '../../../src/oauth/token-service.js';
import { requestToken, TokenEndpointError } from '../../../src/oauth/token-client.js';
import { RefreshScheduler } from '../../../src/scheduler/refresh-scheduler.js';
import { SecretCipher } from '../../../src/secrets/cipher.js';
import { SqliteStore } from '../../../src/store/sqlite/sqlite-store.js';
import type { EventSink } from '../../../src/delivery/events.js';
import { OAuthAdmin, startOAuthServer, tmpDataDir } from '../../harness/index.js';
import { makeServiceAccountKey } from '../../harness/oauth-process.js';
import { writeFileSync } from 'node:fs';

// A private OAuth server: these tests inject faults and read global counters.
let oauth: Awaited<ReturnType<typeof startOAuthServer>>;
let admin: OAuthAdmin;
beforeAll(async () => {
  oauth = await startOAuthServer();
  admin = new OAuthAdmin(oauth.url);
  await admin.registerClient('mg', 'mg-secret');
  await admin.registerClient('mg-app', 'app-secret', 'appuser');
  await admin.registerClient('mg-public', null);
});
afterAll(async () => {
  await oauth.stop();
});

async function makeConfig(dir: string, accounts: string[], extra = ''): Promise<Config> {
  const path = join(dir, 'mailgate.yaml');
  writeFileSync(
    path,
    `server: { listen: "127.0.0.1:0", publicUrl: "http://127.0.0.1:9" }
dataDir: ./data
credentials:
  - { name: idp, provider: custom, clientId: mg, clientSecret: mg-secret, authorizationEndpoint: "${oauth.url}/authorize", tokenEndpoint: "${oauth.url}/token", scopes: [mail] }
  - { name: app, provider: custom, grant: client_credentials, clientId: mg-app, clientSecret: app-secret, tokenEndpoint: "${oauth.url}/token", scopes: [mail] }
  - { name: dev, provider: custom, clientId: mg-public, authorizationEndpoint: "${oauth.url}/authorize", tokenEndpoint: "${oauth.url}/token", deviceAuthorizationEndpoint: "${oauth.url}/device_authorization", scopes: [mail] }
accounts:
${accounts.map((a) => `  - { name: ${a}, email: ${a}@example.com, webhook: w, incoming: { protocol: imap, host: 127.0.0.1, auth: { method: xoauth2, credential: ${a.startsWith('app') ? 'app' : a.startsWith('dev') ? 'dev' : 'idp'} } } }`).join('\n')}
webhooks:
  - { name: w, url: "http://127.0.0.1:9/hook", secret: s }
${extra}`,
  );
  const r = await loadConfig(path, { env: {} });
  if (!r.ok) throw new Error(r.errors.map(formatIssue).join('\n'));
  return r.config;
}

function setup(config: Config) {
  const dataDir = tmpDataDir('mg-oauth-');
  const store = SqliteStore.open(dataDir, new SecretCipher(randomBytes(32)));
  let logText = '';
  const logger = createLogger({ level: 'debug', destination: new Writable({ write: (c: Buffer, _e, cb) => ((logText += c.toString()), cb()) }) });
  const events: { account: string; event: string; fields: Record<string, unknown> }[] = [];
  const sink: EventSink = {
    emit: async (account, event, fields) => {
      events.push({ account, event, fields });
      return 'evt';
    },
  };
  const metrics = createMetrics();
  const tokens = new TokenService({ store, config: () => config, logger, metrics, events: sink, sleep: async () => undefined });
  const flows = new OAuthFlows({ store, tokens, publicUrl: () => config.server.publicUrl });
  return { dataDir, store, tokens, flows, events, metrics, log: () => logText };
}

/** Browser-less consent: follow the provider redirect and hand the callback query to the flow. */
async function authorize(flows: OAuthFlows, account: string) {
  const { authorizationUrl } = await flows.startAuthorization(account);
  const r = await fetch(authorizationUrl, { redirect: 'manual' });
  const q = Object.fromEntries(new URL(r.headers.get('location') ?? '').searchParams);
  await flows.completeAuthorization(q);
  return { authorizationUrl, query: q };
}

describe('OAuth2 flows and the token service (real OAuth2 server process)', () => {
  it('authorizes with PKCE S256, rotates refresh tokens and never reuses an old one', async () => {
    const config = await makeConfig(tmpDataDir(), ['support']);
    const t = setup(config);
    const { authorizationUrl } = await authorize(t.flows, 'support');
    const u = new URL(authorizationUrl);
    expect(u.searchParams.get('code_challenge_method')).toBe('S256');
    expect(u.searchParams.get('redirect_uri')).toBe('http://127.0.0.1:9/oauth2/callback');
    expect(u.searchParams.get('login_hint')).toBe('support@example.com');
    const seen = new Set<string>();
    for (let i = 0; i < 20; i++) {
      const before = (await t.store.tokens.get('support'))?.refreshToken ?? '';
      seen.add(before);
      const tok = await t.tokens.refresh('support');
      expect(tok.token).toMatch(/^at_/);
      const after = (await t.store.tokens.get('support'))?.refreshToken ?? '';
      expect(after).not.toBe(before);
      expect(seen.has(after)).toBe(false);
    }
    const stats = await admin.stats();
    expect(stats.byGrant.refresh_token).toBeGreaterThanOrEqual(20);
    expect((await t.tokens.status('support')).state).toBe('ok');
  });

  it('refuses an unknown, replayed or expired state and a denied consent, storing nothing', async () => {
    const config = await makeConfig(tmpDataDir(), ['support']);
    const t = setup(config);
    await expect(t.flows.completeAuthorization({ state: 'forged', code: 'x' })).rejects.toThrow(/state is unknown/);
    const { query } = await authorize(t.flows, 'support');
    await t.store.tokens.delete('support');
    await expect(t.flows.completeAuthorization(query)).rejects.toThrow(/already used/);
    const { state } = await t.flows.startAuthorization('support');
    await expect(t.flows.completeAuthorization({ state, error: 'access_denied', error_description: 'no' })).rejects.toThrow(/access_denied/);
    expect(await t.store.tokens.get('support')).toBeNull();
    const late = new OAuthFlows({ store: t.store, tokens: t.tokens, publicUrl: () => 'http://x', now: () => Date.now() + 11 * 60_000 });
    const s2 = await t.flows.startAuthorization('support');
    await expect(late.completeAuthorization({ state: s2.state, code: 'c' })).rejects.toThrow(/expired/);
  });

  it('marks an account reauth_required on invalid_grant, emits the event, and other accounts keep refreshing', async () => {
    const config = await makeConfig(tmpDataDir(), ['alpha', 'beta']);
    const t = setup(config);
    await authorize(t.flows, 'alpha');
    await authorize(t.flows, 'beta');
    await admin.revoke('alpha@example.com');
    await expect(t.tokens.refresh('alpha')).rejects.toMatchObject({ code: 'OAUTH_REAUTH_REQUIRED' });
    expect(t.events).toEqual([
      {
        account: 'alpha',
        event: 'account.reauth_required',
        fields: {
          error: expect.stringMatching(/^invalid_grant: AADSTS70008/),
          // The provider error table's words, and the admin UI page that starts the re-consent.
          explanation: 'The refresh token has expired or was revoked. Authorize the account again.',
          authorizeUrl: 'http://127.0.0.1:9/admin/accounts/alpha/authorize',
        },
      },
    ]);
    expect((await t.tokens.status('alpha')).state).toBe('reauth_required');
    const before = (await admin.stats()).tokenRequests;
    await expect(t.tokens.getAccessToken('alpha')).rejects.toMatchObject({ code: 'OAUTH_REAUTH_REQUIRED' });
    expect((await admin.stats()).tokenRequests).toBe(before); // the dead token is not sent again
    expect((await t.tokens.refresh('beta')).token).toMatch(/^at_/);
    expect(await t.metrics.registry.getSingleMetricAsString('mailgate_account_reauth_required')).toContain('account="alpha"} 1');
    await authorize(t.flows, 'alpha'); // authorizing again clears it
    expect((await t.tokens.status('alpha')).state).toBe('ok');
  });

  it('shares one refresh between 50 concurrent callers', async () => {
    const config = await makeConfig(tmpDataDir(), ['busy']);
    const t = setup(config);
    await authorize(t.flows, 'busy');
    const current = await t.store.tokens.get('busy');
    await t.store.tokens.save({ ...current!, accessExpiresAt: Date.now() - 1 }, Date.now()); // force expiry
    await admin.configure({ tokenDelayMs: 200 });
    const before = (await admin.stats()).byGrant.refresh_token ?? 0;
    try {
      const tokens = await Promise.all(Array.from({ length: 50 }, () => t.tokens.getAccessToken('busy')));
      expect(new Set(tokens.map((x) => x.token)).size).toBe(1);
    } finally {
      await admin.configure({ tokenDelayMs: 0 });
    }
    expect(((await admin.stats()).byGrant.refresh_token ?? 0) - before).toBe(1);
  });

  it('retries transient failures (503 with Retry-After) and then succeeds', async () => {
    const config = await makeConfig(tmpDataDir(), ['flaky']);
    const t = setup(config);
    await authorize(t.flows, 'flaky');
    await admin.faults(2, 503, 1);
    expect((await t.tokens.refresh('flaky')).token).toMatch(/^at_/);
    await admin.faults(3, 500);
    await expect(t.tokens.refresh('flaky')).rejects.toMatchObject({ code: 'OAUTH_TRANSIENT' });
    expect((await t.tokens.status('flaky')).state).not.toBe('reauth_required');
  });

  it('gets app-only tokens with client_credentials on demand', async () => {
    const config = await makeConfig(tmpDataDir(), ['app1']);
    const t = setup(config);
    const tok = await t.tokens.getAccessToken('app1');
    expect(tok.token).toMatch(/^at_/);
    const intro = await fetch(`${oauth.url}/introspect`, { method: 'POST', body: new URLSearchParams({ token: tok.token }) });
    expect(await intro.json()).toMatchObject({ active: true, username: 'appuser' });
    await expect(t.flows.startAuthorization('app1')).rejects.toMatchObject({ code: 'CONFLICT' });
  });

  it('runs the device grant through authorization_pending and slow_down', async () => {
    const config = await makeConfig(tmpDataDir(), ['dev1']);
    const t = setup(config);
    await admin.configure({ deviceInterval: 1 });
    let polls = 0;
    let userCode = '';
    const clock = { now: Date.now() };
    const flows = new OAuthFlows({ store: t.store, tokens: t.tokens, publicUrl: () => 'http://x' });
    await flows.deviceAuthorization(
      'dev1',
      (info) => {
        userCode = info.userCode;
      },
      {
        // Polls: 1 pending, 2 immediately again (too fast → slow_down), 3 after approval → tokens.
        sleep: async (ms) => {
          polls++;
          clock.now += ms;
          if (polls === 1) return;
          if (polls === 2) return; // no wait at all: the server answers slow_down
          // From here on wait what the client asks: after slow_down it is 1 s + 5 s.
          expect(ms).toBe(6_000);
          if (polls === 3) await admin.approveDevice(userCode, 'dev1@example.com');
          await new Promise((r) => setTimeout(r, ms + 100));
        },
      },
    );
    expect(polls).toBe(3);
    expect((await t.tokens.status('dev1')).state).toBe('ok');
  });

  it('refreshes due tokens from the scheduler with bounded concurrency', async () => {
    const names = Array.from({ length: 12 }, (_, i) => `s${i}`);
    const config = await makeConfig(tmpDataDir(), names, 'tokens: { refreshBefore: 10m, refreshConcurrency: 3 }\n');
    const t = setup(config);
    for (const n of names) await authorize(t.flows, n);
    // tokens live 1h: nothing due yet
    const sched = new RefreshScheduler({ store: t.store, tokens: t.tokens, config: () => config, logger: createLogger({ level: 'silent' }), random: () => 0 });
    expect((await sched.tick()).due).toBe(0);
    await admin.resetStats();
    await admin.configure({ tokenDelayMs: 50 });
    try {
      const r = await sched.tick(Date.now() + 55 * 60_000);
      expect(r).toEqual({ due: 12, refreshed: 12, failed: 0 });
    } finally {
      await admin.configure({ tokenDelayMs: 0 });
    }
    const stats = await admin.stats();
    expect(stats.byGrant.refresh_token).toBe(12);
    expect(stats.peakInFlight).toBeLessThanOrEqual(3);
  });

  it('keeps every secret and token out of the SQLite file and the log', async () => {
    const config = await makeConfig(tmpDataDir(), ['secretive']);
    const t = setup(config);
    await t.store.credentials.upsert({ name: 'db-cred', provider: 'custom', clientId: 'x', clientSecret: 'DB-CLIENT-SECRET-XYZ', settings: {} }, Date.now());
    await authorize(t.flows, 'secretive');
    await t.tokens.refresh('secretive');
    const rec = await t.store.tokens.get('secretive');
    t.store.db.pragma('wal_checkpoint(TRUNCATE)');
    const bytes = Buffer.concat([readFileSync(join(t.dataDir, 'mailgate.db'))]);
    const log = t.log();
    for (const secret of [rec!.accessToken!, rec!.refreshToken!, 'DB-CLIENT-SECRET-XYZ', 'mg-secret']) {
      expect(bytes.includes(Buffer.from(secret))).toBe(false);
      expect(log.includes(secret)).toBe(false);
    }
    expect(log).toContain('access token refreshed');
  });
});

describe('issue 17 grants in the token service (real OAuth2 server process)', () => {
  const GMAIL = 'https://mail.google.com/';

  async function saConfig(dir: string, delegated: boolean, extra = '') {
    const made = makeServiceAccountKey({ tokenUri: `${oauth.url}/token` });
    await admin.registerServiceAccount({ clientEmail: made.fields.client_email, clientId: made.fields.client_id, publicKeyPem: made.publicKeyPem, delegation: delegated });
    writeFileSync(join(dir, 'sa.json'), made.json);
    const path = join(dir, 'sa.yaml');
    writeFileSync(
      path,
      `server: { listen: "127.0.0.1:0", publicUrl: "http://127.0.0.1:9" }
dataDir: ./data
credentials:
  - { name: gsa, provider: google, grant: service_account, serviceAccountKeyFile: ./sa.json }
accounts:
  - { name: box, email: box@example.com, webhook: w, incoming: { protocol: imap, host: 127.0.0.1, auth: { method: xoauth2, credential: gsa } } }
webhooks:
  - { name: w, url: "http://127.0.0.1:9/hook", secret: s }
${extra}`,
    );
    const r = await loadConfig(path, { env: {} });
    if (!r.ok) throw new Error(r.errors.map(formatIssue).join('\n'));
    return { config: r.config, made, path };
  }

  it('a missing delegation is explained in plain words and retried slowly, never reauth_required; a login after the fix is account.recovered', async () => {
    const dir = tmpDataDir();
    const { config, made, path } = await saConfig(dir, false);
    let current = config;
    const dataDir = tmpDataDir('mg-oauth-');
    const store = SqliteStore.open(dataDir, new SecretCipher(randomBytes(32)));
    const events: { account: string; event: string; fields: Record<string, unknown> }[] = [];
    const tokens = new TokenService({
      store, config: () => current, logger: createLogger({ level: 'silent' }), metrics: createMetrics(), sleep: async () => undefined,
      events: { emit: async (account, event, fields) => (events.push({ account, event, fields }), 'evt') },
    });
    const err = await tokens.getAccessToken('box').then(() => null, (e: unknown) => e as { code: string; message: string; failure: string; retryAfterMs: number });
    expect(err).toMatchObject({ code: 'OAUTH_TRANSIENT', failure: 'throttled' });
    expect(err!.message).toContain(`is not authorized for domain-wide delegation`);
    expect(err!.message).toContain(`add client ID ${made.fields.client_id} with ${GMAIL}`);
    expect(err!.retryAfterMs).toBeGreaterThan(14 * 60_000);
    const before = (await admin.stats()).byGrant['urn:ietf:params:oauth:grant-type:jwt-bearer'] ?? 0;
    // Held: callers in the next 15 minutes get the same answer without a request.
    await expect(tokens.getAccessToken('box')).rejects.toMatchObject({ code: 'OAUTH_TRANSIENT' });
    expect((await admin.stats()).byGrant['urn:ietf:params:oauth:grant-type:jwt-bearer'] ?? 0).toBe(before);
    const status = await tokens.status('box');
    expect(status.state).not.toBe('reauth_required');
    expect(status.explanation).toMatch(/^The service account \(client \d+\) is not authorized for domain-wide delegation/);
    expect(status.consecutiveFailures).toBe(1);
    expect(status.retryAt).not.toBeNull();
    expect(events).toEqual([]);
    await tokens.reportLogin('box', { ok: false, error: 'cannot log in' });

    // The admin adds the delegation and reloads mailgate (a new config): the next call asks again.
    await admin.setDelegation(made.fields.client_email, [GMAIL]);
    const reloaded = await loadConfig(path, { env: {} });
    if (!reloaded.ok) throw new Error('reload failed');
    current = reloaded.config;
    expect((await tokens.getAccessToken('box')).token).toMatch(/^at_/);
    expect((await tokens.status('box')).consecutiveFailures).toBe(0);
    await tokens.reportLogin('box', { ok: true });
    expect(events).toEqual([{ account: 'box', event: 'account.recovered', fields: expect.objectContaining({ previousState: 'failing', failures: 2 }) }]);
    // Once recovered, a later login is nothing new.
    await tokens.reportLogin('box', { ok: true });
    expect(events).toHaveLength(1);
  });

  it('service-account tokens are renewed ahead of expiry by the scheduler, with a new assertion each time', async () => {
    const dir = tmpDataDir();
    const { config, made } = await saConfig(dir, true);
    const t = setup(config);
    const first = await t.tokens.getAccessToken('box');
    const rec = await t.store.tokens.get('box');
    expect(rec).toMatchObject({ refreshToken: null, state: 'ok' });
    const sched = new RefreshScheduler({ store: t.store, tokens: t.tokens, config: () => config, logger: createLogger({ level: 'silent' }), random: () => 0 });
    expect((await sched.tick()).due).toBe(0);
    const r = await sched.tick(Date.now() + 55 * 60_000);
    expect(r).toEqual({ due: 1, refreshed: 1, failed: 0 });
    expect((await t.store.tokens.get('box'))?.accessToken).not.toBe(first.token);
    const mine = (await admin.stats()).assertions.filter((a) => a.iss === made.fields.client_email);
    expect(mine.length).toBe(2);
    expect(mine.every((a) => a.sub === 'box@example.com' && a.scope === GMAIL)).toBe(true);
  });

  it('re-authorizing an account that was reauth_required announces account.recovered at its next login', async () => {
    const config = await makeConfig(tmpDataDir(), ['gamma']);
    const t = setup(config);
    await authorize(t.flows, 'gamma');
    await admin.revoke('gamma@example.com');
    await expect(t.tokens.refresh('gamma')).rejects.toMatchObject({ code: 'OAUTH_REAUTH_REQUIRED' });
    await authorize(t.flows, 'gamma');
    await t.tokens.reportLogin('gamma', { ok: true });
    expect(t.events.map((e) => e.event)).toEqual(['account.reauth_required', 'account.recovered']);
    expect(t.events[1]!.fields).toMatchObject({ previousState: 'reauth_required', lastError: expect.stringMatching(/^invalid_grant/) });
  });

  it('an expired client secret keeps the refresh token and says what to do; it is not a dead grant', async () => {
    await admin.registerApp('mg-expiring', { secret: 'old-secret', secretExpiresAt: new Date(Date.now() + 1_000) });
    const dir = tmpDataDir();
    const path = join(dir, 'exp.yaml');
    writeFileSync(path, `server: { listen: "127.0.0.1:0", publicUrl: "http://127.0.0.1:9" }
dataDir: ./data
credentials:
  - { name: ms, provider: microsoft, tenant: contoso.onmicrosoft.com, clientId: mg-expiring, clientSecret: old-secret, authorizationEndpoint: "${oauth.url}/authorize", tokenEndpoint: "${oauth.url}/token" }
accounts:
  - { name: delta, email: delta@example.com, webhook: w, incoming: { protocol: imap, host: 127.0.0.1, auth: { method: xoauth2, credential: ms } } }
webhooks:
  - { name: w, url: "http://127.0.0.1:9/hook", secret: s }
`);
    const r = await loadConfig(path, { env: {} });
    if (!r.ok) throw new Error(r.errors.map(formatIssue).join('\n'));
    const t = setup(r.config);
    await authorize(t.flows, 'delta');
    const refresh = (await t.store.tokens.get('delta'))!.refreshToken;
    await new Promise((res) => setTimeout(res, 1_100));
    await expect(t.tokens.refresh('delta')).rejects.toMatchObject({ code: 'OAUTH_GRANT_REJECTED', message: expect.stringContaining('The client secret has expired') });
    const rec = await t.store.tokens.get('delta');
    expect(rec).toMatchObject({ state: 'ok', refreshToken: refresh });
    expect(rec!.lastError).toMatch(/^The client secret has expired.*AADSTS7000222/);
    expect(t.events).toEqual([]);
  });

  it('authorize --device with a Google credential says plainly that Google does not allow the mail scope', async () => {
    const dir = tmpDataDir();
    const path = join(dir, 'g.yaml');
    writeFileSync(path, `server: { listen: "127.0.0.1:0", publicUrl: "http://127.0.0.1:9" }
dataDir: ./data
credentials:
  - { name: g, provider: google, clientId: google-client, clientSecret: x, deviceAuthorizationEndpoint: "${oauth.url}/device_authorization" }
accounts:
  - { name: eps, email: eps@example.com, webhook: w, incoming: { protocol: imap, host: 127.0.0.1, auth: { method: xoauth2, credential: g } } }
webhooks:
  - { name: w, url: "http://127.0.0.1:9/hook", secret: s }
`);
    const r = await loadConfig(path, { env: {} });
    if (!r.ok) throw new Error(r.errors.map(formatIssue).join('\n'));
    const t = setup(r.config);
    await admin.resetStats();
    await expect(t.flows.deviceAuthorization('eps', () => undefined)).rejects.toMatchObject({
      code: 'CONFLICT',
      message: expect.stringMatching(/^Google's device flow does not allow the Gmail scope https:\/\/mail\.google\.com\/\. Authorize in a browser instead/),
    });
    expect((await admin.stats()).tokenRequests).toBe(0);
  });
});

describe('the one token client (simple-oauth2 for code, refresh and client credentials)', () => {
  it("keeps the endpoint's Retry-After and words readable from its errors, for every grant it sends", async () => {
    const config = await makeConfig(tmpDataDir(), ['rho', 'app9']);
    const t = setup(config);
    await authorize(t.flows, 'rho');
    const refresh = (await t.store.tokens.get('rho'))!.refreshToken!;
    const idp = await t.tokens.resolveCredential('idp');
    const app = await t.tokens.resolveCredential('app');
    await admin.faults(1, 503, 7);
    await expect(requestToken(idp, { grant: 'refresh_token', refreshToken: refresh })).rejects.toMatchObject({ code: 'OAUTH_TRANSIENT', failure: 'throttled', retryAfterMs: 7_000, httpStatus: 503 });
    await admin.faults(1, 429, 3, { error: 'temporarily_unavailable', error_description: 'slow down please' });
    await expect(requestToken(app, { grant: 'client_credentials' })).rejects.toMatchObject({ code: 'OAUTH_TRANSIENT', retryAfterMs: 3_000, description: 'slow down please' });
    await admin.faults(1, 400, undefined, { error: 'invalid_grant', error_description: 'AADSTS700082: The refresh token has expired due to inactivity.' });
    const dead = await requestToken(idp, { grant: 'refresh_token', refreshToken: refresh }).catch((e: unknown) => e as TokenEndpointError);
    expect(dead).toBeInstanceOf(TokenEndpointError);
    expect(dead).toMatchObject({ code: 'OAUTH_GRANT_REJECTED', classification: { id: 'AADSTS700082', action: 'reauth' } });
    // A bad code is refused through the same path.
    await expect(requestToken(idp, { grant: 'authorization_code', code: 'nope', redirectUri: 'http://127.0.0.1:9/oauth2/callback', codeVerifier: 'x'.repeat(43) })).rejects.toMatchObject({ code: 'OAUTH_GRANT_REJECTED', oauthError: 'invalid_grant' });
    // And the unfaulted refresh still works with the same refresh token.
    expect((await requestToken(idp, { grant: 'refresh_token', refreshToken: refresh })).accessToken).toMatch(/^at_/);
  });
});
