/**
 * When an access token is fresh, due for a refresh, or too close to expiry
 * to hand out: decided here once, for the token service (hand it out?), the
 * refresh scheduler (refresh it now?) and the status views (ok or expiring?).
 */

/** An access token this close to expiry is not handed out; it is refreshed first. */
export const EXPIRY_SKEW_MS = 60_000;
/** Short-lived tokens: refresh when this fraction of the lifetime is left, if that is earlier than refreshBefore. */
const LIFETIME_FRACTION = 0.5;

export interface TokenTimes {
  accessExpiresAt: number | null;
  lastRefreshAt: number | null;
}

/**
 * - `unknown`: the provider gave no lifetime: handed out, never refreshed ahead.
 * - `expired`: past expiry or within EXPIRY_SKEW_MS of it: never handed out.
 * - `due`: inside its refresh lead (`refreshBefore`, or half the lifetime
 *   of a token that lives shorter than that): still handed out, refreshed now.
 * - `fresh`: none of these.
 */
export type TokenTiming = 'fresh' | 'due' | 'expired' | 'unknown';

export function tokenTiming(t: TokenTimes, refreshBeforeMs: number, now: number): TokenTiming {
  if (t.accessExpiresAt === null) return 'unknown';
  const left = t.accessExpiresAt - now;
  if (left <= EXPIRY_SKEW_MS) return 'expired';
  return left <= refreshLead(t, refreshBeforeMs) ? 'due' : 'fresh';
}

/** How long before expiry a token is refreshed. */
export function refreshLead(t: TokenTimes, refreshBeforeMs: number): number {
  const lifetime = t.accessExpiresAt !== null && t.lastRefreshAt !== null ? t.accessExpiresAt - t.lastRefreshAt : Infinity;
  return Math.max(refreshBeforeMs >= lifetime ? lifetime * LIFETIME_FRACTION : refreshBeforeMs, 0);
}

/**
 * Whether the scheduler refreshes this token now: a healthy token that is
 * due or expired and can be renewed: with its refresh token, or (`renewable`)
 * by a grant that needs none (client credentials, a service account's
 * signed assertion).
 */
export function isDue(t: TokenTimes & { state: string; refreshToken: string | null }, refreshBeforeMs: number, now: number, renewable = false): boolean {
  if (t.state !== 'ok' || !(t.refreshToken || renewable)) return false;
  const timing = tokenTiming(t, refreshBeforeMs, now);
  return timing === 'due' || timing === 'expired';
}
