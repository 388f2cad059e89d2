/**
 * What several replicas on one storage need from the store: account leases
 * with a fencing epoch, a membership table, named locks for work that must
 * happen once, and a wake-up bus. The embedded SQLite backend implements the
 * same contract (one node then holds every lease, the bus is in-process), so
 * one conformance suite proves both.
 */

/**
 * The proof that a node still works an account: the lease's owner and
 * epoch. Every write that acts for the account (an ingest commit, a cursor
 * reset, forgetting UIDLs, an afterDelivery marked done, an outbox claim)
 * can carry it and is then refused, changing nothing, in the same
 * transaction, when the lease is no longer exactly this one (LEASE_LOST). A
 * new owner always gets a higher epoch. Expiry alone does not void a fence:
 * only another acquire (or a release) does, so a write is never refused
 * because of clock skew while nobody else took the account.
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
  /** Epoch ms; the lease may be taken by another node once `now` reaches it. */
  expiresAt: number;
}

export interface LeaseRepo {
  /**
   * Takes the account's lease for `owner` when it is free (never taken,
   * expired, released) or held under the same owner name (an earlier
   * incarnation of this node): epoch + 1, until `now + ttlMs`. Null when
   * another owner holds it unexpired. Atomic across every store on the storage.
   */
  acquire(account: string, owner: string, now: number, ttlMs: number): Promise<Fence | null>;
  /**
   * Extends the leases still held with exactly these fences to `now + ttlMs`
   * (even when they expired meanwhile, as long as nobody took them);
   * returns the accounts renewed: the others are lost.
   */
  renew(fences: readonly Fence[], now: number, ttlMs: number): Promise<Set<string>>;
  /** Gives a lease up at once (clean shutdown, rebalancing); false when it was no longer held with this fence. */
  release(fence: Fence, now: number): Promise<boolean>;
  /** True when the lease is held with this fence and not expired at `now`. */
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
   * Records this node as alive at `now`. Refused (false, nothing changed)
   * while another instance with the same name was seen less than `ttlMs`
   * before `now`: two replicas must never share a name.
   */
  heartbeat(node: { name: string; instance: string; startedAt: number }, now: number, ttlMs: number): Promise<boolean>;
  /** Nodes seen within `ttlMs` before `now`, by name. */
  live(now: number, ttlMs: number): Promise<NodeRecord[]>;
  /** A clean shutdown: the node (this instance only) leaves at once. */
  remove(name: string, instance: string): Promise<void>;
}

export interface LockRepo {
  /**
   * A named lock for work that must happen once across replicas (the
   * retention job, scheduled work): taken when free, expired, or already
   * held by `owner` (then extended), until `now + ttlMs`. False when someone
   * else holds it. Atomic across every store on the storage.
   */
  tryLock(name: string, owner: string, now: number, ttlMs: number): Promise<boolean>;
  /** Frees the lock if `owner` holds it. */
  unlock(name: string, owner: string): Promise<void>;
}

/**
 * A delivery claimed by one node for a while (DeliveryRepo.claimDue), so no
 * other node posts it meanwhile. Recording an outcome ends the claim.
 */
export interface DeliveryClaim {
  owner: string;
  /** Epoch ms; a claim left by a node that died is void from then on. */
  until: number;
}

/** The channels replicas wake each other on. */
export type WakeChannel = 'delivery_due' | 'ack_due' | 'account_authorized';

/**
 * Wake-ups across every store on the storage (PostgreSQL: LISTEN/NOTIFY;
 * SQLite: in-process). Best effort: a wake-up may be lost (a connection
 * dropped), so every listener also keeps its own timer as a fallback.
 * Subscribers of the store that published get it too, asynchronously.
 */
export interface WakeBus {
  /** `payload` is short (an account name, or ''). */
  publish(channel: WakeChannel, payload: string): Promise<void>;
  /** Returns an unsubscribe. Listeners are called asynchronously and must not throw. */
  subscribe(channel: WakeChannel, listener: (payload: string) => void): () => void;
}

/**
 * Which accounts this node works now, and the fence each write for them
 * carries (src/store/cluster.ts). Kept by the cluster coordinator; read by
 * ingest, the afterDelivery queue and the outbox worker.
 */
export interface FenceSource {
  /**
   * The account's fence while this node holds its lease and, by its own
   * clock, the lease has not run out (a node paused past its lease gets
   * null at once, before its coordinator wakes): null means do nothing for
   * the account, on the server or in the store.
   */
  fence(account: string): Fence | null;
  /** Every fence `fence()` would hand out now. */
  owned(): Fence[];
  /** A write was refused with LEASE_LOST: the account is gone; stop working it. */
  lost(account: string): void;
}

/**
 * Calls each listener of a wake-up on a later turn, with a copy of the set
 * (a listener that unsubscribes does not disturb the others); one that
 * throws must not stop the rest. Both buses deliver this way.
 */
export function dispatchWake(listeners: ReadonlySet<(payload: string) => void> | undefined, payload: string): void {
  if (!listeners || listeners.size === 0) return;
  const copy = [...listeners];
  setImmediate(() => {
    for (const l of copy) {
      try {
        l(payload);
      } catch {
        // a listener must not throw; one that does must not stop the others
      }
    }
  });
}
