import { describe, expect, it } from 'vitest';
import type { AccountConfig } from '../../../src/config/types.js';
import { ConnectorBase, type ConnectorDeps, type SessionFailure } from '../../../src/incoming/connector-base.js';
import { LoginPacer } from '../../../src/incoming/login-pacer.js';
import { ConnectorManager } from '../../../src/incoming/manager.js';
import type { AckQueue, Ingestor } from '../../../src/incoming/source.js';
import { silentLogger } from '../../../src/log.js';
import { createMetrics } from '../../../src/metrics.js';
import type { Config } from '../../../src/config/types.js';

const acks: AckQueue = { due: async () => [], markDone: async () => undefined, markFailed: async () => undefined, onDue: () => () => undefined, mayAct: () => true };
const account = (name: string, host = 'imap.example.com') => ({ name, enabled: true, incoming: { host, port: 993, protocol: 'imap' } }) as unknown as AccountConfig;

/** A connector whose "login" only records when it was let through, then fails or holds like a session would. */
class FakeConnector extends ConnectorBase {
  logins: number[] = [];
  constructor(deps: ConnectorDeps, private readonly failWith: (() => Error) | null = null) {
    super(deps, 'fake');
  }
  protected async session(onConnected: () => void): Promise<void> {
    this.setState('connecting');
    await this.paced(async () => {
      this.logins.push(Date.now());
      if (this.failWith) throw this.failWith();
    });
    onConnected();
    this.setState('idle');
    while (!this.stopped) await this.sleep(60_000);
  }
  protected closeActive(): void {}
  protected classify(err: unknown): SessionFailure {
    const text = (err as Error).message;
    return /throttled/.test(text) ? { kind: 'throttled', message: text, retryAfterMs: 120_000 } : { kind: 'transient', message: text, retryAfterMs: null };
  }
  protected async probe(): Promise<void> {}
}

function deps(name: string, pacer: LoginPacer): ConnectorDeps {
  return { account: account(name), ingestor: {} as Ingestor, acks, tokens: {} as never, logger: silentLogger(), metrics: createMetrics(), pacer };
}

describe('connectors log in through the pacer', () => {
  it('20 accounts started together log in at the paced rate, not at once', async () => {
    const pacer = new LoginPacer({ loginsPerSecond: 40, loginsInFlight: 5, perHostInFlight: 5 });
    const config = { accounts: Array.from({ length: 20 }, (_, i) => account(`a${i}`)), limits: { loginsPerSecond: 40, loginsInFlight: 5, loginsInFlightPerHost: 5 } } as unknown as Config;
    const made: FakeConnector[] = [];
    const manager = new ConnectorManager({ config, logger: silentLogger(), pacer, factory: (acc, p) => {
      const c = new FakeConnector(deps(acc.name, p));
      made.push(c);
      return c;
    } });
    const t0 = Date.now();
    await manager.start();
    // start() returns with the logins still queued or delayed.
    expect(made.filter((c) => c.logins.length > 0).length).toBeLessThan(20);
    await new Promise((r) => setTimeout(r, 100));
    expect(made.filter((c) => c.status().state === 'idle').length).toBeLessThan(20);
    for (let i = 0; i < 200 && made.some((c) => c.status().state !== 'idle'); i++) await new Promise((r) => setTimeout(r, 25));
    expect(made.every((c) => c.status().state === 'idle')).toBe(true);
    const times = made.flatMap((c) => c.logins).sort((a, b) => a - b);
    // 20 logins at 40/s take at least 19 gaps of 25 ms.
    expect((times.at(-1) as number) - (times[0] as number)).toBeGreaterThanOrEqual(19 * 25 - 10);
    expect((times.at(-1) as number) - t0).toBeGreaterThanOrEqual(450);
    await manager.stop();
  });

  it('stop() while a login waits for its turn gives the place up at once', async () => {
    const pacer = new LoginPacer({ loginsPerSecond: 0.01, loginsInFlight: 1, perHostInFlight: 1 });
    const first = new FakeConnector(deps('first', pacer));
    const second = new FakeConnector(deps('second', pacer));
    await first.start();
    await second.start();
    await new Promise((r) => setTimeout(r, 20));
    expect(pacer.stats().waiting).toBe(1);
    const t = Date.now();
    await second.stop();
    expect(Date.now() - t).toBeLessThan(1_000);
    expect(pacer.stats().waiting).toBe(0);
    expect(second.logins).toHaveLength(0);
    await first.stop();
  });

  it('a throttling answer slows the host down for every account on it', async () => {
    const pacer = new LoginPacer({ loginsPerSecond: 1000, loginsInFlight: 10, perHostInFlight: 10 });
    const throttled = new FakeConnector(deps('t', pacer), () => new Error('throttled by the server: Too many simultaneous connections'));
    await throttled.start();
    for (let i = 0; i < 100 && throttled.logins.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    await new Promise((r) => setTimeout(r, 50));
    // Another account on the same host now waits for the pause (120 s), one on another host does not.
    const same = new FakeConnector(deps('same', pacer));
    const other = new FakeConnector({ ...deps('other', pacer), account: account('other', 'imap.elsewhere.example') });
    await same.start();
    await other.start();
    for (let i = 0; i < 100 && other.logins.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(other.logins).toHaveLength(1);
    expect(same.logins).toHaveLength(0);
    expect(pacer.stats().waiting).toBe(1);
    expect(throttled.status()).toMatchObject({ state: 'backoff', lastError: 'throttled by the server: Too many simultaneous connections' });
    await Promise.all([throttled.stop(), same.stop(), other.stop()]);
  });

  it('a failure that cannot be recorded (a bug in classifying it) does not end the account: it tries again later', async () => {
    const pacer = new LoginPacer({ loginsPerSecond: 1000, loginsInFlight: 10, perHostInFlight: 10 });
    class BrokenClassify extends FakeConnector {
      classified = 0;
      protected override classify(): SessionFailure {
        this.classified++;
        throw new TypeError('cannot read the failure');
      }
    }
    const c = new BrokenClassify(deps('broken', pacer), () => new Error('connection reset'));
    await c.start();
    // The first retry comes after the first backoff (about a second), not never.
    for (let i = 0; i < 500 && c.logins.length < 2; i++) await new Promise((r) => setTimeout(r, 10));
    expect(c.logins.length).toBeGreaterThanOrEqual(2);
    expect(c.classified).toBeGreaterThanOrEqual(1);
    await c.stop();
    expect(c.status().state).toBe('stopped');
  });
});
