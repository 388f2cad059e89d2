import pg from 'pg';
import { MailgateError } from '../../errors.js';
import { computeBackoff } from '../../runtime/backoff.js';
import { dispatchWake, type Fence, type LeaseRecord, type LeaseRepo, type LockRepo, type NodeRecord, type NodeRepo, type WakeBus, type WakeChannel } from '../cluster.js';
import type { PgDb, Queryable } from './db.js';

/**
 * Inside a transaction: throws LEASE_LOST (the transaction rolls back)
 * unless the account's lease is exactly this fence. The lease row is locked
 * FOR SHARE until the commit, so another node's acquire (an UPDATE of that
 * row) waits for this write to commit: a write checked here can never land
 * after a take-over.
 */
export async function assertFence(c: Queryable, fence: Fence): Promise<void> {
  const { rows } = await c.query('SELECT 1 AS ok FROM leases WHERE account = $1 AND owner = $2 AND epoch = $3 FOR SHARE', [
    fence.account,
    fence.owner,
    fence.epoch,
  ]);
  if (rows.length === 0) throw leaseLost(fence);
}

export function leaseLost(fence: Fence): MailgateError {
  return new MailgateError('LEASE_LOST', `the lease of account ${fence.account} (epoch ${fence.epoch}) is no longer held by ${fence.owner}; nothing was written`, {
    details: { account: fence.account, owner: fence.owner, epoch: fence.epoch },
  });
}

/** A fenced write for one account must name that account. */
export function checkFenceAccount(fence: Fence | undefined, account: string): void {
  if (fence && fence.account !== account) throw new MailgateError('BAD_REQUEST', `a write fenced for account ${fence.account} was asked for account ${account}`);
}

export class PgLeaseRepo implements LeaseRepo {
  constructor(private readonly db: PgDb) {}

  async acquire(account: string, owner: string, now: number, ttlMs: number): Promise<Fence | null> {
    // One statement: the row lock of ON CONFLICT DO UPDATE makes concurrent acquires take turns, and the second sees the first's owner.
    const [row] = await this.db.rows<{ epoch: number }>(
      `INSERT INTO leases (account, owner, epoch, expires_at, updated_at) VALUES ($1, $2, 1, $3, $4)
       ON CONFLICT (account) DO UPDATE SET owner = excluded.owner, epoch = leases.epoch + 1,
         expires_at = excluded.expires_at, updated_at = excluded.updated_at
       WHERE leases.owner IS NULL OR leases.owner = excluded.owner OR leases.expires_at <= $4
       RETURNING epoch`,
      [account, owner, now + ttlMs, now],
    );
    return row ? { account, owner, epoch: row.epoch } : null;
  }

  async renew(fences: readonly Fence[], now: number, ttlMs: number): Promise<Set<string>> {
    if (fences.length === 0) return new Set();
    const rows = await this.db.rows<{ account: string }>(
      `UPDATE leases l SET expires_at = $4, updated_at = $5
       FROM unnest($1::text[], $2::text[], $3::bigint[]) AS f(account, owner, epoch)
       WHERE l.account = f.account AND l.owner = f.owner AND l.epoch = f.epoch
       RETURNING l.account`,
      [fences.map((f) => f.account), fences.map((f) => f.owner), fences.map((f) => f.epoch), now + ttlMs, now],
    );
    return new Set(rows.map((r) => r.account));
  }

  async release(fence: Fence, now: number): Promise<boolean> {
    const r = await this.db.run('UPDATE leases SET owner = NULL, expires_at = $4, updated_at = $4 WHERE account = $1 AND owner = $2 AND epoch = $3', [
      fence.account,
      fence.owner,
      fence.epoch,
      now,
    ]);
    return (r.rowCount ?? 0) > 0;
  }

  async holds(fence: Fence, now: number): Promise<boolean> {
    const rows = await this.db.rows('SELECT 1 AS ok FROM leases WHERE account = $1 AND owner = $2 AND epoch = $3 AND expires_at > $4', [
      fence.account,
      fence.owner,
      fence.epoch,
      now,
    ]);
    return rows.length > 0;
  }

  async list(now: number): Promise<LeaseRecord[]> {
    const rows = await this.db.rows<{ account: string; owner: string; epoch: number; expires_at: number }>(
      'SELECT account, owner, epoch, expires_at FROM leases WHERE owner IS NOT NULL AND expires_at > $1 ORDER BY account',
      [now],
    );
    return rows.map((r) => ({ account: r.account, owner: r.owner, epoch: r.epoch, expiresAt: r.expires_at }));
  }
}

export class PgNodeRepo implements NodeRepo {
  constructor(private readonly db: PgDb) {}

  async heartbeat(node: { name: string; instance: string; startedAt: number }, now: number, ttlMs: number): Promise<boolean> {
    const rows = await this.db.rows(
      `INSERT INTO nodes (name, instance, started_at, last_seen_at) VALUES ($1, $2, $3, $4)
       ON CONFLICT (name) DO UPDATE SET instance = excluded.instance, started_at = excluded.started_at, last_seen_at = excluded.last_seen_at
       WHERE nodes.instance = excluded.instance OR nodes.last_seen_at <= $4::bigint - $5::bigint
       RETURNING name`,
      [node.name, node.instance, node.startedAt, now, ttlMs],
    );
    return rows.length > 0;
  }

  async live(now: number, ttlMs: number): Promise<NodeRecord[]> {
    const rows = await this.db.rows<{ name: string; instance: string; started_at: number; last_seen_at: number }>(
      'SELECT name, instance, started_at, last_seen_at FROM nodes WHERE last_seen_at > $1 ORDER BY name',
      [now - ttlMs],
    );
    return rows.map((r) => ({ name: r.name, instance: r.instance, startedAt: r.started_at, lastSeenAt: r.last_seen_at }));
  }

