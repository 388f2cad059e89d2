/**
 * Retry delays as pure functions (bullmq's backoffs.ts idea): no I/O, tested
 * with a fixed random source. Shared by every loop that retries: webhook
 * deliveries, outbox sends, connector reconnects and token requests.
 *
 * Exponential: initial × 2^(attempt-1), capped at max, then "equal jitter"
 * (AWS architecture blog): half fixed, half random. A retry never comes
 * sooner than half the exponential step nor later than max, so a fleet of
 * failing deliveries spreads out without any of them waiting past the cap.
 */
export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
}

export function computeBackoff(attempt: number, opts: BackoffOptions, random: () => number = Math.random): number {
  const n = Math.max(1, Math.floor(attempt));
  // 2^n overflows to Infinity long after the cap matters; Math.min handles it.
  const step = Math.min(opts.maxMs, opts.initialMs * 2 ** (n - 1));
  const half = step / 2;
  return Math.round(Math.min(opts.maxMs, half + half * random()));
}

/**
 * `Retry-After` (RFC 9110 §10.2.3): delay-seconds or an HTTP-date. Returns ms
 * from `now`, or null when absent or unreadable. Never negative.
 */
export function parseRetryAfter(value: string | null | undefined, now: number = Date.now()): number | null {
  if (value === null || value === undefined) return null;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const date = Date.parse(v);
  if (Number.isNaN(date)) return null;
  return Math.max(0, date - now);
}
