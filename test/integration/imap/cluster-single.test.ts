import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { appendMessages, getHarness, listMessages, makeMessage, uniqueUser } from '../../harness/index.js';
import { loadSecretKey } from '../../../src/secrets/keyring.js';
import { silentLogger } from '../../../src/log.js';
import { openStore } from '../../../src/store/open.js';
import { runCli } from '../daemon/run-daemon.js';
import { ADMIN, authorizeThroughDaemon, e2eLifecycle, writeE2EConfig } from './e2e-helpers.js';

const h = getHarness();
const CLIENT = 'e2e-cluster-single';
const e2e = e2eLifecycle(CLIENT);
const auth = { authorization: `Bearer ${ADMIN}` };

/**
 * One daemon on SQLite, no cluster section: the node holds every account's
 * lease (so every write is fenced the same way as on a cluster), shows
 * itself in GET /v1/cluster and as each account's owner, and gives the
 * leases back on SIGTERM.
 */
describe('one node on SQLite (no cluster section)', () => {
  it('owns every account, reports it in /v1/cluster, /v1/accounts and status, ingests and acks as before, and releases its leases on SIGTERM', async () => {
    const user = uniqueUser('cl1');
    const sink = await e2e.sink();
    const cfg = await writeE2EConfig(h, { user, clientId: CLIENT, webhookUrl: sink.url });
    await appendMessages(h, user, [makeMessage(1, { subject: 'one' }), makeMessage(2, { subject: 'two' })]);
    const d = await e2e.daemon(cfg.path, cfg.port);
    await authorizeThroughDaemon(d);
    await sink.waitFor((s) => s.acknowledged.length >= 2, 30_000);

    const cluster = (await (await fetch(`${d.url}/v1/cluster`, { headers: auth })).json()) as {
      nodes: { name: string; startedAt: string; lastSeenAt: string; accounts: string[] }[];
    };
    expect(cluster.nodes).toHaveLength(1);
    const me = cluster.nodes[0];
    expect(me?.accounts).toEqual(['support']);
    expect(me?.name).toMatch(/-\d+$/); // hostname-pid
    expect(Date.parse(me?.startedAt ?? '')).toBeLessThanOrEqual(Date.parse(me?.lastSeenAt ?? ''));
    expect((await fetch(`${d.url}/v1/cluster`)).status).toBe(401);

    const accounts = (await (await fetch(`${d.url}/v1/accounts`, { headers: auth })).json()) as { accounts: { name: string; owner: string | null }[] };
    expect(accounts.accounts.map((a) => [a.name, a.owner])).toEqual([['support', me?.name]]);

    const status = JSON.parse((await runCli(['status', '--config', cfg.path, '--json'])).stdout) as { accounts: { owner: string | null }[] };
    expect(status.accounts[0]?.owner).toBe(me?.name);

    const metrics = await (await fetch(`${d.url}/metrics`)).text();
    expect(metrics).toMatch(/^mailgate_cluster_accounts_owned 1$/m);
    expect(metrics).toMatch(/^mailgate_cluster_lease_renewals_failed_total 0$/m);

    // afterDelivery applied under the fence, as before.
    const deadline = Date.now() + 15_000;
    let msgs = await listMessages(h, user);
    while (msgs.some((m) => !m.flags.includes('\\Seen')) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      msgs = await listMessages(h, user);
    }
    expect(msgs.every((m) => m.flags.includes('\\Seen'))).toBe(true);

    const stopped = await d.stop('SIGTERM');
    expect(stopped.code).toBe(0);
    const dataDir = join(cfg.dir, 'data');
    const store = await openStore({ dataDir }, { cipher: loadSecretKey(dataDir, {}).cipher, logger: silentLogger() });
    try {
      expect(await store.leases.list(Date.now())).toEqual([]);
      expect(await store.nodes.live(Date.now(), 60_000)).toEqual([]);
    } finally {
      await store.close();
    }
    const after = JSON.parse((await runCli(['status', '--config', cfg.path, '--json'])).stdout) as { accounts: { owner: string | null }[] };
    expect(after.accounts[0]?.owner).toBeNull();
  });

  it('config check refuses a cluster section without store.kind: postgres, at file:line:col', async () => {
    const cfg = await writeE2EConfig(h, { user: 'nobody', clientId: CLIENT, webhookUrl: 'http://127.0.0.1:9/x' });
    const { appendFileSync } = await import('node:fs');
    appendFileSync(cfg.path, 'cluster:\n  leaseTtl: 10s\n');
    const r = await runCli(['config', 'check', '--config', cfg.path]);
    expect(r.code).not.toBe(0);
    expect(r.stdout + r.stderr).toMatch(/mailgate\.yaml:\d+:1 .*cluster needs store\.kind: postgres/);
  });
});
