import { describe, expect, it } from 'vitest';
import { hostileCorpus } from '../../fixtures/hostile/corpus.js';
import type { HostileCase } from '../../fixtures/hostile/types.js';
import { getHarness, makeMessage, saveMessages, uniqueUser } from '../../harness/index.js';
import { authorizeThroughDaemon, e2eLifecycle, writeE2EConfig } from './e2e-helpers.js';

/**
 * Hostile mail end to end: real Dovecot (IMAP and POP3) → the real daemon →
 * a real webhook receiver. Every case ends as message.received or
 * message.failed, normal mail before and after each still arrives, the
 * daemon stays up and /healthz answers within a second throughout.
 */

const h = getHarness();
const CLIENT = 'e2e-hostile';
const e2e = e2eLifecycle(CLIENT);

const PICKED = [
  'line-endings/eml-plain-cr-only',
  'line-endings/eml-attachment-cr-cr-lf',
  'nesting/rfc822-inline-header-only',
  'degenerate/binary-garbage-0',
  'boundaries/inner-unclosed-outer-continues',
  'headers/long-line',
  'headers/many-fields',
  'transfer-encoding/base64-invalid-chars',
  'charset/utf-7-text-script',
  'charset/iso-2022-jp-bogus-escapes',
  'parts/digest-1500',
  'html/td-flood-unclosed',
  'large-body/ctrl-0x01-text',
  'nul/text-body',
];

/** At their real size: a thread must take them while the daemon goes on answering. */
const PICKED_FULL = ['html/br-flood'];

function cases(): HostileCase[] {
  const light = new Map(hostileCorpus({ scale: 'test' }).map((c) => [c.name, c]));
  const full = new Map(hostileCorpus({ scale: 'full' }).filter((c) => PICKED_FULL.includes(c.name)).map((c) => [c.name, c]));
  return [...PICKED.map((name) => light.get(name)), ...PICKED_FULL.map((name) => full.get(name))].map((c, i) => {
    if (!c) throw new Error(`no hostile case ${[...PICKED, ...PICKED_FULL][i]}`);
    return c;
  });
}

/** Polls /healthz every 100 ms while `during` runs; returns the slowest answer in ms. */
async function watchHealth(url: string, during: Promise<unknown>): Promise<number> {
  let slowest = 0;
  let done = false;
  void during.finally(() => (done = true));
  while (!done) {
    const t = performance.now();
    const r = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(5_000) });
    expect(r.status).toBe(200);
    slowest = Math.max(slowest, performance.now() - t);
    await new Promise((res) => setTimeout(res, 100));
  }
  await during;
  return slowest;
}

for (const protocol of ['imap', 'pop3'] as const) {
  describe(`hostile mail over ${protocol.toUpperCase()} (real Dovecot, real daemon, real receiver)`, () => {
    it('ends every case as message.received or message.failed, keeps the normal mail around them flowing, and keeps answering', async () => {
      const user = uniqueUser(`hostile-${protocol}`);
      const sink = await e2e.sink();
      const picked = cases();
      // normal, hostile, normal, hostile, … normal: each hostile case sits between two normal messages.
      const raws: Buffer[] = [Buffer.from(makeMessage(0, { messageId: '<normal-0@example.com>', subject: 'normal 0' }))];
      picked.forEach((c, i) => {
        raws.push(c.build());
        raws.push(Buffer.from(makeMessage(i + 1, { messageId: `<normal-${i + 1}@example.com>`, subject: `normal ${i + 1}` })));
      });
      await saveMessages(h, user, raws);
      const cfg = await writeE2EConfig(h, { user, clientId: CLIENT, webhookUrl: sink.url, protocol, ...(protocol === 'imap' ? { mode: 'poll' as const } : {}) });
      const d = await e2e.daemon(cfg.path, cfg.port);
      await authorizeThroughDaemon(d);

      const slowest = await watchHealth(d.url, sink.waitFor((s) => s.acknowledged.length >= raws.length, 90_000));
      expect(slowest).toBeLessThan(1_000);
      expect(d.child.exitCode).toBeNull();

      const events = sink.acknowledged.map((r) => ({ event: r.headers['x-mailgate-event'], json: r.json as { subject?: string; reason?: string; id: string } }));
      expect(events).toHaveLength(raws.length);
      expect(new Set(events.map((e) => e.json.id)).size).toBe(raws.length);
      for (const e of events) expect(['message.received', 'message.failed']).toContain(e.event);
      const normal = events.filter((e) => e.event === 'message.received' && /^normal \d+$/.test(e.json.subject ?? ''));
      expect(normal.map((e) => e.json.subject).sort()).toEqual(Array.from({ length: picked.length + 1 }, (_, i) => `normal ${i}`).sort());
      for (const e of events.filter((x) => x.event === 'message.failed')) expect(['malformed', 'too_large']).toContain(e.json.reason);
      // Each case as its corpus expects it, when it is definite.
      const hostileEvents = events.filter((e) => !/^normal \d+$/.test(e.json.subject ?? ''));
      expect(hostileEvents).toHaveLength(picked.length);
      const failedExpected = picked.filter((c) => c.expect === 'failed').length;
      const receivedExpected = picked.filter((c) => c.expect === 'received').length;
      expect(hostileEvents.filter((e) => e.event === 'message.failed').length).toBeGreaterThanOrEqual(failedExpected);
      expect(hostileEvents.filter((e) => e.event === 'message.received').length).toBeGreaterThanOrEqual(receivedExpected);
    }, 150_000);
  });
}
