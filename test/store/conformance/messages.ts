import { describe, expect, it } from 'vitest';
import {
  ACCOUNT,
  BINARY_TAIL,
  failure,
  imapMessage,
  ingestDelivered,
  ingestOne,
  outboxItem,
  pop3Message,
  rawMessage,
  type StoreFactory,
  useStore,
} from './harness.js';

/** MessageRepo reads and retention, and the afterDelivery queue (dueAcks / markAcks). */
export function defineMessageConformance(factory: StoreFactory): void {
  const ctx = useStore(factory);

  describe('messages', () => {
    it('get, getRaw and getWithRaw answer null for an unknown id', async () => {
      expect(await ctx.store.messages.get('msg_nope')).toBeNull();
      expect(await ctx.store.messages.getRaw('msg_nope')).toBeNull();
      expect(await ctx.store.messages.getWithRaw('msg_nope')).toBeNull();
    });

    it('getWithRaw returns the row and the exact bytes together', async () => {
      const raw = Buffer.concat([rawMessage('big'), Buffer.alloc(256 * 1024, 0xa5), BINARY_TAIL]);
      const { id } = await ingestOne(ctx.store, imapMessage(1, { raw }), 1_000);
      const both = await ctx.store.messages.getWithRaw(id);
      expect(both?.info).toEqual(await ctx.store.messages.get(id));
      expect(both?.raw.equals(raw)).toBe(true);
      expect(both?.info.size).toBe(raw.length);
    });

    it('findByMessageId finds the latest message of the account with that Message-ID', async () => {
      const older = await ingestOne(ctx.store, imapMessage(1, { messageId: '<x@example.com>' }), 1_000);
      const newer = await ingestOne(ctx.store, imapMessage(2, { messageId: '<x@example.com>' }), 2_000);
      await ingestOne(ctx.store, imapMessage(3, { account: 'sales', messageId: '<y@example.com>' }), 3_000);
      expect((await ctx.store.messages.findByMessageId(ACCOUNT, '<x@example.com>'))?.id).toBe(newer.id);
      expect(newer.id).not.toBe(older.id);
      expect(await ctx.store.messages.findByMessageId(ACCOUNT, '<y@example.com>')).toBeNull(); // another account's
      expect(await ctx.store.messages.findByMessageId(ACCOUNT, '<none@example.com>')).toBeNull();
    });

    it('conversationOf finds the conversation of a received or sent message by its normalised Message-ID, the earliest stored first', async () => {
      expect(await ctx.store.messages.conversationOf('root@example.com')).toBeNull();
      await ingestOne(ctx.store, imapMessage(1, { messageId: '<root@Example.com>', messageIdKey: 'root@example.com', conversationId: 'cnv_a' }), 1_000);
      // The same Message-ID again later (a copy in another account): the first one's conversation stays the answer.
      await ingestOne(ctx.store, pop3Message('u1', { account: 'sales', messageId: '<root@example.com>', messageIdKey: 'root@example.com', conversationId: 'cnv_b' }), 2_000);
      // Stored without a conversation (before conversations existed): not an answer.
      await ingestOne(ctx.store, imapMessage(2, { messageId: '<old@example.com>', messageIdKey: 'old@example.com', conversationId: null }), 500);
      await ctx.store.outbox.enqueue(outboxItem('out_1', { messageId: '<sent@example.com>', messageIdKey: 'sent@example.com', conversationId: 'cnv_a', now: 3_000 }));
      expect(await ctx.store.messages.conversationOf('root@example.com')).toBe('cnv_a');
      expect(await ctx.store.messages.conversationOf('sent@example.com')).toBe('cnv_a');
      expect(await ctx.store.messages.conversationOf('old@example.com')).toBeNull();
      // The key is compared exactly: the caller normalises (parse/conversation.ts messageIdKey).
      expect(await ctx.store.messages.conversationOf('ROOT@example.com')).toBeNull();
      expect(await ctx.store.messages.conversationOf('<root@example.com>')).toBeNull();
    });

    it('get returns the conversationId stored with the message (null when none was given)', async () => {
      const a = await ingestOne(ctx.store, imapMessage(1, { conversationId: 'cnv_x' }), 1_000);
      const b = await ingestOne(ctx.store, imapMessage(2), 1_000);
      expect((await ctx.store.messages.get(a.id))?.conversationId).toBe('cnv_x');
      expect((await ctx.store.messages.get(b.id))?.conversationId).toBeNull();
    });

    it('lastReceivedAt is the newest receivedAt of the account, or null', async () => {
      expect(await ctx.store.messages.lastReceivedAt(ACCOUNT)).toBeNull();
      await ctx.store.ingest.insertMessages([imapMessage(1)], 3_000);
      await ctx.store.ingest.insertMessages([imapMessage(2)], 2_000);
      await ctx.store.ingest.insertMessages([imapMessage(3, { account: 'sales' })], 9_000);
      expect(await ctx.store.messages.lastReceivedAt(ACCOUNT)).toBe(3_000);
      expect(await ctx.store.messages.lastReceivedAt('sales')).toBe(9_000);
    });
  });

  describe('pruneRaw', () => {
    it('drops raw bodies only of messages delivered, with afterDelivery applied or not needed, received before the cutoff', async () => {
      const none = await ingestDelivered(ctx.store, imapMessage(1), 1_000, 'none');
      const acked = await ingestDelivered(ctx.store, imapMessage(2), 1_000, 'due');
      await ctx.store.ingest.markAcks([acked], 'done', null, null);
      const ackDue = await ingestDelivered(ctx.store, imapMessage(3), 1_000, 'due');
      const ackRetrying = await ingestDelivered(ctx.store, imapMessage(4), 1_000, 'due');
      await ctx.store.ingest.markAcks([ackRetrying], 'due', 'server down', 2_000);
      const pending = (await ingestOne(ctx.store, imapMessage(5), 1_000)).id;
      const failed = await ingestOne(ctx.store, imapMessage(6), 1_000);
      await ctx.store.deliveries.markFailed(failed.delivery.id, failure(1_500, { attempts: 15 }));
      const fresh = await ingestDelivered(ctx.store, imapMessage(7), 5_000, 'none'); // received at the cutoff
      const pop = await ingestDelivered(ctx.store, pop3Message('u1'), 1_000, 'none');

      expect(await ctx.store.messages.pruneRaw(5_000)).toBe(3);
      for (const gone of [none, acked, pop]) {
        expect(await ctx.store.messages.getRaw(gone)).toBeNull();
        expect(await ctx.store.messages.get(gone)).not.toBeNull(); // the row stays (dedupe, loop guard)
      }
      for (const kept of [ackDue, ackRetrying, pending, failed.id, fresh]) {
        expect(await ctx.store.messages.getRaw(kept)).not.toBeNull();
      }
      expect(await ctx.store.messages.pruneRaw(5_000)).toBe(0);
    });

    it('keeps deduplication and the loop guard working after the body is gone', async () => {
      const id = await ingestDelivered(ctx.store, imapMessage(1), 1_000, 'none');
      expect(await ctx.store.messages.pruneRaw(2_000)).toBe(1);
      expect(await ctx.store.messages.getWithRaw(id)).toBeNull(); // no body to deliver
      expect((await ctx.store.messages.findByMessageId(ACCOUNT, '<m1@example.com>'))?.id).toBe(id);
      expect(await ctx.store.ingest.insertMessages([imapMessage(1)], 3_000)).toEqual([{ id, duplicate: true }]);
      expect(await ctx.store.deliveries.countByStatus()).toEqual({ pending: 0, delivered: 1, failed: 0 });
    });

    it('counts a message whose delivered delivery was pruned as fully delivered', async () => {
      const id = await ingestDelivered(ctx.store, imapMessage(1), 1_000, 'none');
      expect(await ctx.store.deliveries.pruneDelivered(2_000)).toBe(1);
      expect(await ctx.store.messages.pruneRaw(2_000)).toBe(1);
      expect(await ctx.store.messages.getRaw(id)).toBeNull();
    });
  });

  describe('dueAcks / markAcks', () => {
    it('lists due acks of one account, oldest received first, up to the limit', async () => {
      const b = await ingestDelivered(ctx.store, imapMessage(2), 2_000, 'due');
      const a = await ingestDelivered(ctx.store, imapMessage(1, { mailbox: 'Archive', uidValidity: 3 }), 1_000, 'due');
      const p = await ingestDelivered(ctx.store, pop3Message('u1'), 3_000, 'due');
      await ingestDelivered(ctx.store, imapMessage(9, { account: 'sales' }), 1_000, 'due');
      expect(await ctx.store.ingest.dueAcks(ACCOUNT, 10, 10_000)).toEqual([
        { id: a, origin: { kind: 'imap', mailbox: 'Archive', uid: 1, uidValidity: 3 } },
        { id: b, origin: { kind: 'imap', mailbox: 'INBOX', uid: 2, uidValidity: 7 } },
        { id: p, origin: { kind: 'pop3', uidl: 'u1' } },
      ]);
      expect((await ctx.store.ingest.dueAcks(ACCOUNT, 2, 10_000)).map((x) => x.id)).toEqual([a, b]);
      expect(await ctx.store.ingest.dueAcks('nobody', 10, 10_000)).toEqual([]);
    });

    it("'due' with a next time keeps the ack due but out of the list until then; 'done' ends it", async () => {
      const a = await ingestDelivered(ctx.store, imapMessage(1), 1_000, 'due');
      const b = await ingestDelivered(ctx.store, imapMessage(2), 2_000, 'due');
      await ctx.store.ingest.markAcks([a, b], 'due', 'connection reset', 60_000);
      expect(await ctx.store.ingest.dueAcks(ACCOUNT, 10, 59_999)).toEqual([]);
      expect((await ctx.store.ingest.dueAcks(ACCOUNT, 10, 60_000)).map((x) => x.id)).toEqual([a, b]);
      await ctx.store.ingest.markAcks([a], 'done', null, null);
      expect((await ctx.store.ingest.dueAcks(ACCOUNT, 10, 60_000)).map((x) => x.id)).toEqual([b]);
      await ctx.store.ingest.markAcks([b], 'due', 'again', null); // no next time: due at once
      expect((await ctx.store.ingest.dueAcks(ACCOUNT, 10, 0)).map((x) => x.id)).toEqual([b]);
      await ctx.store.ingest.markAcks([b], 'done', null, null);
      expect(await ctx.store.ingest.dueAcks(ACCOUNT, 10, Number.MAX_SAFE_INTEGER)).toEqual([]);
    });

    it('markAcks with no ids, or unknown ones, changes nothing', async () => {
      const a = await ingestDelivered(ctx.store, imapMessage(1), 1_000, 'due');
      await ctx.store.ingest.markAcks([], 'done', null, null);
      await ctx.store.ingest.markAcks(['msg_nope'], 'done', null, null);
      expect((await ctx.store.ingest.dueAcks(ACCOUNT, 10, 1_000)).map((x) => x.id)).toEqual([a]);
    });

    it('a message not yet delivered, or delivered with serverAck none, is never due', async () => {
      await ingestOne(ctx.store, imapMessage(1), 1_000);
      await ingestDelivered(ctx.store, imapMessage(2), 1_000, 'none');
      expect(await ctx.store.ingest.dueAcks(ACCOUNT, 10, Number.MAX_SAFE_INTEGER)).toEqual([]);
    });
  });
}
