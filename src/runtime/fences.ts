import type { Fence } from '../store/cluster.js';

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
