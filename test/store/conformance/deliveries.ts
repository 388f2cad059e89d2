import { describe, expect, it } from 'vitest';
import type { DeliveryRecord } from '../../../src/store/deliveries.js';
import { ACCOUNT, WEBHOOK, failure, imapMessage, ingestOne, outcome, type StoreFactory, useStore } from './harness.js';

/** DeliveryRepo: the durable webhook queue. */
export function defineDeliveryConformance(factory: StoreFactory): void {
  const ctx = useStore(factory);

  /** Three message deliveries: m1 created 100 but retried to 250, m2 due 200, m3 due 300. */
  async function queueOfThree(): Promise<{ d1: DeliveryRecord; d2: DeliveryRecord; d3: DeliveryRecord }> {
    const d1 = (await ingestOne(ctx.store, imapMessage(1), 100)).delivery;
    const d2 = (await ingestOne(ctx.store, imapMessage(2), 200)).delivery;
    const d3 = (await ingestOne(ctx.store, imapMessage(3), 300)).delivery;
    await ctx.store.deliveries.markRetry(d1.id, failure(150), 250);
    return { d1, d2, d3 };
  }
  const ids = (ds: DeliveryRecord[]) => ds.map((d) => d.id);

  describe('claimDue', () => {
    it('returns due pending deliveries of the webhook in due order (next attempt, then creation), up to the limit', async () => {
      const { d1, d2, d3 } = await queueOfThree();
      expect(ids(await ctx.store.deliveries.claimDue(WEBHOOK, 1_000, 10, new Set()))).toEqual([d2.id, d1.id, d3.id]);
      expect(ids(await ctx.store.deliveries.claimDue(WEBHOOK, 1_000, 2, new Set()))).toEqual([d2.id, d1.id]);
      expect(ids(await ctx.store.deliveries.claimDue(WEBHOOK, 240, 10, new Set()))).toEqual([d2.id]);
      expect(await ctx.store.deliveries.claimDue(WEBHOOK, 199, 10, new Set())).toEqual([]);
      expect(await ctx.store.deliveries.claimDue(WEBHOOK, 1_000, 0, new Set())).toEqual([]);
    });

    it('orders deliveries due at the same time by creation', async () => {
      const a = (await ingestOne(ctx.store, imapMessage(1), 100)).delivery;
      const b = (await ingestOne(ctx.store, imapMessage(2), 200)).delivery;
      await ctx.store.deliveries.markRetry(a.id, failure(300), 500);
      await ctx.store.deliveries.markRetry(b.id, failure(300), 500);
      expect(ids(await ctx.store.deliveries.claimDue(WEBHOOK, 500, 10, new Set()))).toEqual([a.id, b.id]);
    });

    it('skips ids in exclude and still fills the limit from the rest', async () => {
      const { d1, d2, d3 } = await queueOfThree();
      expect(ids(await ctx.store.deliveries.claimDue(WEBHOOK, 1_000, 10, new Set([d2.id])))).toEqual([d1.id, d3.id]);
      expect(ids(await ctx.store.deliveries.claimDue(WEBHOOK, 1_000, 1, new Set([d2.id, d1.id, 'dlv_unknown'])))).toEqual([d3.id]);
      expect(await ctx.store.deliveries.claimDue(WEBHOOK, 1_000, 10, new Set([d1.id, d2.id, d3.id]))).toEqual([]);
    });

    it('keeps webhooks apart and leaves delivered and failed ones out', async () => {
      const { d1, d2, d3 } = await queueOfThree();
      const other = (await ingestOne(ctx.store, imapMessage(4, { webhook: 'other' }), 100)).delivery;
      await ctx.store.deliveries.markDelivered(d1.id, outcome(400), 'none');
      await ctx.store.deliveries.markFailed(d2.id, failure(400, { attempts: 15 }));
      expect(ids(await ctx.store.deliveries.claimDue(WEBHOOK, 1_000, 10, new Set()))).toEqual([d3.id]);
      expect(ids(await ctx.store.deliveries.claimDue('other', 1_000, 10, new Set()))).toEqual([other.id]);
      expect(await ctx.store.deliveries.claimDue('nobody', 1_000, 10, new Set())).toEqual([]);
    });

    it('is a read: the rows stay pending with their attempts (the caller keeps in-flight ids in exclude)', async () => {
      const { d2 } = await queueOfThree();
      const [first] = await ctx.store.deliveries.claimDue(WEBHOOK, 1_000, 1, new Set());
      expect(first).toEqual(await ctx.store.deliveries.get(d2.id));
      expect(first).toMatchObject({ status: 'pending', attempts: 0 });
      expect(ids(await ctx.store.deliveries.claimDue(WEBHOOK, 1_000, 1, new Set()))).toEqual([d2.id]);
    });
  });

  describe('nextDueAt', () => {
    it('is the earliest next attempt among pending deliveries of any webhook, or null', async () => {
      expect(await ctx.store.deliveries.nextDueAt()).toBeNull();
      const { d1, d2, d3 } = await queueOfThree();
      await ingestOne(ctx.store, imapMessage(4, { webhook: 'other' }), 900);
      expect(await ctx.store.deliveries.nextDueAt()).toBe(200);
      await ctx.store.deliveries.markDelivered(d2.id, outcome(400), 'none');
      expect(await ctx.store.deliveries.nextDueAt()).toBe(250);
      await ctx.store.deliveries.markFailed(d1.id, failure(400));
      await ctx.store.deliveries.markRetry(d3.id, failure(400), 5_000);
      expect(await ctx.store.deliveries.nextDueAt()).toBe(900);
    });
  });

  describe('outcomes', () => {
    it('markDelivered records the outcome and clears the last error', async () => {
      const { d1 } = await queueOfThree();
      await ctx.store.deliveries.markDelivered(d1.id, { attempts: 2, status: 204, error: null, responseExcerpt: '', now: 700 }, 'none');
      expect(await ctx.store.deliveries.get(d1.id)).toEqual({
        ...d1,
        status: 'delivered',
        attempts: 2,
        nextAttemptAt: 250,
        lastStatus: 204,
        lastError: null,
        responseExcerpt: '',
        updatedAt: 700,
        deliveredAt: 700,
      });
    });

    it("markDelivered with serverAck 'due' makes the message's afterDelivery due, 'none' does not", async () => {
      const a = await ingestOne(ctx.store, imapMessage(1), 100);
      const b = await ingestOne(ctx.store, imapMessage(2), 100);
      expect(await ctx.store.ingest.dueAcks(ACCOUNT, 10, 1_000)).toEqual([]);
      await ctx.store.deliveries.markDelivered(a.delivery.id, outcome(200), 'due');
      await ctx.store.deliveries.markDelivered(b.delivery.id, outcome(200), 'none');
      expect(await ctx.store.ingest.dueAcks(ACCOUNT, 10, 1_000)).toEqual([{ id: a.id, origin: { kind: 'imap', mailbox: 'INBOX', uid: 1, uidValidity: 7 } }]);
    });

    it('markDelivered of an event (no message) is fine with either serverAck', async () => {
      const id = await ctx.store.deliveries.enqueueEvent(ACCOUNT, WEBHOOK, 'account.reauth_required', { error: 'x' }, 1_000);
      await ctx.store.deliveries.markDelivered(id, outcome(2_000), 'due');
      expect((await ctx.store.deliveries.get(id))?.status).toBe('delivered');
      expect(await ctx.store.ingest.dueAcks(ACCOUNT, 10, Number.MAX_SAFE_INTEGER)).toEqual([]);
    });

    it('markDelivered resolves only once committed: another connection sees it, and so does a restart', async () => {
      const a = await ingestOne(ctx.store, imapMessage(1), 100);
      const b = await ingestOne(ctx.store, imapMessage(2), 100);
      await Promise.all([
        ctx.store.deliveries.markDelivered(a.delivery.id, outcome(200), 'due'),
        ctx.store.deliveries.markDelivered(b.delivery.id, outcome(200), 'none'),
      ]);
      const peer = await ctx.sut.openPeer();
      expect((await peer.deliveries.get(a.delivery.id))?.status).toBe('delivered');
      expect((await peer.deliveries.get(b.delivery.id))?.status).toBe('delivered');
      expect((await peer.ingest.dueAcks(ACCOUNT, 10, 1_000)).map((x) => x.id)).toEqual([a.id]);
    });

    it('markRetry keeps the delivery pending, records the attempt and reschedules it', async () => {
      const { d2 } = await queueOfThree();
      await ctx.store.deliveries.markRetry(d2.id, failure(600, { attempts: 3, status: null, error: 'timeout', responseExcerpt: null }), 9_000);
      expect(await ctx.store.deliveries.get(d2.id)).toEqual({
        ...d2,
        attempts: 3,
        nextAttemptAt: 9_000,
        lastStatus: null,
        lastError: 'timeout',
        responseExcerpt: null,
        updatedAt: 600,
      });
      expect(ids(await ctx.store.deliveries.claimDue(WEBHOOK, 8_999, 10, new Set()))).not.toContain(d2.id);
      expect(ids(await ctx.store.deliveries.claimDue(WEBHOOK, 9_000, 10, new Set()))).toContain(d2.id);
    });

    it('markFailed parks the delivery with its last outcome', async () => {
      const { d3 } = await queueOfThree();
      await ctx.store.deliveries.markFailed(d3.id, failure(800, { attempts: 15, status: 404, error: 'HTTP 404', responseExcerpt: 'nope' }));
      expect(await ctx.store.deliveries.get(d3.id)).toMatchObject({
        status: 'failed',
        attempts: 15,
        lastStatus: 404,
        lastError: 'HTTP 404',
        responseExcerpt: 'nope',
        updatedAt: 800,
        deliveredAt: null,
      });
    });

    it('setEvent turns message.received into message.failed and changes nothing else', async () => {
      const { d1 } = await queueOfThree();
      const before = await ctx.store.deliveries.get(d1.id);
      await ctx.store.deliveries.setEvent(d1.id, 'message.failed');
      expect(await ctx.store.deliveries.get(d1.id)).toEqual({ ...before, event: 'message.failed' });
    });

    it('setEvent with a body stores it, to be posted from then on', async () => {
      const { d1 } = await queueOfThree();
      await ctx.store.deliveries.setEvent(d1.id, 'message.failed', '{"event":"message.failed","reason":"malformed"}');
      expect(await ctx.store.deliveries.get(d1.id)).toMatchObject({ event: 'message.failed', payloadJson: '{"event":"message.failed","reason":"malformed"}' });
      // A later setEvent without a body keeps it.
      await ctx.store.deliveries.setEvent(d1.id, 'message.failed');
      expect((await ctx.store.deliveries.get(d1.id))?.payloadJson).toBe('{"event":"message.failed","reason":"malformed"}');
    });

    it('markRenderFailed counts the attempt and a render failure, keeps it pending and due later', async () => {
      const { d1 } = await queueOfThree();
      const n1 = await ctx.store.deliveries.markRenderFailed(d1.id, failure(700, { attempts: 1, status: null, error: 'thread died', responseExcerpt: null }), 5_000);
      const n2 = await ctx.store.deliveries.markRenderFailed(d1.id, failure(800, { attempts: 2, status: null, error: 'thread died again', responseExcerpt: null }), 9_000);
      expect([n1, n2]).toEqual([1, 2]);
      expect(await ctx.store.deliveries.get(d1.id)).toMatchObject({ status: 'pending', attempts: 2, renderFailures: 2, lastError: 'thread died again', nextAttemptAt: 9_000, updatedAt: 800 });
      expect(await ctx.store.deliveries.claimDue(WEBHOOK, 8_999, 10, new Set())).not.toContainEqual(expect.objectContaining({ id: d1.id }));
    });
  });

  describe('enqueueEvent', () => {
    it('queues an evt_ delivery, due now, whose payload is the contract envelope plus the fields', async () => {
      const before = Date.now();
      const id = await ctx.store.deliveries.enqueueEvent(ACCOUNT, WEBHOOK, 'account.reauth_required', { error: 'invalid_grant: expired', n: 1 }, Date.now());
      const after = Date.now();
      expect(id).toMatch(/^evt_/);
      const d = await ctx.store.deliveries.get(id);
      expect(d).toMatchObject({ id, account: ACCOUNT, webhook: WEBHOOK, event: 'account.reauth_required', messageRef: null, status: 'pending', attempts: 0 });
      expect(JSON.parse(d?.payloadJson ?? 'null')).toEqual({ event: 'account.reauth_required', id, account: ACCOUNT, error: 'invalid_grant: expired', n: 1 });
      for (const t of [d?.createdAt, d?.nextAttemptAt]) {
        expect(t).toBeGreaterThanOrEqual(before);
        expect(t).toBeLessThanOrEqual(after);
      }
      expect(ids(await ctx.store.deliveries.claimDue(WEBHOOK, after, 10, new Set()))).toEqual([id]);
    });

    it('is due at the given time and keeps its envelope first and whole, whatever the fields are called', async () => {
      const id = await ctx.store.deliveries.enqueueEvent(ACCOUNT, WEBHOOK, 'account.reauth_required', { error: 'e', id: 'forged', event: 'message.received', account: 'other' }, 4_000);
      const d = await ctx.store.deliveries.get(id);
      expect(d).toMatchObject({ createdAt: 4_000, updatedAt: 4_000, nextAttemptAt: 4_000 });
      const body = JSON.parse(d?.payloadJson ?? 'null') as Record<string, unknown>;
      expect(body).toEqual({ event: 'account.reauth_required', id, account: ACCOUNT, error: 'e' });
      expect(Object.keys(body).slice(0, 3)).toEqual(['event', 'id', 'account']);
      expect(ids(await ctx.store.deliveries.claimDue(WEBHOOK, 3_999, 10, new Set()))).toEqual([]);
      expect(ids(await ctx.store.deliveries.claimDue(WEBHOOK, 4_000, 10, new Set()))).toEqual([id]);
    });

    it('gives every event its own id', async () => {
      const a = await ctx.store.deliveries.enqueueEvent(ACCOUNT, WEBHOOK, 'account.reauth_required', {}, 1_000);
      const b = await ctx.store.deliveries.enqueueEvent(ACCOUNT, WEBHOOK, 'account.reauth_required', {}, 1_000);
      expect(a).not.toBe(b);
      expect((await ctx.store.deliveries.countByStatus()).pending).toBe(2);
    });
  });

  describe('reading', () => {
    it('get answers null for an unknown id', async () => {
      expect(await ctx.store.deliveries.get('dlv_nope')).toBeNull();
    });

    it('list filters by status, honours the limit and shows the most recently changed first', async () => {
      const { d1, d2, d3 } = await queueOfThree(); // d1 last changed at 150
      await ctx.store.deliveries.markFailed(d3.id, failure(500));
      await ctx.store.deliveries.markDelivered(d2.id, outcome(400), 'none');
      expect(ids(await ctx.store.deliveries.list({}))).toEqual([d3.id, d2.id, d1.id]);
      expect(ids(await ctx.store.deliveries.list({ limit: 2 }))).toEqual([d3.id, d2.id]);
      expect(ids(await ctx.store.deliveries.list({ status: 'failed' }))).toEqual([d3.id]);
      expect(ids(await ctx.store.deliveries.list({ status: 'pending' }))).toEqual([d1.id]);
      expect(ids(await ctx.store.deliveries.list({ status: 'delivered', limit: 1 }))).toEqual([d2.id]);
    });

    it('list breaks ties of updatedAt by id, descending', async () => {
      const made = [];
      for (let i = 0; i < 5; i++) made.push(await ctx.store.deliveries.enqueueEvent(ACCOUNT, WEBHOOK, 'account.reauth_required', {}, 1_000));
      const sorted = [...made].sort().reverse();
      expect(ids(await ctx.store.deliveries.list({}))).toEqual(sorted);
      expect(ids(await ctx.store.deliveries.list({ status: 'pending', limit: 2 }))).toEqual(sorted.slice(0, 2));
    });

    it('forMessage finds the delivery of a stored message, and nothing for an unknown or pruned one', async () => {
      const { id, delivery } = await ingestOne(ctx.store, imapMessage(1), 100);
      expect(await ctx.store.deliveries.forMessage(id)).toEqual(delivery);
      expect(delivery).toMatchObject({ messageRef: id, event: 'message.received' });
      expect(await ctx.store.deliveries.forMessage('msg_nope')).toBeNull();
      await ctx.store.deliveries.markDelivered(delivery.id, outcome(200), 'none');
      await ctx.store.deliveries.pruneDelivered(1_000);
      expect(await ctx.store.deliveries.forMessage(id)).toBeNull();
    });

    it('countByStatus always has every status', async () => {
      expect(await ctx.store.deliveries.countByStatus()).toEqual({ pending: 0, delivered: 0, failed: 0 });
      const { d1, d2 } = await queueOfThree();
      await ctx.store.deliveries.markFailed(d1.id, failure(500));
      await ctx.store.deliveries.markDelivered(d2.id, outcome(500), 'none');
      expect(await ctx.store.deliveries.countByStatus()).toEqual({ pending: 1, delivered: 1, failed: 1 });
    });
  });

  describe('replay', () => {
    it('retry puts a failed or pending delivery back in the queue, due now, with a fresh attempt budget', async () => {
      const { d1, d2 } = await queueOfThree();
      await ctx.store.deliveries.markFailed(d2.id, failure(500, { attempts: 15 }));
      expect(await ctx.store.deliveries.retry(d2.id, 2_000)).toBe(true);
      expect(await ctx.store.deliveries.get(d2.id)).toMatchObject({ status: 'pending', attempts: 0, nextAttemptAt: 2_000 });
      await ctx.store.deliveries.markRetry(d1.id, failure(600, { attempts: 4 }), 99_000);
      expect(await ctx.store.deliveries.retry(d1.id, 2_000)).toBe(true);
      expect(await ctx.store.deliveries.get(d1.id)).toMatchObject({ status: 'pending', attempts: 0, nextAttemptAt: 2_000 });
      expect(await ctx.store.deliveries.nextDueAt()).toBe(300);
    });

    it('retry refuses a delivered delivery and an unknown id', async () => {
      const { d1 } = await queueOfThree();
      await ctx.store.deliveries.markDelivered(d1.id, outcome(500), 'due');
      expect(await ctx.store.deliveries.retry(d1.id, 2_000)).toBe(false);
      expect((await ctx.store.deliveries.get(d1.id))?.status).toBe('delivered');
      expect(await ctx.store.deliveries.retry('dlv_nope', 2_000)).toBe(false);
    });

    it('retryAllFailed requeues every failed delivery (and only those) with a fresh budget', async () => {
      const { d1, d2, d3 } = await queueOfThree();
      await ctx.store.deliveries.markFailed(d1.id, failure(500, { attempts: 15 }));
      await ctx.store.deliveries.markFailed(d2.id, failure(500, { attempts: 15 }));
      await ctx.store.deliveries.markDelivered(d3.id, outcome(500), 'none');
      const other = (await ingestOne(ctx.store, imapMessage(4), 600)).delivery;
      expect(await ctx.store.deliveries.retryAllFailed(3_000)).toBe(2);
      for (const d of [d1, d2]) {
        expect(await ctx.store.deliveries.get(d.id)).toMatchObject({ status: 'pending', attempts: 0, nextAttemptAt: 3_000, updatedAt: 3_000 });
      }
      expect((await ctx.store.deliveries.get(d3.id))?.status).toBe('delivered');
      expect(await ctx.store.deliveries.get(other.id)).toEqual(other);
      expect(await ctx.store.deliveries.retryAllFailed(3_000)).toBe(0);
    });
  });

  describe('pruneDelivered', () => {
    it('removes deliveries delivered before the cutoff and keeps pending, failed and newer ones', async () => {
      const { d1, d2, d3 } = await queueOfThree();
      const late = (await ingestOne(ctx.store, imapMessage(4), 100)).delivery;
      await ctx.store.deliveries.markDelivered(d1.id, outcome(1_000), 'none');
      await ctx.store.deliveries.markDelivered(late.id, outcome(5_000), 'none'); // exactly at the cutoff: kept
      await ctx.store.deliveries.markFailed(d2.id, failure(1_000));
      expect(await ctx.store.deliveries.pruneDelivered(5_000)).toBe(1);
      expect(await ctx.store.deliveries.get(d1.id)).toBeNull();
      for (const kept of [d2, d3, late]) expect(await ctx.store.deliveries.get(kept.id)).not.toBeNull();
      expect(await ctx.store.messages.get(d1.messageRef ?? '')).not.toBeNull(); // the message row stays
      expect(await ctx.store.deliveries.pruneDelivered(5_000)).toBe(0);
    });
  });
}
