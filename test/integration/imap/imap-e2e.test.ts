import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { FIXTURES, loadFixture, makeLargeMessage } from '../../fixtures/eml/index.js';
import { appendMessages, getHarness, listMessages, makeMessage, uniqueUser, verifySignature } from '../../harness/index.js';
import { authorizeThroughDaemon, e2eLifecycle, WEBHOOK_SECRET, writeE2EConfig } from './e2e-helpers.js';

const h = getHarness();
const CLIENT = 'e2e-imap';
const e2e = e2eLifecycle(CLIENT);

async function setup(opts: { mode?: 'idle' | 'poll' } = {}) {
  const user = uniqueUser('e2e');
  const sink = await e2e.sink();
  const cfg = await writeE2EConfig(h, { user, clientId: CLIENT, webhookUrl: sink.url, mode: opts.mode ?? 'idle' });
  const start = async () => {
    return e2e.daemon(cfg.path, cfg.port);
  };
  return { user, sink, cfg, start };
}

type Payload = Record<string, unknown> & { id: string; messageId: string | null; subject: string; attachments: { sha256: string; content?: string; contentOmitted?: boolean }[] };

describe('IMAP ingest end to end (daemon process, Dovecot, webhook sink)', () => {
  it('delivers every fixture as a signed message.received and marks it \\Seen only after the ack', async () => {
    const { user, sink, start } = await setup();
    const large = makeLargeMessage(5 * 1024 * 1024, '<large-e2e@example.com>');
    await appendMessages(h, user, [...FIXTURES.map(loadFixture), large.raw]);
    const d = await start();
    await authorizeThroughDaemon(d);
    const total = FIXTURES.length + 1;
    await sink.waitFor((s) => s.acknowledged.length >= total, 30_000);

    const received = sink.acknowledged.filter((r) => r.headers['x-mailgate-event'] === 'message.received');
    const failed = sink.acknowledged.filter((r) => r.headers['x-mailgate-event'] === 'message.failed');
    expect(received).toHaveLength(total - 1);
    expect(failed).toHaveLength(1); // not-a-message.eml
    for (const r of sink.acknowledged) {
      expect(verifySignature(WEBHOOK_SECRET, r.headers['x-mailgate-signature'] as string, r.raw)).toBe(true);
      expect(r.headers['x-mailgate-delivery']).toMatch(/^dlv_/);
    }
    const bySubject = new Map(received.map((r) => [(r.json as Payload).subject, r.json as Payload]));
    const utf8 = bySubject.get('プリンターが動きません 🔥');
    expect(utf8).toMatchObject({ account: 'support', mailbox: 'INBOX', uidl: null, messageId: '<utf8-2@example.jp>' });
    expect(typeof utf8?.uid).toBe('number');
    expect(typeof utf8?.uidValidity).toBe('number');
    const big = bySubject.get('Large attachment');
    expect(big?.attachments[0]?.sha256).toBe(createHash('sha256').update(large.attachment).digest('hex'));
    expect(Buffer.from(big?.attachments[0]?.content ?? '', 'base64').length).toBe(large.attachment.length);
    expect(bySubject.get('Out of office')?.autoSubmitted).toBe(true);
    expect((failed[0]?.json as { error: string; size: number }).error).toMatch(/does not start with a header field/);

    // The raw message is served as received.
    const raw = await fetch(`${d.url}/v1/messages/${utf8?.id}/raw`, { headers: { authorization: 'Bearer t0ken-e2e-0123456789abcdef' } });
    expect(Buffer.from(await raw.arrayBuffer()).equals(loadFixture('multipart-utf8'))).toBe(true);

    // afterDelivery: seen, applied after the acks.
    const deadline = Date.now() + 15_000;
    let msgs = await listMessages(h, user);
    while (msgs.some((m) => !m.flags.includes('\\Seen')) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      msgs = await listMessages(h, user);
    }
    expect(msgs).toHaveLength(total);
    expect(msgs.every((m) => m.flags.includes('\\Seen'))).toBe(true);
  });

  it('retries a failing webhook and leaves the message unseen until it acknowledged', async () => {
    const { user, sink, start } = await setup({ mode: 'poll' });
    let answered = 0;
    let release = false;
    sink.setBehaviour(() => {
      answered++;
      return { status: release ? 200 : 503 };
    });
    await appendMessages(h, user, [makeMessage(1, { subject: 'retry me' })]);
    const d = await start();
    await authorizeThroughDaemon(d);
    await sink.waitFor(() => answered >= 5, 20_000);
    const before = await listMessages(h, user);
    expect(before[0]?.flags).not.toContain('\\Seen');
    release = true;
    await sink.waitFor((s) => s.acknowledged.length === 1, 20_000);
    const ids = new Set(sink.requests.map((r) => (r.json as Payload).id));
    expect(ids.size).toBe(1); // every attempt carries the same message id
    const deadline = Date.now() + 10_000;
    let after = await listMessages(h, user);
    while (!after[0]?.flags.includes('\\Seen') && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      after = await listMessages(h, user);
    }
    expect(after[0]?.flags).toContain('\\Seen');
  });

  it('loses nothing when the daemon is killed with SIGKILL in the middle of 200 messages', async () => {
    const { user, sink, start } = await setup({ mode: 'poll' });
    sink.setBehaviour(() => ({ status: 200, delayMs: 5 }));
    const raws = Array.from({ length: 200 }, (_, i) => makeMessage(i, { messageId: `<kill-${i}@example.com>` }));
    await appendMessages(h, user, raws);
    const first = await start();
    await authorizeThroughDaemon(first);
    await sink.waitFor((s) => s.acknowledged.length >= 30, 30_000);
    await first.stop('SIGKILL');
    // A sync this large reports its progress.
    expect(first.output()).toMatch(/"mailbox":"INBOX","messages":200,"msg":"fetching new messages"/);
    const beforeRestart = sink.acknowledged.length;
    expect(beforeRestart).toBeLessThan(200);
    await start(); // same data dir: tokens and queue survive
    await sink.waitFor((s) => new Set(s.acknowledged.map((r) => (r.json as Payload).messageId)).size >= 200, 60_000);
    const byMessageId = new Map<string, Set<string>>();
    for (const r of sink.acknowledged) {
      const p = r.json as Payload;
      byMessageId.set(p.messageId ?? '', (byMessageId.get(p.messageId ?? '') ?? new Set()).add(p.id));
    }
    for (let i = 0; i < 200; i++) expect(byMessageId.get(`<kill-${i}@example.com>`)?.size).toBe(1);
  });

  it('picks up a message appended while connected in IDLE', async () => {
    const { user, sink, start } = await setup({ mode: 'idle' });
    const d = await start();
    await authorizeThroughDaemon(d);
    // wait until the connector is idle
    const deadline = Date.now() + 15_000;
    for (;;) {
      const r = await fetch(`${d.url}/v1/accounts`, { headers: { authorization: 'Bearer t0ken-e2e-0123456789abcdef' } });
      const body = (await r.json()) as { accounts: { incoming: { state: string } }[] };
      if (body.accounts[0]?.incoming.state === 'idle') break;
      if (Date.now() > deadline) throw new Error(`connector never idle: ${JSON.stringify(body)}`);
      await new Promise((res) => setTimeout(res, 50));
    }
    const t0 = Date.now();
    await appendMessages(h, user, [makeMessage(7, { subject: 'idle arrival' })]);
    await sink.waitFor((s) => s.acknowledged.length === 1, 10_000);
    const latency = (sink.acknowledged[0]?.receivedAt ?? 0) - t0;
    expect((sink.acknowledged[0]?.json as Payload).subject).toBe('idle arrival');
    expect(latency).toBeLessThan(10_000);
  });
});
