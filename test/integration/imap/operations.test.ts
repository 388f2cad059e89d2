import { readFileSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { appendMessages, getHarness, listMessages, makeMessage, uniqueUser } from '../../harness/index.js';
import { ADMIN, authorizeThroughDaemon, e2eLifecycle, writeE2EConfig } from './e2e-helpers.js';
import { until } from '../../harness/until.js';

const h = getHarness();
const CLIENT = 'e2e-ops';
const e2e = e2eLifecycle(CLIENT);

const sink = () => e2e.sink();

/** A second account block (own user, webhook) appended to a config written by writeE2EConfig. */
function secondAccount(user: string, webhookUrl: string): { account: string; webhook: string } {
  return {
    account: `  - name: second
    email: ${user}@example.com
    incoming:
      protocol: imap
      host: 127.0.0.1
      port: ${h.imapPort}
      tls: false
      user: ${user}
      auth: { method: xoauth2, credential: test-idp }
      mode: poll
      pollInterval: 1s
    webhook: second-hook
`,
    webhook: `  - name: second-hook
    url: ${webhookUrl}
    secret: s2
    backoff: { initial: 100ms, max: 1s }
    timeout: 10s
`,
  };
}

function withSecond(yaml: string, second: { account: string; webhook: string }): string {
  return yaml.replace('webhooks:\n', `${second.account}webhooks:\n${second.webhook}`);
}

describe('IMAP operations (daemon process, Dovecot, webhook sinks)', () => {
  it('afterDelivery: move puts acknowledged messages into moveTo; delete expunges them', async () => {
    for (const mode of ['move', 'delete'] as const) {
      const user = uniqueUser(`ops-${mode}`);
      const s = await sink();
      const cfg = await writeE2EConfig(h, {
        user,
        clientId: CLIENT,
        webhookUrl: s.url,
        mode: 'poll',
        afterDelivery: mode,
        extraIncoming: mode === 'move' ? '      moveTo: Processed\n' : '',
      });
      await appendMessages(h, user, [1, 2, 3].map((i) => makeMessage(i, { messageId: `<${mode}-${i}@example.com>` })));
      const d = await e2e.daemon(cfg.path, cfg.port);
      await authorizeThroughDaemon(d);
      await s.waitFor((x) => x.acknowledged.length >= 3, 20_000);
      await until(async () => (await listMessages(h, user)).length === 0, 15_000, `INBOX to be emptied by ${mode}`);
      if (mode === 'move') {
        const moved = await listMessages(h, user, 'Processed');
        expect(moved.map((m) => m.messageId).sort()).toEqual(['<move-1@example.com>', '<move-2@example.com>', '<move-3@example.com>']);
      }
    }
  });

  it('a slow webhook for one account does not hold up another account', async () => {
    const slow = await sink();
    slow.setBehaviour({ status: 200, delayMs: 4_000 });
    const fast = await sink();
    const userA = uniqueUser('ops-slow');
    const userB = uniqueUser('ops-fast');
    const cfg = await writeE2EConfig(h, { user: userA, clientId: CLIENT, webhookUrl: slow.url, mode: 'poll', concurrency: 2 });
    writeFileSync(cfg.path, withSecond(readFileSync(cfg.path, 'utf8'), secondAccount(userB, fast.url)));
    await appendMessages(h, userA, Array.from({ length: 10 }, (_, i) => makeMessage(i, { subject: `slow ${i}` })));
    await appendMessages(h, userB, Array.from({ length: 10 }, (_, i) => makeMessage(i, { subject: `fast ${i}` })));
    const d = await e2e.daemon(cfg.path, cfg.port);
    await authorizeThroughDaemon(d, 'support');
    await authorizeThroughDaemon(d, 'second');
    await fast.waitFor((x) => x.acknowledged.length >= 10, 15_000);
    // The slow webhook takes 4 s a message, two at a time: 20 s for its ten; the fast account never waited for it.
    expect(slow.acknowledged.length).toBeLessThan(10);
  }, 60_000);

  it('reload starts an added account and stops a removed one without restarting the others', async () => {
    const s = await sink();
    const s2 = await sink();
    const userA = uniqueUser('ops-keep');
    const userB = uniqueUser('ops-added');
    const cfg = await writeE2EConfig(h, { user: userA, clientId: CLIENT, webhookUrl: s.url, mode: 'idle' });
    const original = readFileSync(cfg.path, 'utf8');
    const d = await e2e.daemon(cfg.path, cfg.port);
    await authorizeThroughDaemon(d);
    const logins = () => (readFileSync(h.dovecotLog, 'utf8').match(new RegExp(`imap-login: Info: Login: user=<${userA}>, method=XOAUTH2`, 'g')) ?? []).length;
    await until(() => logins() >= 1, 10_000, 'the first account to log in');
    const loginsBefore = logins();

    const reload = async () => {
      const r = await fetch(`${d.url}/v1/reload`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN}` } });
      expect(r.status).toBe(200);
    };
    const accountNames = async () => {
      const r = await fetch(`${d.url}/v1/accounts`, { headers: { authorization: `Bearer ${ADMIN}` } });
      return ((await r.json()) as { accounts: { name: string; incoming: { state: string } }[] }).accounts;
    };

    writeFileSync(cfg.path, withSecond(original, secondAccount(userB, s2.url)));
    await reload();
    await authorizeThroughDaemon(d, 'second');
    await appendMessages(h, userB, [makeMessage(1, { subject: 'to the added account' })]);
    await s2.waitFor((x) => x.acknowledged.length >= 1, 15_000);
    expect((await accountNames()).map((a) => a.name)).toEqual(['support', 'second']);

    writeFileSync(cfg.path, original);
    await reload();
    expect((await accountNames()).map((a) => a.name)).toEqual(['support']);
    await appendMessages(h, userB, [makeMessage(2, { subject: 'after removal' })]);
    await appendMessages(h, userA, [makeMessage(3, { subject: 'still served' })]);
    await s.waitFor((x) => x.acknowledged.length >= 1, 15_000);
    await sleep(2_500); // two poll intervals of the removed account
    expect(s2.acknowledged).toHaveLength(1);
    // The unchanged account kept its IMAP session through both reloads.
    expect(logins()).toBe(loginsBefore);
  }, 60_000);
});
