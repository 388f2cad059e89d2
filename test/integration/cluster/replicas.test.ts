import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../../src/log.js';
import { SecretCipher } from '../../../src/secrets/cipher.js';
import { openStore } from '../../../src/store/open.js';
import type { Store } from '../../../src/store/store.js';
import {
  appendMessages,
  getHarness,
  listMessages,
  makeMessage,
  oauthAdmin,
  startPostgres,
  tmpDataDir,
  uniqueUser,
  WebhookSink,
  type Postgres,
} from '../../harness/index.js';
import { freePort, startDaemon, type Daemon } from '../daemon/run-daemon.js';

/**
 * Several `mailgate serve` replicas on one real PostgreSQL, reading real
 * Dovecot mailboxes with tokens from the real OAuth2 server process: the
 * promises of product.md "Several replicas on PostgreSQL" under kill -9,
 * SIGSTOP/SIGCONT and SIGTERM. leaseTtl is short (3 s) so take-overs fit in
 * a test; no timing is asserted, only what happened (who held what, what
 * reached the webhook and the server).
 */

const h = getHarness();
const CLIENT = 'e2e-cluster';
const ADMIN = 't0ken-cluster-0123456789abcdef';
const SECRET = 'whsec-cluster';
const KEY = randomBytes(32);
const LEASE_TTL_MS = 3_000;
const auth = { authorization: `Bearer ${ADMIN}` };

let server: Postgres | null = null;
let sink: WebhookSink | null = null;
const replicas: Daemon[] = [];
const stores: Store[] = [];

beforeAll(async () => {
  await oauthAdmin(h).registerClient(CLIENT, `secret-${CLIENT}`);
  server = await startPostgres();
  sink = await WebhookSink.start();
}, 120_000);

afterEach(async () => {
  for (const d of replicas.splice(0)) {
    if (d.child.exitCode === null) {
      try {
        d.child.kill('SIGCONT');
      } catch {
        // gone
      }
    }
    await d.stop('SIGKILL');
  }
  for (const s of stores.splice(0)) await s.close();
  sink?.setBehaviour({ status: 200 });
  sink?.clear();
});

afterAll(async () => {
  await sink?.close();
  await server?.stop();
});

interface Cluster {
  url: string;
  users: string[];
  accounts: string[];
  dir: string;
  /** The test's own view of the database, through the store contract. */
  store: Store;
  start(name: string): Promise<Daemon>;
}

/** A fresh database, `n` accounts (each its own Dovecot mailbox) with valid tokens stored, and replicas started on demand. */
async function cluster(n: number, opts: { accessExpiresInMs?: number } = {}): Promise<Cluster> {
  if (!server || !sink) throw new Error('harness not started');
  const url = await server.createDatabase();
  const dir = tmpDataDir('mg-cluster-');
  const users = Array.from({ length: n }, () => uniqueUser('cl'));
  const accounts = users.map((_, i) => `acc${i + 1}`);
  const store = await openStore({ dataDir: dir, store: { kind: 'postgres', url, poolSize: 2 } }, { cipher: new SecretCipher(KEY), logger: silentLogger() });
  stores.push(store);
  const admin = oauthAdmin(h);
  for (const [i, user] of users.entries()) {
    const t = (await admin.issue(CLIENT, user)) as { access_token: string; refresh_token: string };
    const now = Date.now();
    await store.tokens.save(
      {
        account: accounts[i] ?? '',
        credential: 'test-idp',
        refreshToken: t.refresh_token,
        accessToken: t.access_token,
        accessExpiresAt: now + (opts.accessExpiresInMs ?? 3_000_000),
        scope: 'mail',
        state: 'ok',
        lastRefreshAt: now,
        refreshTokenIssuedAt: now,
        lastError: null,
      },
      now,
    );
  }
  const webhookUrl = sink.url;
  return {
    url,
    users,
    accounts,
    dir,
    store,
    start: async (name: string) => {
      const port = await freePort();
      const nodeDir = join(dir, name);
      mkdirSync(nodeDir, { recursive: true });
      const yaml = `server:
  listen: 127.0.0.1:${port}
  adminToken: ${ADMIN}
dataDir: ./data
logLevel: info
store:
  kind: postgres
  url: ${url}
cluster:
  nodeName: ${name}
  leaseTtl: ${LEASE_TTL_MS}ms
credentials:
  - name: test-idp
    provider: custom
    clientId: ${CLIENT}
    clientSecret: secret-${CLIENT}
    authorizationEndpoint: ${h.oauthUrl}/authorize
    tokenEndpoint: ${h.oauthUrl}/token
    scopes: [mail]
accounts:
${users
  .map(
    (user, i) => `  - name: ${accounts[i]}
    email: ${user}@example.com
    incoming:
      protocol: imap
      host: 127.0.0.1
      port: ${h.imapPort}
      tls: false
      user: ${user}
      auth: { method: xoauth2, credential: test-idp }
      mode: idle
      afterDelivery: seen
    webhook: pipeline
`,
  )
  .join('')}webhooks:
  - name: pipeline
    url: ${webhookUrl}
    secret: ${SECRET}
    backoff: { initial: 100ms, max: 1s }
    timeout: 5s
`;
      const path = join(nodeDir, 'mailgate.yaml');
      writeFileSync(path, yaml);
      const d = await startDaemon(path, port, { MAILGATE_SECRET_KEY: KEY.toString('base64') });
      replicas.push(d);
      return d;
    },
  };
}

