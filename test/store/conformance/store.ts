import { describe, expect, it } from 'vitest';
import {
  ACCOUNT,
  deliveryOf,
  imapMessage,
  ingestOne,
  outboxItem,
  outcome,
  settle,
  type StoreFactory,
  useStore,
} from './harness.js';

/** Meta, account status, the store's life cycle, and several stores on one storage. */
export function defineStoreWideConformance(factory: StoreFactory): void {
  const ctx = useStore(factory);

  describe('meta', () => {
    it('get answers null for an unknown key; set inserts and then replaces', async () => {
      expect(await ctx.store.meta.get('conformance.key')).toBeNull();
      await ctx.store.meta.set('conformance.key', 'one');
      expect(await ctx.store.meta.get('conformance.key')).toBe('one');
      await ctx.store.meta.set('conformance.key', '');
      expect(await ctx.store.meta.get('conformance.key')).toBe('');
      await ctx.store.meta.set('conformance.other', 'x'.repeat(10_000));
      expect(await ctx.store.meta.get('conformance.other')).toHaveLength(10_000);
      expect(await ctx.store.meta.get('conformance.key')).toBe('');
    });
  });

  describe('meta setIfAbsent', () => {
    it('stores a value only where there is none, and answers the value stored', async () => {
      expect(await ctx.store.meta.setIfAbsent('conformance.once', 'first')).toBe('first');
      expect(await ctx.store.meta.setIfAbsent('conformance.once', 'second')).toBe('first');
      expect(await ctx.store.meta.get('conformance.once')).toBe('first');
      await ctx.store.meta.set('conformance.once', 'replaced');
      expect(await ctx.store.meta.setIfAbsent('conformance.once', 'third')).toBe('replaced');
    });

    it('lets exactly one of several stores on one storage win', async () => {
      const peer = await ctx.sut.openPeer();
      const answers = await Promise.all(
        Array.from({ length: 6 }, (_, i) => (i % 2 === 0 ? ctx.store : peer).meta.setIfAbsent('conformance.race', `v${i}`)),
      );
      expect(new Set(answers).size).toBe(1);
      expect(await ctx.store.meta.get('conformance.race')).toBe(answers[0]);
    });
  });

  describe('account status', () => {
    it('update creates the row, later patches merge (absent fields kept, null clears), per account and side', async () => {
      const before = Date.now();
      await ctx.store.accountStatus.update(ACCOUNT, 'incoming', { state: 'connecting', lastPollAt: 5 }, Date.now());
      await ctx.store.accountStatus.update(ACCOUNT, 'incoming', { state: 'idle', lastSuccessAt: 10 }, Date.now());
      await ctx.store.accountStatus.update(ACCOUNT, 'incoming', { lastError: 'boom' }, Date.now());
      await ctx.store.accountStatus.update(ACCOUNT, 'outgoing', { state: 'ok', lastSuccessAt: 20 }, Date.now());
      await ctx.store.accountStatus.update('billing', 'incoming', { state: 'error', lastError: 'auth' }, Date.now());
      let rows = await ctx.store.accountStatus.list();
      expect(rows).toEqual([
        { account: 'billing', side: 'incoming', state: 'error', lastSuccessAt: null, lastPollAt: null, lastError: 'auth', updatedAt: expect.any(Number) },
        { account: ACCOUNT, side: 'incoming', state: 'idle', lastSuccessAt: 10, lastPollAt: 5, lastError: 'boom', updatedAt: expect.any(Number) },
        { account: ACCOUNT, side: 'outgoing', state: 'ok', lastSuccessAt: 20, lastPollAt: null, lastError: null, updatedAt: expect.any(Number) },
      ]);
      for (const r of rows) expect(r.updatedAt).toBeGreaterThanOrEqual(before);

      await ctx.store.accountStatus.update(ACCOUNT, 'incoming', { lastError: null, lastPollAt: 30 }, Date.now());
      rows = await ctx.store.accountStatus.list();
      expect(rows.find((r) => r.account === ACCOUNT && r.side === 'incoming')).toMatchObject({
        state: 'idle',
        lastSuccessAt: 10,
        lastPollAt: 30,
        lastError: null,
      });
    });

    it('forAccount reads one account\'s rows only, by side; an account without a row has none', async () => {
      await ctx.store.accountStatus.update(ACCOUNT, 'outgoing', { state: 'ok' }, 1_000);
      await ctx.store.accountStatus.update(ACCOUNT, 'incoming', { state: 'idle', lastError: null }, 2_000);
      await ctx.store.accountStatus.update('billing', 'incoming', { state: 'error', lastError: 'auth' }, 3_000);
      expect(await ctx.store.accountStatus.forAccount(ACCOUNT)).toEqual([
        { account: ACCOUNT, side: 'incoming', state: 'idle', lastSuccessAt: null, lastPollAt: null, lastError: null, updatedAt: 2_000 },
        { account: ACCOUNT, side: 'outgoing', state: 'ok', lastSuccessAt: null, lastPollAt: null, lastError: null, updatedAt: 1_000 },
      ]);
      expect((await ctx.store.accountStatus.forAccount('billing')).map((r) => [r.side, r.lastError])).toEqual([['incoming', 'auth']]);
      expect(await ctx.store.accountStatus.forAccount('nobody')).toEqual([]);
    });

    it('update records the time it is given', async () => {
      await ctx.store.accountStatus.update(ACCOUNT, 'incoming', { state: 'idle' }, 3_000);
      await ctx.store.accountStatus.update(ACCOUNT, 'outgoing', {}, 4_000);
      expect((await ctx.store.accountStatus.list()).map((r) => [r.side, r.state, r.updatedAt])).toEqual([
        ['incoming', 'idle', 3_000],
        ['outgoing', 'stopped', 4_000],
      ]);
    });

    it('list is empty before any update', async () => {
      expect(await ctx.store.accountStatus.list()).toEqual([]);
    });
  });

  describe('life cycle', () => {
    it('ping answers true on an open store', async () => {
      expect(await ctx.store.ping()).toBe(true);
    });

    it('close commits what was accepted before it and can be called twice', async () => {
      const { id, delivery } = await ingestOne(ctx.store, imapMessage(1), 1_000);
      const pending = ctx.store.deliveries.markDelivered(delivery.id, outcome(2_000), 'due'); // not awaited before close
      await ctx.store.close();
      await ctx.store.close();
      await pending;
      const reopened = await ctx.sut.openPeer();
      expect((await reopened.deliveries.get(delivery.id))?.status).toBe('delivered');
      expect((await reopened.ingest.dueAcks(ACCOUNT, 10, 3_000)).map((a) => a.id)).toEqual([id]);
    });

    it('a closed store refuses work by rejecting (no hang, no throw), ping says false, and the data stays intact', async () => {
      const { id } = await ingestOne(ctx.store, imapMessage(1), 1_000);
      await ctx.store.meta.set('conformance.key', 'kept');
      await ctx.store.close();
      expect(await settle(() => ctx.store.ping())).toEqual({ ok: true, value: false });
      const attempts: (() => Promise<unknown>)[] = [
        () => ctx.store.meta.set('conformance.key', 'changed'),
        () => ctx.store.meta.get('conformance.key'),
        () => ctx.store.ingest.insertMessages([imapMessage(2)], 2_000),
        () => ctx.store.deliveries.claimDue('pipeline', 2_000, 10, new Set()),
        () => ctx.store.deliveries.markDelivered('dlv_x', outcome(2_000), 'none'),
        () => ctx.store.outbox.enqueue(outboxItem('out_1')),
        () => ctx.store.oauthStates.consume('s', 2_000),
      ];
      for (const attempt of attempts) {
        let promise: Promise<unknown> | undefined;
        expect(() => {
          promise = attempt();
        }).not.toThrow();
        await expect(promise).rejects.toThrow();
      }
      const reopened = await ctx.sut.openPeer();
      expect(await reopened.meta.get('conformance.key')).toBe('kept');
      expect(await reopened.ingest.getCursor(ACCOUNT, 'INBOX')).toEqual({ uidValidity: 7, lastUid: 1 });
      expect((await deliveryOf(reopened, id)).status).toBe('pending');
      expect(await reopened.outbox.counts()).toEqual({ queued: 0, sending: 0, sent: 0, failed: 0 });
      expect(await reopened.ping()).toBe(true);
    });

    it('refuses to open the storage with a different secret key', async ({ skip }) => {
      const open = ctx.sut.openWithOtherKey?.bind(ctx.sut);
      if (!open) return skip('the factory cannot open with another key');
      await ctx.store.credentials.upsert({ name: 'c', provider: 'google', clientId: 'id', clientSecret: 's', settings: {} }, 1_000);
      const r = await settle(open);
      expect(r.ok).toBe(false);
      expect(String((r as { error: unknown }).error)).toMatch(/key/i);
      expect((await ctx.store.credentials.get('c'))?.clientSecret).toBe('s'); // the refused open changed nothing
    });
  });

  describe('several stores on one storage (CLI next to the daemon, replicas)', () => {
    it('the same message ingested by two stores at once is stored once, with one delivery', async () => {
      const peer = await ctx.sut.openPeer();
      const [a, b] = await Promise.all([
        ctx.store.ingest.insertMessages([imapMessage(1), imapMessage(2)], 1_000),
        peer.ingest.insertMessages([imapMessage(2), imapMessage(1)], 1_000),
      ]);
      expect(b?.[0]?.id).toBe(a?.[1]?.id);
      expect(b?.[1]?.id).toBe(a?.[0]?.id);
      const fresh = [...(a ?? []), ...(b ?? [])].filter((r) => !r.duplicate);
      expect(fresh).toHaveLength(2);
      expect(await ctx.store.deliveries.countByStatus()).toEqual({ pending: 2, delivered: 0, failed: 0 });
      expect(await peer.ingest.getCursor(ACCOUNT, 'INBOX')).toEqual({ uidValidity: 7, lastUid: 2 });
    });

    it('two stores claiming the outbox at once never take the same row', async () => {
      const peer = await ctx.sut.openPeer();
      for (let i = 0; i < 20; i++) await ctx.store.outbox.enqueue(outboxItem(`out_${i}`, { now: 100 + i }));
      const rounds = await Promise.all([
        ctx.store.outbox.claimDue(1_000, 7),
        peer.outbox.claimDue(1_000, 7),
        ctx.store.outbox.claimDue(1_000, 7),
        peer.outbox.claimDue(1_000, 7),
      ]);
      const taken = rounds.flat().map((r) => r.id);
      expect(new Set(taken).size).toBe(taken.length);
      expect(taken).toHaveLength(20);
      expect(rounds.flat().every((r) => r.attempts === 1)).toBe(true);
    });

    it('two stores enqueueing one idempotency key at once create one row', async () => {
      const peer = await ctx.sut.openPeer();
      const [a, b] = await Promise.all([
        ctx.store.outbox.enqueue(outboxItem('out_a', { idempotencyKey: 'k' })),
        peer.outbox.enqueue(outboxItem('out_b', { idempotencyKey: 'k' })),
      ]);
      expect([a.created, b.created].filter(Boolean)).toHaveLength(1);
      expect(a.record.id).toBe(b.record.id);
    });

    it('what one store commits, the other reads at once', async () => {
      const peer = await ctx.sut.openPeer();
      await ctx.store.meta.set('conformance.key', 'v1');
      expect(await peer.meta.get('conformance.key')).toBe('v1');
      await peer.tokens.save({
        account: ACCOUNT,
        credential: 'c',
        refreshToken: 'r',
        accessToken: 'a',
        accessExpiresAt: 1,
        scope: null,
        state: 'ok',
        lastRefreshAt: null,
        refreshTokenIssuedAt: null,
        lastError: null,
      }, 1_000);
      expect((await ctx.store.tokens.get(ACCOUNT))?.refreshToken).toBe('r');
    });
  });
}
