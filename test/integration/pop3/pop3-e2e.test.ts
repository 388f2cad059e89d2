import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { FIXTURES, loadFixture } from '../../fixtures/eml/index.js';
import type { WebhookSink } from '../../harness/index.js';
import { appendMessages, getHarness, listMessages, makeMessage, oauthAdmin, uniqueUser, verifySignature } from '../../harness/index.js';
import type { Daemon } from '../daemon/run-daemon.js';
import { ADMIN, authorizeThroughDaemon, e2eLifecycle, WEBHOOK_SECRET, writeE2EConfig } from '../imap/e2e-helpers.js';

const h = getHarness();
const admin = oauthAdmin(h);
const CLIENT = 'e2e-pop3';
const e2e = e2eLifecycle(CLIENT);

async function setup(afterDelivery: 'delete' | 'none', pollInterval?: string) {
  const user = uniqueUser('pop');
  const sink = await e2e.sink();
  const cfg = await writeE2EConfig(h, { user, clientId: CLIENT, webhookUrl: sink.url, protocol: 'pop3', afterDelivery, ...(pollInterval ? { pollInterval } : {}) });
  const start = async () => {
    return e2e.daemon(cfg.path, cfg.port);
  };
  return { user, sink, start };
}

type Payload = { id: string; messageId: string | null; subject: string; uid: number | null; uidl: string | null; mailbox: string };
const payloads = (s: WebhookSink) => s.acknowledged.map((r) => r.json as Payload);

async function accountState(d: Daemon) {
  const r = await fetch(`${d.url}/v1/accounts`, { headers: { authorization: `Bearer ${ADMIN}` } });
  const { accounts } = (await r.json()) as { accounts: { incoming: { state: string; lastError: string | null }; token: { state: string } }[] };
  return accounts[0];
}

