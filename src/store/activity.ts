import type { DeliveryRecord } from './deliveries.js';
import type { Side } from './meta.js';

/**
 * What the admin UI's account page draws: an account's mail in time buckets,
 * and the history of its connection states. Reads are bounded by the window
 * (index-backed: messages by account and received_at, deliveries by account
 * and updated_at); the history keeps at most CONNECTION_HISTORY_KEEP rows
 * per account, so a flapping account cannot grow the database without bound.
 */

/** Rows of connection history kept per account (both sides together); older ones go when a new one is recorded. */
export const CONNECTION_HISTORY_KEEP = 200;
/** At most this many buckets in one activity read. */
export const MAX_ACTIVITY_BUCKETS = 1_000;

/** [since, until) cut into buckets of bucketMs from `since`; the last one may be shorter. */
export interface ActivityWindow {
  since: number;
  until: number;
  bucketMs: number;
}

export interface ActivityBucket {
  /** Start of the bucket (epoch ms); it ends at start + bucketMs (or the window's end). */
  start: number;
  /** Messages stored (received_at) in the bucket. */
  received: number;
  /** Message deliveries the webhook acknowledged (2xx), by the time of the acknowledgement. */
  acknowledged: number;
  /** Message deliveries that are failed now (parked after their last attempt), by the time they failed. */
  failed: number;
  /**
   * Of the acknowledged ones: acknowledgement time minus the message's
   * received time, median (nearest rank: the ⌈n/2⌉-th smallest) and maximum,
   * in ms; null when none was acknowledged in the bucket.
   */
  latencyP50Ms: number | null;
  latencyMaxMs: number | null;
}

export interface ActivityRepo {
  /**
   * Every bucket of the window, oldest first, zeros where nothing happened.
   * Only deliveries of messages count (account events are left out).
   * Rejects (RangeError) a window that is empty, reversed, not in whole ms,
   * or of more than MAX_ACTIVITY_BUCKETS buckets.
   */
  accountActivity(account: string, window: ActivityWindow): Promise<ActivityBucket[]>;
  /** The account's failed deliveries that failed at or after `since`, most recent first, at most `limit` (≤ 100). */
  recentFailures(account: string, since: number, limit: number): Promise<DeliveryRecord[]>;
}

export interface ConnectionChange {
  account: string;
  side: Side;
  /** When the state was entered (epoch ms). */
  at: number;
  /**
   * Incoming: connected | backoff | error | stopped (the connector's states,
   * idle and polling both being "connected"); outgoing: ok | error.
   */
  state: string;
  /** What went wrong, in plain words; null when nothing did. */
  error: string | null;
}

/**
 * Append-only history of state changes per account and side. The caller
 * reports changes; the store keeps the newest CONNECTION_HISTORY_KEEP per
 * account, pruned in the same transaction as the insert.
 */
export interface ConnectionHistoryRepo {
  /**
   * Appends the change, unless the newest row of the same account and side
   * already has this state and error (then nothing is written: false).
   */
  record(change: ConnectionChange): Promise<boolean>;
  /** The newest changes of the account (both sides), newest first, at most `limit` (≤ CONNECTION_HISTORY_KEEP). */
  recent(account: string, limit: number): Promise<ConnectionChange[]>;
}

/** Checks a window and returns its number of buckets (shared by the backends). */
export function bucketCount(w: ActivityWindow): number {
  if (![w.since, w.until, w.bucketMs].every(Number.isSafeInteger)) throw new RangeError('an activity window is given in whole milliseconds');
  if (w.bucketMs <= 0 || w.until <= w.since) throw new RangeError('an activity window needs since < until and a positive bucket size');
  const n = Math.ceil((w.until - w.since) / w.bucketMs);
  if (n > MAX_ACTIVITY_BUCKETS) throw new RangeError(`an activity window has at most ${MAX_ACTIVITY_BUCKETS} buckets, not ${n}`);
  return n;
}

/** The rows the backends' grouped queries return, as buckets. */
export interface BucketRows {
  received: { b: number; n: number }[];
  acknowledged: { b: number; n: number; p50: number | null; max: number | null }[];
  failed: { b: number; n: number }[];
}

export function toBuckets(w: ActivityWindow, rows: BucketRows): ActivityBucket[] {
  const n = bucketCount(w);
  const out: ActivityBucket[] = Array.from({ length: n }, (_, i) => ({
    start: w.since + i * w.bucketMs,
    received: 0,
    acknowledged: 0,
    failed: 0,
    latencyP50Ms: null,
    latencyMaxMs: null,
  }));
  const at = (b: number) => (Number.isInteger(Number(b)) ? out[Number(b)] : undefined);
  for (const r of rows.received) {
    const x = at(r.b);
    if (x) x.received = Number(r.n);
  }
  for (const r of rows.acknowledged) {
    const x = at(r.b);
    if (!x) continue;
    x.acknowledged = Number(r.n);
    x.latencyP50Ms = r.p50 === null ? null : Number(r.p50);
    x.latencyMaxMs = r.max === null ? null : Number(r.max);
  }
  for (const r of rows.failed) {
    const x = at(r.b);
    if (x) x.failed = Number(r.n);
  }
  return out;
}

export const MAX_RECENT_FAILURES = 100;
