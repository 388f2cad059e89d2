import { AuthThrottle } from '../runtime/auth-throttle.js';
import type { Logger } from '../log.js';
import { relayPasswordMatches } from './passwords.js';
import type { RelayClient, RelayEvents } from './types.js';

/**
 * Relay logins with the throttle around them. Password guessing over SMTP
 * AUTH is what bots do all day, so an address gets a few free failures, then
 * each further one starts a growing lockout (1 s, 2 s, 4 s … 30 s; the
 * admin API's AuthThrottle). The refused login's reply is held back for that
 * lockout, so a client retrying on its connection is slowed down by it;
 * other logins from the address during the lockout are not evaluated at all
 * (that would tell an attacker with many connections which guess was right)
 * and answered 454, a temporary refusal that does not claim the password is
 * wrong. A success clears the address.
 */

export const RELAY_FREE_FAILURES = 3;
export const RELAY_BASE_LOCKOUT_MS = 1_000;
/** Below the relay's socket timeout, so a held-back reply still reaches the client. */
export const RELAY_MAX_LOCKOUT_MS = 30_000;

export function relayThrottle(now?: () => number): AuthThrottle {
  return new AuthThrottle({
    freeFailures: RELAY_FREE_FAILURES,
    baseLockoutMs: RELAY_BASE_LOCKOUT_MS,
    maxLockoutMs: RELAY_MAX_LOCKOUT_MS,
    ...(now ? { now } : {}),
  });
}

/** Clients by username, built once per config so that every session of that config shares it. */
export type ClientIndex = ReadonlyMap<string, RelayClient>;

export function indexClients(clients: readonly RelayClient[]): ClientIndex {
  return new Map(clients.map((c) => [c.username, c]));
}

export interface Credentials {
  username: string;
  password: string;
  /** AUTH PLAIN's authorization identity (RFC 4616), '' when none was given. */
  authzid: string;
}

export type LoginResult =
  | { ok: true; client: RelayClient }
  /** `delayMs`: how long to hold the reply back (the lockout this failure started, 0 for a free failure). */
  | { ok: false; code: 454 | 530 | 535; message: string; delayMs: number };

export const REPLY = {
  locked: (seconds: number) => `4.7.0 too many failed logins from your address; try again in ${seconds} s`,
  unknown: '5.7.0 no relay client has this username; authentication required',
  invalid: '5.7.8 authentication credentials invalid',
} as const;

export class RelayLogin {
  readonly #throttle: AuthThrottle;
  readonly #log: Logger;
  readonly #events: RelayEvents | undefined;

  constructor(deps: { throttle: AuthThrottle; logger: Logger; events?: RelayEvents | undefined }) {
    this.#throttle = deps.throttle;
    this.#log = deps.logger;
    this.#events = deps.events;
  }

  async attempt(address: string, clients: ClientIndex, creds: Credentials): Promise<LoginResult> {
    const locked = this.#throttle.lockedFor(address);
    if (locked > 0) {
      this.#log.debug({ ip: address }, 'relay login from a locked-out address refused unchecked');
      return { ok: false, code: 454, message: REPLY.locked(Math.ceil(locked / 1000)), delayMs: 0 };
    }
    const client = clients.get(creds.username) ?? null;
    // RFC 4616: an authorization identity other than the login's own would be acting as someone else; clients have no such right.
    const identityOk = creds.authzid === '' || creds.authzid === creds.username;
    if (client && identityOk && (await relayPasswordMatches(client, creds.password))) {
      this.#throttle.success(address);
      return { ok: true, client };
    }
    const lockout = this.#throttle.failure(address);
    this.#emit(address, client?.name ?? null);
    // The username is logged only when it names a client: people type passwords into username fields.
    const ctx = { ip: address, client: client?.name ?? null };
    if (lockout > 0) this.#log.warn({ ...ctx, lockedForMs: lockout }, 'repeated failed relay logins from this address; it is locked out for a while');
    else this.#log.info(ctx, client ? 'relay login with a wrong password refused' : 'relay login with an unknown username refused');
    return client ? { ok: false, code: 535, message: REPLY.invalid, delayMs: lockout } : { ok: false, code: 530, message: REPLY.unknown, delayMs: lockout };
  }

  #emit(address: string, client: string | null): void {
    try {
      this.#events?.loginFailed(address, client);
    } catch (err) {
      this.#log.error({ err }, 'relay event listener failed');
    }
  }
}