  async remove(name: string, instance: string): Promise<void> {
    await this.db.run('DELETE FROM nodes WHERE name = $1 AND instance = $2', [name, instance]);
  }
}

export class PgLockRepo implements LockRepo {
  constructor(private readonly db: PgDb) {}

  async tryLock(name: string, owner: string, now: number, ttlMs: number): Promise<boolean> {
    const rows = await this.db.rows(
      `INSERT INTO locks (name, owner, expires_at) VALUES ($1, $2, $3)
       ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
       WHERE locks.owner = excluded.owner OR locks.expires_at <= $4
       RETURNING name`,
      [name, owner, now + ttlMs, now],
    );
    return rows.length > 0;
  }

  async unlock(name: string, owner: string): Promise<void> {
    await this.db.run('DELETE FROM locks WHERE name = $1 AND owner = $2', [name, owner]);
  }
}

const LISTEN_BACKOFF = { initialMs: 500, maxMs: 30_000 };
const CHANNELS: readonly WakeChannel[] = ['delivery_due', 'ack_due', 'account_authorized'];

/** LISTEN takes an identifier, never a parameter: quoted here (the names are ours, but a schema name is the admin's). */
function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/**
 * Wake-ups across replicas with LISTEN/NOTIFY. Publishing is one
 * pg_notify on the pool; receiving is one dedicated connection (not from
 * the pool: a pooled connection is shared and may be closed when idle)
 * that LISTENs on the channels that have subscribers, and reconnects with
 * backoff when it drops (wake-ups sent meanwhile are lost: every listener
 * keeps its timer as a fallback). Channels are named after the schema
 * (`mailgate_<schema>_<channel>`), so two deployments in one database never
 * wake each other. While the listening connection is down, a publish still
 * reaches this store's own subscribers.
 */
export class PgWakeBus implements WakeBus {
  readonly #listeners = new Map<WakeChannel, Set<(payload: string) => void>>();
  #client: pg.Client | null = null;
  /** Settles once the LISTENs asked for so far are in place (or the attempt failed). */
  #listening: Promise<void> = Promise.resolve();
  #connected = false;
  #prefix: string | null = null;
  #retry: NodeJS.Timeout | null = null;
  #attempt = 0;
  #closed = false;
  readonly #listened = new Set<WakeChannel>();

  constructor(
    private readonly db: PgDb,
    private readonly url: string,
  ) {}

  async publish(channel: WakeChannel, payload: string): Promise<void> {
    if (this.#closed) throw new MailgateError('INTERNAL', 'the store is closed');
    // A subscriber added just before must not miss this: its LISTEN goes first.
    await this.#listening;
    if (!this.#connected && (this.#listeners.get(channel)?.size ?? 0) > 0) this.#dispatch(channel, payload);
    await this.db.run(`SELECT pg_notify('mailgate_' || current_schema() || '_' || $1::text, $2::text)`, [channel, payload]);
  }

  subscribe(channel: WakeChannel, listener: (payload: string) => void): () => void {
    let set = this.#listeners.get(channel);
    if (!set) {
      set = new Set();
      this.#listeners.set(channel, set);
    }
    set.add(listener);
    if (!this.#closed && !this.#listened.has(channel)) this.#listening = this.#listening.then(() => this.#listen(channel));
    return () => {
      set.delete(listener);
    };
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#listeners.clear();
    if (this.#retry) clearTimeout(this.#retry);
    this.#retry = null;
    const c = this.#client;
    this.#client = null;
    this.#connected = false;
    await c?.end().catch(() => undefined);
  }

  async #listen(channel: WakeChannel): Promise<void> {
    this.#listened.add(channel);
    try {
      const c = await this.#connection();
      if (c) await c.query(`LISTEN ${quoteIdent(`${this.#prefix}${channel}`)}`);
    } catch {
      this.#dropped();
    }
  }

  /** The listening connection, made on first use; null while it cannot be made (a retry is scheduled). */
  async #connection(): Promise<pg.Client | null> {
    if (this.#client && this.#connected) return this.#client;
    if (this.#closed) return null;
    const c = new pg.Client({ connectionString: this.url, application_name: 'mailgate-listen', connectionTimeoutMillis: 5_000, keepAlive: true });
    c.on('error', () => this.#dropped(c));
    c.on('end', () => this.#dropped(c));
    c.on('notification', (n) => {
      const name = n.channel.slice(this.#prefix?.length ?? 0) as WakeChannel;
      if (this.#prefix !== null && n.channel.startsWith(this.#prefix) && CHANNELS.includes(name)) this.#dispatch(name, n.payload ?? '');
    });
    this.#client = c;
    try {
      await c.connect();
      const { rows } = await c.query<{ s: string }>('SELECT current_schema() AS s');
      this.#prefix = `mailgate_${rows[0]?.s ?? 'public'}_`;
      this.#connected = true;
      this.#attempt = 0;
      return c;
    } catch {
      this.#dropped(c);
      return null;
    }
  }

  #dropped(c: pg.Client | null = this.#client): void {
    if (c !== this.#client) return; // an old connection's late events
    this.#connected = false;
    this.#client = null;
    c?.end().catch(() => undefined);
    if (this.#closed || this.#retry) return;
    this.#retry = setTimeout(() => {
      this.#retry = null;
      const channels = [...this.#listened];
      this.#listened.clear();
      for (const ch of channels) this.#listening = this.#listening.then(() => this.#listen(ch));
    }, computeBackoff(++this.#attempt, LISTEN_BACKOFF));
    this.#retry.unref();
  }

  #dispatch(channel: WakeChannel, payload: string): void {
    dispatchWake(this.#listeners.get(channel), payload);
  }
}
