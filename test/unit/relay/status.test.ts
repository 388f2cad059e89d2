import { describe, expect, it } from 'vitest';
import { RelayStats } from '../../../src/relay/stats.js';
import { relayStatusView } from '../../../src/relay/status.js';
import type { RelayConfig } from '../../../src/relay/types.js';

const config: RelayConfig = {
  listen: { host: '::1', port: 2525 },
  maxMessageSizeBytes: 25 * 1024 * 1024,
  clients: [
    { name: 'scanner', username: 'scan', password: 'pw', account: 'support', allowedFrom: ['support@example.com'] },
    { name: 'printer', username: 'print', password: 'pw', account: 'support', allowedFrom: ['support@example.com'] },
  ],
};

describe('relayStatusView', () => {
  it('is null without a relay section', () => {
    expect(relayStatusView(undefined, null)).toBeNull();
  });

  it('lists every configured client with its counts, zeros for one never seen, and the later time as last use', () => {
    let now = 1_000;
    const stats = new RelayStats(() => now);
    stats.relayed('scanner');
    now = 5_000;
    stats.loginFailed('127.0.0.1', 'scanner');
    stats.refused('scanner', 552);
    stats.refused('scanner', 552);
    stats.loginFailed('127.0.0.1', null);
    stats.relayed('removed-client');
    const view = relayStatusView(config, stats.snapshot());
    expect(view).toMatchObject({ listen: '[::1]:2525', tls: false, maxMessageSizeBytes: 25 * 1024 * 1024, unknownLoginFailures: 1 });
    expect(view?.clients.map((c) => c.name)).toEqual(['scanner', 'printer']);
    expect(view?.clients[0]).toEqual({
      name: 'scanner',
      username: 'scan',
      account: 'support',
      allowedFrom: ['support@example.com'],
      relayed: 1,
      loginFailures: 1,
      refused: { 552: 2 },
      failures: 3,
      lastRelayedAt: new Date(1_000).toISOString(),
      lastFailureAt: new Date(5_000).toISOString(),
      lastUsedAt: new Date(5_000).toISOString(),
    });
    expect(view?.clients[1]).toMatchObject({ relayed: 0, failures: 0, lastUsedAt: null });
  });
});
