import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { makeLargeMessage } from '../../fixtures/eml/index.js';
import { appendMessages, getHarness, listMessages, makeMessage, uniqueUser } from '../../harness/index.js';
import { until } from '../../harness/until.js';
import { ADMIN, authorizeThroughDaemon, e2eLifecycle, writeE2EConfig } from './e2e-helpers.js';

/**
 * maxMessageSize (contract, "Size limits"): a larger message is never
 * downloaded whole, is reported once as message.failed with reason
 * too_large and what its headers say, stays on the server untouched, and
 * the messages around it flow as usual. Real Dovecot, IMAP and POP3.
 */

const h = getHarness();
const CLIENT = 'e2e-max-size';
const e2e = e2eLifecycle(CLIENT);
const MB = 1024 * 1024;

type Payload = { event?: string; id: string; subject?: string; reason?: string; size?: number; messageId?: string; from?: { address: string }; error?: string };

for (const protocol of ['imap', 'pop3'] as const) {
  describe(`maxMessageSize over ${protocol.toUpperCase()} (real Dovecot, real daemon)`, () => {
    it('reports an oversize message once from its headers, leaves it on the server, and delivers the mail around it', async () => {
      const user = uniqueUser(`max-${protocol}`);
      const sink = await e2e.sink();
      const big = makeLargeMessage(3 * MB, '<too-big@example.com>');
      await appendMessages(h, user, [
        makeMessage(1, { subject: 'before', messageId: '<before@example.com>' }),
        big.raw,
        makeMessage(2, { subject: 'after', messageId: '<after@example.com>' }),
      ]);
      const cfg = await writeE2EConfig(h, {
        user,
        clientId: CLIENT,
        webhookUrl: sink.url,
        protocol,
        // POP3's strongest afterDelivery: the oversize message must still not be deleted.
        afterDelivery: protocol === 'pop3' ? 'delete' : 'seen',
        extraIncoming: '      maxMessageSize: 1MB\n',
        ...(protocol === 'imap' ? { mode: 'poll' as const } : {}),
      });
      const d = await e2e.daemon(cfg.path, cfg.port);
      await authorizeThroughDaemon(d);
      await sink.waitFor((s) => s.acknowledged.length >= 3, 30_000);
      const byEvent = (e: string) => sink.acknowledged.filter((r) => r.headers['x-mailgate-event'] === e).map((r) => r.json as Payload);
      expect(byEvent('message.received').map((p) => p.subject).sort()).toEqual(['after', 'before']);
      const [failed] = byEvent('message.failed');
      expect(failed).toMatchObject({
        event: 'message.failed',
        reason: 'too_large',
        messageId: '<too-big@example.com>',
        subject: 'Large attachment',
        from: { address: 'big@example.com' },
      });
      expect(failed?.size).toBeGreaterThan(3 * MB);
      expect(failed?.error).toMatch(/more than maxMessageSize \(1 MB\); it was not downloaded and stays on the server/);

      // Later polls (1 s) announce nothing again, and the message is still on the server, untouched.
      await sleep(3_000);
      expect(sink.acknowledged).toHaveLength(3);
      await until(async () => (await listMessages(h, user)).length === (protocol === 'pop3' ? 1 : 3), 15_000, 'afterDelivery of the other two');
      const left = await listMessages(h, user);
      const still = left.find((m) => m.messageId === '<too-big@example.com>');
      expect(still).toBeDefined();
      expect(still?.flags).not.toContain('\\Seen');
      if (protocol === 'imap') expect(left.filter((m) => m.flags.includes('\\Seen'))).toHaveLength(2);
      // There is no raw message to serve: it was never downloaded.
      const raw = await fetch(`${d.url}/v1/messages/${failed?.id}/raw`, { headers: { authorization: `Bearer ${ADMIN}` } });
      expect(raw.status).toBe(404);
      expect(((await raw.json()) as { error: string }).error).toContain('was not downloaded');
    });
  });
}
