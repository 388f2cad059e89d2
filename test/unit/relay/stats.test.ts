import { describe, expect, it } from 'vitest';
import { relayEventsOf, RelayStats } from '../../../src/relay/stats.js';

describe('RelayStats', () => {
  it('counts per client: relayed, login failures, refusals by code, last use and last failure', () => {
    let now = 1_000;
    const stats = new RelayStats(() => now);
    stats.relayed('scanner');
    now = 2_000;
    stats.relayed('scanner');
    stats.loginFailed('10.0.0.1', 'scanner');
    stats.loginFailed('10.0.0.9', null);
    now = 3_000;
    stats.refused('printer', 552);
    stats.refused('printer', 552);
    stats.refused('printer', 550);
    expect(stats.snapshot(['scanner', 'printer', 'idle'])).toEqual({
      clients: {
        scanner: { relayed: 2, loginFailures: 1, refused: {}, lastRelayedAt: 2_000, lastFailureAt: 2_000 },
        printer: { relayed: 0, loginFailures: 0, refused: { 550: 1, 552: 2 }, lastRelayedAt: null, lastFailureAt: 3_000 },
        idle: { relayed: 0, loginFailures: 0, refused: {}, lastRelayedAt: null, lastFailureAt: null },
      },
      unknownLoginFailures: 1,
    });
  });

  it('hands out copies, and fans events out to several listeners', () => {
    const a = new RelayStats();
    const b = new RelayStats();
    const both = relayEventsOf(a, b);
    both.refused('scanner', 421);
    const snap = a.snapshot();
    (snap.clients.scanner as { refused: Record<string, number> }).refused[421] = 99;
    expect(a.snapshot().clients.scanner?.refused).toEqual({ 421: 1 });
    expect(b.snapshot().clients.scanner?.refused).toEqual({ 421: 1 });
  });

  it('continues from a restored snapshot, and moves its version with every event', () => {
    const first = new RelayStats(() => 5);
    first.relayed('scanner');
    first.loginFailed('10.0.0.1', null);
    const again = new RelayStats(() => 9);
    again.restore(first.snapshot());
    const v = again.version;
    again.relayed('scanner');
    expect(again.version).toBe(v + 1);
    expect(again.snapshot()).toEqual({
      clients: { scanner: { relayed: 2, loginFailures: 0, refused: {}, lastRelayedAt: 9, lastFailureAt: null } },
      unknownLoginFailures: 1,
    });
  });
});
