import { describe, expect, it } from 'vitest';
import type { OutboxRecord } from '../../../src/store/outbox.js';
import { ACCOUNT, outboxItem, type StoreFactory, useStore } from './harness.js';

/** OutboxRepo: the durable send queue. */
export function defineOutboxConformance(factory: StoreFactory): void {
  const ctx = useStore(factory);
  const ids = (rs: OutboxRecord[]) => rs.map((r) => r.id);

  describe('enqueue', () => {
    it('queues the item, due at once', async () => {
      const item = outboxItem('out_1', { idempotencyKey: 'k1', now: 1_000 });
      const { record, created } = await ctx.store.outbox.enqueue(item);
      expect(created).toBe(true);
      expect(record).toEqual({
        id: 'out_1',
        account: ACCOUNT,
        idempotencyKey: 'k1',
        requestJson: item.requestJson,
        envelope: null,
        rawBytes: null,
        status: 'queued',
        attempts: 0,
        nextAttemptAt: 1_000,
        lastError: null,
        messageId: '<out_1@example.com>',
        createdAt: 1_000,
        updatedAt: 1_000,
        sentAt: null,
      });
      expect(await ctx.store.outbox.get('out_1')).toEqual(record);
      expect(await ctx.store.outbox.get('out_nope')).toBeNull();
    });

    it('answers a repeat of (account, idempotency key) with the existing row, unchanged, created: false', async () => {
      const first = await ctx.store.outbox.enqueue(outboxItem('out_1', { idempotencyKey: 'k1' }));
      await ctx.store.outbox.claimDue(2_000, 10);
      await ctx.store.outbox.markSent('out_1', 2_500);
      const sent = await ctx.store.outbox.get('out_1');
      const again = await ctx.store.outbox.enqueue(outboxItem('out_2', { idempotencyKey: 'k1', requestJson: '{"other":true}', now: 3_000 }));
      expect(again).toEqual({ record: sent, created: false });
      expect(again.record.id).toBe(first.record.id);
      expect(await ctx.store.outbox.get('out_2')).toBeNull();
      expect(await ctx.store.outbox.counts()).toEqual({ queued: 0, sending: 0, sent: 1, failed: 0 });
    });

    it('scopes idempotency keys to the account, and never dedupes items without a key', async () => {
      await ctx.store.outbox.enqueue(outboxItem('out_1', { idempotencyKey: 'k1' }));
      expect((await ctx.store.outbox.enqueue(outboxItem('out_2', { idempotencyKey: 'k1', account: 'sales' }))).created).toBe(true);
      expect((await ctx.store.outbox.enqueue(outboxItem('out_3'))).created).toBe(true);
      expect((await ctx.store.outbox.enqueue(outboxItem('out_4'))).created).toBe(true);
      expect((await ctx.store.outbox.counts()).queued).toBe(4);
    });

    it('creates exactly one row when the same key is enqueued concurrently', async () => {
      const results = await Promise.all(
        Array.from({ length: 8 }, (_, i) => ctx.store.outbox.enqueue(outboxItem(`out_${i}`, { idempotencyKey: 'race' }))),
      );
      expect(results.filter((r) => r.created)).toHaveLength(1);
      expect(new Set(results.map((r) => r.record.id)).size).toBe(1);
      expect((await ctx.store.outbox.counts()).queued).toBe(1);
    });
  });

  describe('claimDue', () => {
    async function queue(n: number, account = ACCOUNT, start = 100): Promise<string[]> {
      const out: string[] = [];
      for (let i = 0; i < n; i++) {
        const id = `out_${account}_${i}`;
        await ctx.store.outbox.enqueue(outboxItem(id, { account, now: start + i * 10 }));
        out.push(id);
      }
      return out;
    }

    it('moves due queued rows to sending (attempts + 1) in due order, up to the limit, and returns them as stored', async () => {
      const [a, b, c] = await queue(3);
      await ctx.store.outbox.enqueue(outboxItem('out_later', { now: 5_000 }));
      const claimed = await ctx.store.outbox.claimDue(1_000, 2);
      expect(ids(claimed)).toEqual([a, b]);
      for (const r of claimed) {
        expect(r).toMatchObject({ status: 'sending', attempts: 1, updatedAt: 1_000 });
        expect(await ctx.store.outbox.get(r.id)).toEqual(r);
      }
      expect(ids(await ctx.store.outbox.claimDue(1_000, 10))).toEqual([c]); // never the same row twice
      expect(await ctx.store.outbox.claimDue(1_000, 10)).toEqual([]);
      expect(ids(await ctx.store.outbox.claimDue(5_000, 10))).toEqual(['out_later']);
      expect(await ctx.store.outbox.counts()).toEqual({ queued: 0, sending: 4, sent: 0, failed: 0 });
    });

    it('orders by next attempt, not by creation, once a row was retried', async () => {
      const [a, b] = await queue(2);
      expect(ids(await ctx.store.outbox.claimDue(1_000, 2))).toEqual([a, b]);
      await ctx.store.outbox.markRetry(a ?? '', 'busy', 2_000, 1_000);
      await ctx.store.outbox.markRetry(b ?? '', 'busy', 1_500, 1_000);
      expect(ids(await ctx.store.outbox.claimDue(3_000, 10))).toEqual([b, a]);
    });

    it('with room, gives an account at most perAccount minus its in-flight count', async () => {
      const sup = await queue(4, ACCOUNT, 100);
      const sales = await queue(4, 'sales', 105);
      const claimed = await ctx.store.outbox.claimDue(1_000, 10, { perAccount: 2, inFlight: new Map([[ACCOUNT, 1]]) });
      expect(ids(claimed).filter((id) => sup.includes(id))).toEqual([sup[0]]);
      expect(ids(claimed).filter((id) => sales.includes(id))).toEqual([sales[0], sales[1]]);
      const none = await ctx.store.outbox.claimDue(1_000, 10, { perAccount: 2, inFlight: new Map([[ACCOUNT, 2], ['sales', 3]]) });
      expect(none).toEqual([]);
      expect(await ctx.store.outbox.counts()).toEqual({ queued: 5, sending: 3, sent: 0, failed: 0 });
    });

    it('with room, an account that fills up does not starve the others', async () => {
      await queue(6, ACCOUNT, 100); // all older than the other account's row
      const [s] = await queue(1, 'sales', 900);
      const inFlight = new Map<string, number>();
      const taken: string[] = [];
      for (let round = 0; round < 3 && !taken.includes(s ?? ''); round++) {
        const got = await ctx.store.outbox.claimDue(1_000, 2, { perAccount: 1, inFlight });
        for (const r of got) inFlight.set(r.account, (inFlight.get(r.account) ?? 0) + 1);
        taken.push(...ids(got));
      }
      expect(taken).toContain(s);
      expect(inFlight.get(ACCOUNT)).toBe(1);
    });
  });

  describe('outcomes', () => {
    async function claimedOne(id = 'out_1'): Promise<OutboxRecord> {
      await ctx.store.outbox.enqueue(outboxItem(id));
      const [r] = await ctx.store.outbox.claimDue(1_000, 1);
      if (!r) throw new Error('nothing claimed');
      return r;
    }

    it('markSent records the time and clears the error', async () => {
      const r = await claimedOne();
      await ctx.store.outbox.markRetry(r.id, 'busy', 1_100, 1_050);
      await ctx.store.outbox.claimDue(1_100, 1);
      await ctx.store.outbox.markSent(r.id, 1_200);
      expect(await ctx.store.outbox.get(r.id)).toMatchObject({ status: 'sent', attempts: 2, lastError: null, sentAt: 1_200, updatedAt: 1_200 });
    });

    it('markRetry puts the row back in the queue for its next attempt, keeping the attempt count', async () => {
      const r = await claimedOne();
      await ctx.store.outbox.markRetry(r.id, '421 try later', 9_000, 1_100);
      expect(await ctx.store.outbox.get(r.id)).toMatchObject({ status: 'queued', attempts: 1, lastError: '421 try later', nextAttemptAt: 9_000, updatedAt: 1_100 });
      expect(await ctx.store.outbox.claimDue(8_999, 10)).toEqual([]);
      expect((await ctx.store.outbox.claimDue(9_000, 10))[0]).toMatchObject({ id: r.id, attempts: 2 });
    });

    it('markFailed parks the row with its error', async () => {
      const r = await claimedOne();
      await ctx.store.outbox.markFailed(r.id, '550 no such user', 1_100);
      expect(await ctx.store.outbox.get(r.id)).toMatchObject({ status: 'failed', lastError: '550 no such user', updatedAt: 1_100, sentAt: null });
      expect(await ctx.store.outbox.claimDue(99_000, 10)).toEqual([]);
    });

    it('failInterrupted fails every row left sending, with the reason, and returns their ids', async () => {
      await ctx.store.outbox.enqueue(outboxItem('out_1'));
      await ctx.store.outbox.enqueue(outboxItem('out_2', { account: 'sales' }));
      await ctx.store.outbox.enqueue(outboxItem('out_3'));
      await ctx.store.outbox.enqueue(outboxItem('out_4', { now: 50_000 }));
      await ctx.store.outbox.claimDue(1_000, 3);
      await ctx.store.outbox.markSent('out_3', 1_100);
      const peer = await ctx.sut.openPeer(); // the restarted daemon
      expect((await peer.outbox.failInterrupted('stopped during SMTP', 2_000)).sort()).toEqual(['out_1', 'out_2']);
      for (const id of ['out_1', 'out_2']) {
        expect(await peer.outbox.get(id)).toMatchObject({ status: 'failed', lastError: 'stopped during SMTP', updatedAt: 2_000 });
      }
      expect((await peer.outbox.get('out_3'))?.status).toBe('sent');
      expect((await peer.outbox.get('out_4'))?.status).toBe('queued');
      expect(await peer.outbox.failInterrupted('again', 3_000)).toEqual([]);
    });

    it('requeue puts a failed row back in the queue, due now, and refuses any other', async () => {
      const r = await claimedOne();
      expect(await ctx.store.outbox.requeue(r.id, 1_500)).toBe(false); // sending
      await ctx.store.outbox.markFailed(r.id, 'uncertain', 1_600);
      expect(await ctx.store.outbox.requeue(r.id, 2_000)).toBe(true);
      expect(await ctx.store.outbox.get(r.id)).toMatchObject({ status: 'queued', nextAttemptAt: 2_000, updatedAt: 2_000 });
      expect(await ctx.store.outbox.requeue(r.id, 2_100)).toBe(false); // queued
      expect(await ctx.store.outbox.requeue('out_nope', 2_100)).toBe(false);
      expect(ids(await ctx.store.outbox.claimDue(2_000, 10))).toEqual([r.id]);
      await ctx.store.outbox.markSent(r.id, 2_200);
      expect(await ctx.store.outbox.requeue(r.id, 2_300)).toBe(false); // sent
    });
  });

  describe('queue state', () => {
    it('nextDueAt is the earliest next attempt among queued rows, or null', async () => {
      expect(await ctx.store.outbox.nextDueAt()).toBeNull();
      await ctx.store.outbox.enqueue(outboxItem('out_1', { now: 500 }));
      await ctx.store.outbox.enqueue(outboxItem('out_2', { now: 700 }));
      expect(await ctx.store.outbox.nextDueAt()).toBe(500);
      await ctx.store.outbox.claimDue(500, 1); // sending rows are not due
      expect(await ctx.store.outbox.nextDueAt()).toBe(700);
      await ctx.store.outbox.markRetry('out_1', 'busy', 600, 550);
      expect(await ctx.store.outbox.nextDueAt()).toBe(600);
      await ctx.store.outbox.claimDue(1_000, 10);
      expect(await ctx.store.outbox.nextDueAt()).toBeNull();
    });

    it('counts always has every status', async () => {
      expect(await ctx.store.outbox.counts()).toEqual({ queued: 0, sending: 0, sent: 0, failed: 0 });
      for (const id of ['out_1', 'out_2', 'out_3', 'out_4']) await ctx.store.outbox.enqueue(outboxItem(id));
      await ctx.store.outbox.claimDue(1_000, 3);
      await ctx.store.outbox.markSent('out_1', 1_100);
      await ctx.store.outbox.markFailed('out_2', 'x', 1_100);
      expect(await ctx.store.outbox.counts()).toEqual({ queued: 1, sending: 1, sent: 1, failed: 1 });
    });

    it('prune removes sent and failed rows last changed before the cutoff, freeing their idempotency keys', async () => {
      for (const id of ['out_s', 'out_f', 'out_q', 'out_new', 'out_snd']) {
        await ctx.store.outbox.enqueue(outboxItem(id, { idempotencyKey: id, now: 1_000 }));
      }
      await ctx.store.outbox.claimDue(1_000, 10);
      await ctx.store.outbox.markSent('out_s', 1_000);
      await ctx.store.outbox.markFailed('out_f', 'x', 1_000);
      await ctx.store.outbox.markRetry('out_q', 'busy', 1_000, 1_000);
      await ctx.store.outbox.markSent('out_new', 5_000); // at the cutoff: kept
      expect(await ctx.store.outbox.prune(5_000)).toBe(2);
      expect(await ctx.store.outbox.get('out_s')).toBeNull();
      expect(await ctx.store.outbox.get('out_f')).toBeNull();
      expect(await ctx.store.outbox.counts()).toEqual({ queued: 1, sending: 1, sent: 1, failed: 0 });
      expect((await ctx.store.outbox.enqueue(outboxItem('out_s2', { idempotencyKey: 'out_s' }))).created).toBe(true);
      expect(await ctx.store.outbox.prune(5_000)).toBe(0);
    });
  });

  /** The SMTP relay queues the application's bytes and its envelope instead of a send request. */
  describe('messages given as bytes', () => {
    // Every byte value, bare LFs, 8-bit text and a NUL: the store keeps bytes, never text.
    const bytes = Buffer.concat([
      Buffer.from('Subject: scan\r\nFrom: <support@example.com>\r\n\r\nbody \u00e9\n.\r\n', 'utf8'),
      Buffer.from(Array.from({ length: 256 }, (_, i) => i)),
    ]);
    const envelope = { from: 'support@example.com', to: ['ann@example.com', 'hidden-bcc@example.net'] };
    const rawItem = (id: string, over: Partial<Parameters<typeof outboxItem>[1]> = {}) =>
      outboxItem(id, { requestJson: '{"relay":{"client":"scanner"}}', raw: { envelope, message: bytes }, ...over });

    it('keeps the bytes exactly and the envelope with the row; a send request has neither', async () => {
      const { record, created } = await ctx.store.outbox.enqueue(rawItem('out_raw'));
      expect(created).toBe(true);
      expect(record).toMatchObject({ id: 'out_raw', status: 'queued', envelope, rawBytes: bytes.length, requestJson: '{"relay":{"client":"scanner"}}' });
      expect(await ctx.store.outbox.get('out_raw')).toEqual(record);
      const back = await ctx.store.outbox.getRaw('out_raw');
      expect(back && Buffer.compare(back, bytes)).toBe(0);
      await ctx.store.outbox.enqueue(outboxItem('out_req'));
      expect(await ctx.store.outbox.get('out_req')).toMatchObject({ envelope: null, rawBytes: null });
      expect(await ctx.store.outbox.getRaw('out_req')).toBeNull();
      expect(await ctx.store.outbox.getRaw('out_nope')).toBeNull();
    });

    it('claimDue and the outcomes carry the envelope like any other row', async () => {
      await ctx.store.outbox.enqueue(rawItem('out_raw', { now: 100 }));
      const [claimed] = await ctx.store.outbox.claimDue(1_000, 10);
      expect(claimed).toMatchObject({ id: 'out_raw', status: 'sending', attempts: 1, envelope, rawBytes: bytes.length });
      await ctx.store.outbox.markRetry('out_raw', '451 later', 2_000, 1_000);
      expect(await ctx.store.outbox.get('out_raw')).toMatchObject({ status: 'queued', envelope });
      expect((await ctx.store.outbox.getRaw('out_raw'))?.length).toBe(bytes.length);
    });

    it('claimDue keeps messages given as bytes within room.rawBytes; one over the budget goes alone; send requests do not count', async () => {
      const sized = (id: string, n: number, now: number) => outboxItem(id, { now, raw: { envelope, message: Buffer.alloc(n, 0x61) } });
      await ctx.store.outbox.enqueue(sized('out_a', 40, 100));
      await ctx.store.outbox.enqueue(outboxItem('out_req', { now: 110 }));
      await ctx.store.outbox.enqueue(sized('out_b', 40, 120));
      await ctx.store.outbox.enqueue(sized('out_c', 40, 130));
      await ctx.store.outbox.enqueue(sized('out_d', 10, 140));
      const room = (inFlight: number) => ({ perAccount: 10, inFlight: new Map<string, number>(), rawBytes: { budget: 100, inFlight } });
      // 40 + 40 fit, the third 40 would make 120, the 10 after it fits (90).
      expect(ids(await ctx.store.outbox.claimDue(1_000, 10, room(0)))).toEqual(['out_a', 'out_req', 'out_b', 'out_d']);
      // With 95 in flight nothing more of bytes fits.
      expect(await ctx.store.outbox.claimDue(1_000, 10, room(95))).toEqual([]);
      expect(ids(await ctx.store.outbox.claimDue(1_000, 10, room(60)))).toEqual(['out_c']);
      await ctx.store.outbox.enqueue(sized('out_huge', 500, 150));
      expect(await ctx.store.outbox.claimDue(1_000, 10, room(1))).toEqual([]);
      expect(ids(await ctx.store.outbox.claimDue(1_000, 10, room(0)))).toEqual(['out_huge']);
    });

    it('keeps a message of several megabytes whole', async () => {
      const big = Buffer.alloc(6 * 1024 * 1024 + 3, 0x61);
      big.write('\r\n.\r\n', big.length - 5);
      await ctx.store.outbox.enqueue(outboxItem('out_big', { raw: { envelope, message: big } }));
      const back = await ctx.store.outbox.getRaw('out_big');
      expect(back?.length).toBe(big.length);
      expect(back && Buffer.compare(back, big)).toBe(0);
    });

    it('prune removes the bytes with the row', async () => {
      await ctx.store.outbox.enqueue(rawItem('out_old', { now: 1_000 }));
      await ctx.store.outbox.enqueue(rawItem('out_keep', { now: 1_000 }));
      await ctx.store.outbox.claimDue(1_000, 1);
      await ctx.store.outbox.markSent('out_old', 1_000);
      expect(await ctx.store.outbox.prune(5_000)).toBe(1);
      expect(await ctx.store.outbox.get('out_old')).toBeNull();
      expect(await ctx.store.outbox.getRaw('out_old')).toBeNull();
      expect((await ctx.store.outbox.getRaw('out_keep'))?.length).toBe(bytes.length);
    });
  });
}
