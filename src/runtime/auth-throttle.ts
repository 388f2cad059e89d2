/**
 * Failed authentications per client address, shared by the HTTP edge
 * (src/http/guards.ts: API token, admin login, metrics token) and the SMTP
 * relay (src/relay/auth.ts). Knows nothing of either protocol.
 */

export interface ThrottleOptions {
  /** Failures from one address that are answered normally before the first lockout. */
  freeFailures?: number;
  /** The first lockout; each further failure doubles it. */
  baseLockoutMs?: number;
  /** The longest lockout: an attacker sharing the admin's address can lock the admin out this long at most. */
  maxLockoutMs?: number;
  /** An address with no failure for this long starts from zero again. */
  forgetAfterMs?: number;
  /** Addresses tracked at most; the least recently failed are forgotten first (bounded memory). */
  maxAddresses?: number;
  now?: () => number;
}

interface FailureRecord {
  failures: number;
  lastFailureAt: number;
  lockedUntil: number;
}

export const AUTH_FREE_FAILURES = 5;
export const AUTH_BASE_LOCKOUT_MS = 1_000;
export const AUTH_MAX_LOCKOUT_MS = 60_000;
export const AUTH_FORGET_AFTER_MS = 15 * 60_000;
const AUTH_MAX_ADDRESSES = 10_000;

/**
 * Failed token checks per client address: after a few, the address is
 * locked out for a growing time (1 s, 2 s, 4 s … capped at 60 s); while
 * locked out, its token checks are not even evaluated (a lockout that still
 * tested tokens would tell the attacker which one was right). A success
 * clears the address. Signed-in admin UI sessions are not affected.
 * No maintained fastify plugin counts only failures (@fastify/rate-limit
 * counts every request), hence this small class.
 */
export class AuthThrottle {
  readonly #records = new Map<string, FailureRecord>();
  readonly #o: Required<Omit<ThrottleOptions, 'now'>>;
  readonly #now: () => number;

  constructor(opts: ThrottleOptions = {}) {
    this.#o = {
      freeFailures: opts.freeFailures ?? AUTH_FREE_FAILURES,
      baseLockoutMs: opts.baseLockoutMs ?? AUTH_BASE_LOCKOUT_MS,
      maxLockoutMs: opts.maxLockoutMs ?? AUTH_MAX_LOCKOUT_MS,
      forgetAfterMs: opts.forgetAfterMs ?? AUTH_FORGET_AFTER_MS,
      maxAddresses: opts.maxAddresses ?? AUTH_MAX_ADDRESSES,
    };
    this.#now = opts.now ?? Date.now;
  }

  /** Milliseconds this address must still wait, or 0. */
  lockedFor(address: string): number {
    const r = this.#live(address);
    return r ? Math.max(0, r.lockedUntil - this.#now()) : 0;
  }

  /** Records a failure; returns the lockout it started (ms), or 0 when the address may go on trying. */
  failure(address: string): number {
    const now = this.#now();
    const r = this.#live(address) ?? { failures: 0, lastFailureAt: now, lockedUntil: 0 };
    r.failures++;
    r.lastFailureAt = now;
    let lockout = 0;
    if (r.failures > this.#o.freeFailures) {
      lockout = Math.min(this.#o.maxLockoutMs, this.#o.baseLockoutMs * 2 ** (r.failures - this.#o.freeFailures - 1));
      r.lockedUntil = now + lockout;
    }
    // Re-insert: Map order is then least recently failed first, which is what gets evicted.
    this.#records.delete(address);
    this.#records.set(address, r);
    while (this.#records.size > this.#o.maxAddresses) {
      const oldest = this.#records.keys().next().value;
      if (oldest === undefined) break;
      this.#records.delete(oldest);
    }
    return lockout;
  }

  success(address: string): void {
    this.#records.delete(address);
  }

  /** Addresses currently tracked (for tests and the memory bound). */
  get size(): number {
    return this.#records.size;
  }

  #live(address: string): FailureRecord | null {
    const r = this.#records.get(address);
    if (!r) return null;
    if (this.#now() - r.lastFailureAt > this.#o.forgetAfterMs && this.#now() >= r.lockedUntil) {
      this.#records.delete(address);
      return null;
    }
    return r;
  }
}
