import type { RelayEvents } from './types.js';

/**
 * Per-client relay status for `mailgate status` and the admin UI: last use,
 * messages relayed, failures. An in-memory RelayEvents listener (metrics can
 * listen alongside it, relayEventsOf). `mailgate status` runs in its own
 * process and reads the store, so the daemon persists these: `restore` at
 * start from what was stored, and write a snapshot whenever `version` moved
 * (a timer and stop()), which keeps a login flood from writing per attempt.
 */

export interface RelayClientStats {
  /** Messages stored in the outbox. */
  relayed: number;
  /** Refused logins with this client's username (wrong password). */
  loginFailures: number;
  /** Refused transactions by reply code (550, 552, 421, 451). */
  refused: Record<string, number>;
  /** Last message relayed, ms since the epoch. */
  lastRelayedAt: number | null;
  /** Last refused login or transaction. */
  lastFailureAt: number | null;
}

export interface RelayStatsSnapshot {
  clients: Record<string, RelayClientStats>;
  /** Logins with a username no client has. */
  unknownLoginFailures: number;
}

export class RelayStats implements RelayEvents {
  readonly #clients = new Map<string, RelayClientStats>();
  #unknown = 0;
  #version = 0;
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /** Goes up with every event: a flusher writes when it differs from what it wrote last. */
  get version(): number {
    return this.#version;
  }

  /** Continues from persisted counts (a daemon restart). */
  restore(snapshot: RelayStatsSnapshot): void {
    this.#unknown = snapshot.unknownLoginFailures;
    for (const [name, s] of Object.entries(snapshot.clients)) this.#clients.set(name, { ...s, refused: { ...s.refused } });
  }

  loginFailed(_address: string, client: string | null): void {
    this.#version++;
    if (client === null) {
      this.#unknown++;
      return;
    }
    const s = this.#of(client);
    s.loginFailures++;
    s.lastFailureAt = this.#now();
  }

  relayed(client: string): void {
    this.#version++;
    const s = this.#of(client);
    s.relayed++;
    s.lastRelayedAt = this.#now();
  }

  refused(client: string, code: number): void {
    this.#version++;
    const s = this.#of(client);
    s.refused[code] = (s.refused[code] ?? 0) + 1;
    s.lastFailureAt = this.#now();
  }

  /** A copy, with an entry (zeros) for every name in `clients` even if it never showed up. */
  snapshot(clients: readonly string[] = []): RelayStatsSnapshot {
    const out: Record<string, RelayClientStats> = {};
    for (const name of new Set([...clients, ...this.#clients.keys()])) {
      const s = this.#clients.get(name);
      out[name] = s ? { ...s, refused: { ...s.refused } } : empty();
    }
    return { clients: out, unknownLoginFailures: this.#unknown };
  }

  #of(client: string): RelayClientStats {
    let s = this.#clients.get(client);
    if (!s) {
      s = empty();
      this.#clients.set(client, s);
    }
    return s;
  }
}

function empty(): RelayClientStats {
  return { relayed: 0, loginFailures: 0, refused: {}, lastRelayedAt: null, lastFailureAt: null };
}

/** Calls every listener in turn, e.g. RelayStats and the metrics. */
export function relayEventsOf(...listeners: RelayEvents[]): RelayEvents {
  return {
    loginFailed: (address, client) => listeners.forEach((l) => l.loginFailed(address, client)),
    relayed: (client) => listeners.forEach((l) => l.relayed(client)),
    refused: (client, code) => listeners.forEach((l) => l.refused(client, code)),
  };
}
