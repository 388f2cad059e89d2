// npm run bench:cluster — several replicas on PostgreSQL:
// (1) take-over time after kill -9 and after SIGTERM of one of two replicas
//     (4 accounts, leaseTtl 3 s), p50/max over BENCH_RUNS runs;
// (2) ingest of the 2,000-message bench mailbox spread over 8 accounts
//     (daemon start → last webhook acknowledged): one replica on SQLite (the
//     baseline of the same run), one on PostgreSQL, two on PostgreSQL;
//     PostgreSQL transactions per message (pg_stat_database) and each
//     replica's peak RSS.
import pg from 'pg';
import { afterAll, beforeAll, it } from 'vitest';
import { appendMessages, getHarness, oauthAdmin, startPostgres, WebhookSink, type Postgres } from '../test/harness/index.js';
import { clusterRig, leaseOwners, until } from '../test/integration/cluster/rig.js';
import type { Daemon } from '../test/integration/daemon/run-daemon.js';
import { peakRssMb, percentile, report } from './report.js';

const h = getHarness();
const CLIENT = 'bench-cluster';
const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const MESSAGES = Number(process.env.BENCH_MESSAGES ?? 2000);
const ACCOUNTS = 8;
const TTL_MS = 3_000;

let server: Postgres | null = null;
let sink: WebhookSink | null = null;

beforeAll(async () => {
  await oauthAdmin(h).registerClient(CLIENT, `secret-${CLIENT}`);
  server = await startPostgres();
  sink = await WebhookSink.start();
}, 120_000);

afterAll(async () => {
  await sink?.close();
  await server?.stop();
});

/** Same corpus as bench:ingest's size mix, smaller per message count: 2–60 KB text, deterministic. */
function corpus(n: number, tag: string): string[] {
  let seed = 42;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
  return Array.from({ length: n }, (_, i) => {
    const size = 2048 + Math.floor(rnd() * 58 * 1024);
    const text = ('Lorem ipsum dolor sit amet, ticket ' + i + ' needs attention. ').repeat(Math.ceil(size / 60)).slice(0, size);
    return [
      `From: Customer ${i} <c${i}@example.com>`,
      'To: support@example.com',
      `Subject: Bench ${tag} ${i}`,
      `Message-ID: <bench-${tag}-${i}@example.com>`,
      'Date: Sun, 22 Nov 2026 10:00:00 +0000',
      'MIME-Version: 1.0',
      'Content-Type: text/plain; charset=utf-8',
      '',
      text.replace(/.{70}/g, '$&\r\n'),
      '',
    ].join('\r\n');
  });
}

async function takeover(signal: 'SIGKILL' | 'SIGTERM'): Promise<number[]> {
  if (!server || !sink) throw new Error('harness not started');
  const rig = await clusterRig({ h, clientId: CLIENT, webhookUrl: sink.url, accounts: 4, postgres: server, leaseTtl: `${TTL_MS}ms` });
  const store = rig.store;
  if (!store) throw new Error('no store');
  const samples: number[] = [];
  try {
    const nodes: Record<string, Daemon> = { r1: await rig.start('r1'), r2: await rig.start('r2') };
    for (let run = 0; run < RUNS; run++) {
      await until('a spread', async () => {
        const o = [...(await leaseOwners(store)).values()];
        return o.length === 4 && o.includes('r1') && o.includes('r2');
      }, 60_000, 50);
      const victim = run % 2 === 0 ? 'r1' : 'r2';
      const survivor = victim === 'r1' ? 'r2' : 'r1';
      const t0 = performance.now();
      nodes[victim]?.child.kill(signal);
      await until('take-over', async () => {
        const o = [...(await leaseOwners(store)).values()];
        return o.length === 4 && o.every((x) => x === survivor);
      }, 60_000, 20);
      samples.push(performance.now() - t0);
      await nodes[victim]?.stop('SIGKILL');
      nodes[victim] = await rig.start(victim);
    }
  } finally {
    await rig.close();
  }
  return samples;
}

interface IngestRun {
  label: string;
  ms: number;
  rssMb: number[];
  xactPerMessage: number | null;
}

async function pgTransactions(url: string): Promise<number> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const r = await c.query<{ n: string }>('SELECT xact_commit + xact_rollback AS n FROM pg_stat_database WHERE datname = current_database()');
    return Number(r.rows[0]?.n ?? 0);
  } finally {
    await c.end();
  }
}

async function ingest(label: string, replicas: number, onPostgres: boolean): Promise<IngestRun> {
  if (!server || !sink) throw new Error('harness not started');
  sink.clear();
  const rig = await clusterRig({ h, clientId: CLIENT, webhookUrl: sink.url, accounts: ACCOUNTS, postgres: onPostgres ? server : null, leaseTtl: '10s' });
  try {
    const per = Math.ceil(MESSAGES / ACCOUNTS);
    for (const [i, u] of rig.users.entries()) await appendMessages(h, u, corpus(per, `${label.replace(/\W/g, '')}${i}`));
    const total = per * ACCOUNTS;
    const x0 = rig.url ? await pgTransactions(rig.url) : 0;
    const t0 = performance.now();
    const nodes: Daemon[] = [];
    for (let r = 0; r < replicas; r++) nodes.push(await rig.start(`r${r + 1}`));
    await until('every message acknowledged', async () => (sink?.acknowledged.length ?? 0) >= total, 20 * 60_000, 50);
    const ms = performance.now() - t0;
    const rssMb = nodes.map((d) => (d.child.pid ? peakRssMb(d.child.pid) : NaN));
    const xactPerMessage = rig.url ? ((await pgTransactions(rig.url)) - x0) / total : null;
    return { label, ms, rssMb, xactPerMessage };
  } finally {
    await rig.close();
  }
}

it('cluster: take-over and ingest', async () => {
  const kill = await takeover('SIGKILL');
  const term = await takeover('SIGTERM');
  const runs = [await ingest('1 replica, SQLite', 1, false), await ingest('1 replica, PostgreSQL', 1, true), await ingest('2 replicas, PostgreSQL', 2, true)];
  const base = runs[0]?.ms ?? NaN;
  const s = (xs: number[]) => `p50 ${(percentile(xs, 50) / 1000).toFixed(2)} s, max ${(Math.max(...xs) / 1000).toFixed(2)} s (${xs.length} runs)`;
  report('cluster', [
    `leaseTtl ${TTL_MS / 1000} s (take-over promise: within leaseTtl + leaseTtl/3 = ${(TTL_MS * 4) / 3000} s after kill -9)`,
    `take-over after kill -9: ${s(kill)}`,
    `take-over after SIGTERM: ${s(term)}`,
    '',
    `ingest of ${MESSAGES} messages over ${ACCOUNTS} accounts, daemon start → last webhook 2xx:`,
    ...runs.map(
      (r) =>
        `  ${r.label.padEnd(24)} ${(r.ms / 1000).toFixed(1)} s, ${((MESSAGES / r.ms) * 1000).toFixed(0)} msg/s, ×${(base / r.ms).toFixed(2)} vs SQLite; ` +
        `peak RSS ${r.rssMb.map((m) => `${m.toFixed(0)} MB`).join(' / ')}` +
        (r.xactPerMessage === null ? '' : `; ${r.xactPerMessage.toFixed(2)} PostgreSQL transactions per message`),
    ),
    '',
    'machine: 2 cores shared with other jobs; figures vary run to run',
  ]);
}, 60 * 60_000);
