import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { SecretCipher } from '../../../src/secrets/cipher.js';
import { deliveryIdForMessage, messageIdFor, type ImapOrigin } from '../../../src/store/origin.js';
import { SqliteStore } from '../../../src/store/sqlite/sqlite-store.js';
import type { NewMessage } from '../../../src/store/messages.js';

function open(): SqliteStore {
  return SqliteStore.open(':memory:', new SecretCipher(randomBytes(32)));
}

function imap(uid: number, over: Partial<Omit<NewMessage, 'origin'>> & Partial<Omit<ImapOrigin, 'kind'>> = {}): NewMessage {
  const { mailbox = 'INBOX', uidValidity = 7, ...rest } = over;
  return {
    account: 'support',
    origin: { kind: 'imap', mailbox, uid, uidValidity },
    raw: Buffer.from(`Message-ID: <m${uid}@x>\r\n\r\nbody ${uid}\r\n`),
    internalDate: null,
    messageId: `<m${uid}@x>`,
    autoSubmitted: false,
    webhook: 'pipeline',
    ...rest,
  };
}

const ok = (now: number) => ({ attempts: 1, status: 200, error: null, responseExcerpt: null, now });

describe('retention', () => {
  it('drops only raw bodies of fully handled messages, delivered deliveries and finished outbox rows older than the cutoff', async () => {
    const store = open();
    const [done, due, failed, pending, fresh] = await store.ingest.insertMessages([imap(1), imap(2), imap(3), imap(4), imap(5)], 1_000);
    const dlv = (m: { id: string } | undefined) => deliveryIdForMessage(m?.id ?? '');
    await store.deliveries.markDelivered(dlv(done), ok(2_000), 'none');
    await store.deliveries.markDelivered(dlv(due), ok(2_000), 'due'); // afterDelivery not applied yet
    await store.deliveries.markFailed(dlv(failed), { attempts: 15, status: 500, error: 'HTTP 500', responseExcerpt: null, now: 2_000 });
    await store.ingest.insertMessages([imap(6)], 9_000);
    await store.deliveries.markDelivered(dlv(fresh), ok(2_000), 'none');
    void pending;

    expect(await store.messages.pruneRaw(5_000)).toBe(2); // msg 1 and msg 5 (received at 1000, handled)
    expect(await store.messages.getRaw(done?.id ?? '')).toBeNull();
    expect(await store.messages.get(done?.id ?? '')).not.toBeNull(); // the row stays for dedupe and the loop guard
    for (const kept of [due, failed, pending]) expect(await store.messages.getRaw(kept?.id ?? '')).not.toBeNull();
    expect(await store.deliveries.pruneDelivered(5_000)).toBe(3);
    expect(await store.deliveries.countByStatus()).toEqual({ pending: 2, delivered: 0, failed: 1 });

    for (const [id, status] of [['out_s', 'sent'], ['out_f', 'failed'], ['out_q', 'queued']] as const) {
      await store.outbox.enqueue({ id, account: 'support', idempotencyKey: id, requestJson: '{}', messageId: `<${id}@x>`, now: 1_000 });
      if (status === 'sent') await store.outbox.markSent(id, 1_000);
      if (status === 'failed') await store.outbox.markFailed(id, 'x', 1_000);
    }
    expect(await store.outbox.prune(5_000)).toBe(2);
    expect(await store.outbox.counts()).toEqual({ queued: 1, sending: 0, sent: 0, failed: 0 });
  });
});

