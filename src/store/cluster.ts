/**
 * What several replicas on one storage need from the store: account leases
 * with a fencing epoch, a membership table, and named locks for work that
 * must happen once. The embedded SQLite backend implements the same
 * contract (one node then holds every lease), so one conformance suite
 * proves both.
 */

/**
 * The proof that a node still works an account: the lease's owner and
 * epoch. Every write that acts for the account (an ingest commit, a cursor
 * reset, an afterDelivery marked done, an outbox claim) carries it and is
 * refused, changing nothing, when the lease is no longer exactly this one
 * (LEASE_LOST). A new owner always gets a higher epoch.
 */
export interface Fence {
  readonly account: string;
  readonly owner: string;
  readonly epoch: number;
}

export interface LeaseRecord {
  account: string;
  owner: string;
  epoch: number;
  /** Epoch ms; the lease is free once `now` reaches it. */
  expiresAt: number;
}

export interface LeaseRepo {
  /**
   * Takes the account's lease for `owner` when it is free (never taken,
   * expired or released): epoch + 1, until `now + ttlMs`. A lease the owner
   * already holds is renewed with the same epoch. Null when another owner
   * holds it.
   */
  acquire(account: string, owner: string, now: number, ttlMs: number): Promise<Fence | null>;
  /** Renews the owner's leases still held with these epochs; returns the accounts renewed (the others are lost). */
  renew(fences: readonly Fence[], now: number, ttlMs: number): Promise<Set<string>>;
  /** Gives a lease up at once (clean shutdown, rebalancing); false when it was no longer held. */
  release(fence: Fence, now: number): Promise<boolean>;
  /** True when the lease is held with this epoch and not expired at `now`. */
  holds(fence: Fence, now: number): Promise<boolean>;
  /** Every lease not expired at `now`, by account. */
  list(now: number): Promise<LeaseRecord[]>;
}

export interface NodeRecord {
  name: string;
  /** Distinguishes two processes that were given the same name. */
  instance: string;
  startedAt: number;
  lastSeenAt: number;
}

export interface NodeRepo {
  /**
   * Records this node as alive. Refused (false, nothing changed) while
   * another instance with the same name was seen less than `ttlMs` ago:
   * two replicas must never share a name.
   */
  heartbeat(node: { name: string; instance: string; startedAt: number }, now: number, ttlMs: number): Promise<boolean>;
  /** Nodes seen within `ttlMs` of `now`, by name. */
  live(now: number, ttlMs: number): Promise<NodeRecord[]>;
  /** A clean shutdown: the node leaves at once. */
  remove(name: string, instance: string): Promise<void>;
}

export interface LockRepo {
  /**
   * A named lock for work that must happen once across replicas (a token
   * refresh, the retention job): taken when free or expired, until
   * `now + ttlMs`. False when someone else holds it.
   */
  tryLock(name: string, owner: string, now: number, ttlMs: number): Promise<boolean>;
  unlock(name: string, owner: string): Promise<void>;
}

/** A delivery claimed by one node for a while, so no other posts it meanwhile. */
export interface DeliveryClaim {
  owner: string;
  /** Epoch ms; a claim left by a node that died is void after this. */
  until: number;
}
