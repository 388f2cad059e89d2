import { MailgateError } from '../../errors.js';
import { dispatchWake, type Fence, type LeaseRecord, type LeaseRepo, type LockRepo, type NodeRecord, type NodeRepo, type WakeBus, type WakeChannel } from '../cluster.js';
import type { Db } from './db.js';

/**
 * Inside a transaction: throws LEASE_LOST (rolling the transaction back)
 * unless the account's lease is exactly this fence.
 */
export function assertFence(db: Db, fence: Fence): void {
  const row = db.prepare('SELECT 1 AS ok FROM leases WHERE account = ? AND owner = ? AND epoch = ?').get(fence.account, fence.owner, fence.epoch);
  if (!row) {
    throw new MailgateError('LEASE_LOST', `the lease of account ${fence.account} (epoch ${fence.epoch}) is no longer held by ${fence.owner}; nothing was written`, {
      details: { account: fence.account, owner: fence.owner, epoch: fence.epoch },
    });
  }
}

export class SqliteLeaseRepo implements LeaseRepo {
  constructor(private readonly db: Db) {}

  async acquire(account: string, owner: string, now: number, ttlMs: number): Promise<Fence | null> {
    return this.db
      .transaction((): Fence | null => {
        const row = this.db
          .prepare(
            `INSERT INTO leases (account, owner, epoch, expires_at, updated_at) VALUES (@account, @owner, 1, @until, @now)
             ON CONFLICT(account) DO UPDATE SET owner = excluded.owner, epoch = leases.epoch + 1,
               expires_at = excluded.expires_at, updated_at = excluded.updated_at
             WHERE leases.owner IS NULL OR leases.owner = excluded.owner OR leases.expires_at <= @now
             RETURNING epoch`,
          )
          .get({ account, owner, until: now + ttlMs, now }) as { epoch: number } | undefined;
        return row ? { account, owner, epoch: row.epoch } : null;
      })
      .immediate();
  }

  async renew(fences: readonly Fence[], now: number, ttlMs: number): Promise<Set<string>> {
    const renewed = new Set<string>();
    if (fences.length === 0) return renewed;
    this.db
      .transaction(() => {
        const stmt = this.db.prepare('UPDATE leases SET expires_at = ?, updated_at = ? WHERE account = ? AND owner = ? AND epoch = ?');
        for (const f of fences) if (stmt.run(now + ttlMs, now, f.account, f.owner, f.epoch).changes > 0) renewed.add(f.account);
      })
      .immediate();
    return renewed;
  }

  async release(fence: Fence, now: number): Promise<boolean> {
    return (
      this.db
        .prepare('UPDATE leases SET owner = NULL, expires_at = ?, updated_at = ? WHERE account = ? AND owner = ? AND epoch = ?')
        .run(now, now, fence.account, fence.owner, fence.epoch).changes > 0
    );
  }

  async holds(fence: Fence, now: number): Promise<boolean> {
    return (
      this.db
        .prepare('SELECT 1 AS ok FROM leases WHERE account = ? AND owner = ? AND epoch = ? AND expires_at > ?')
        .get(fence.account, fence.owner, fence.epoch, now) !== undefined
    );
  }

  async list(now: number): Promise<LeaseRecord[]> {
    const rows = this.db
      .prepare('SELECT account, owner, epoch, expires_at FROM leases WHERE owner IS NOT NULL AND expires_at > ? ORDER BY account')
      .all(now) as { account: string; owner: string; epoch: number; expires_at: number }[];
    return rows.map((r) => ({ account: r.account, owner: r.owner, epoch: r.epoch, expiresAt: r.expires_at }));
  }
}

export class SqliteNodeRepo implements NodeRepo {
  constructor(private readonly db: Db) {}

  async heartbeat(node: { name: string; instance: string; startedAt: number }, now: number, ttlMs: number): Promise<boolean> {
    const row = this.db
      .prepare(
        `INSERT INTO nodes (name, instance, started_at, last_seen_at) VALUES (@name, @instance, @startedAt, @now)
         ON CONFLICT(name) DO UPDATE SET instance = excluded.instance, started_at = excluded.started_at, last_seen_at = excluded.last_seen_at
         WHERE nodes.instance = excluded.instance OR nodes.last_seen_at <= @now - @ttlMs
         RETURNING name`,
      )
      .get({ ...node, now, ttlMs });
    return row !== undefined;
  }

  async live(now: number, ttlMs: number): Promise<NodeRecord[]> {
    const rows = this.db
      .prepare('SELECT name, instance, started_at, last_seen_at FROM nodes WHERE last_seen_at > ? ORDER BY name')
      .all(now - ttlMs) as { name: string; instance: string; started_at: number; last_seen_at: number }[];
    return rows.map((r) => ({ name: r.name, instance: r.instance, startedAt: r.started_at, lastSeenAt: r.last_seen_at }));
  }

  async remove(name: string, instance: string): Promise<void> {
    this.db.prepare('DELETE FROM nodes WHERE name = ? AND instance = ?').run(name, instance);
  }
}

export class SqliteLockRepo implements LockRepo {
  constructor(private readonly db: Db) {}

  async tryLock(name: string, owner: string, now: number, ttlMs: number): Promise<boolean> {
    const row = this.db
      .prepare(
        `INSERT INTO locks (name, owner, expires_at) VALUES (@name, @owner, @until)
         ON CONFLICT(name) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
         WHERE locks.owner = excluded.owner OR locks.expires_at <= @now
         RETURNING name`,
      )
      .get({ name, owner, until: now + ttlMs, now });
    return row !== undefined;
  }

  async unlock(name: string, owner: string): Promise<void> {
    this.db.prepare('DELETE FROM locks WHERE name = ? AND owner = ?').run(name, owner);
  }
}

/** One process, one database: wake-ups stay in this store. */
export class InProcessBus implements WakeBus {
  readonly #listeners = new Map<WakeChannel, Set<(payload: string) => void>>();
  #closed = false;

  async publish(channel: WakeChannel, payload: string): Promise<void> {
    if (this.#closed) throw new MailgateError('INTERNAL', 'the store is closed');
    dispatchWake(this.#listeners.get(channel), payload);
  }

  subscribe(channel: WakeChannel, listener: (payload: string) => void): () => void {
    let set = this.#listeners.get(channel);
    if (!set) {
      set = new Set();
      this.#listeners.set(channel, set);
    }
    set.add(listener);
    return () => {
      set.delete(listener);
    };
  }

  close(): void {
    this.#closed = true;
    this.#listeners.clear();
  }
}
