import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { ClusterCoordinator, type AccountWork, type NodeIdentity } from '../../../src/cluster/coordinator.js';
import type { Config } from '../../../src/config/types.js';
import { MailgateError } from '../../../src/errors.js';
import { silentLogger } from '../../../src/log.js';
import { createMetrics, type Metrics } from '../../../src/metrics.js';
import { SecretCipher } from '../../../src/secrets/cipher.js';
import { openStore } from '../../../src/store/open.js';
import type { Store } from '../../../src/store/store.js';
import { tmpDataDir } from '../../harness/tmp-dir.js';

const TTL = 30_000;
const KEY = randomBytes(32);

/** Several stores on one SQLite file: the nodes of a cluster, as far as the store contract goes. */
const opened: Store[] = [];
const coordinators: ClusterCoordinator[] = [];
afterEach(async () => {
  for (const c of coordinators.splice(0)) await c.stop().catch(() => undefined);
  for (const s of opened.splice(0)) await s.close();
});

async function storage(): Promise<() => Promise<Store>> {
  const dir = tmpDataDir('mg-cluster-');
  return async () => {
    const s = await openStore({ dataDir: dir }, { cipher: new SecretCipher(KEY), logger: silentLogger() });
    opened.push(s);
    return s;
  };
}

function configWith(accounts: string[]): () => Config {
  return () => ({ accounts: accounts.map((name) => ({ name })) }) as unknown as Config;
}

/** The connectors of one node: which accounts run, and every start and stop in order. */
class Work implements AccountWork {
  readonly running = new Set<string>();
  readonly log: string[] = [];
  /** Checked when a connector stops: the fence must already be revoked (set by the test). */
  onStop: ((account: string) => void) | null = null;
  async startAccount(account: string): Promise<boolean> {
    this.running.add(account);
    this.log.push(`start ${account}`);
    return true;
  }
  async stopAccount(account: string): Promise<void> {
    this.onStop?.(account);
    this.running.delete(account);
    this.log.push(`stop ${account}`);
  }
}

interface TestNode {
  c: ClusterCoordinator;
  work: Work;
  store: Store;
  metrics: Metrics;
  drained: string[];
}

const clock = { t: 1_000_000 };

function node(store: Store, name: string, accounts: () => Config, over: Partial<NodeIdentity> = {}): TestNode {
  const work = new Work();
  const metrics = createMetrics();
  const drained: string[] = [];
  const identity: NodeIdentity = { name, instance: `${name}-1`, startedAt: clock.t, leaseTtlMs: TTL, clustered: true, ...over };
  const c = new ClusterCoordinator({
    store,
    config: accounts,
    logger: silentLogger(),
    metrics,
    identity,
    incoming: work,
    outbox: {
      drain: async (account) => {
        drained.push(account);
      },
    },
    now: () => clock.t,
  });
  coordinators.push(c);
  return { c, work, store, metrics, drained };
}

const gauge = async (m: Metrics, name: string) => (await m.registry.getSingleMetric(name)?.get())?.values[0]?.value;

