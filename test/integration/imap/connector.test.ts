import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import type { AccountConfig, Config } from '../../../src/config/types.js';
import { MailgateError } from '../../../src/errors.js';
import { createImapConnector } from '../../../src/incoming/imap/imap-connector.js';
import { IngestService } from '../../../src/incoming/ingest.js';
import type { IncomingConnector } from '../../../src/incoming/source.js';
import { silentLogger } from '../../../src/log.js';
import { createMetrics } from '../../../src/metrics.js';
import type { AccessToken, TokenProvider } from '../../../src/oauth/token-provider.js';
import { inspectMessage } from '../../../src/parse/auto-submitted.js';
import { SecretCipher } from '../../../src/secrets/cipher.js';
import { deliveryIdForMessage } from '../../../src/store/origin.js';
import { SqliteStore } from '../../../src/store/sqlite/sqlite-store.js';
import type { OAuthAdmin} from '../../harness/index.js';
import { appendMessages, getHarness, listMessages, makeMessage, oauthAdmin, setUidValidity, startDovecot, uniqueUser } from '../../harness/index.js';
import { until } from '../../harness/until.js';

const h = getHarness();
const admin = oauthAdmin(h);
const running: IncomingConnector[] = [];
afterEach(async () => {
  for (const c of running.splice(0)) await c.stop();
});

/** A TokenProvider that mints real tokens from a test OAuth server (not a mock of the connector). */
class HarnessTokens implements TokenProvider {
  calls: { rejectedToken?: string }[] = [];
  failAfter = Infinity;
  constructor(
    private readonly a: OAuthAdmin,
    private readonly clientId: string,
    private readonly user: string,
  ) {}
  async getAccessToken(_account: string, opts: { rejectedToken?: string } = {}): Promise<AccessToken> {
    this.calls.push(opts);
    if (this.calls.length > this.failAfter) throw new MailgateError('OAUTH_REAUTH_REQUIRED', 'refresh token rejected');
    const t = await this.a.issue(this.clientId, this.user);
    return { token: t.access_token, expiresAt: Date.now() + 3_600_000 };
  }
}

function account(user: string, over: Partial<AccountConfig['incoming']> = {}, port = h.imapPort): AccountConfig {
  return {
    name: 'support',
    email: `${user}@example.com`,
    webhook: 'w',
    enabled: true,
    outgoing: undefined,
    incoming: {
      protocol: 'imap', host: '127.0.0.1', port, tls: false, requireTLS: false, user,
      auth: { method: 'xoauth2', credential: 'c' },
      mailboxes: ['INBOX'], mode: 'poll', pollIntervalMs: 200, idleResyncMs: 60_000, afterDelivery: 'seen', moveTo: undefined, maxMessageSizeBytes: 50 * 1024 * 1024, initialSync: 'all',
      ...over,
    },
  };
}

function pipeline(acc: AccountConfig) {
  const store = SqliteStore.open(':memory:', new SecretCipher(randomBytes(32)));
  const config = { accounts: [acc], webhooks: [] } as unknown as Config;
  const ingest = new IngestService({ store, config: () => config, metrics: createMetrics(), inspect: inspectMessage, onQueued: () => undefined });
  return { store, ingest };
}

const pendingCount = async (store: SqliteStore) => (await store.deliveries.countByStatus()).pending;