async function waitUntil(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

describe('POP3 ingest end to end (daemon process, Dovecot POP3 with XOAUTH2, webhook sink)', () => {
  it('delivers every fixture once, signed, and a later poll announces nothing twice (afterDelivery: none keeps mail)', async () => {
    const { user, sink, start } = await setup('none');
    await appendMessages(h, user, FIXTURES.map(loadFixture));
    const d = await start();
    await authorizeThroughDaemon(d);
    await sink.waitFor((s) => s.acknowledged.length >= FIXTURES.length, 30_000);
    for (const r of sink.acknowledged) {
      expect(verifySignature(WEBHOOK_SECRET, r.headers['x-mailgate-signature'] as string, r.raw)).toBe(true);
    }
    const received = payloads(sink).filter((p) => p.subject !== undefined);
    const utf8 = received.find((p) => p.messageId === '<utf8-2@example.jp>');
    expect(utf8).toMatchObject({ mailbox: 'INBOX', uid: null, subject: 'プリンターが動きません 🔥' });
    expect(utf8?.uidl).toMatch(/^[0-9a-f]{16}$/);
    // pollInterval is 1 s: three more polls must add nothing.
    await sleep(3_500);
    expect(sink.acknowledged).toHaveLength(FIXTURES.length);
    expect(new Set(payloads(sink).map((p) => p.id)).size).toBe(FIXTURES.length);
    expect(await listMessages(h, user)).toHaveLength(FIXTURES.length);
    // Healthy: between polls it is idle, polling or (every few seconds) connecting again.
    const state = await accountState(d);
    expect(state?.incoming.state).toMatch(/idle|polling|connecting/);
    expect(state?.incoming.lastError).toBeNull();
  });

  it('afterDelivery: delete leaves every message on the server through a webhook outage and deletes only acknowledged ones', async () => {
    const { user, sink, start } = await setup('delete');
    sink.setBehaviour({ status: 503 });
    const raws = Array.from({ length: 20 }, (_, i) => makeMessage(i, { messageId: `<pop-del-${i}@example.com>` }));
    await appendMessages(h, user, raws);
    const d = await start();
    await authorizeThroughDaemon(d);
    await sink.waitFor((s) => s.requests.length >= 20, 20_000);
    await sleep(2_500); // several polls while the webhook is down
    expect(sink.acknowledged).toHaveLength(0);
    expect(await listMessages(h, user)).toHaveLength(20);

    sink.setBehaviour({ status: 200 });
    await sink.waitFor((s) => new Set(payloads(s).map((p) => p.messageId)).size >= 20, 30_000);
    await waitUntil(async () => (await listMessages(h, user)).length === 0, 20_000, 'the maildrop to be empty');
    expect(new Set(payloads(sink).map((p) => p.messageId)).size).toBe(20);
  });

  it('acks trickling in do not make it log in more than once per 5 s', async () => {
    const { user, sink, start } = await setup('delete', '30s');
    sink.setBehaviour({ status: 200, delayMs: 150 });
    await appendMessages(h, user, Array.from({ length: 40 }, (_, i) => makeMessage(i, { messageId: `<pop-gap-${i}@example.com>` })));
    const d = await start();
    await authorizeThroughDaemon(d);
    const logins = () => (readFileSync(h.dovecotLog, 'utf8').match(new RegExp(`pop3-login: Info: Login: user=<${user}>, method=XOAUTH2`, 'g')) ?? []).length;
    await waitUntil(async () => logins() >= 1, 10_000, 'the first POP3 login');
    const first = Date.now();
    await waitUntil(async () => (await listMessages(h, user)).length === 0, 30_000, 'every acknowledged message to be deleted');
    const elapsed = Date.now() - first;
    // The acks of 40 messages (150 ms each, 8 at a time) arrive over ~1 s, after the first session.
    expect(logins()).toBeLessThanOrEqual(1 + Math.ceil(elapsed / 5_000));
    expect(elapsed).toBeGreaterThanOrEqual(4_000);
    expect(sink.acknowledged).toHaveLength(40);
  }, 60_000);

  it('a kill -9 between RETR and DELE loses nothing; after restart every message is delivered and then deleted', async () => {
    const { user, sink, start } = await setup('delete');
    sink.setBehaviour({ status: 200, delayMs: 20 });
    const raws = Array.from({ length: 100 }, (_, i) => makeMessage(i, { messageId: `<pop-kill-${i}@example.com>` }));
    await appendMessages(h, user, raws);
    const first = await start();
    await authorizeThroughDaemon(first);
    await sink.waitFor((s) => s.acknowledged.length >= 10, 30_000);
    await first.stop('SIGKILL');
    expect(sink.acknowledged.length).toBeLessThan(100);
    expect((await listMessages(h, user)).length).toBeGreaterThan(0);
    await start();
    await sink.waitFor((s) => new Set(payloads(s).map((p) => p.messageId)).size >= 100, 60_000);
    await waitUntil(async () => (await listMessages(h, user)).length === 0, 30_000, 'the maildrop to be empty');
    const ids = new Map<string, Set<string>>();
    for (const p of payloads(sink)) ids.set(p.messageId ?? '', (ids.get(p.messageId ?? '') ?? new Set()).add(p.id));
    expect(ids.size).toBe(100);
    // A redelivery after the crash carries the same mailgate id.
    for (const set of ids.values()) expect(set.size).toBe(1);
  });

  it('a refused token is refreshed once; a rejected refresh token gives reauth_required and mail stays', async () => {
    const { user, sink, start } = await setup('delete');
    await appendMessages(h, user, [makeMessage(1, { messageId: '<pop-reauth@example.com>' })]);
    const d = await start();
    await authorizeThroughDaemon(d);
    await sink.waitFor((s) => s.acknowledged.length >= 1, 20_000);
    await waitUntil(async () => (await listMessages(h, user)).length === 0, 20_000, 'the first message to be deleted');

    // Only the access token dies: the next poll refreshes once and goes on.
    await admin.revokeAccess(user);
    await appendMessages(h, user, [makeMessage(2, { messageId: '<pop-reauth-2@example.com>' })]);
    await sink.waitFor((s) => s.acknowledged.length >= 2, 20_000);
    await waitUntil(async () => (await listMessages(h, user)).length === 0, 20_000, 'the second message to be deleted');

    // Now the refresh token dies too.
    await admin.revoke(user);
    await admin.revokeAccess(user);
    await appendMessages(h, user, [makeMessage(3, { messageId: '<pop-reauth-3@example.com>' })]);
    await waitUntil(async () => (await accountState(d))?.token.state === 'reauth_required', 20_000, 'reauth_required');
    const state = await accountState(d);
    expect(state?.incoming.state).toBe('error');
    expect(state?.incoming.lastError).toMatch(/authoriz/i);
    const events = sink.acknowledged.map((r) => r.headers['x-mailgate-event']);
    expect(events.filter((e) => e === 'message.received')).toHaveLength(2);
    await sink.waitFor((s) => s.acknowledged.some((r) => r.headers['x-mailgate-event'] === 'account.reauth_required'), 10_000);
    expect(await listMessages(h, user)).toHaveLength(1);
  });
});
