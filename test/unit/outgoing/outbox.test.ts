import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { classifySmtpError } from '../../../src/outgoing/smtp.js';
import { MAX_MESSAGE_BYTES, parseSendRequest } from '../../../src/outgoing/send-request.js';
import { SecretCipher } from '../../../src/secrets/cipher.js';
import { SqliteStore } from '../../../src/store/sqlite/sqlite-store.js';

function open(): SqliteStore {
  return SqliteStore.open(':memory:', new SecretCipher(randomBytes(32)));
}

const item = (id: string, over: { account?: string; key?: string | null; now?: number } = {}) => ({
  id,
  account: over.account ?? 'support',
  idempotencyKey: over.key ?? null,
  requestJson: JSON.stringify({ id }),
  messageId: `<${id}@example.com>`,
  now: over.now ?? 1_000,
});

describe('outbox repository', () => {
  it('an idempotency key returns the first row and adds none', async () => {
    const s = open();
    const a = await s.outbox.enqueue(item('out_a', { key: 'k1' }));
    const b = await s.outbox.enqueue(item('out_b', { key: 'k1' }));
    expect(a.created).toBe(true);
    expect(b).toMatchObject({ created: false, record: { id: 'out_a' } });
    expect(await s.outbox.get('out_b')).toBeNull();
    // The same key on another account is another message.
    expect((await s.outbox.enqueue(item('out_c', { key: 'k1', account: 'other' }))).created).toBe(true);
  });

  it('claims due rows once, skipping busy accounts, and records attempts', async () => {
    const s = open();
    await s.outbox.enqueue(item('out_1'));
    await s.outbox.enqueue(item('out_2', { account: 'busy' }));
    await s.outbox.enqueue(item('out_3', { now: 5_000 }));
    const busy = { perAccount: 1, inFlight: new Map([['busy', 1]]) };
    const first = await s.outbox.claimDue(2_000, 10, busy);
    expect(first.map((r) => [r.id, r.status, r.attempts])).toEqual([['out_1', 'sending', 1]]);
    expect(await s.outbox.claimDue(2_000, 10, busy)).toEqual([]);
    await s.outbox.markRetry('out_1', '421 try later', 3_000, 2_000);
    expect(await s.outbox.nextDueAt()).toBe(1_000); // out_2 (busy account) is still due
    const again = await s.outbox.claimDue(6_000, 10);
    expect(again.map((r) => r.id).sort()).toEqual(['out_1', 'out_2', 'out_3']);
    expect(again.find((r) => r.id === 'out_1')?.attempts).toBe(2);
  });

  it('gives no account more than its free send slots, in due order', async () => {
    const s = open();
    for (let i = 0; i < 10; i++) await s.outbox.enqueue(item(`out_a${i}`, { account: 'a', now: 1_000 + i }));
    for (let i = 0; i < 3; i++) await s.outbox.enqueue(item(`out_b${i}`, { account: 'b', now: 1_100 + i }));
    // 'a' has 5 of its 6 slots in use: it gets one more; 'b' gets its three.
    const claimed = await s.outbox.claimDue(2_000, 32, { perAccount: 6, inFlight: new Map([['a', 5]]) });
    expect(claimed.map((r) => r.id)).toEqual(['out_a0', 'out_b0', 'out_b1', 'out_b2']);
    const next = await s.outbox.claimDue(2_000, 32, { perAccount: 6, inFlight: new Map([['a', 6], ['b', 3]]) });
    expect(next).toEqual([]);
    expect((await s.outbox.claimDue(2_000, 2)).map((r) => r.id)).toEqual(['out_a1', 'out_a2']); // no room given: limit only
  });

  it('rows left sending by a stopped daemon become failed (uncertain) and can be requeued by hand', async () => {
    const s = open();
    await s.outbox.enqueue(item('out_1'));
    await s.outbox.enqueue(item('out_2'));
    await s.outbox.claimDue(2_000, 1);
    expect(await s.outbox.failInterrupted('uncertain', 3_000)).toEqual(['out_1']);
    expect(await s.outbox.get('out_1')).toMatchObject({ status: 'failed', lastError: 'uncertain' });
    expect(await s.outbox.get('out_2')).toMatchObject({ status: 'queued' });
    expect(await s.outbox.requeue('out_2', 4_000)).toBe(false);
    expect(await s.outbox.requeue('out_1', 4_000)).toBe(true);
    expect(await s.outbox.counts()).toEqual({ queued: 2, sending: 0, sent: 0, failed: 0 });
  });
});

describe('send request validation', () => {
  it('normalises addresses, references and defaults', () => {
    const r = parseSendRequest({ to: 'Ann <ann@example.net>', text: 'hi', inReplyTo: 'x@y.z', references: '<a@b.c>' });
    expect(r).toMatchObject({ to: ['Ann <ann@example.net>'], cc: [], bcc: [], inReplyTo: '<x@y.z>', references: ['<a@b.c>'], force: false, subject: '' });
  });

  it('names the field of every kind of bad input', () => {
    const bad = (body: unknown) => {
      try {
        parseSendRequest(body);
      } catch (err) {
        return (err as Error).message;
      }
      return 'accepted';
    };
    expect(bad(null)).toMatch(/^body: /);
    expect(bad({ text: 'x' })).toMatch(/^to: at least one recipient/);
    expect(bad({ to: 'a@b.c', text: 'x', cc: ['ok@b.c', 'nope'] })).toMatch(/^cc\[1\]: not an email address/);
    expect(bad({ to: 'a@b.c', text: 'x', inReplyTo: 'no id' })).toMatch(/^inReplyTo: not a Message-ID/);
    expect(bad({ to: 'a@b.c', text: 'x', headers: { 'X-A': 'v\nBcc: x@y.z' } })).toMatch(/^headers\.X-A: must not contain line breaks/);
    expect(bad({ to: 'a@b.c', text: 'x', attachments: [{ filename: '../etc/passwd', content: '' }] })).toMatch(/attachments\[0\]\.filename: must be a plain file name/);
    const big = Buffer.alloc(MAX_MESSAGE_BYTES + 10).toString('base64');
    expect(bad({ to: 'a@b.c', text: 'x', attachments: [{ filename: 'a', content: big }] })).toMatch(/^attachments: the message is 25\.0 MB; the limit is 25 MB/);
  });
});

describe('SMTP failure classification', () => {
  it('reads nodemailer errors: login, 5xx, 4xx and connection trouble', () => {
    expect(classifySmtpError({ code: 'EAUTH', responseCode: 535, message: 'Invalid login: 535 5.7.8 bad' }).kind).toBe('auth');
    expect(classifySmtpError({ code: 'EENVELOPE', responseCode: 550, message: "Can't send mail", response: '550 5.1.1 no such user' })).toEqual({
      kind: 'permanent',
      message: "Can't send mail: 550 5.1.1 no such user",
    });
    expect(classifySmtpError({ code: 'EENVELOPE', responseCode: 421, message: '421 4.7.0 Try again later' }).kind).toBe('transient');
    expect(classifySmtpError({ code: 'ECONNECTION', message: 'connect ECONNREFUSED' }).kind).toBe('transient');
  });
});
