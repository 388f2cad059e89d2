import { describe, expect, it } from 'vitest';
import { MailgateError } from '../../../src/errors.js';
import type { Fence, WakeChannel } from '../../../src/store/cluster.js';
import type { Store } from '../../../src/store/store.js';
import { ACCOUNT, imapMessage, ingestDelivered, ingestOne, outboxItem, pop3Message, settle, type StoreFactory, useStore } from './harness.js';

const TTL = 30_000;

function leaseLost(r: { ok: true } | { ok: false; error: unknown }): boolean {
  return !r.ok && r.error instanceof MailgateError && r.error.code === 'LEASE_LOST';
}

async function acquired(store: Store, account: string, owner: string, now: number): Promise<Fence> {
  const f = await store.leases.acquire(account, owner, now, TTL);
  if (!f) throw new Error(`expected ${owner} to take the lease of ${account}`);
  return f;
}

/** Leases with a fencing epoch, fenced writes, membership, named locks, delivery claims, token refresh holds, the wake-up bus. */
export function defineClusterConformance(factory: StoreFactory): void {
  const ctx = useStore(factory);

  describe('leases', () => {
    it('gives a free lease to the first owner with epoch 1 and refuses another owner until it expires', async () => {
      const a = await acquired(ctx.store, ACCOUNT, 'node-a', 1_000);
      expect(a).toEqual({ account: ACCOUNT, owner: 'node-a', epoch: 1 });
      expect(await ctx.store.leases.acquire(ACCOUNT, 'node-b', 1_000 + TTL - 1, TTL)).toBeNull();
      expect(await ctx.store.leases.holds(a, 1_000 + TTL - 1)).toBe(true);
      expect(await ctx.store.leases.holds(a, 1_000 + TTL)).toBe(false);
      const b = await acquired(ctx.store, ACCOUNT, 'node-b', 1_000 + TTL);
      expect(b.epoch).toBe(2);
      expect(await ctx.store.leases.holds(a, 1_000 + TTL)).toBe(false);
      expect(await ctx.store.leases.list(1_000 + TTL)).toEqual([{ account: ACCOUNT, owner: 'node-b', epoch: 2, expiresAt: 1_000 + 2 * TTL }]);
    });

    it('renews only the fences still held, even after expiry when nobody took the lease', async () => {
      const a = await acquired(ctx.store, 'one', 'node-a', 1_000);
      const lost = await acquired(ctx.store, 'two', 'node-a', 1_000);
      await acquired(ctx.store, 'two', 'node-b', 1_000 + TTL);
      const renewed = await ctx.store.leases.renew([a, lost], 1_000 + TTL + 5, TTL);
      expect([...renewed]).toEqual(['one']);
      expect(await ctx.store.leases.holds(a, 1_000 + 2 * TTL)).toBe(true);
      expect(await ctx.store.leases.list(1_000 + TTL + 5)).toEqual([
        { account: 'one', owner: 'node-a', epoch: 1, expiresAt: 1_000 + 2 * TTL + 5 },
        { account: 'two', owner: 'node-b', epoch: 2, expiresAt: 1_000 + 2 * TTL },
      ]);
      expect(await ctx.store.leases.renew([], 5_000, TTL)).toEqual(new Set());
    });

    it('frees a released lease at once for anyone, with a higher epoch; a stale release changes nothing', async () => {
      const a = await acquired(ctx.store, ACCOUNT, 'node-a', 1_000);
      expect(await ctx.store.leases.release(a, 2_000)).toBe(true);
      expect(await ctx.store.leases.release(a, 2_000)).toBe(false);
      expect(await ctx.store.leases.list(2_000)).toEqual([]);
      const b = await acquired(ctx.store, ACCOUNT, 'node-b', 2_001);
      expect(b.epoch).toBe(2);
      expect(await ctx.store.leases.release(a, 2_002)).toBe(false);
      expect(await ctx.store.leases.holds(b, 2_002)).toBe(true);
      expect(await ctx.store.leases.renew([a], 2_003, TTL)).toEqual(new Set());
    });

    it('gives the same owner name a new epoch on acquire, so an earlier incarnation is fenced off', async () => {
      const before = await acquired(ctx.store, ACCOUNT, 'node-a', 1_000);
      const after = await acquired(ctx.store, ACCOUNT, 'node-a', 1_500);
      expect(after.epoch).toBe(before.epoch + 1);
      expect(await ctx.store.leases.holds(before, 1_500)).toBe(false);
      expect(await ctx.store.leases.holds(after, 1_500)).toBe(true);
    });

    it('lets exactly one of several stores on the storage take a free lease', async () => {
      const peers = [ctx.store, await ctx.sut.openPeer(), await ctx.sut.openPeer()];
      const results = await Promise.all(peers.map((s, i) => s.leases.acquire(ACCOUNT, `node-${i}`, 1_000, TTL)));
      const winners = results.filter((r) => r !== null);
      expect(winners).toHaveLength(1);
      expect(await peers[1]?.leases.list(1_000)).toEqual([{ account: ACCOUNT, owner: winners[0]?.owner, epoch: 1, expiresAt: 1_000 + TTL }]);
    });
  });

  describe('fenced writes', () => {
    /** node-a held the account, node-b took it over: `stale` is node-a's old fence. */
    async function takenOver(): Promise<{ stale: Fence; current: Fence }> {
      const stale = await acquired(ctx.store, ACCOUNT, 'node-a', 1_000);
      const current = await acquired(ctx.store, ACCOUNT, 'node-b', 1_000 + TTL);
      return { stale, current };
    }

    it('commits an ingest under the current fence', async () => {
      const fence = await acquired(ctx.store, ACCOUNT, 'node-a', 1_000);
      const [r] = await ctx.store.ingest.insertMessages([imapMessage(1)], 1_500, fence);
      expect(r?.duplicate).toBe(false);
      expect(await ctx.store.ingest.getCursor(ACCOUNT, 'INBOX')).toEqual({ uidValidity: 7, lastUid: 1 });
      expect((await ctx.store.deliveries.countByStatus()).pending).toBe(1);
    });

    it('refuses an ingest under a lost fence with LEASE_LOST and stores nothing of it', async () => {
      const { stale, current } = await takenOver();
      await ctx.store.ingest.insertMessages([imapMessage(1)], 40_000, current);
      const r = await settle(() => ctx.store.ingest.insertMessages([imapMessage(2), imapMessage(3)], 40_001, stale));
      expect(leaseLost(r)).toBe(true);
      expect(await ctx.store.ingest.getCursor(ACCOUNT, 'INBOX')).toEqual({ uidValidity: 7, lastUid: 1 });
      expect(await ctx.store.deliveries.countByStatus()).toEqual({ pending: 1, delivered: 0, failed: 0 });
      expect(await ctx.store.messages.lastReceivedAt(ACCOUNT)).toBe(40_000);
    });

    it('refuses a fenced batch holding another account\'s message, storing nothing', async () => {
      const fence = await acquired(ctx.store, ACCOUNT, 'node-a', 1_000);
      const r = await settle(() => ctx.store.ingest.insertMessages([imapMessage(1), imapMessage(2, { account: 'sales' })], 1_500, fence));
      expect(!r.ok && r.error instanceof MailgateError && r.error.code === 'BAD_REQUEST').toBe(true);
      expect(await ctx.store.deliveries.countByStatus()).toEqual({ pending: 0, delivered: 0, failed: 0 });
    });

    it('refuses a cursor reset under a lost fence, leaving the cursor', async () => {
      const { stale, current } = await takenOver();
      await ctx.store.ingest.insertMessages([imapMessage(5)], 40_000, current);
      expect(leaseLost(await settle(() => ctx.store.ingest.resetCursor(ACCOUNT, 'INBOX', 8, 40_001, undefined, stale)))).toBe(true);
      expect(await ctx.store.ingest.getCursor(ACCOUNT, 'INBOX')).toEqual({ uidValidity: 7, lastUid: 5 });
      await ctx.store.ingest.resetCursor(ACCOUNT, 'INBOX', 8, 40_002, undefined, current);
      expect(await ctx.store.ingest.getCursor(ACCOUNT, 'INBOX')).toEqual({ uidValidity: 8, lastUid: 0 });
    });

    it('refuses to forget UIDLs under a lost fence', async () => {
      const { stale, current } = await takenOver();
      await ingestDelivered(ctx.store, pop3Message('u1'), 40_000, 'none');
      expect(leaseLost(await settle(() => ctx.store.ingest.forgetUidlsExcept(ACCOUNT, [], stale)))).toBe(true);
      expect(await ctx.store.ingest.knownUidls(ACCOUNT, ['u1'])).toEqual(new Set(['u1']));
      expect(await ctx.store.ingest.forgetUidlsExcept(ACCOUNT, [], current)).toBe(1);
    });

    it('refuses to mark acks done under a lost fence: they stay due', async () => {
      const { stale, current } = await takenOver();
      const id = await ingestDelivered(ctx.store, imapMessage(1), 40_000, 'due');
      expect(leaseLost(await settle(() => ctx.store.ingest.markAcks([id], 'done', null, null, stale)))).toBe(true);
      expect(leaseLost(await settle(() => ctx.store.ingest.markAcks([id], 'due', 'x', 99_000, stale)))).toBe(true);
      expect((await ctx.store.ingest.dueAcks(ACCOUNT, 10, 40_002)).map((a) => a.id)).toEqual([id]);
      await ctx.store.ingest.markAcks([id], 'done', null, null, current);
      expect(await ctx.store.ingest.dueAcks(ACCOUNT, 10, 40_003)).toEqual([]);
    });

    it('marks acks only of the fence\'s own account', async () => {
      const fence = await acquired(ctx.store, ACCOUNT, 'node-a', 1_000);
      const mine = await ingestDelivered(ctx.store, imapMessage(1), 1_100, 'due');
      const theirs = await ingestDelivered(ctx.store, imapMessage(2, { account: 'sales' }), 1_100, 'due');
      await ctx.store.ingest.markAcks([mine, theirs], 'done', null, null, fence);
      expect(await ctx.store.ingest.dueAcks(ACCOUNT, 10, 2_000)).toEqual([]);
      expect((await ctx.store.ingest.dueAcks('sales', 10, 2_000)).map((a) => a.id)).toEqual([theirs]);
    });

    it('claims outbox rows only of accounts whose fence still holds', async () => {
      const { stale } = await takenOver();
      const sales = await acquired(ctx.store, 'sales', 'node-a', 40_000);
      await ctx.store.outbox.enqueue(outboxItem('out_1', { now: 40_000 }));
      await ctx.store.outbox.enqueue(outboxItem('out_2', { account: 'sales', now: 40_000 }));
      await ctx.store.outbox.enqueue(outboxItem('out_3', { account: 'other', now: 40_000 }));
      const claimed = await ctx.store.outbox.claimDue(40_001, 10, undefined, [stale, sales]);
      expect(claimed.map((r) => r.id)).toEqual(['out_2']);
      expect((await ctx.store.outbox.get('out_1'))?.status).toBe('queued');
      expect(await ctx.store.outbox.claimDue(40_002, 10, undefined, [])).toEqual([]);
      expect((await ctx.store.outbox.claimDue(40_002, 10)).map((r) => r.id).sort()).toEqual(['out_1', 'out_3']);
    });

    it('fails interrupted sends of the fenced account only, and nothing under a lost fence', async () => {
      const { stale, current } = await takenOver();
      await ctx.store.outbox.enqueue(outboxItem('out_1', { now: 40_000 }));
      await ctx.store.outbox.enqueue(outboxItem('out_2', { account: 'sales', now: 40_000 }));
      await ctx.store.outbox.claimDue(40_001, 10);
      expect(leaseLost(await settle(() => ctx.store.outbox.failInterrupted('stopped mid-send', 40_002, stale)))).toBe(true);
      expect(await ctx.store.outbox.failInterrupted('stopped mid-send', 40_003, current)).toEqual(['out_1']);
      expect((await ctx.store.outbox.get('out_2'))?.status).toBe('sending');
    });
  });

  describe('nodes', () => {
    const a1 = { name: 'node-a', instance: 'i1', startedAt: 1_000 };

    it('records heartbeats and lists the nodes seen within the ttl', async () => {
      expect(await ctx.store.nodes.heartbeat(a1, 1_000, TTL)).toBe(true);
      expect(await ctx.store.nodes.heartbeat({ name: 'node-b', instance: 'j1', startedAt: 2_000 }, 2_000, TTL)).toBe(true);
      expect(await ctx.store.nodes.heartbeat(a1, 20_000, TTL)).toBe(true);
      expect(await ctx.store.nodes.live(31_000, TTL)).toEqual([
        { name: 'node-a', instance: 'i1', startedAt: 1_000, lastSeenAt: 20_000 },
        { name: 'node-b', instance: 'j1', startedAt: 2_000, lastSeenAt: 2_000 },
      ]);
      expect((await ctx.store.nodes.live(32_000, TTL)).map((n) => n.name)).toEqual(['node-a']);
    });

    it('refuses a second instance under the same name while the first is alive, and lets it in once the first went quiet', async () => {
      await ctx.store.nodes.heartbeat(a1, 1_000, TTL);
      const a2 = { name: 'node-a', instance: 'i2', startedAt: 5_000 };
      expect(await ctx.store.nodes.heartbeat(a2, 5_000, TTL)).toBe(false);
      expect(await ctx.store.nodes.live(5_000, TTL)).toEqual([{ name: 'node-a', instance: 'i1', startedAt: 1_000, lastSeenAt: 1_000 }]);
      expect(await ctx.store.nodes.heartbeat(a2, 1_000 + TTL, TTL)).toBe(true);
      expect(await ctx.store.nodes.heartbeat(a1, 1_000 + TTL + 1, TTL)).toBe(false);
    });

    it('removes a node that leaves, but only its own instance', async () => {
      await ctx.store.nodes.heartbeat(a1, 1_000, TTL);
      await ctx.store.nodes.remove('node-a', 'other-instance');
      expect(await ctx.store.nodes.live(1_000, TTL)).toHaveLength(1);
      await ctx.store.nodes.remove('node-a', 'i1');
      expect(await ctx.store.nodes.live(1_000, TTL)).toEqual([]);
      expect(await ctx.store.nodes.heartbeat({ name: 'node-a', instance: 'i2', startedAt: 1_001 }, 1_001, TTL)).toBe(true);
    });
  });

  describe('named locks', () => {
    it('gives a lock to one owner until it expires or is unlocked', async () => {
      expect(await ctx.store.locks.tryLock('retention', 'node-a', 1_000, TTL)).toBe(true);
      expect(await ctx.store.locks.tryLock('retention', 'node-b', 1_001, TTL)).toBe(false);
      expect(await ctx.store.locks.tryLock('retention', 'node-a', 1_002, TTL)).toBe(true); // held: extended
      expect(await ctx.store.locks.tryLock('retention', 'node-b', 1_000 + TTL, TTL)).toBe(false);
      expect(await ctx.store.locks.tryLock('other', 'node-b', 1_003, TTL)).toBe(true);
      await ctx.store.locks.unlock('retention', 'node-b'); // not theirs: nothing
      expect(await ctx.store.locks.tryLock('retention', 'node-b', 1_004, TTL)).toBe(false);
      await ctx.store.locks.unlock('retention', 'node-a');
      expect(await ctx.store.locks.tryLock('retention', 'node-b', 1_005, TTL)).toBe(true);
      expect(await ctx.store.locks.tryLock('retention', 'node-a', 1_005 + TTL, TTL)).toBe(true);
    });

    it('lets exactly one of several stores take a free lock', async () => {
      const peers = [ctx.store, await ctx.sut.openPeer(), await ctx.sut.openPeer()];
      const got = await Promise.all(peers.map((s, i) => s.locks.tryLock('retention', `node-${i}`, 1_000, TTL)));
      expect(got.filter(Boolean)).toHaveLength(1);
    });
  });

  describe('delivery claims', () => {
    it('never gives a delivery claimed by one node to another while the claim lasts, and does once it ran out', async () => {
      const peer = await ctx.sut.openPeer();
      const { delivery } = await ingestOne(ctx.store, imapMessage(1), 1_000);
      const none = new Set<string>();
      const a = await ctx.store.deliveries.claimDue('pipeline', 1_000, 10, none, { owner: 'node-a', until: 61_000 });
      expect(a.map((d) => d.id)).toEqual([delivery.id]);
      expect(await peer.deliveries.claimDue('pipeline', 2_000, 10, none, { owner: 'node-b', until: 62_000 })).toEqual([]);
      // The claimant itself may take it again (its own in-flight ids go in `exclude`).
      expect(await ctx.store.deliveries.claimDue('pipeline', 2_000, 10, new Set([delivery.id]), { owner: 'node-a', until: 62_000 })).toEqual([]);
      expect((await ctx.store.deliveries.claimDue('pipeline', 2_000, 10, none, { owner: 'node-a', until: 62_000 })).map((d) => d.id)).toEqual([
        delivery.id,
      ]);
      // node-a died: its claim is void after `until`.
      expect((await peer.deliveries.claimDue('pipeline', 62_000, 10, none, { owner: 'node-b', until: 122_000 })).map((d) => d.id)).toEqual([
        delivery.id,
      ]);
      expect((await ctx.store.deliveries.get(delivery.id))?.status).toBe('pending');
    });

    it('ends the claim when an outcome is recorded', async () => {
      const peer = await ctx.sut.openPeer();
      const { delivery } = await ingestOne(ctx.store, imapMessage(1), 1_000);
      const none = new Set<string>();
      await ctx.store.deliveries.claimDue('pipeline', 1_000, 10, none, { owner: 'node-a', until: 61_000 });
      await ctx.store.deliveries.markRetry(delivery.id, { attempts: 1, status: 500, error: 'HTTP 500', responseExcerpt: null, now: 1_500 }, 2_000);
      expect((await peer.deliveries.claimDue('pipeline', 2_000, 10, none, { owner: 'node-b', until: 62_000 })).map((d) => d.id)).toEqual([
        delivery.id,
      ]);
      await peer.deliveries.markRenderFailed(delivery.id, { attempts: 2, status: null, error: 'overran', responseExcerpt: null, now: 2_100 }, 3_000);
      expect((await ctx.store.deliveries.claimDue('pipeline', 3_000, 10, none, { owner: 'node-a', until: 63_000 })).map((d) => d.id)).toEqual([
        delivery.id,
      ]);
      await ctx.store.deliveries.markFailed(delivery.id, { attempts: 3, status: 400, error: 'HTTP 400', responseExcerpt: null, now: 3_100 });
      expect(await ctx.store.deliveries.retry(delivery.id, 4_000)).toBe(true);
      expect((await peer.deliveries.claimDue('pipeline', 4_000, 10, none, { owner: 'node-b', until: 64_000 })).map((d) => d.id)).toEqual([
        delivery.id,
      ]);
    });

    it('gives each of several nodes claiming at once different deliveries', async () => {
      const peers = [ctx.store, await ctx.sut.openPeer(), await ctx.sut.openPeer()];
      await ctx.store.ingest.insertMessages(Array.from({ length: 9 }, (_, i) => imapMessage(i + 1)), 1_000);
      const claimed = await Promise.all(
        peers.map((s, i) => s.deliveries.claimDue('pipeline', 1_000, 4, new Set(), { owner: `node-${i}`, until: 61_000 })),
      );
      const ids = claimed.flat().map((d) => d.id);
      expect(ids).toHaveLength(9);
      expect(new Set(ids).size).toBe(9);
    });
  });

  describe('token refresh hold', () => {
    const token = {
      account: ACCOUNT,
      credential: 'google',
      refreshToken: 'rt-1',
      accessToken: 'at-1',
      accessExpiresAt: 10_000,
      scope: null,
      state: 'ok' as const,
      lastRefreshAt: 1_000,
      refreshTokenIssuedAt: 1_000,
      lastError: null,
    };

    it('holds the token row for one owner, hands back the record as it is now, and lets go on release or expiry', async () => {
      const peer = await ctx.sut.openPeer();
      await ctx.store.tokens.save(token, 1_000);
      const a = await ctx.store.tokens.takeForRefresh(ACCOUNT, 'node-a', 2_000, TTL);
      expect(a).toEqual({ held: true, record: { ...token, updatedAt: 1_000 } });
      expect(await peer.tokens.takeForRefresh(ACCOUNT, 'node-b', 2_001, TTL)).toEqual({ held: false });
      // node-a refreshed: the record node-b gets next is the fresh one.
      await ctx.store.tokens.save({ ...token, accessToken: 'at-2', accessExpiresAt: 90_000, lastRefreshAt: 2_500 }, 2_500);
      await peer.tokens.releaseRefresh(ACCOUNT, 'node-b'); // not its hold: nothing
      expect(await peer.tokens.takeForRefresh(ACCOUNT, 'node-b', 2_600, TTL)).toEqual({ held: false });
      await ctx.store.tokens.releaseRefresh(ACCOUNT, 'node-a');
      const b = await peer.tokens.takeForRefresh(ACCOUNT, 'node-b', 2_700, TTL);
      expect(b).toEqual({ held: true, record: expect.objectContaining({ accessToken: 'at-2', accessExpiresAt: 90_000 }) });
      // node-b died holding it: free again once the hold ran out.
      expect(await ctx.store.tokens.takeForRefresh(ACCOUNT, 'node-a', 2_700 + TTL - 1, TTL)).toEqual({ held: false });
      expect((await ctx.store.tokens.takeForRefresh(ACCOUNT, 'node-a', 2_700 + TTL, TTL)).held).toBe(true);
      expect(await ctx.store.tokens.get(ACCOUNT)).toMatchObject({ accessToken: 'at-2', refreshToken: 'rt-1' });
    });

    it('answers held with no record for an account without a token row', async () => {
      expect(await ctx.store.tokens.takeForRefresh('nobody', 'node-a', 1_000, TTL)).toEqual({ held: true, record: null });
    });
  });

  describe('wake-up bus', () => {
    function next(channel: WakeChannel): Promise<string> {
      return new Promise((resolve) => {
        const off = ctx.store.bus.subscribe(channel, (payload) => {
          off();
          resolve(payload);
        });
      });
    }

    it('brings a publish to the subscribers of its channel only', async () => {
      const seen: string[] = [];
      const offOther = ctx.store.bus.subscribe('ack_due', (p) => seen.push(`ack_due:${p}`));
      const gone = ctx.store.bus.subscribe('delivery_due', (p) => seen.push(`gone:${p}`));
      gone();
      const got = next('delivery_due');
      await ctx.store.bus.publish('delivery_due', 'support');
      expect(await got).toBe('support');
      const authorized = next('account_authorized');
      await ctx.store.bus.publish('account_authorized', 'sales');
      expect(await authorized).toBe('sales');
      offOther();
      expect(seen).toEqual([]);
    });
  });
}
