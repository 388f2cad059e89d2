import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AccountConfig, Config } from '../../../src/config/types.js';
import { createConnector } from '../../../src/incoming/factory.js';
import { IngestService } from '../../../src/incoming/ingest.js';
import { ConnectorManager } from '../../../src/incoming/manager.js';
import { silentLogger } from '../../../src/log.js';
import { createMetrics } from '../../../src/metrics.js';
import type { TokenProvider } from '../../../src/oauth/token-provider.js';
import { inspectMessage } from '../../../src/parse/auto-submitted.js';
import { SecretCipher } from '../../../src/secrets/cipher.js';
import { SqliteStore } from '../../../src/store/sqlite/sqlite-store.js';
import { createMaildirs, dovecotLoginStats, type Dovecot } from '../../harness/dovecot.js';
import { getHarness, startDovecot, TEST_PASSWORD, uniqueUser } from '../../harness/index.js';
import { until } from '../../harness/until.js';

/**
 * 300 IMAP accounts in IDLE through the real ConnectorManager and
 * connectors, against a Dovecot of their own: the logins Dovecot logs stay
 * at the configured rate (its log has one-second timestamps, and a login is
 * logged when it completes, so one second may hold a few more), and no
 * connection is closed before its login, at start and after a Dovecot
 * restart that drops all 300 at once.
 */

const h = getHarness();
const N = 300;
const RATE = 30;
const noTokens: TokenProvider = { getAccessToken: () => Promise.reject(new Error('password accounts only')) };

