import { describe, expect, it } from 'vitest';
import type { NewMessage } from '../../../src/store/messages.js';
import {
  ACCOUNT,
  BINARY_TAIL,
  WEBHOOK,
  deliveryOf,
  imapMessage,
  ingestDelivered,
  outcome,
  pop3Message,
  rawMessage,
  settle,
  type StoreFactory,
  useStore,
} from './harness.js';

/** IngestRepo.insertMessages, IMAP cursors and POP3 UIDLs. */
export function defineIngestConformance(factory: StoreFactory): void {
  const ctx = useStore(factory);

  describe('insertMessages', () => {
    it('stores each message with its raw bytes, info and a pending message.received delivery', async () => {
      const raw = rawMessage('m1', BINARY_TAIL);
      const results = await ctx.store.ingest.insertMessages([imapMessage(1, { raw, autoSubmitted: true }), imapMessage(2)], 1_000);
      expect(results).toHaveLength(2);
      expect(results.map((r) => r.duplicate)).toEqual([false, false]);
      const [first, second] = results.map((r) => r.id);
      expect(first).toEqual(expect.any(String));
      expect(first).not.toBe(second);

      expect(await ctx.store.messages.get(first ?? '')).toEqual({
        id: first,
        account: ACCOUNT,
        origin: { kind: 'imap', mailbox: 'INBOX', uid: 1, uidValidity: 7 },
        messageId: '<m1@example.com>',
        size: raw.length,
        receivedAt: 1_000,
        autoSubmitted: true,
        notDownloaded: null,
        conversationId: null,
      });
      expect((await ctx.store.messages.getRaw(first ?? ''))?.equals(raw)).toBe(true);

      const d = await deliveryOf(ctx.store, first ?? '');
      expect(d).toEqual({
        id: expect.stringMatching(/^dlv_/),
        account: ACCOUNT,
        webhook: WEBHOOK,
        event: 'message.received',
        messageRef: first,
        payloadJson: null,
        status: 'pending',
        attempts: 0,
        nextAttemptAt: 1_000,
        lastStatus: null,
        lastError: null,
        responseExcerpt: null,
        createdAt: 1_000,
        updatedAt: 1_000,
        deliveredAt: null,
        renderFailures: 0,
      });
      expect(await ctx.store.deliveries.countByStatus()).toEqual({ pending: 2, delivered: 0, failed: 0 });
    });

    it('stores a message that was not downloaded with its header block, its server size, a message.failed delivery and nothing to do on the server', async () => {
      const headers = Buffer.from('From: a@example.com\r\nSubject: huge\r\n');
      const [r] = await ctx.store.ingest.insertMessages(
        [imapMessage(5, { raw: headers, size: 90_000_000, notDownloaded: 'the message is 85.8 MB, more than maxMessageSize (50 MB)' })],
        1_000,
      );
      const info = await ctx.store.messages.get(r?.id ?? '');
      expect(info).toMatchObject({ size: 90_000_000, notDownloaded: 'the message is 85.8 MB, more than maxMessageSize (50 MB)' });
      expect((await ctx.store.messages.getRaw(r?.id ?? ''))?.equals(headers)).toBe(true);
      expect(await deliveryOf(ctx.store, r?.id ?? '')).toMatchObject({ event: 'message.failed', status: 'pending' });
      expect(await ctx.store.ingest.getCursor(ACCOUNT, 'INBOX')).toEqual({ uidValidity: 7, lastUid: 5 });
      // Delivered: still nothing due on the server (it is never flagged, moved or deleted).
      const d = await deliveryOf(ctx.store, r?.id ?? '');
      await ctx.store.deliveries.markDelivered(d?.id ?? '', { attempts: 1, status: 200, error: null, responseExcerpt: null, now: 2_000 }, 'due');
      expect(await ctx.store.ingest.dueAcks(ACCOUNT, 10, 3_000)).toEqual([]);
    });

    it('returns an empty result for an empty batch and changes nothing', async () => {
      expect(await ctx.store.ingest.insertMessages([], 1_000)).toEqual([]);
      expect(await ctx.store.deliveries.countByStatus()).toEqual({ pending: 0, delivered: 0, failed: 0 });
    });

    it('advances the IMAP cursor to the highest UID of the batch in the same unit, never backwards', async () => {
      expect(await ctx.store.ingest.getCursor(ACCOUNT, 'INBOX')).toBeNull();
      await ctx.store.ingest.insertMessages([imapMessage(5), imapMessage(3)], 1_000);
      expect(await ctx.store.ingest.getCursor(ACCOUNT, 'INBOX')).toEqual({ uidValidity: 7, lastUid: 5 });
      await ctx.store.ingest.insertMessages([imapMessage(4)], 2_000); // a late UID from a resync
      expect(await ctx.store.ingest.getCursor(ACCOUNT, 'INBOX')).toEqual({ uidValidity: 7, lastUid: 5 });
      expect(await ctx.store.ingest.getCursor(ACCOUNT, 'Archive')).toBeNull();
      expect(await ctx.store.ingest.getCursor('other', 'INBOX')).toBeNull();
    });

    it('keeps one cursor per account and mailbox', async () => {
      await ctx.store.ingest.insertMessages(
        [imapMessage(9), imapMessage(2, { mailbox: 'Archive', uidValidity: 3 }), imapMessage(4, { account: 'sales' })],
        1_000,
      );
      expect(await ctx.store.ingest.getCursor(ACCOUNT, 'INBOX')).toEqual({ uidValidity: 7, lastUid: 9 });
      expect(await ctx.store.ingest.getCursor(ACCOUNT, 'Archive')).toEqual({ uidValidity: 3, lastUid: 2 });
      expect(await ctx.store.ingest.getCursor('sales', 'INBOX')).toEqual({ uidValidity: 7, lastUid: 4 });
    });

    it('marks the already stored rows of a batch as duplicates, with their ids, and stores the rest', async () => {
      const [old] = await ctx.store.ingest.insertMessages([imapMessage(1)], 1_000);
      const batch = await ctx.store.ingest.insertMessages([imapMessage(1), imapMessage(2), imapMessage(2)], 2_000);
      expect(batch[0]).toEqual({ id: old?.id, duplicate: true });
      expect(batch[1]?.duplicate).toBe(false);
      expect(batch[2]).toEqual({ id: batch[1]?.id, duplicate: true }); // repeated inside one batch
      expect(await ctx.store.deliveries.countByStatus()).toEqual({ pending: 2, delivered: 0, failed: 0 });
      // The duplicate did not overwrite what was stored first.
      expect((await ctx.store.messages.get(old?.id ?? ''))?.receivedAt).toBe(1_000);
      expect(await ctx.store.ingest.getCursor(ACCOUNT, 'INBOX')).toEqual({ uidValidity: 7, lastUid: 2 });
    });

    it('stores nothing of a batch when one row cannot be stored (one unit: no cursor without its message)', async () => {
      await ctx.store.ingest.insertMessages([imapMessage(1)], 1_000);
      // No caller can type this row; it is the portable way to make a backend refuse one row mid-batch.
      const broken = { ...imapMessage(3), origin: { kind: 'imap', mailbox: null, uid: 3, uidValidity: 7 } } as unknown as NewMessage;
      const r = await settle(() => ctx.store.ingest.insertMessages([imapMessage(2), broken, imapMessage(4)], 2_000));
      expect(r.ok).toBe(false);
      expect(await ctx.store.ingest.getCursor(ACCOUNT, 'INBOX')).toEqual({ uidValidity: 7, lastUid: 1 });
      expect(await ctx.store.deliveries.countByStatus()).toEqual({ pending: 1, delivered: 0, failed: 0 });
      const again = await ctx.store.ingest.insertMessages([imapMessage(2)], 3_000);
      expect(again[0]?.duplicate).toBe(false); // uid 2 was rolled back, not half-stored
    });

    it('gives the same ids and duplicate: true when a restarted store is handed the same messages (crash after commit)', async () => {
      const before = await ctx.store.ingest.insertMessages([imapMessage(1), imapMessage(2), pop3Message('u1')], 1_000);
      const deliveredId = before[0]?.id ?? '';
      await ctx.store.deliveries.markDelivered((await deliveryOf(ctx.store, deliveredId)).id, outcome(1_500), 'due');
      // The daemon dies here: the first store is abandoned, never closed.
      const restarted = await ctx.sut.openPeer();
      const after = await restarted.ingest.insertMessages([imapMessage(1), imapMessage(2), pop3Message('u1')], 2_000);
      expect(after).toEqual(before.map((r) => ({ id: r.id, duplicate: true })));
      expect(await restarted.deliveries.countByStatus()).toEqual({ pending: 2, delivered: 1, failed: 0 });
      expect((await deliveryOf(restarted, deliveredId)).status).toBe('delivered'); // a re-fetch never resets a delivery
      expect(await restarted.ingest.getCursor(ACCOUNT, 'INBOX')).toEqual({ uidValidity: 7, lastUid: 2 });
      expect((await restarted.ingest.dueAcks(ACCOUNT, 10, 2_000)).map((a) => a.id)).toEqual([deliveredId]);
    });

    it('treats the same UID under another UIDVALIDITY as another message', async () => {
      const [a] = await ctx.store.ingest.insertMessages([imapMessage(1, { messageId: null })], 1_000);
      const [b] = await ctx.store.ingest.insertMessages([imapMessage(1, { uidValidity: 8, messageId: null })], 2_000);
      expect(b?.duplicate).toBe(false);
      expect(b?.id).not.toBe(a?.id);
    });

    it('keeps two messages with one Message-ID under one UIDVALIDITY apart (only a UIDVALIDITY change dedupes on it)', async () => {
      const raw = rawMessage('same');
      const r = await ctx.store.ingest.insertMessages(
        [imapMessage(1, { raw, messageId: '<same@example.com>' }), imapMessage(2, { raw, messageId: '<same@example.com>' })],
        1_000,
      );
      expect(r.map((x) => x.duplicate)).toEqual([false, false]);
      expect(r[0]?.id).not.toBe(r[1]?.id);
    });
  });

  describe('UIDVALIDITY reset', () => {
    it('resetCursor starts the mailbox over at UID 0 under the new UIDVALIDITY (and creates a missing cursor)', async () => {
      await ctx.store.ingest.insertMessages([imapMessage(1), imapMessage(2)], 1_000);
      await ctx.store.ingest.resetCursor(ACCOUNT, 'INBOX', 99, 1_500);
      expect(await ctx.store.ingest.getCursor(ACCOUNT, 'INBOX')).toEqual({ uidValidity: 99, lastUid: 0 });
      await ctx.store.ingest.resetCursor(ACCOUNT, 'Fresh', 5, 1_500);
      expect(await ctx.store.ingest.getCursor(ACCOUNT, 'Fresh')).toEqual({ uidValidity: 5, lastUid: 0 });
    });

    it('recognises a message coming back under a new UIDVALIDITY by Message-ID and size within the mailbox', async () => {
      const raw = rawMessage('m1');
      const [orig] = await ctx.store.ingest.insertMessages([imapMessage(1, { raw })], 1_000);
      await ctx.store.ingest.resetCursor(ACCOUNT, 'INBOX', 99, 1_500);
      const r = await ctx.store.ingest.insertMessages(
        [
          imapMessage(10, { uidValidity: 99, raw, messageId: '<m1@example.com>' }), // same Message-ID, same size: the same message
          imapMessage(11, { uidValidity: 99, raw: Buffer.concat([raw, Buffer.from('x')]), messageId: '<m1@example.com>' }), // other size
          imapMessage(12, { uidValidity: 99 }), // another message
        ],
        2_000,
      );
      expect(r[0]).toEqual({ id: orig?.id, duplicate: true });
      expect(r[1]?.duplicate).toBe(false);
      expect(r[2]?.duplicate).toBe(false);
      expect(new Set(r.map((x) => x.id)).size).toBe(3);
      expect(await ctx.store.ingest.getCursor(ACCOUNT, 'INBOX')).toEqual({ uidValidity: 99, lastUid: 12 });
      expect(await ctx.store.deliveries.countByStatus()).toEqual({ pending: 3, delivered: 0, failed: 0 });
    });

    it('dedupes only within the same account and mailbox, and never a message without Message-ID', async () => {
      const raw = rawMessage('m1');
      const noId = rawMessage('anon');
      await ctx.store.ingest.insertMessages(
        [imapMessage(1, { raw }), imapMessage(2, { raw: noId, messageId: null })],
        1_000,
      );
      const r = await ctx.store.ingest.insertMessages(
        [
          imapMessage(1, { raw, mailbox: 'Archive', uidValidity: 99 }),
          imapMessage(1, { raw, account: 'sales', uidValidity: 99 }),
          imapMessage(3, { raw: noId, messageId: null, uidValidity: 99 }),
        ],
        2_000,
      );
      expect(r.map((x) => x.duplicate)).toEqual([false, false, false]);
    });

    it('a recognised message takes its new origin, so the afterDelivery still due is applied where it is now', async () => {
      const again = { raw: rawMessage('m1'), messageId: '<m1@example.com>' };
      const id = await ingestDelivered(ctx.store, imapMessage(1, again), 1_000, 'due');
      await ctx.store.ingest.resetCursor(ACCOUNT, 'INBOX', 99, 1_500);
      const moved = { kind: 'imap', mailbox: 'INBOX', uid: 10, uidValidity: 99 } as const;
      expect(await ctx.store.ingest.insertMessages([imapMessage(10, { ...again, uidValidity: 99 })], 2_000)).toEqual([{ id, duplicate: true }]);
      expect(await ctx.store.ingest.dueAcks(ACCOUNT, 10, 3_000)).toEqual([{ id, origin: moved }]);
      expect(await ctx.store.messages.get(id)).toMatchObject({ id, origin: moved, receivedAt: 1_000 });
      // Fetched again at the new UID (a crash before the cursor moved on): the same message, still once.
      expect(await ctx.store.ingest.insertMessages([imapMessage(10, { ...again, uidValidity: 99 })], 4_000)).toEqual([{ id, duplicate: true }]);
      // And again after another UIDVALIDITY change.
      expect(await ctx.store.ingest.insertMessages([imapMessage(3, { ...again, uidValidity: 100 })], 5_000)).toEqual([{ id, duplicate: true }]);
      expect(await ctx.store.ingest.dueAcks(ACCOUNT, 10, 6_000)).toEqual([{ id, origin: { ...moved, uid: 3, uidValidity: 100 } }]);
      expect(await ctx.store.deliveries.countByStatus()).toEqual({ pending: 0, delivered: 1, failed: 0 });
    });

    it('pairs two stored messages with one Message-ID and size with the two that come back, one each', async () => {
      const same = { raw: rawMessage('same'), messageId: '<same@example.com>' };
      const [a, b] = await ctx.store.ingest.insertMessages([imapMessage(1, same), imapMessage(2, same)], 1_000);
      await ctx.store.ingest.resetCursor(ACCOUNT, 'INBOX', 99, 1_500);
      const back = await ctx.store.ingest.insertMessages([imapMessage(5, { ...same, uidValidity: 99 }), imapMessage(6, { ...same, uidValidity: 99 })], 2_000);
      expect(back.map((r) => r.duplicate)).toEqual([true, true]);
      expect(new Set(back.map((r) => r.id))).toEqual(new Set([a?.id, b?.id]));
      expect(await ctx.store.deliveries.countByStatus()).toEqual({ pending: 2, delivered: 0, failed: 0 });
    });
  });

  describe('POP3 UIDLs', () => {
    it('stores a POP3 message without UID and records its UIDL in the same unit', async () => {
      const [r] = await ctx.store.ingest.insertMessages([pop3Message('u1')], 1_000);
      expect(await ctx.store.messages.get(r?.id ?? '')).toMatchObject({ origin: { kind: 'pop3', uidl: 'u1' } });
      expect(await ctx.store.ingest.knownUidls(ACCOUNT, ['u1', 'u2'])).toEqual(new Set(['u1']));
      expect(await ctx.store.ingest.knownUidls('sales', ['u1'])).toEqual(new Set());
      expect(await ctx.store.ingest.knownUidls(ACCOUNT, [])).toEqual(new Set());
      const [again] = await ctx.store.ingest.insertMessages([pop3Message('u1')], 2_000);
      expect(again).toEqual({ id: r?.id, duplicate: true });
    });

    it('resetCursor with lastUid sets the cursor there (initialSync), and later messages advance it from there', async () => {
      await ctx.store.ingest.resetCursor(ACCOUNT, 'INBOX', 7, 1_000, 41);
      expect(await ctx.store.ingest.getCursor(ACCOUNT, 'INBOX')).toEqual({ uidValidity: 7, lastUid: 41 });
      await ctx.store.ingest.insertMessages([imapMessage(42, { uidValidity: 7 })], 2_000);
      expect(await ctx.store.ingest.getCursor(ACCOUNT, 'INBOX')).toEqual({ uidValidity: 7, lastUid: 42 });
      expect(await ctx.store.ingest.getCursor('sales', 'INBOX')).toBeNull();
    });

    it('skipUidls records UIDLs as taken without a message or delivery; forgetUidlsExcept forgets them once gone', async () => {
      const many = Array.from({ length: 1_200 }, (_, i) => `old-${i}`);
      await ctx.store.ingest.skipUidls(ACCOUNT, many, 1_000);
      await ctx.store.ingest.skipUidls(ACCOUNT, ['old-0'], 1_100); // a repeat is no error
      expect((await ctx.store.ingest.knownUidls(ACCOUNT, many)).size).toBe(1_200);
      expect((await ctx.store.ingest.knownUidls('sales', many)).size).toBe(0);
      expect(await ctx.store.deliveries.countByStatus()).toMatchObject({ pending: 0 });
      expect(await ctx.store.ingest.forgetUidlsExcept(ACCOUNT, ['old-1'])).toBe(1_199);
      expect([...(await ctx.store.ingest.knownUidls(ACCOUNT, many))]).toEqual(['old-1']);
    });

    it('answers knownUidls for long lists (a mailbox of thousands)', async () => {
      const uidls = Array.from({ length: 1_500 }, (_, i) => `uidl-${i}`);
      await ctx.store.ingest.insertMessages(uidls.filter((_, i) => i % 3 === 0).map((u) => pop3Message(u)), 1_000);
      const known = await ctx.store.ingest.knownUidls(ACCOUNT, uidls);
      expect(known.size).toBe(500);
      expect(known.has('uidl-0') && known.has('uidl-1497') && !known.has('uidl-1')).toBe(true);
    });

    it('forgetUidlsExcept forgets UIDLs gone from the server whose message is fully handled, and keeps the rest', async () => {
      const handled = await ingestDelivered(ctx.store, pop3Message('gone-none'), 1_000, 'none');
      const acked = await ingestDelivered(ctx.store, pop3Message('gone-acked'), 1_000, 'due');
      await ctx.store.ingest.markAcks([acked], 'done', null, null);
      await ingestDelivered(ctx.store, pop3Message('gone-ack-due'), 1_000, 'due'); // DELE not applied yet
      await ctx.store.ingest.insertMessages([pop3Message('gone-pending'), pop3Message('present')], 1_000);
      await ctx.store.ingest.insertMessages([pop3Message('gone-none', { account: 'sales' })], 1_000);
      void handled;

      expect(await ctx.store.ingest.forgetUidlsExcept(ACCOUNT, ['present', 'never-seen'])).toBe(2);
      expect(await ctx.store.ingest.knownUidls(ACCOUNT, ['gone-none', 'gone-acked', 'gone-ack-due', 'gone-pending', 'present'])).toEqual(
        new Set(['gone-ack-due', 'gone-pending', 'present']),
      );
      expect(await ctx.store.ingest.knownUidls('sales', ['gone-none'])).toEqual(new Set(['gone-none']));
      expect(await ctx.store.ingest.forgetUidlsExcept(ACCOUNT, ['present'])).toBe(0);
    });

    it('forgetUidlsExcept with nothing present forgets every handled UIDL of the account', async () => {
      await ingestDelivered(ctx.store, pop3Message('a'), 1_000, 'none');
      await ingestDelivered(ctx.store, pop3Message('b'), 1_000, 'none');
      expect(await ctx.store.ingest.forgetUidlsExcept(ACCOUNT, [])).toBe(2);
      expect(await ctx.store.ingest.knownUidls(ACCOUNT, ['a', 'b'])).toEqual(new Set());
    });
  });
}