describe('IMAP connector against real Dovecot', () => {
  it('puts exactly the configured SASL mechanism on the wire (Dovecot log)', async () => {
    await admin.registerClient('conn', 'x');
    for (const method of ['xoauth2', 'oauthbearer'] as const) {
      const user = uniqueUser(`mech-${method}`);
      const acc = account(user, { auth: { method, credential: 'c' } });
      const { ingest } = pipeline(acc);
      const c = createImapConnector({ account: acc, ingestor: ingest, acks: ingest, tokens: new HarnessTokens(admin, 'conn', user), logger: silentLogger(), metrics: createMetrics() });
      expect(await c.test()).toEqual({ ok: true, error: null, code: null });
      const log = readFileSync(h.dovecotLog, 'utf8');
      expect(log).toMatch(new RegExp(`imap-login: Info: Login: user=<${user}>, method=${method.toUpperCase()}`));
    }
  });

  it('announces nothing twice across a UIDVALIDITY change and still takes new mail', async () => {
    await admin.registerClient('conn', 'x');
    const user = uniqueUser('uidv');
    await appendMessages(h, user, [makeMessage(1, { messageId: '<u1@x>' }), makeMessage(2, { messageId: '<u2@x>' })]);
    const acc = account(user, { afterDelivery: 'none' });
    const { store, ingest } = pipeline(acc);
    const c = createImapConnector({ account: acc, ingestor: ingest, acks: ingest, tokens: new HarnessTokens(admin, 'conn', user), logger: silentLogger(), metrics: createMetrics() });
    running.push(c);
    await c.start();
    await until(async () => (await pendingCount(store)) === 2);
    await c.stop();
    running.pop();
    await setUidValidity(h, user, 'INBOX', 777);
    await appendMessages(h, user, [makeMessage(3, { messageId: '<u3@x>' })]);
    const c2 = createImapConnector({ account: acc, ingestor: ingest, acks: ingest, tokens: new HarnessTokens(admin, 'conn', user), logger: silentLogger(), metrics: createMetrics() });
    running.push(c2);
    await c2.start();
    await until(async () => (await store.ingest.getCursor('support', 'INBOX'))?.uidValidity === 777 && (await pendingCount(store)) >= 3);
    await new Promise((r) => setTimeout(r, 500));
    expect(await pendingCount(store)).toBe(3);
  });

  it('applies afterDelivery only once acks are due, and reconnects after Dovecot restarts', async () => {
    const dovecot = await startDovecot({ introspectionUrl: `${h.oauthUrl}/introspect`, relayPort: h.relaySinkPort });
    try {
      await admin.registerClient('conn', 'x');
      const user = uniqueUser('restart');
      const local = { ...h, imapPort: dovecot.imapPort, dovecotConfig: dovecot.configPath };
      await appendMessages(local, user, [makeMessage(1)]);
      const acc = account(user, {}, dovecot.imapPort);
      const { store, ingest } = pipeline(acc);
      const c = createImapConnector({ account: acc, ingestor: ingest, acks: ingest, tokens: new HarnessTokens(admin, 'conn', user), logger: silentLogger(), metrics: createMetrics() });
      running.push(c);
      await c.start();
      await until(async () => (await pendingCount(store)) === 1);
      await new Promise((r) => setTimeout(r, 500));
      expect((await listMessages(local, user))[0]?.flags).not.toContain('\\Seen');

      await dovecot.restart();
      await appendMessages(local, user, [makeMessage(2)]);
      await until(async () => (await pendingCount(store)) === 2, 30_000);

      const list = await store.deliveries.list({ status: 'pending' });
      for (const d of list) await store.deliveries.markDelivered(d.id, { attempts: 1, status: 200, error: null, responseExcerpt: null, now: Date.now() }, 'due');
      ingest.notifyDue('support');
      await until(async () => (await listMessages(local, user)).every((m) => m.flags.includes('\\Seen')));
      expect(c.status().state).not.toBe('error');
      expect(list.map((d) => d.id).sort()).toEqual(list.map((d) => deliveryIdForMessage(d.messageRef ?? '')).sort());
    } finally {
      await dovecot.stop();
    }
  });

  it('asks once for a fresh token when the server refuses one, then reports error when the account needs reauthorization', async () => {
    await admin.registerClient('conn', 'x');
    const user = uniqueUser('refused');
    const tokens = new HarnessTokens(admin, 'conn', `${user}-someone-else`); // tokens for another user: Dovecot refuses them
    tokens.failAfter = 2;
    const acc = account(user);
    const { ingest } = pipeline(acc);
    const c = createImapConnector({ account: acc, ingestor: ingest, acks: ingest, tokens, logger: silentLogger(), metrics: createMetrics() });
    running.push(c);
    await c.start();
    await until(() => c.status().state === 'error');
    expect(tokens.calls[0]).toEqual({});
    expect(tokens.calls[1]?.rejectedToken).toMatch(/^at_/);
    expect(c.status().lastError).toMatch(/refused the login/);
    const callsSoFar = tokens.calls.length;
    await new Promise((r) => setTimeout(r, 1_000));
    expect(tokens.calls.length).toBe(callsSoFar); // no hammering while in error
  });
});
