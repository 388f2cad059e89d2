import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ImapFlow } from 'imapflow';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { AccountConfig, Config, ImapIncomingConfig } from '../../../src/config/types.js';
import { ImapConnector } from '../../../src/incoming/imap/imap-connector.js';
import { IngestService } from '../../../src/incoming/ingest.js';
import { LoginPacer } from '../../../src/incoming/login-pacer.js';
import { silentLogger } from '../../../src/log.js';
import { createMetrics } from '../../../src/metrics.js';
import type { TokenProvider } from '../../../src/oauth/token-provider.js';
import { inspectMessage } from '../../../src/parse/auto-submitted.js';
import { SecretCipher } from '../../../src/secrets/cipher.js';
import { SqliteStore } from '../../../src/store/sqlite/sqlite-store.js';
import type { Dovecot } from '../../harness/dovecot.js';
import { getHarness, startDovecot, TEST_PASSWORD, uniqueUser } from '../../harness/index.js';
import { until } from '../../harness/until.js';

/**
 * IDLE on several mailboxes through the real connector: with NOTIFY (the
 * harness Dovecot offers it) new mail in a second mailbox is stored within
 * about a second, not at the next idleResync; on a Dovecot that does not
 * offer NOTIFY, a second connection in IDLE watches it, and a mailbox past
 * idleConnectionsPerAccount is polled.
 */

const h = getHarness();
/** The promise: mail in a second mailbox is known within a second; the wait is generous for a shared machine. */
const PROMISE_MS = 1_000;
const WAIT_MS = 10_000;
const noTokens: TokenProvider = { getAccessToken: () => Promise.reject(new Error('password accounts only')) };

const running: ImapConnector[] = [];
afterEach(async () => {
  for (const c of running.splice(0)) await c.stop();
});

async function prepare(port: number, user: string, boxes: string[]): Promise<ImapFlow> {
  const c = new ImapFlow({ host: '127.0.0.1', port, secure: false, doSTARTTLS: false, auth: { user, pass: TEST_PASSWORD }, logger: false, disableAutoIdle: true });
  c.on('error', () => undefined);
  await c.connect();
  for (const b of boxes) await c.mailboxCreate(b);
  return c;
}

function account(user: string, port: number, mailboxes: string[], over: Partial<ImapIncomingConfig> = {}): AccountConfig {
  return {
    name: user,
    email: `${user}@example.com`,
    enabled: true,
    webhook: 'w',
    outgoing: undefined,
    incoming: {
      protocol: 'imap', host: '127.0.0.1', port, tls: false, requireTLS: false, user,
      auth: { method: 'password', password: TEST_PASSWORD },
      // idleResync far away: only NOTIFY or a watcher can bring the mail in time.
      mailboxes, mode: 'idle', pollIntervalMs: 60_000, idleResyncMs: 3_600_000, afterDelivery: 'none', moveTo: undefined, maxMessageSizeBytes: 50 * 1024 * 1024, initialSync: 'all',
      ...over,
    },
  };
}

function start(acc: AccountConfig, idleConnectionsPerAccount?: number) {
  const store = SqliteStore.open(':memory:', new SecretCipher(randomBytes(32)));
  const config = { accounts: [acc], webhooks: [] } as unknown as Config;
  const ingest = new IngestService({ store, config: () => config, metrics: createMetrics(), inspect: inspectMessage, onQueued: () => undefined });
  const pacer = new LoginPacer({ loginsPerSecond: 20 });
  const c = new ImapConnector({
    account: acc, ingestor: ingest, acks: ingest, tokens: noTokens, logger: silentLogger(), metrics: createMetrics(), pacer,
    ...(idleConnectionsPerAccount ? { idleConnectionsPerAccount } : {}),
  });
  running.push(c);
  const stored = async (mailbox: string) => (await ingest.getCursor(acc.name, mailbox))?.lastUid ?? 0;
  return { c, stored, start: () => c.start() };
}

async function arrives(stored: (mailbox: string) => Promise<number>, writer: ImapFlow, mailbox: string, uid: number): Promise<number> {
  await writer.append(mailbox, `Subject: to ${mailbox}\r\nMessage-ID: <${randomBytes(6).toString('hex')}@test>\r\n\r\nhello\r\n`);
  const t0 = Date.now();
  await until(async () => (await stored(mailbox)) >= uid, WAIT_MS, `the message in ${mailbox} to be stored`);
  return Date.now() - t0;
}

describe('several mailboxes in idle mode against Dovecot', () => {
  it('with NOTIFY: mail in a second mailbox is stored about a second after it arrives, on one connection', async () => {
    const user = uniqueUser('multi-notify');
    const writer = await prepare(h.imapPort, user, ['Support']);
    try {
      const { c, stored, start: go } = start(account(user, h.imapPort, ['INBOX', 'Support']));
      await go();
      await until(() => c.status().state === 'idle', WAIT_MS, 'the connector to idle');
      const ms = await arrives(stored, writer, 'Support', 1);
      console.log(`NOTIFY through the connector: APPEND to Support → stored in ${ms} ms (promise: ${PROMISE_MS} ms)`);
      // INBOX, the IDLE mailbox, still arrives as before.
      await arrives(stored, writer, 'INBOX', 1);
      const logins = readFileSync(h.dovecotLog, 'utf8').split('\n').filter((l) => l.includes(`imap-login: Info: Login: user=<${user}>`));
      expect(logins).toHaveLength(2); // the writer and the connector: NOTIFY needs no second connection
    } finally {
      await writer.logout();
    }
  });

  describe('on a Dovecot that does not offer NOTIFY', () => {
    let d: Dovecot;
    beforeAll(async () => {
      d = await startDovecot({
        introspectionUrl: `${h.oauthUrl}/introspect`,
        relayPort: h.relaySinkPort,
        imapCapability: 'IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE UNSELECT CHILDREN NAMESPACE UIDPLUS MOVE LITERAL+ ESEARCH SPECIAL-USE',
      });
    });
    afterAll(async () => {
      await d?.stop();
    });

    it('watches the second mailbox with a connection of its own and polls one past the cap', async () => {
      const user = uniqueUser('multi-conn');
      const writer = await prepare(d.imapPort, user, ['Support', 'Sales']);
      try {
        expect(writer.capabilities.has('NOTIFY')).toBe(false);
        const { c, stored, start: go } = start(account(user, d.imapPort, ['INBOX', 'Support', 'Sales'], { pollIntervalMs: 3_000 }), 2);
        await go();
        await until(() => c.status().state === 'idle', WAIT_MS, 'the connector to idle');
        await until(() => readFileSync(d.logPath, 'utf8').split('\n').filter((l) => l.includes(`Login: user=<${user}>`)).length === 3, WAIT_MS, 'the watcher connection to log in');
        const ms = await arrives(stored, writer, 'Support', 1);
        console.log(`a watcher connection: APPEND to Support → stored in ${ms} ms (promise: ${PROMISE_MS} ms)`);
        // Sales is past idleConnectionsPerAccount (2): polled every pollInterval (3 s here).
        await arrives(stored, writer, 'Sales', 1);
        await arrives(stored, writer, 'INBOX', 1);
        // No more connections than the cap (plus the writer).
        const logins = readFileSync(d.logPath, 'utf8').split('\n').filter((l) => l.includes(`Login: user=<${user}>`));
        expect(logins).toHaveLength(3);
      } finally {
        await writer.logout();
      }
    });
  });
});