describe(`${N} accounts start paced against Dovecot`, () => {
  let d: Dovecot;
  beforeAll(async () => {
    d = await startDovecot({
      introspectionUrl: `${h.oauthUrl}/introspect`,
      relayPort: h.relaySinkPort,
      scale: { processLimit: N + 200, clientLimit: 2 * N + 1000, imapHibernateTimeout: '2s' },
    });
  });
  afterAll(async () => {
    await d?.stop();
  });

  const logSize = () => readFileSync(d.logPath).length;
  const logSince = (offset: number) => readFileSync(d.logPath).subarray(offset).toString('utf8');

  it('log in at the paced rate with no connection closed before login, at start and after a Dovecot restart', { timeout: 300_000 }, async () => {
    const prefix = `paced-${uniqueUser('').slice(1)}-`;
    const users = Array.from({ length: N }, (_, i) => `${prefix}${i}`);
    await createMaildirs(d, users);
    const accounts: AccountConfig[] = users.map((user) => ({
      name: user,
      email: `${user}@example.com`,
      enabled: true,
      webhook: 'w',
      outgoing: undefined,
      incoming: {
        protocol: 'imap', host: '127.0.0.1', port: d.imapPort, tls: false, requireTLS: false, user,
        auth: { method: 'password', password: TEST_PASSWORD },
        mailboxes: ['INBOX'], mode: 'idle', pollIntervalMs: 60_000, idleResyncMs: 3_600_000, afterDelivery: 'none', moveTo: undefined, maxMessageSizeBytes: 50 * 1024 * 1024, initialSync: 'all',
      },
    }));
    const config = {
      accounts,
      webhooks: [],
      limits: { loginsPerSecond: RATE, loginsInFlight: 20, loginsInFlightPerHost: 20, idleConnectionsPerAccount: 3 },
    } as unknown as Config;
    const store = SqliteStore.open(':memory:', new SecretCipher(randomBytes(32)));
    const ingest = new IngestService({ store, config: () => config, metrics: createMetrics(), inspect: inspectMessage, onQueued: () => undefined });
    const metrics = createMetrics();
    const manager = new ConnectorManager({
      config,
      logger: silentLogger(),
      factory: (account, pacer) =>
        createConnector(account, {
          ingestor: ingest, acks: ingest, tokens: noTokens, logger: silentLogger(), metrics, pacer,
          onStatus: (st) => {
            if (restarted && st.state === 'connecting') reconnecting.add(account.name);
          },
        }),
    });
    const idle = () => users.filter((u) => manager.status(u)?.state === 'idle').length;
    /** Accounts that set out to log in again after the restart. */
    const reconnecting = new Set<string>();
    let restarted = false;
    /** States and a few errors, for a failure message. */
    const summary = () => {
      const states: Record<string, number> = {};
      const errors = new Set<string>();
      for (const u of users) {
        const st = manager.status(u);
        states[st?.state ?? 'none'] = (states[st?.state ?? 'none'] ?? 0) + 1;
        if (st?.lastError && errors.size < 3) errors.add(st.lastError);
      }
      return `${JSON.stringify(states)} ${[...errors].join('; ')} pacer ${JSON.stringify(manager.pacer.stats())}`;
    };

    try {
      const from = logSize();
      const t0 = Date.now();
      await manager.start();
      // start() only launches the loops: the logins are still queued.
      expect(manager.pacer.stats().delayed + manager.pacer.stats().waiting + manager.pacer.stats().inFlight).toBeGreaterThan(N / 2);
      await until(() => idle() === N, 120_000, `all ${N} accounts in IDLE`).catch((err: Error) => {
        throw new Error(`${err.message}: ${summary()}`);
      });
      // Dovecot's log process writes a login line a moment after the login.
      await until(() => dovecotLoginStats(logSince(from), prefix).logins >= N, 15_000, `Dovecot to log ${N} logins`);
      const start = dovecotLoginStats(logSince(from), prefix);
      expect(start.logins).toBe(N);
      if (start.droppedBeforeLogin > 0) console.log(logSince(from).split('\n').filter((l) => l.includes('imap-login') && !l.includes('Login: ')).slice(0, 5).join('\n'));
      expect(start.droppedBeforeLogin).toBe(0);
      expect(start.peakPerSecond).toBeLessThanOrEqual(RATE * 1.2);
      // Spread over the pacing window, not done in a burst.
      expect(start.spanS).toBeGreaterThanOrEqual(Math.floor(N / RATE) - 1);
      const startS = (Date.now() - t0) / 1000;

      // A restart closes all 300 sessions; they come back through the pacer.
      const beforeRestart = logSize();
      restarted = true;
      await d.restart();
      // The harness's own port probes of the restart (every 50 ms until all
      // three ports are open) close at once: "no auth attempts in 0 secs" /
      // "disconnected before auth was ready, waited 0 secs", and under load
      // Dovecot's log process writes them a while after restart() returned.
      // A client that gave up waiting for its greeting or login (the storm
      // this guards against) waits at least 16 s first: none of those.
      const afterProbes = logSize();
      await until(() => idle() < N, 10_000, 'the accounts to notice the restart');
      await until(() => idle() === N, 120_000, `all ${N} accounts back in IDLE after the restart`).catch((err: Error) => {
        throw new Error(`${err.message}: ${summary()}`);
      });
      // A session Dovecot's stop left running in a process that outlived the
      // master (it keeps serving its client) never notices; every other one
      // logs in again. How many outlive it depends on the host's load (a few
      // on a quiet host, 17 in a full CI run): most must come back, or the
      // pacing checks below would be about too few logins to mean anything.
      expect(reconnecting.size).toBeGreaterThanOrEqual(N / 2);
      await until(() => dovecotLoginStats(logSince(beforeRestart), prefix).logins >= reconnecting.size, 15_000, `Dovecot to log ${reconnecting.size} logins after the restart`);
      const back = dovecotLoginStats(logSince(beforeRestart), prefix);
      const closed = dovecotLoginStats(logSince(afterProbes), prefix);
      const dropped = closed.droppedBeforeLogin - closed.droppedAtOnce;
      if (closed.droppedBeforeLogin > 0) console.log(logSince(afterProbes).split('\n').filter((l) => l.includes('imap-login') && !l.includes('Login: ')).slice(0, 5).join('\n'));
      expect(back.logins).toBe(reconnecting.size);
      expect(dropped).toBe(0);
      expect(back.peakPerSecond).toBeLessThanOrEqual(RATE * 1.2);
      console.log(
        `${N} accounts: all idle after ${startS.toFixed(1)} s; start peak ${start.peakPerSecond}/s mean ${start.meanPerSecond.toFixed(1)}/s over ${start.spanS} s; ` +
          `after the restart peak ${back.peakPerSecond}/s mean ${back.meanPerSecond.toFixed(1)}/s over ${back.spanS} s (limit ${RATE}/s); closed at once (port probes) ${closed.droppedAtOnce}; ${N - reconnecting.size} sessions outlived the restart`,
      );
    } finally {
      await manager.stop();
      await store.close();
    }
  });
});