describe('ingest repository', () => {
  it('stores message, delivery and cursor together, and recognises a re-fetch', async () => {
    const store = open();
    const first = await store.ingest.insertMessages([imap(1), imap(2)], 1000);
    expect(first.map((r) => r.duplicate)).toEqual([false, false]);
    expect(await store.ingest.getCursor('support', 'INBOX')).toEqual({ uidValidity: 7, lastUid: 2 });
    const again = await store.ingest.insertMessages([imap(2)], 2000);
    expect(again).toEqual([{ id: first[1]?.id, duplicate: true }]);
    expect(await store.deliveries.countByStatus()).toEqual({ pending: 2, delivered: 0, failed: 0 });
    const d = await store.deliveries.get(deliveryIdForMessage(first[0]!.id));
    expect(d).toMatchObject({ event: 'message.received', status: 'pending', messageRef: first[0]!.id, webhook: 'pipeline' });
  });

  it('derives the same id from the same origin only', () => {
    expect(messageIdFor(imap(1))).toBe(messageIdFor(imap(1)));
    expect(messageIdFor(imap(1))).not.toBe(messageIdFor(imap(1, { uidValidity: 8 })));
    expect(messageIdFor({ account: 'support', origin: { kind: 'pop3', uidl: 'abc' } })).toMatch(/^msg_[0-9a-f]{32}$/);
  });

  it('never announces a message twice after a UIDVALIDITY change', async () => {
    const store = open();
    const [orig] = await store.ingest.insertMessages([imap(1)], Date.now());
    await store.ingest.resetCursor('support', 'INBOX', 99, Date.now());
    expect(await store.ingest.getCursor('support', 'INBOX')).toEqual({ uidValidity: 99, lastUid: 0 });
    const [same, fresh] = await store.ingest.insertMessages([
      imap(5, { uidValidity: 99, raw: imap(1).raw, messageId: '<m1@x>' }),
      imap(6, { uidValidity: 99 }),
    ], Date.now());
    expect(same).toEqual({ id: orig?.id, duplicate: true });
    expect(fresh?.duplicate).toBe(false);
    expect(await store.ingest.getCursor('support', 'INBOX')).toEqual({ uidValidity: 99, lastUid: 6 });
    expect((await store.deliveries.countByStatus()).pending).toBe(2);
  });

  it('makes afterDelivery due only once the webhook acknowledged', async () => {
    const store = open();
    const [a, b] = await store.ingest.insertMessages([imap(1), imap(2)], Date.now());
    expect(await store.ingest.dueAcks('support', 10, Date.now())).toEqual([]);
    await store.deliveries.markDelivered(deliveryIdForMessage(a!.id), ok(5), 'due');
    await store.deliveries.markDelivered(deliveryIdForMessage(b!.id), ok(5), 'none');
    const due = await store.ingest.dueAcks('support', 10, Date.now());
    expect(due).toEqual([{ id: a!.id, origin: { kind: 'imap', mailbox: 'INBOX', uid: 1, uidValidity: 7 } }]);
    await store.ingest.markAcks([a!.id], 'due', 'server down', Date.now() + 60_000);
    expect(await store.ingest.dueAcks('support', 10, Date.now())).toEqual([]);
    expect(await store.ingest.dueAcks('support', 10, Date.now() + 61_000)).toHaveLength(1);
    await store.ingest.markAcks([a!.id], 'done', null, null);
    expect(await store.ingest.dueAcks('support', 10, Date.now() + 61_000)).toEqual([]);
  });

  it('tracks POP3 UIDLs and forgets only vanished, fully handled ones', async () => {
    const store = open();
    const pop = (uidl: string): NewMessage => ({ ...imap(0), origin: { kind: 'pop3', uidl }, messageId: null });
    const [x, y] = await store.ingest.insertMessages([pop('u1'), pop('u2')], Date.now());
    expect(await store.ingest.knownUidls('support', ['u1', 'u2', 'u3'])).toEqual(new Set(['u1', 'u2']));
    await store.deliveries.markDelivered(deliveryIdForMessage(x!.id), ok(1), 'none');
    // u1 handled and gone: forgotten; u2 gone but not delivered yet: kept.
    expect(await store.ingest.forgetUidlsExcept('support', [])).toBe(1);
    expect(await store.ingest.knownUidls('support', ['u1', 'u2'])).toEqual(new Set(['u2']));
    expect(y?.duplicate).toBe(false);
  });
});

describe('delivery repository', () => {
  it('claims due deliveries oldest first, skipping in-flight ones', async () => {
    const store = open();
    await store.ingest.insertMessages([imap(1)], 100);
    await store.ingest.insertMessages([imap(2)], 200);
    const all = await store.deliveries.claimDue('pipeline', 1000, 10, new Set());
    expect(all.map((d) => d.messageRef)).toEqual([messageIdFor(imap(1)), messageIdFor(imap(2))]);
    const rest = await store.deliveries.claimDue('pipeline', 1000, 10, new Set([all[0]!.id]));
    expect(rest.map((d) => d.id)).toEqual([all[1]!.id]);
    expect(await store.deliveries.claimDue('other', 1000, 10, new Set())).toEqual([]);
    expect(await store.deliveries.claimDue('pipeline', 50, 10, new Set())).toEqual([]);
  });

  it('parks failures and replays them with a fresh budget', async () => {
    const store = open();
    const [m] = await store.ingest.insertMessages([imap(1)], 100);
    const id = deliveryIdForMessage(m!.id);
    await store.deliveries.markRetry(id, { attempts: 1, status: 500, error: 'HTTP 500', responseExcerpt: 'oops', now: 200 }, 5000);
    expect(await store.deliveries.nextDueAt()).toBe(5000);
    await store.deliveries.markFailed(id, { attempts: 2, status: 404, error: 'HTTP 404', responseExcerpt: null, now: 300 });
    expect((await store.deliveries.list({ status: 'failed' })).map((d) => d.id)).toEqual([id]);
    expect(await store.deliveries.retry(id, 400)).toBe(true);
    expect(await store.deliveries.get(id)).toMatchObject({ status: 'pending', attempts: 0, nextAttemptAt: 400, lastError: 'HTTP 404' });
    await store.deliveries.markDelivered(id, ok(500), 'due');
    expect(await store.deliveries.retry(id, 600)).toBe(false);
  });

  it('queues account events with the contract envelope', async () => {
    const store = open();
    const id = await store.deliveries.enqueueEvent('support', 'pipeline', 'account.reauth_required', { error: 'invalid_grant: expired' }, Date.now());
    const d = await store.deliveries.get(id);
    expect(JSON.parse(d!.payloadJson!)).toEqual({ event: 'account.reauth_required', id, account: 'support', error: 'invalid_grant: expired' });
  });
});
