import type { MetaRepo } from '../store/meta.js';
import type { RelayStatsSnapshot } from './stats.js';
import type { RelayConfig } from './types.js';

/**
 * What `mailgate status` and the admin UI show about the relay: the
 * configured listener and, per client, last use, messages relayed and
 * failures. The daemon keeps the counts in the store (RELAY_STATS_KEY) so
 * that another process (the CLI) or replica reads the same numbers.
 */

export const RELAY_STATS_KEY = 'relay.stats';

export interface RelayClientStatus {
  name: string;
  username: string;
  account: string;
  allowedFrom: string[];
  /** Messages stored in the outbox since the counts began. */
  relayed: number;
  /** Refused logins with this client's username (a wrong password). */
  loginFailures: number;
  /** Refused messages by reply code: 550 sender not allowed, 552 too big, 421 busy, 451 not stored. */
  refused: Record<string, number>;
  /** Login failures plus refused messages. */
  failures: number;
  /** When it last relayed a message (ISO 8601), or null. */
  lastRelayedAt: string | null;
  lastFailureAt: string | null;
  /** The later of the two: when the application last used the relay. */
  lastUsedAt: string | null;
}

export interface RelayStatusView {
  listen: string;
  tls: boolean;
  maxMessageSizeBytes: number;
  clients: RelayClientStatus[];
  /** Logins with a username no client has. */
  unknownLoginFailures: number;
}

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

/** The stored counts, or null when none were written (or they cannot be read). */
export async function readRelayStats(meta: MetaRepo): Promise<RelayStatsSnapshot | null> {
  const text = await meta.get(RELAY_STATS_KEY);
  if (!text) return null;
  try {
    const parsed = JSON.parse(text) as RelayStatsSnapshot;
    return parsed && typeof parsed === 'object' && parsed.clients && typeof parsed.clients === 'object' ? parsed : null;
  } catch {
    return null;
  }
}

/** The configured clients with their counts (zeros for a client that never showed up); null without a relay section. */
export function relayStatusView(config: RelayConfig | undefined, stats: RelayStatsSnapshot | null): RelayStatusView | null {
  if (!config) return null;
  const host = config.listen.host.includes(':') ? `[${config.listen.host}]` : config.listen.host;
  return {
    listen: `${host}:${config.listen.port}`,
    tls: config.tls !== undefined,
    maxMessageSizeBytes: config.maxMessageSizeBytes,
    clients: config.clients.map((c) => {
      const s = stats?.clients[c.name];
      const refused = { ...(s?.refused ?? {}) };
      const lastRelayedAt = s?.lastRelayedAt ?? null;
      const lastFailureAt = s?.lastFailureAt ?? null;
      const last = Math.max(lastRelayedAt ?? -1, lastFailureAt ?? -1);
      return {
        name: c.name,
        username: c.username,
        account: c.account,
        allowedFrom: [...c.allowedFrom],
        relayed: s?.relayed ?? 0,
        loginFailures: s?.loginFailures ?? 0,
        refused,
        failures: (s?.loginFailures ?? 0) + Object.values(refused).reduce((a, b) => a + b, 0),
        lastRelayedAt: iso(lastRelayedAt),
        lastFailureAt: iso(lastFailureAt),
        lastUsedAt: last < 0 ? null : iso(last),
      };
    }),
    unknownLoginFailures: stats?.unknownLoginFailures ?? 0,
  };
}
