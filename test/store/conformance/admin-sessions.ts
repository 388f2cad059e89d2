import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { AdminSessionRecord } from '../../../src/store/admin-sessions.js';
import { type StoreFactory, useStore } from './harness.js';

export function adminSession(over: Partial<AdminSessionRecord> = {}): AdminSessionRecord {
  return {
    id: randomBytes(32).toString('base64url'),
    csrf: randomBytes(32).toString('base64url'),
    flash: null,
    createdAt: 1_000,
    expiresAt: 10_000,
    ...over,
  };
}

/** AdminSessionRepo (the web UI's signed-in sessions). */
export function defineAdminSessionConformance(factory: StoreFactory): void {
  const ctx = useStore(factory);

  describe('admin sessions', () => {
    it('create then get returns the session (flash included) while it is live, and nothing for another id', async () => {
      const s = adminSession({ flash: { kind: 'ok', text: 'Saved «ünïcode»' } });
      await ctx.store.adminSessions.create(s);
      expect(await ctx.store.adminSessions.get(s.id, 5_000)).toEqual(s);
      expect(await ctx.store.adminSessions.get(adminSession().id, 5_000)).toBeNull();
    });

    it('a session is gone from expiresAt on, and get deletes it on the way (not back with an earlier clock)', async () => {
      const s = adminSession({ expiresAt: 10_000 });
      await ctx.store.adminSessions.create(s);
      expect(await ctx.store.adminSessions.get(s.id, 9_999)).not.toBeNull();
      expect(await ctx.store.adminSessions.get(s.id, 10_000)).toBeNull();
      expect(await ctx.store.adminSessions.get(s.id, 1_000)).toBeNull();
      expect(await ctx.store.adminSessions.pruneExpired(Number.MAX_SAFE_INTEGER)).toBe(0);
    });

    it('setFlash replaces the flash (null clears it) and is false for an unknown session', async () => {
      const s = adminSession();
      await ctx.store.adminSessions.create(s);
      expect(await ctx.store.adminSessions.setFlash(s.id, { kind: 'error', text: 'bad token' })).toBe(true);
      expect((await ctx.store.adminSessions.get(s.id, 5_000))?.flash).toEqual({ kind: 'error', text: 'bad token' });
      expect(await ctx.store.adminSessions.setFlash(s.id, null)).toBe(true);
      expect(await ctx.store.adminSessions.get(s.id, 5_000)).toEqual(s);
      expect(await ctx.store.adminSessions.setFlash(adminSession().id, { kind: 'ok', text: 'x' })).toBe(false);
    });

    it('delete removes one session and says whether there was one', async () => {
      const a = adminSession();
      const b = adminSession();
      await ctx.store.adminSessions.create(a);
      await ctx.store.adminSessions.create(b);
      expect(await ctx.store.adminSessions.delete(a.id)).toBe(true);
      expect(await ctx.store.adminSessions.delete(a.id)).toBe(false);
      expect(await ctx.store.adminSessions.get(a.id, 5_000)).toBeNull();
      expect(await ctx.store.adminSessions.get(b.id, 5_000)).toEqual(b);
    });

    it('pruneExpired deletes every session expired at now and says how many', async () => {
      const gone = [adminSession({ expiresAt: 3_000 }), adminSession({ expiresAt: 5_000 })];
      const live = adminSession({ expiresAt: 5_001 });
      for (const s of [...gone, live]) await ctx.store.adminSessions.create(s);
      expect(await ctx.store.adminSessions.pruneExpired(5_000)).toBe(2);
      for (const s of gone) expect(await ctx.store.adminSessions.get(s.id, 0)).toBeNull();
      expect(await ctx.store.adminSessions.get(live.id, 5_000)).toEqual(live);
      expect(await ctx.store.adminSessions.pruneExpired(5_000)).toBe(0);
    });

    it('a session created on one store is found on another (replicas share sign-ins)', async () => {
      const s = adminSession();
      await ctx.store.adminSessions.create(s);
      const peer = await ctx.sut.openPeer();
      expect(await peer.adminSessions.get(s.id, 5_000)).toEqual(s);
    });
  });
}
