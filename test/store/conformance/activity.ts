import { describe, expect, it } from 'vitest';
import { CONNECTION_HISTORY_KEEP } from '../../../src/store/activity.js';
import { ACCOUNT, WEBHOOK, failure, imapMessage, ingestOne, outcome, type StoreFactory, useStore } from './harness.js';

const H = 3_600_000;
const SINCE = 500 * H;
const DAY = { since: SINCE, until: SINCE + 24 * H, bucketMs: H };

/** ActivityRepo and ConnectionHistoryRepo: what the admin UI's account page draws. */
export function defineActivityConformance(factory: StoreFactory): void {
  const ctx = useStore(factory);
  let uid = 0;
  /** Stores a message received at `at`; with `ackAt` its webhook acknowledged it then, with `failAt` it failed then. */
  async function message(at: number, o: { ackAt?: number; failAt?: number; account?: string } = {}) {
    const { delivery } = await ingestOne(ctx.store, imapMessage(++uid, o.account ? { account: o.account } : {}), at);
    if (o.ackAt !== undefined) await ctx.store.deliveries.markDelivered(delivery.id, outcome(o.ackAt), 'none');
    if (o.failAt !== undefined) await ctx.store.deliveries.markFailed(delivery.id, failure(o.failAt, { attempts: 15 }));
    return delivery;
  }

  describe('accountActivity', () => {
    it('counts received, acknowledged and failed per bucket, with the median and largest latency of the acknowledged ones', async () => {
      await message(SINCE - 10, { ackAt: SINCE + 5 }); // received before the window, acknowledged in bucket 0 after 15 ms
      await message(SINCE + 1_000, { ackAt: SINCE + 4_000 }); // 3 s
      await message(SINCE + H + 1_000, { ackAt: SINCE + H + 2_000 }); // 1 s
      await message(SINCE + H + 1_500, { ackAt: SINCE + H + 11_500 }); // 10 s
      await message(SINCE + H + 1_600, { ackAt: SINCE + H + 3_600 }); // 2 s
      await message(SINCE + 2 * H + 10, { failAt: SINCE + 3 * H + 10 });
      await message(SINCE + 23 * H + 5); // still pending
      await message(SINCE + 24 * H); // at `until`: outside
      await message(SINCE + 2 * H, { ackAt: SINCE + 2 * H + 1, account: 'other' });
      const evt = await ctx.store.deliveries.enqueueEvent(ACCOUNT, WEBHOOK, 'account.recovered', {}, SINCE + 3 * H);
      await ctx.store.deliveries.markDelivered(evt, outcome(SINCE + 3 * H + 1), 'none');

      const buckets = await ctx.store.activity.accountActivity(ACCOUNT, DAY);
      expect(buckets).toHaveLength(24);
      expect(buckets.map((b) => b.start)).toEqual(Array.from({ length: 24 }, (_, i) => SINCE + i * H));
      const empty = { received: 0, acknowledged: 0, failed: 0, latencyP50Ms: null, latencyMaxMs: null };
      expect(buckets[0]).toEqual({ start: SINCE, received: 1, acknowledged: 2, failed: 0, latencyP50Ms: 15, latencyMaxMs: 3_000 });
      expect(buckets[1]).toEqual({ start: SINCE + H, received: 3, acknowledged: 3, failed: 0, latencyP50Ms: 2_000, latencyMaxMs: 10_000 });
      expect(buckets[2]).toEqual({ ...empty, start: SINCE + 2 * H, received: 1 });
      expect(buckets[3]).toEqual({ ...empty, start: SINCE + 3 * H, failed: 1 });
      expect(buckets[23]).toEqual({ ...empty, start: SINCE + 23 * H, received: 1 });
      for (const i of [4, 10, 22]) expect(buckets[i]).toEqual({ ...empty, start: SINCE + i * H });

      const other = await ctx.store.activity.accountActivity('other', DAY);
      expect(other[2]).toMatchObject({ received: 1, acknowledged: 1, latencyP50Ms: 1, latencyMaxMs: 1 });
      expect((await ctx.store.activity.accountActivity('nobody', DAY)).every((b) => b.received + b.acknowledged + b.failed === 0)).toBe(true);
    });

    it('counts a failed delivery only while it is failed (a replay takes it out), and cuts a last partial bucket', async () => {
      const d = await message(SINCE + 10, { failAt: SINCE + 20 });
      expect((await ctx.store.activity.accountActivity(ACCOUNT, DAY))[0]?.failed).toBe(1);
      expect(await ctx.store.deliveries.retry(d.id, SINCE + 30)).toBe(true);
      expect((await ctx.store.activity.accountActivity(ACCOUNT, DAY))[0]?.failed).toBe(0);
      const partial = await ctx.store.activity.accountActivity(ACCOUNT, { since: SINCE, until: SINCE + 2 * H + 1, bucketMs: H });
      expect(partial.map((b) => b.received)).toEqual([1, 0, 0]);
    });

    it('refuses a reversed or empty window, a bucket that is not positive and more than 1,000 buckets', async () => {
      for (const w of [
        { since: 10, until: 5, bucketMs: 1 },
        { since: 10, until: 10, bucketMs: 1 },
        { since: 0, until: H, bucketMs: 0 },
        { since: 0, until: 1_001, bucketMs: 1 },
        { since: 0.5, until: 10, bucketMs: 1 },
      ]) {
        await expect(ctx.store.activity.accountActivity(ACCOUNT, w)).rejects.toThrow(RangeError);
      }
      expect(await ctx.store.activity.accountActivity(ACCOUNT, { since: 0, until: 1_000, bucketMs: 1 })).toHaveLength(1_000);
    });
  });

  describe('recentFailures', () => {
    it('lists the account failed deliveries since the time given, most recent first, up to the limit', async () => {
      await message(100, { failAt: 200 }); // before `since`
      const a = await message(1_000, { failAt: 1_100 });
      const b = await message(1_000, { failAt: 1_300 });
      const c = await message(1_000, { failAt: 1_200 });
      await message(1_000, { ackAt: 1_400 });
      await message(1_000, { failAt: 1_500, account: 'other' });
      const found = await ctx.store.activity.recentFailures(ACCOUNT, 1_000, 10);
      expect(found.map((d) => d.id)).toEqual([b.id, c.id, a.id]);
      expect(found[0]).toMatchObject({ status: 'failed', lastStatus: 500, lastError: 'HTTP 500', account: ACCOUNT });
      expect((await ctx.store.activity.recentFailures(ACCOUNT, 1_000, 2)).map((d) => d.id)).toEqual([b.id, c.id]);
      expect(await ctx.store.activity.recentFailures('nobody', 0, 10)).toEqual([]);
    });
  });

  describe('connectionHistory', () => {
    const change = (at: number, state: string, error: string | null = null, side: 'incoming' | 'outgoing' = 'incoming') => ({ account: ACCOUNT, side, at, state, error });

    it('appends changes and skips one that repeats the newest state and error of the same side; lists both sides newest first', async () => {
      const h = ctx.store.connectionHistory;
      expect(await h.record(change(10, 'error', 'Not authorized yet'))).toBe(true);
      expect(await h.record(change(20, 'error', 'Not authorized yet'))).toBe(false);
      expect(await h.record(change(30, 'connected'))).toBe(true);
      expect(await h.record(change(35, 'ok', null, 'outgoing'))).toBe(true);
      expect(await h.record(change(40, 'connected'))).toBe(false);
      expect(await h.record(change(50, 'backoff', 'the server closed the connection'))).toBe(true);
      expect(await h.record(change(60, 'backoff', 'the server did not answer'))).toBe(true);
      expect(await h.record({ ...change(70, 'connected'), account: 'other' })).toBe(true);
      expect(await h.recent(ACCOUNT, 10)).toEqual([
        change(60, 'backoff', 'the server did not answer'),
        change(50, 'backoff', 'the server closed the connection'),
        change(35, 'ok', null, 'outgoing'),
        change(30, 'connected'),
        change(10, 'error', 'Not authorized yet'),
      ]);
      expect((await h.recent(ACCOUNT, 2)).map((c) => c.at)).toEqual([60, 50]);
      expect(await h.recent('nobody', 10)).toEqual([]);
      // Another store on the same storage (the CLI, a replica) reads it.
      const peer = await ctx.sut.openPeer();
      expect((await peer.connectionHistory.recent(ACCOUNT, 1))[0]?.at).toBe(60);
    });

    it(`keeps at most ${CONNECTION_HISTORY_KEEP} rows per account: a flapping account drops its oldest, others keep theirs`, async () => {
      const h = ctx.store.connectionHistory;
      await h.record({ ...change(1, 'connected'), account: 'other' });
      const n = CONNECTION_HISTORY_KEEP + 5;
      for (let i = 1; i <= n; i++) await h.record(change(i, i % 2 ? 'backoff' : 'connected', i % 2 ? 'the server closed the connection' : null));
      const kept = await h.recent(ACCOUNT, 10_000);
      expect(kept).toHaveLength(CONNECTION_HISTORY_KEEP);
      expect(kept[0]?.at).toBe(n);
      expect(kept.at(-1)?.at).toBe(n - CONNECTION_HISTORY_KEEP + 1);
      expect(await h.recent('other', 10)).toHaveLength(1);
    });
  });
}