describe('ClusterCoordinator', () => {
  it('alone without a cluster section: takes every account, fences its writes, and hands everything back on stop', async () => {
    const open = await storage();
    const store = await open();
    const a = node(store, 'solo', configWith(['one', 'two']), { clustered: false });
    await a.c.start();
    expect([...a.work.running].sort()).toEqual(['one', 'two']);
    expect(a.c.accounts()).toEqual(['one', 'two']);
    const fence = a.c.fence('one');
    expect(fence).toMatchObject({ account: 'one', owner: 'solo' });
    expect(await gauge(a.metrics, 'mailgate_cluster_accounts_owned')).toBe(2);
    const view = await a.c.view();
    expect(view.nodes).toEqual([{ name: 'solo', startedAt: clock.t, lastSeenAt: clock.t, accounts: ['one', 'two'] }]);
    expect(Object.fromEntries(view.owners)).toEqual({ one: 'solo', two: 'solo' });

    await a.c.stop();
    expect(a.work.running.size).toBe(0);
    expect(a.drained.sort()).toEqual(['one', 'two']);
    expect(await store.leases.list(clock.t)).toEqual([]);
    expect(a.c.fence('one')).toBeNull();
    expect(await store.nodes.live(clock.t, TTL)).toEqual([]);
    // A restart (a new incarnation under the same name) takes them again with a new epoch.
    const again = node(store, 'solo', configWith(['one', 'two']), { clustered: false, instance: 'solo-2' });
    await again.c.start();
    expect(again.c.fence('one')?.epoch).toBe((fence?.epoch ?? 0) + 1);
  });

  it('spreads accounts over two nodes: a node joining gets its share from the one that held everything', async () => {
    const open = await storage();
    const cfg = configWith(['a1', 'a2', 'a3', 'a4', 'a5', 'a6']);
    const a = node(await open(), 'node-a', cfg);
    await a.c.start();
    expect(a.work.running.size).toBe(6);

    clock.t += 1_000;
    const b = node(await open(), 'node-b', cfg);
    await b.c.start(); // nothing free yet
    expect(b.work.running.size).toBe(0);

    clock.t += TTL / 3;
    await a.c.tick(); // 6 > ceil(6/2) + 1: hands 3 over, connectors stopped and sends drained first
    expect(a.work.running.size).toBe(3);
    expect(a.drained).toHaveLength(3);
    for (const gone of a.drained) expect(a.work.log.indexOf(`stop ${gone}`)).toBeGreaterThan(-1);
    await b.c.tick();
    expect(b.work.running.size).toBe(3);
    expect(new Set([...a.work.running, ...b.work.running]).size).toBe(6);
    // Stable from then on.
    clock.t += TTL / 3;
    await a.c.tick();
    await b.c.tick();
    expect([a.work.running.size, b.work.running.size]).toEqual([3, 3]);
    const owners = (await b.c.view()).owners;
    for (const acc of a.work.running) expect(owners.get(acc)).toBe('node-a');
    for (const acc of b.work.running) expect(owners.get(acc)).toBe('node-b');
  });

  it('takes a dead node\'s accounts once its leases ran out, and the dead node is fenced off by its own clock and by the store', async () => {
    const open = await storage();
    const cfg = configWith(['a1', 'a2']);
    const a = node(await open(), 'node-a', cfg);
    await a.c.start();
    const b = node(await open(), 'node-b', cfg);
    await b.c.start();
    const stale = a.c.fence('a1');
    expect(stale).not.toBeNull();
    expect(b.work.running.size).toBe(0);

    // node-a stops ticking (killed or paused). Just before its leases run out nothing moves.
    clock.t += TTL - 1;
    await b.c.tick();
    expect(b.work.running.size).toBe(0);
    // By its own clock node-a already stopped using them (a margin before expiry).
    expect(a.c.fence('a1')).toBeNull();
    expect(a.c.owned()).toEqual([]);

    clock.t += 1;
    await b.c.tick();
    expect([...b.work.running].sort()).toEqual(['a1', 'a2']);
    expect(b.c.fence('a1')?.epoch).toBe((stale?.epoch ?? 0) + 1);
    // Whatever node-a still tries with its old fence is refused by the store.
    const refused = await a.store.ingest.resetCursor('a1', 'INBOX', 9, clock.t, undefined, stale ?? undefined).catch((e: unknown) => e);
    expect(refused instanceof MailgateError && refused.code === 'LEASE_LOST').toBe(true);

    // node-a wakes up: its renewal finds the leases gone and stops the connectors, fence revoked first.
    a.work.onStop = (account) => expect(a.c.fence(account)).toBeNull();
    await a.c.tick();
    expect(a.work.running.size).toBe(0);
    expect(a.work.log.filter((l) => l.startsWith('stop')).sort()).toEqual(['stop a1', 'stop a2']);
  });

  it('stops an account at once when a write reports LEASE_LOST', async () => {
    const open = await storage();
    const a = node(await open(), 'node-a', configWith(['a1']));
    await a.c.start();
    a.c.lost('a1');
    expect(a.c.fence('a1')).toBeNull();
    await a.c.tick(); // serialised after the stop
    expect(a.work.log).toEqual(['start a1', 'stop a1', 'start a1']);
    expect(a.c.fence('a1')).not.toBeNull();
  });

  it('when renewals fail, stops each account by the time its lease would run out, counts the failures, and resumes when the database answers', async () => {
    const open = await storage();
    const real = await open();
    let down = false;
    const failing = (): never => {
      throw new Error('connection refused');
    };
    const store = new Proxy(real, {
      get(target, prop, receiver) {
        const repo = Reflect.get(target, prop, receiver) as unknown;
        if (prop !== 'leases' && prop !== 'nodes') return repo;
        return new Proxy(repo as object, {
          get: (r, m, rr) => {
            const fn = Reflect.get(r, m, rr) as unknown;
            return typeof fn === 'function' ? (...args: unknown[]) => (down ? Promise.reject(new Error('db down')).catch(failing) : (fn as (...a: unknown[]) => unknown).apply(r, args)) : fn;
          },
        });
      },
    });
    const a = node(store, 'node-a', configWith(['a1']));
    await a.c.start();
    expect(a.work.running.has('a1')).toBe(true);
    down = true;
    clock.t += TTL / 3;
    await a.c.tick();
    expect(a.work.running.has('a1')).toBe(true); // time left on the lease
    expect(await gauge(a.metrics, 'mailgate_cluster_lease_renewals_failed_total')).toBe(1);
    clock.t += TTL / 3;
    await a.c.tick();
    clock.t += TTL / 3 - Math.ceil(TTL / 6); // the margin before expiry is reached
    await a.c.tick();
    expect(a.c.fence('a1')).toBeNull();
    expect(a.work.running.has('a1')).toBe(false);
    expect(await gauge(a.metrics, 'mailgate_cluster_lease_renewals_failed_total')).toBe(3);

    down = false;
    await a.c.tick();
    expect(a.work.running.has('a1')).toBe(true);
    expect(a.c.fence('a1')?.epoch).toBe(2);
  });

  it('refuses to run a second live instance under the same nodeName', async () => {
    const open = await storage();
    const a = node(await open(), 'same', configWith([]), { leaseTtlMs: 600 });
    await a.c.start();
    const twin = new ClusterCoordinator({
      store: await open(),
      config: configWith([]),
      logger: silentLogger(),
      metrics: createMetrics(),
      identity: { name: 'same', instance: 'other', startedAt: clock.t, leaseTtlMs: 600, clustered: true },
      incoming: new Work(),
      now: () => clock.t, // node 'same' never goes quiet on this clock
    });
    coordinators.push(twin);
    const err = await twin.start().then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(MailgateError);
    expect((err as MailgateError).message).toMatch(/another mailgate is running with cluster\.nodeName "same"/);
  });

  it('hands over an account removed from the config, and takes a new one at once on reconfigure', async () => {
    const open = await storage();
    let names = ['a1', 'a2'];
    const a = node(await open(), 'node-a', () => configWith(names)());
    await a.c.start();
    names = ['a2', 'a3'];
    await a.c.reconfigure();
    expect([...a.work.running].sort()).toEqual(['a2', 'a3']);
    expect((await a.store.leases.list(clock.t)).map((l) => l.account)).toEqual(['a2', 'a3']);
  });
});
