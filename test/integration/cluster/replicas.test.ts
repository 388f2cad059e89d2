import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Store } from '../../../src/store/store.js';
import { appendMessages, getHarness, listMessages, makeMessage, oauthAdmin, startPostgres, WebhookSink, type Postgres } from '../../harness/index.js';
import type { Daemon } from '../daemon/run-daemon.js';
import { CLUSTER_ADMIN, clusterRig, leaseOwners as owners, until, type ClusterRig } from './rig.js';

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
const LEASE_TTL_MS = 3_000;
const auth = { authorization: `Bearer ${CLUSTER_ADMIN}` };

let server: Postgres | null = null;
let sink: WebhookSink | null = null;
const rigs: ClusterRig[] = [];

beforeAll(async () => {
  await oauthAdmin(h).registerClient(CLIENT, `secret-${CLIENT}`);
  server = await startPostgres();
  sink = await WebhookSink.start();
}, 120_000);

afterEach(async () => {
  for (const r of rigs.splice(0)) await r.close();
  sink?.setBehaviour({ status: 200 });
  sink?.clear();
});

afterAll(async () => {
  await sink?.close();
  await server?.stop();
});

type Cluster = ClusterRig & { store: Store };

async function cluster(n: number, opts: { accessExpiresInMs?: number } = {}): Promise<Cluster> {
  if (!server || !sink) throw new Error('harness not started');
  const rig = await clusterRig({ h, clientId: CLIENT, webhookUrl: sink.url, accounts: n, postgres: server, leaseTtl: `${LEASE_TTL_MS}ms`, ...opts });
  rigs.push(rig);
  if (!rig.store) throw new Error('no store');
  return rig as Cluster;
}

async function clusterView(d: Daemon): Promise<Map<string, string[]>> {
  const body = (await (await fetch(`${d.url}/v1/cluster`, { headers: auth })).json()) as { nodes: { name: string; accounts: string[] }[] };
  return new Map(body.nodes.map((n) => [n.name, n.accounts]));
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
    // A delivery the killed replica had claimed waits out its claim (parse deadline + webhook timeout + 10 s).
    await until('every message of the accepted accounts', async () => new Set(received().filter((r) => r.account !== 'acc1').map((r) => r.messageId)).size >= others * perAccount, 180_000);
    // acc1 was never acknowledged: not one of its messages is flagged.
    expect((await listMessages(h, held)).filter((m) => m.flags.includes('\\Seen'))).toEqual([]);
    sink?.setBehaviour({ status: 200 });
    // Its deliveries may have used up their attempts meanwhile (parked as failed): an admin replays them, on any replica.
    const survivorDaemon = victim === r1 ? r2 : r1;
    await fetch(`${survivorDaemon.url}/v1/deliveries/retry-failed`, { method: 'POST', headers: auth });
    await until('acc1 delivered too', async () => new Set(received().map((r) => r.messageId)).size >= c.accounts.length * perAccount, 180_000);
    await until('everything flagged after its ack', () => allSeen(c.users));

    // Ids are stable: a message delivered twice (its ack was in flight at the kill) carries the same id.
    const idOf = new Map<string, Set<string>>();
    for (const r of received()) idOf.set(r.messageId ?? '', (idOf.get(r.messageId ?? '') ?? new Set()).add(r.id));
    expect(idOf.size).toBe(c.accounts.length * perAccount);
    expect([...idOf.values()].filter((ids) => ids.size !== 1)).toEqual([]);
  }, 480_000);

  it('fencing: a replica paused past its lease does not ack, flag or advance anything for the accounts it lost when it resumes', async () => {
    // Four accounts: the first replica takes all, then hands two over (4 > ceil(4/2) + 1).
    const c = await cluster(4);
    const r1 = await c.start('r1');
    await until('r1 holds all', async () => (await owners(c.store)).size === 4);
    const r2 = await c.start('r2');
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
      await until('r2 took r1\'s accounts', async () => [...(await owners(c.store)).values()].every((o) => o === 'r2') && (await owners(c.store)).size === 4);
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
    await fetch(`${r2.url}/v1/deliveries/retry-failed`, { method: 'POST', headers: auth });
    await until('everything flagged once acknowledged', () => allSeen(lostUsers), 60_000);
  }, 480_000);

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
  }, 480_000);
});