async function clusterView(d: Daemon): Promise<Map<string, string[]>> {
  const body = (await (await fetch(`${d.url}/v1/cluster`, { headers: auth })).json()) as { nodes: { name: string; accounts: string[] }[] };
  return new Map(body.nodes.map((n) => [n.name, n.accounts]));
}

async function owners(store: Store): Promise<Map<string, string>> {
  return new Map((await store.leases.list(Date.now())).map((l) => [l.account, l.owner]));
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 45_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Every account held, by exactly these nodes, each within ceil(n/nodes)+1. */
async function spread(store: Store, accounts: string[], nodes: string[]): Promise<boolean> {
  const o = await owners(store);
  if (!accounts.every((a) => o.has(a))) return false;
  const per = nodes.map((n) => [...o.values()].filter((x) => x === n).length);
  return per.every((c) => c >= 1 && c <= Math.ceil(accounts.length / nodes.length) + 1) && [...o.values()].every((x) => nodes.includes(x));
}

type Received = { id: string; messageId: string | null; account: string };

function received(): Received[] {
  return (sink?.acknowledged ?? []).filter((r) => r.headers['x-mailgate-event'] === 'message.received').map((r) => r.json as Received);
}

async function allSeen(users: string[]): Promise<boolean> {
  for (const u of users) if ((await listMessages(h, u)).some((m) => !m.flags.includes('\\Seen'))) return false;
  return true;
}

describe('several replicas on PostgreSQL (real Dovecot, real OAuth2 server)', () => {
  it('splits the accounts, completes an authorization on another replica, and after kill -9 mid-ingest the survivor takes over: every message delivered, ids stable, nothing flagged before its ack', async () => {
    const c = await cluster(4);
    const r1 = await c.start('r1');
    const r2 = await c.start('r2');
    await until('both replicas to hold a share', () => spread(c.store, c.accounts, ['r1', 'r2']));
    const view = await clusterView(r2);
    expect([...view.keys()].sort()).toEqual(['r1', 'r2']);
    expect([...(view.get('r1') ?? []), ...(view.get('r2') ?? [])].sort()).toEqual(c.accounts);

    // An authorization started on r1 completes on r2 (the state is in the database).
    const start = await fetch(`${r1.url}/v1/accounts/acc1/authorize`, { method: 'POST', headers: auth });
    const { authorizationUrl } = (await start.json()) as { authorizationUrl: string };
    const idp = await fetch(authorizationUrl, { redirect: 'manual' });
    const callback = new URL(idp.headers.get('location') ?? '');
    const onR2 = `${r2.url}${callback.pathname}${callback.search}`;
    expect((await fetch(onR2)).status).toBe(200);

    // The webhook refuses acc1 for now: its messages must stay unseen through the take-over.
    const held = c.users[0] ?? '';
    sink?.setBehaviour(({ json }) => ({ status: (json as Received).account === 'acc1' ? 503 : 200 }));
    const perAccount = 60;
    for (const [i, u] of c.users.entries()) {
      await appendMessages(h, u, Array.from({ length: perAccount }, (_, k) => makeMessage(k, { subject: `m${i}-${k}`, messageId: `<cl-${i}-${k}@example.com>` })));
    }
    // Kill the owner of acc2 while mail is being taken.
    await until('some mail taken', async () => received().length >= 10);
    const victimName = (await owners(c.store)).get('acc2') ?? 'r1';
    const victim = victimName === 'r1' ? r1 : r2;
    const survivor = victim === r1 ? 'r2' : 'r1';
    await victim.stop('SIGKILL');
    await until('the survivor to hold every account', async () => [...(await owners(c.store)).values()].every((o) => o === survivor) && (await owners(c.store)).size === 4);
    const others = c.accounts.length - 1;
    await until('every message of the accepted accounts', async () => new Set(received().map((r) => r.messageId)).size >= others * perAccount, 90_000);
    // acc1 was never acknowledged: not one of its messages is flagged.
    expect((await listMessages(h, held)).filter((m) => m.flags.includes('\\Seen'))).toEqual([]);
    sink?.setBehaviour({ status: 200 });
    await until('acc1 delivered too', async () => new Set(received().map((r) => r.messageId)).size >= c.accounts.length * perAccount, 90_000);
    await until('everything flagged after its ack', () => allSeen(c.users));

    // Ids are stable: a message delivered twice (its ack was in flight at the kill) carries the same id.
    const idOf = new Map<string, Set<string>>();
    for (const r of received()) idOf.set(r.messageId ?? '', (idOf.get(r.messageId ?? '') ?? new Set()).add(r.id));
    expect(idOf.size).toBe(c.accounts.length * perAccount);
    expect([...idOf.values()].filter((ids) => ids.size !== 1)).toEqual([]);
  }, 300_000);

  it('fencing: a replica paused past its lease does not ack, flag or advance anything for the accounts it lost when it resumes', async () => {
    const c = await cluster(2);
    const r1 = await c.start('r1');
    await until('r1 holds both', async () => (await owners(c.store)).size === 2);
    const r2 = await c.start('r2');
    void r2;
    await until('both hold a share', () => spread(c.store, c.accounts, ['r1', 'r2']));
    const lost = [...(await owners(c.store))].filter(([, o]) => o === 'r1').map(([a]) => a);
    expect(lost.length).toBeGreaterThan(0);
    const lostUsers = lost.map((a) => c.users[c.accounts.indexOf(a)] ?? '');

    // Mail r1 has fetched and whose acks it would apply: delivered, not yet acknowledged.
    sink?.setBehaviour({ status: 503 });
    for (const [i, u] of lostUsers.entries()) await appendMessages(h, u, [makeMessage(1, { subject: `before-${i}`, messageId: `<fence-before-${i}@example.com>` })]);
    await until('r1 stored the mail', async () => (await c.store.deliveries.countByStatus()).pending >= lostUsers.length);
    const cursorsBefore = await Promise.all(lost.map((a) => c.store.ingest.getCursor(a, 'INBOX')));

    r1.child.kill('SIGSTOP');
    try {
      await until('r2 took r1\'s accounts', async () => [...(await owners(c.store)).values()].every((o) => o === 'r2') && (await owners(c.store)).size === 2);
      // r2 works them: new mail is taken and the old becomes acknowledged.
      for (const [i, u] of lostUsers.entries()) await appendMessages(h, u, [makeMessage(2, { subject: `during-${i}`, messageId: `<fence-during-${i}@example.com>` })]);
      sink?.setBehaviour(({ json }) => ({ status: String((json as Received).messageId).includes('during') ? 503 : 200 }));
      await until('r2 ingested the new mail', async () => {
        const cur = await Promise.all(lost.map((a) => c.store.ingest.getCursor(a, 'INBOX')));
        return cur.every((x, i) => (x?.lastUid ?? 0) > (cursorsBefore[i]?.lastUid ?? 0));
      });
    } finally {
      r1.child.kill('SIGCONT');
    }
    // r1 resumes with connections, due work and leases it no longer holds. Give it time to misbehave.
    const cursorsAfterTakeover = await Promise.all(lost.map((a) => c.store.ingest.getCursor(a, 'INBOX')));
    await new Promise((r) => setTimeout(r, 2 * LEASE_TTL_MS));
    // The "during" messages were never acknowledged: nobody flagged them (r1's stale fence could not, r2 must not).
    for (const u of lostUsers) {
      const during = (await listMessages(h, u)).filter((m) => m.messageId?.includes('fence-during'));
      expect(during.length).toBe(1);
      expect(during.every((m) => !m.flags.includes('\\Seen'))).toBe(true);
    }
    // Cursors never went back.
    const cursorsNow = await Promise.all(lost.map((a) => c.store.ingest.getCursor(a, 'INBOX')));
    cursorsNow.forEach((cur, i) => expect(cur?.lastUid ?? 0).toBeGreaterThanOrEqual(cursorsAfterTakeover[i]?.lastUid ?? 0));
    // r1 said it lost them and stopped working them.
    expect(r1.output()).toMatch(/lost the lease of this account|ran out without a renewal|no longer holds the account/);
    sink?.setBehaviour({ status: 200 });
    await until('everything flagged once acknowledged', () => allSeen(lostUsers), 60_000);
  }, 300_000);

  it('refreshes a due token once across two replicas, posts each delivery once, and hands accounts over at once on SIGTERM', async () => {
    // Tokens stored already expired: the owner's connector and the scheduler both want a refresh.
    const c = await cluster(4, { accessExpiresInMs: 30_000 });
    const admin = oauthAdmin(h);
    await admin.resetStats();
    const r1 = await c.start('r1');
    await c.start('r2');
    await until('both hold a share', () => spread(c.store, c.accounts, ['r1', 'r2']));
    for (const [i, u] of c.users.entries()) await appendMessages(h, u, Array.from({ length: 5 }, (_, k) => makeMessage(k, { messageId: `<once-${i}-${k}@example.com>` })));
    await until('every message delivered', async () => new Set(received().map((r) => r.messageId)).size >= 20, 90_000);
    await until('every token refreshed', async () => {
      const toks = await c.store.tokens.list();
      return toks.every((t) => (t.accessExpiresAt ?? 0) > Date.now() + 600_000);
    });
    // Two scheduler ticks later, still exactly one refresh per account.
    await new Promise((r) => setTimeout(r, 16_000));
    const stats = await admin.stats();
    expect(stats.byGrant.refresh_token).toBe(c.accounts.length);
    // No crash: every delivery was posted exactly once.
    const deliveryIds = (sink?.requests ?? []).map((r) => r.headers['x-mailgate-delivery']);
    expect(new Set(deliveryIds).size).toBe(deliveryIds.length);
    expect(deliveryIds.length).toBe(20);

    // SIGTERM r1: its leases are released as it exits (not left to run out), and r2 takes them.
    const mine = (await c.store.leases.list(Date.now())).filter((l) => l.owner === 'r1');
    expect(mine.length).toBeGreaterThan(0);
    const stopped = await r1.stop('SIGTERM');
    expect(stopped.code).toBe(0);
    expect(r1.output()).toMatch(/released every lease/);
    // At once: none of them is still r1's, though their leaseTtl has not run out yet.
    const rightAfter = await c.store.leases.list(Math.min(...mine.map((l) => l.expiresAt)) - 1);
    expect(rightAfter.filter((l) => l.owner === 'r1')).toEqual([]);
    expect((await c.store.nodes.live(Date.now(), LEASE_TTL_MS)).map((n) => n.name)).toEqual(['r2']);
    await until('r2 holds every account', async () => [...(await owners(c.store)).values()].every((o) => o === 'r2') && (await owners(c.store)).size === 4, 20_000);
    const after = await c.store.leases.list(Date.now());
    for (const old of mine) expect(after.find((l) => l.account === old.account)?.epoch).toBe(old.epoch + 1);
  }, 300_000);
});

