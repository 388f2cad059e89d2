import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { appendMessages, listMessages, makeMessage, oauthAdmin } from '../../harness/index.js';
import { until } from '../../harness/until.js';
import { accountView, authorize, expectNothingLost, expectRecovers, faultLifecycle, received, waitDelivered, waitHealthy, type Rig } from './fault-rig.js';

/*
 * The OAuth2 token endpoint behind a fault proxy (a custom credential whose
 * tokenEndpoint is the proxy). A POP3 account (pollInterval 1s) logs in on
 * every poll, so revoking its access token makes the next login refused and
 * the token service refresh: that refresh meets the fault. The test OAuth2
 * server rotates refresh tokens strictly (the old one dies when used).
 */
const life = faultLifecycle('faults-token');
const h = life.h;
const admin = oauthAdmin(h);

async function start(): Promise<Rig> {
  const rig = await life.rig({ protocol: 'pop3' });
  await authorize(rig);
  await waitHealthy(rig);
  return rig;
}

/** Kills the access token (not the refresh token) and puts a message in: the next poll must refresh. */
async function forceRefresh(rig: Rig, messageId: string): Promise<string | null> {
  const before = (await accountView(rig)).token.lastRefreshAt;
  await admin.revokeAccess(rig.user);
  await appendMessages(h, rig.user, [makeMessage(1, { messageId })]);
  return before;
}

describe('token endpoint faults (daemon process, OAuth2 server behind a fault proxy)', () => {
  it('a refresh request cut mid-body is retried; the login and the mail go through', async () => {
    const rig = await start();
    rig.proxies.token.inject({ kind: 'cut', after: { direction: 'toServer', pattern: '\r\n\r\n', bytes: 20 } }, 'once');
    const messageId = '<tok-cut@example.com>';
    const before = await forceRefresh(rig, messageId);
    await rig.proxies.token.waitForFired('cut', 15_000);
    await waitDelivered(rig.sink, [messageId]);
    const view = await waitHealthy(rig);
    expect(view.token.lastRefreshAt).not.toBe(before);
    expect(view.token.lastError).toBeNull();
    // The cut request, then the retry that succeeded.
    expect(rig.proxies.token.stats.accepted).toBeGreaterThanOrEqual(2);
    expectNothingLost(rig.sink, [messageId]);
    expect(rig.watcher.violations(rig.sink)).toEqual([]);
    await expectRecovers(rig, 'token cut');
  });

  it('resets of every refresh for a while: the account backs off visibly, keeps the mail, and recovers when the endpoint is back', async () => {
    const rig = await start();
    rig.proxies.token.inject({ kind: 'reset', after: { direction: 'toServer', pattern: 'POST /token' } }, 'all');
    const messageId = '<tok-reset@example.com>';
    await forceRefresh(rig, messageId);
    // TRANSIENT_TRIES (3) resets within one refresh, then the connector backs off and tries again.
    await rig.proxies.token.waitForFired('reset', 20_000, 4);
    await until(async () => (await accountView(rig)).incoming.state === 'backoff', 10_000, 'the backoff state');
    expect((await accountView(rig)).incoming.lastError).toMatch(/token endpoint/);
    expect(received(rig.sink)).toHaveLength(0);
    expect((await listMessages(h, rig.user)).map((m) => m.messageId)).toEqual([messageId]);

    await rig.proxies.token.clear();
    await waitDelivered(rig.sink, [messageId], 30_000);
    const view = await waitHealthy(rig, 30_000);
    expect(view.token.state).toBe('ok');
    expectNothingLost(rig.sink, [messageId]);
    expect(rig.watcher.violations(rig.sink)).toEqual([]);
    await expectRecovers(rig, 'token resets');
  }, 90_000);

  it('a token answer lost after the server rotated the refresh token: reauth_required, mail kept, fine after re-authorizing', async () => {
    const rig = await start();
    // The server has answered 200 with a new refresh token (and dropped the old one); mailgate never reads it.
    rig.proxies.token.inject({ kind: 'cut', after: { direction: 'toClient', pattern: 'HTTP/1.1 200' } }, 'once');
    const messageId = '<tok-lost-rotation@example.com>';
    await forceRefresh(rig, messageId);
    await rig.proxies.token.waitForFired('cut', 15_000);
    await until(async () => (await accountView(rig)).token.state === 'reauth_required', 20_000, 'reauth_required');
    const view = await accountView(rig);
    expect(view.token.lastError).toMatch(/invalid_grant/);
    await rig.sink.waitFor((s) => s.acknowledged.some((r) => r.headers['x-mailgate-event'] === 'account.reauth_required'), 10_000);
    await sleep(1_500);
    expect(received(rig.sink)).toHaveLength(0);
    expect((await listMessages(h, rig.user)).map((m) => m.messageId)).toEqual([messageId]);

    // The admin authorizes again; no restart.
    await authorize(rig);
    await waitDelivered(rig.sink, [messageId], 45_000);
    await waitHealthy(rig);
    expectNothingLost(rig.sink, [messageId]);
    expect(rig.watcher.violations(rig.sink)).toEqual([]);
    await expectRecovers(rig, 'lost rotation');
  }, 90_000);
});
