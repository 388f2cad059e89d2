/**
 * Per-account phases for periodic work (idleResync, polls, token refreshes).
 *
 * An instance that starts N accounts together would otherwise run each
 * account's periodic work on the same beat: 5,000 IDLE resyncs in the same
 * second every 5 minutes. Each account gets an offset in [0, period) derived
 * from its name alone, so the work of N accounts is spread evenly over the
 * period, and the same account keeps its phase across restarts and reloads
 * (it does not depend on start order or on a random draw).
 */

/** FNV-1a, 32 bits: fast, no dependency, well spread for short keys such as account names. */
export function hash32(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  // Final avalanche (from murmur3's fmix32): names that differ only in their
  // last characters ("acct-0001", "acct-0002") would otherwise land close together.
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** The account's offset in [0, periodMs): the hash scaled to the period (no modulo bias). */
export function phaseOffsetMs(key: string, periodMs: number): number {
  if (!Number.isFinite(periodMs) || periodMs <= 0) throw new RangeError(`the period must be a positive number of ms, not ${periodMs}`);
  return Math.floor((hash32(key) / 2 ** 32) * periodMs);
}

/**
 * The next time after `now` (ms since the epoch) at which the account's
 * periodic work is due: offset + k × period. Anchored to the epoch, so every
 * restart agrees on it and an account that waited part of a period (a
 * reconnect) does not drift onto another account's beat.
 */
export function nextPhaseAt(key: string, periodMs: number, now: number): number {
  const offset = phaseOffsetMs(key, periodMs);
  const k = Math.floor((now - offset) / periodMs) + 1;
  return offset + k * periodMs;
}

/** How long to wait from `now` until the account's next due time: in (0, periodMs]. */
export function delayToPhaseMs(key: string, periodMs: number, now: number): number {
  return nextPhaseAt(key, periodMs, now) - now;
}
