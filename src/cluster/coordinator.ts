import { createHash, randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Config } from '../config/types.js';
import { describeError, MailgateError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { INTERRUPTED_REASON } from '../outgoing/outbox.js';
import type { Component } from '../runtime/component.js';
import type { Fence, FenceSource } from '../store/cluster.js';
import type { Store } from '../store/store.js';

/** Who this node is in the cluster. */
export interface NodeIdentity {
  name: string;
  /** Tells two processes given the same name apart. */
  instance: string;
  startedAt: number;
  leaseTtlMs: number;
  /**
   * Several replicas (a `cluster` section): membership is checked (a second
   * node with this name is refused) and accounts are balanced over the live
   * nodes. Without, this node takes every account.
   */
  clustered: boolean;
}

/** The lease when there is no `cluster` section (one node on SQLite): only this node ever takes it. */
export const SINGLE_NODE_LEASE_TTL_MS = 30_000;

/** The node's identity from the config: `cluster.nodeName` or hostname-pid. */
export function nodeIdentity(config: Config, now = Date.now()): NodeIdentity {
  const c = config.cluster;
  return {
    name: c?.nodeName ?? `${hostname()}-${process.pid}`,
    instance: randomUUID(),
    startedAt: now,
    leaseTtlMs: c?.leaseTtlMs ?? SINGLE_NODE_LEASE_TTL_MS,
    clustered: c !== undefined,
  };
}

/** What works an account on this node: the incoming connector (required) and the outbox (drained before a hand-over). */
export interface AccountWork {
  startAccount(account: string): Promise<boolean>;
  stopAccount(account: string): Promise<void>;
}

export interface CoordinatorDeps {
  store: Store;
  config: () => Config;
  logger: Logger;
  metrics: Metrics;
  identity: NodeIdentity;
  incoming: AccountWork;
  outbox?: { drain(account: string): Promise<void> };
  /** Told of every account this node takes or gives up (status views). */
  onChange?: () => void;
  /** For tests. */
  now?: () => number;
}

interface Held {
  fence: Fence;
  /** By this node's clock: the lease as renewed (time the renewal was sent + ttl). */
  expiresAt: number;
  /** Being handed over: still fenced until its in-flight work is done. */
  releasing: boolean;
}

/** What a node looks like from the others: its name and the accounts it holds. */
export interface ClusterView {
  nodes: { name: string; startedAt: number; lastSeenAt: number; accounts: string[] }[];
  /** Account → owner node, for every account with a live lease. */
  owners: Map<string, string>;
}

/**
 * Works out which accounts this node works, and keeps the leases that say
 * so (src/store/cluster.ts). Every leaseTtl/3: a heartbeat, the renewal of
 * every lease held, then balance: accounts nobody holds (new, or their
 * node died) go to the least-loaded live node, and a node holding more than
 * ceil(accounts / nodes) + 1 hands the surplus over gracefully (its
 * connector stops, in-flight sends finish, then the lease is released).
 *
 * A lease that was lost (another node holds it now) is revoked here first
 * (fence() answers null, so no write and no server action happens for it),
 * then its connector stops. When renewals fail (the database is away), each
 * lease is revoked and its connector stopped by the time it would expire.
 * stop() (SIGTERM) stops the connectors, lets in-flight sends finish and
 * releases every lease at once, so other nodes take over without waiting.
 */
export class ClusterCoordinator implements Component, FenceSource {
  readonly name = 'cluster';
  readonly #deps: CoordinatorDeps;
  readonly #log: Logger;
  readonly #held = new Map<string, Held>();
  /** Accounts this node handed over, not taken back before this time (no ping-pong). */
  readonly #cooldown = new Map<string, number>();
  #chain: Promise<void> = Promise.resolve();
  #timer: NodeJS.Timeout | null = null;
  #expiryTimer: NodeJS.Timeout | null = null;
  #stopped = true;
  #renewFailing = false;

  constructor(deps: CoordinatorDeps) {
    this.#deps = deps;
    this.#log = deps.logger.child({ component: 'cluster', node: deps.identity.name });
  }

  get identity(): NodeIdentity {
    return this.#deps.identity;
  }

  #now(): number {
    return (this.#deps.now ?? Date.now)();
  }

  get #ttl(): number {
    return this.#deps.identity.leaseTtlMs;
  }

  /** A lease is used only while more than this is left of it by this node's clock (clock skew, a slow write). */
  get #margin(): number {
    return Math.ceil(this.#ttl / 6);
  }

  // ---- FenceSource ----

  fence(account: string): Fence | null {
    const h = this.#held.get(account);
    if (!h || this.#now() >= h.expiresAt - this.#margin) return null;
    return h.fence;
  }

  owned(): Fence[] {
    const now = this.#now();
    return [...this.#held.values()].filter((h) => !h.releasing && now < h.expiresAt - this.#margin).map((h) => h.fence);
  }

  lost(account: string): void {
    const h = this.#held.get(account);
    if (!h) return;
    // Revoked at once; the connector stops next, in order with the rest.
    this.#held.delete(account);
    this.#log.warn({ account, epoch: h.fence.epoch }, 'a write for this account was refused: another node holds its lease now; stopping its work here');
    this.#gauge();
    void this.#serial(() => this.#deps.incoming.stopAccount(account)).catch((err: unknown) => this.#log.error({ err, account }, 'could not stop the work of this account'));
  }

  /** Accounts this node works now, by name. */
  accounts(): string[] {
    return [...this.#held.keys()].sort();
  }

  // ---- Component ----

  async start(): Promise<void> {
    this.#stopped = false;
    if (this.#deps.identity.clustered) await this.#join();
    await this.#serial(() => this.#tick());
    this.#schedule();
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    if (this.#expiryTimer) clearTimeout(this.#expiryTimer);
    this.#timer = null;
    this.#expiryTimer = null;
    await this.#serial(async () => {
      const held = [...this.#held.values()];
      for (const h of held) h.releasing = true;
      // Connectors first (their in-flight commits still carry the fence), then in-flight sends.
      await Promise.allSettled(held.map((h) => this.#deps.incoming.stopAccount(h.fence.account)));
      await Promise.allSettled(held.map((h) => this.#deps.outbox?.drain(h.fence.account)));
      const now = this.#now();
      this.#held.clear();
      this.#gauge();
      const released = await Promise.allSettled(held.map((h) => this.#deps.store.leases.release(h.fence, now)));
      const failed = released.filter((r) => r.status === 'rejected').length;
      if (held.length > 0) {
        this.#log.info({ released: held.length - failed, failed }, failed ? 'some leases could not be released; they run out after leaseTtl' : 'released every lease');
      }
      const id = this.#deps.identity;
      await this.#deps.store.nodes.remove(id.name, id.instance).catch(() => undefined);
    });
  }

  async reconfigure(): Promise<void> {
    // Accounts added or removed: balance now rather than at the next round.
    if (!this.#stopped) await this.#serial(() => this.#tick());
  }

  /** One round now (tests drive rounds with `now`). */
  tick(): Promise<void> {
    return this.#serial(() => this.#tick());
  }

  /** The cluster as the store shows it: live nodes with their accounts, and every account's owner. */
  async view(): Promise<ClusterView> {
    const now = this.#now();
    const [nodes, leases] = await Promise.all([this.#deps.store.nodes.live(now, this.#ttl), this.#deps.store.leases.list(now)]);
    const owners = new Map(leases.map((l) => [l.account, l.owner]));
    const byNode = new Map<string, string[]>();
    // Appended in place: copying the list per lease made this O(N²) (5,000 accounts on one node: 12.5 million copies a read).
    for (const l of leases) {
      const held = byNode.get(l.owner);
      if (held) held.push(l.account);
      else byNode.set(l.owner, [l.account]);
    }
    const list = nodes.map((n) => ({ name: n.name, startedAt: n.startedAt, lastSeenAt: n.lastSeenAt, accounts: byNode.get(n.name) ?? [] }));
    if (!this.#deps.identity.clustered && !list.some((n) => n.name === this.#deps.identity.name)) {
      const id = this.#deps.identity;
      list.push({ name: id.name, startedAt: id.startedAt, lastSeenAt: now, accounts: byNode.get(id.name) ?? [] });
    }
    return { nodes: list, owners };
  }

  // ---- internals ----

  #serial(run: () => Promise<void>): Promise<void> {
    const p = this.#chain.then(run, run);
    this.#chain = p.catch(() => undefined);
    return p;
  }

  #schedule(): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      void this.#serial(() => this.#tick())
        .catch((err: unknown) => this.#log.error({ err }, 'cluster round failed; trying again'))
        .finally(() => this.#schedule());
    }, Math.max(50, Math.floor(this.#ttl / 3)));
    this.#timer.unref();
  }

  /**
   * Joins the cluster. Another live instance under this name is waited out
   * for up to leaseTtl + leaseTtl/3 (this node restarted before its last
   * heartbeat went stale), then refused.
   */
  async #join(): Promise<void> {
    const id = this.#deps.identity;
    // Waited out in real time, whatever clock the leases use.
    const giveUpAt = performance.now() + this.#ttl + Math.ceil(this.#ttl / 3);
    for (;;) {
      let ok: boolean;
      try {
        ok = await this.#deps.store.nodes.heartbeat({ name: id.name, instance: id.instance, startedAt: id.startedAt }, this.#now(), this.#ttl);
      } catch (err) {
        // The database is away: the rounds try again; nothing is worked until they succeed.
        this.#log.warn({ error: describeError(err) }, 'cannot join the cluster yet (the database does not answer); retrying');
        return;
      }
      if (ok) return;
      if (performance.now() >= giveUpAt) {
        throw new MailgateError(
          'CONFLICT',
          `another mailgate is running with cluster.nodeName "${id.name}" (it sent a heartbeat within the last ${Math.round(this.#ttl / 1000)} s); give every replica its own nodeName`,
        );
      }
      this.#log.warn({ nodeName: id.name }, 'another instance with this nodeName was seen recently; waiting for it to go quiet');
      await new Promise((r) => setTimeout(r, Math.max(50, Math.floor(this.#ttl / 6))));
    }
  }

  async #tick(): Promise<void> {
    if (this.#stopped) return;
    const { store, identity } = this.#deps;
    const sentAt = this.#now();
    try {
      // A node without a cluster section is alone: the heartbeat only shows it in the views.
      const alive = await store.nodes.heartbeat(
        { name: identity.name, instance: identity.instance, startedAt: identity.startedAt },
        sentAt,
        identity.clustered ? this.#ttl : 0,
      );
      if (!alive) this.#log.error({ nodeName: identity.name }, 'another instance now runs under this nodeName; give every replica its own name');
      await this.#renew(sentAt);
    } catch (err) {
      this.#renewalFailed(err);
      return;
    }
    if (this.#renewFailing) {
      this.#renewFailing = false;
      this.#log.warn('the database answers again; leases renewed');
    }
    await this.#balance();
  }

  async #renew(sentAt: number): Promise<void> {
    const held = [...this.#held.values()];
    if (held.length === 0) return;
    const renewed = await this.#deps.store.leases.renew(
      held.map((h) => h.fence),
      sentAt,
      this.#ttl,
    );
    for (const h of held) {
      if (renewed.has(h.fence.account)) {
        h.expiresAt = sentAt + this.#ttl;
        continue;
      }
      if (this.#held.get(h.fence.account) !== h) continue;
      this.#held.delete(h.fence.account);
      this.#log.warn({ account: h.fence.account, epoch: h.fence.epoch }, 'lost the lease of this account (another node took it over); stopping its work here');
      await this.#deps.incoming.stopAccount(h.fence.account);
    }
    this.#gauge();
  }

  #renewalFailed(err: unknown): void {
    this.#deps.metrics.leaseRenewalsFailed.inc();
    if (!this.#renewFailing) {
      this.#renewFailing = true;
      this.#log.error({ error: describeError(err) }, 'cannot renew leases (the database does not answer); accounts stop here when their leases would run out');
    }
    this.#expireLapsed();
  }

  /** Revokes every lease whose time (less the margin) ran out without a renewal, and stops its connector. */
  #expireLapsed(): void {
    const now = this.#now();
    let next = Infinity;
    for (const h of [...this.#held.values()]) {
      const until = h.expiresAt - this.#margin;
      if (now >= until) {
        this.#held.delete(h.fence.account);
        this.#log.warn({ account: h.fence.account }, 'the lease of this account ran out without a renewal; stopping its work here');
        void this.#deps.incoming.stopAccount(h.fence.account).catch((err: unknown) => this.#log.error({ err, account: h.fence.account }, 'could not stop the work of this account'));
      } else {
        next = Math.min(next, until);
      }
    }
    this.#gauge();
    if (this.#expiryTimer) clearTimeout(this.#expiryTimer);
    this.#expiryTimer = null;
    if (next !== Infinity && !this.#stopped) {
      this.#expiryTimer = setTimeout(() => {
        this.#expiryTimer = null;
        if (this.#renewFailing) this.#expireLapsed();
      }, Math.max(10, next - now));
      this.#expiryTimer.unref();
    }
  }

  async #balance(): Promise<void> {
    const { store, identity } = this.#deps;
    const now = this.#now();
    const configured = this.#deps.config().accounts.map((a) => a.name);
    const wanted = new Set(configured);
    // Removed from the config: hand over (nobody takes it; it is simply no longer worked).
    for (const account of [...this.#held.keys()]) if (!wanted.has(account)) await this.#release(account, 'the account was removed from the config');

    if (!identity.clustered) {
      for (const account of configured) if (!this.#held.has(account)) await this.#acquire(account, now);
      return;
    }

    const [nodes, leases] = await Promise.all([store.nodes.live(now, this.#ttl), store.leases.list(now)]);
    const live = new Set(nodes.map((n) => n.name));
    live.add(identity.name);
    const counts = new Map<string, number>([...live].map((n) => [n, 0]));
    const taken = new Set<string>();
    for (const l of leases) {
      if (!wanted.has(l.account)) continue;
      // A lease under this node's name it does not work (an earlier incarnation, or revoked here): free for it to take again.
      if (l.owner === identity.name && !this.#held.has(l.account)) continue;
      taken.add(l.account);
      if (counts.has(l.owner)) counts.set(l.owner, (counts.get(l.owner) ?? 0) + 1);
    }
    const mine = [...this.#held.values()].filter((h) => !h.releasing).length;
    counts.set(identity.name, mine);
    const target = Math.ceil(configured.length / live.size);
    for (const [account, until] of this.#cooldown) if (until <= now) this.#cooldown.delete(account);

    const orphans = configured.filter((a) => !taken.has(a) && !this.#held.has(a) && !this.#cooldown.has(a));
    const least = Math.min(...counts.values());
    if (orphans.length > 0 && mine <= least) {
      // Each node tries the orphans in its own order, so nodes starting together rarely collide.
      orphans.sort((a, b) => this.#rank(a).localeCompare(this.#rank(b)));
      let room = Math.max(1, target - mine);
      for (const account of orphans) {
        if (room <= 0) break;
        if (await this.#acquire(account, now)) room--;
      }
    }

    if (mine > target + 1) {
      const surplus = [...this.#held.values()]
        .filter((h) => !h.releasing)
        .map((h) => h.fence.account)
        .sort((a, b) => this.#rank(b).localeCompare(this.#rank(a)))
        .slice(0, mine - target);
      this.#log.info({ holding: mine, nodes: live.size, target, handingOver: surplus }, 'holding more than my share; handing accounts over');
      for (const account of surplus) {
        this.#cooldown.set(account, now + 2 * this.#ttl);
        await this.#release(account, 'rebalancing');
      }
    }
  }

  #rank(account: string): string {
    return createHash('sha256').update(`${this.#deps.identity.name}\0${account}`).digest('hex');
  }

  async #acquire(account: string, now: number): Promise<boolean> {
    const { store, identity } = this.#deps;
    const fence = await store.leases.acquire(account, identity.name, now, this.#ttl);
    if (!fence) return false;
    // Sends the last owner left half done: failed (uncertain) before this node claims any of its mail.
    try {
      const ids = await store.outbox.failInterrupted(INTERRUPTED_REASON, now, fence);
      for (const id of ids) this.#log.warn({ account, outbox: id }, 'a message was being sent when its last owner stopped; marked failed (uncertain), not resent');
    } catch (err) {
      this.#log.warn({ account, error: describeError(err) }, 'could not look for interrupted sends of this account; leaving it for the next round');
      await store.leases.release(fence, now).catch(() => undefined);
      return false;
    }
    this.#held.set(account, { fence, expiresAt: now + this.#ttl, releasing: false });
    this.#gauge();
    this.#log.info({ account, epoch: fence.epoch }, 'took the lease of this account; starting its work');
    await this.#deps.incoming.startAccount(account);
    return true;
  }

  /** Graceful: connector stopped (in-flight commits still fenced), in-flight sends finished, then the lease goes. */
  async #release(account: string, why: string): Promise<void> {
    const h = this.#held.get(account);
    if (!h) return;
    h.releasing = true;
    await this.#deps.incoming.stopAccount(account);
    await this.#deps.outbox?.drain(account);
    this.#held.delete(account);
    this.#gauge();
    const released = await this.#deps.store.leases.release(h.fence, this.#now()).catch(() => false);
    this.#log.info({ account, why, released }, 'handed this account over');
  }

  #gauge(): void {
    this.#deps.metrics.accountsOwned.set(this.#held.size);
    this.#deps.onChange?.();
  }
}
