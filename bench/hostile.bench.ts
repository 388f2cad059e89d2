// npm run bench:hostile — what hostile and huge mail costs the daemon:
// (1) peak RSS and daemon CPU while one 45 MB message is handled, against the
// idle RSS of the same process; (2) the main thread's event-loop delay
// (prom-client's monitorEventLoopDelay gauges, reset at every scrape) and the
// slowest /healthz answer while the full-size hostile corpus is ingested over
// IMAP and over POP3. Real Dovecot, real daemon, real receiver.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { it } from 'vitest';
import { makeLargeMessage } from '../test/fixtures/eml/index.js';
import { hostileCorpus } from '../test/fixtures/hostile/corpus.js';
import { getHarness, makeMessage, oauthAdmin, saveMessages, uniqueUser, WebhookSink } from '../test/harness/index.js';
import { runCli, startDaemon, type Daemon } from '../test/integration/daemon/run-daemon.js';
import { writeE2EConfig } from '../test/integration/imap/e2e-helpers.js';
import { processCpuSeconds, report } from './report.js';

const MB = 1024 * 1024;
/** BENCH_PARTS=big,imap,pop3 (default all); BENCH_CASES=a,b a subset of the cases; DAEMON_NODE_ARGS for --cpu-prof. */
const PARTS = new Set((process.env.BENCH_PARTS ?? 'big,imap,pop3').split(','));
const NODE_ARGS = (process.env.DAEMON_NODE_ARGS ?? '').split(' ').filter(Boolean);
const ALL_CASES = [
  'large-body/ctrl-0x01-text',
  'large-body/empty-lines',
  'large-body/json-escapes',
  'html/br-flood',
  'html/td-flood-unclosed',
  'html/table-huge',
  'html/nested-divs',
  'parts/digest-1500',
  'parts/attachments-many',
  'headers/many-fields',
  'headers/long-line',
  'nesting/multipart-deep',
  'nesting/rfc822-inline-header-only',
];
const HOSTILE = process.env.BENCH_CASES ? process.env.BENCH_CASES.split(',') : ALL_CASES;

function statusKb(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(new RegExp(`${field}:\\s+(\\d+)`).exec(s)?.[1] ?? NaN);
}

/** Resets the process's peak RSS (VmHWM) to its current RSS (proc(5), clear_refs 5). */
function resetPeak(pid: number): void {
  writeFileSync(`/proc/${pid}/clear_refs`, '5');
}

async function scrape(d: Daemon): Promise<Record<string, number>> {
  const text = await (await fetch(`${d.url}/metrics`)).text();
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^(mailgate_nodejs_eventloop_lag_\w+_seconds) ([\d.e+-]+)$/gm)) out[m[1] ?? ''] = Number(m[2]);
  return out;
}

async function daemonFor(protocol: 'imap' | 'pop3', user: string, sink: WebhookSink, extraIncoming = ''): Promise<Daemon> {
  const h = getHarness();
  const cfg = await writeE2EConfig(h, { user, clientId: 'bench-hostile', webhookUrl: sink.url, protocol, extraIncoming, ...(protocol === 'imap' ? { mode: 'idle' as const } : {}) });
  const { refresh_token } = await oauthAdmin(h).issue('bench-hostile', user);
  writeFileSync(join(cfg.dir, 'rt'), refresh_token);
  const imp = await runCli(['tokens', 'import', 'support', '--refresh-token-file', join(cfg.dir, 'rt'), '--config', cfg.path]);
  if (imp.code !== 0) throw new Error(imp.stderr);
  // MALLOC_ARENA_MAX reaches the daemon when set (glibc reads it at start).
  const env: Record<string, string> = process.env.MALLOC_ARENA_MAX ? { MALLOC_ARENA_MAX: process.env.MALLOC_ARENA_MAX } : {};
  return startDaemon(cfg.path, cfg.port, env, NODE_ARGS);
}

/** Polls /healthz every 100 ms until `done` settles; returns the slowest answer (ms). */
async function slowestHealth(d: Daemon, done: Promise<unknown>): Promise<number> {
  let slowest = 0;
  let finished = false;
  void done.finally(() => (finished = true));
  while (!finished) {
    const t = performance.now();
    await fetch(`${d.url}/healthz`);
    slowest = Math.max(slowest, performance.now() - t);
    await new Promise((r) => setTimeout(r, 100));
  }
  await done;
  return slowest;
}

it('hostile mail benchmark', async () => {
  const h = getHarness();
  await oauthAdmin(h).registerClient('bench-hostile', 'secret-bench-hostile');
  const lines: string[] = ['2 cores; Dovecot 2.3 on loopback; one parse thread (the default on 2 cores)'];

  // (1) one 45 MB message
  if (PARTS.has('big')) {
    const user = uniqueUser('big');
    const sink = await WebhookSink.start();
    const d = await daemonFor('imap', user, sink);
    const pid = d.child.pid ?? 0;
    await new Promise((r) => setTimeout(r, 3_000));
    const idleKb = statusKb(pid, 'VmRSS');
    resetPeak(pid);
    const cpu0 = processCpuSeconds(pid);
    const big = makeLargeMessage(Math.round((45 * MB * 3) / 4), '<bench-45mb@example.com>');
    const t0 = performance.now();
    await saveMessages(h, user, [big.raw]);
    await sink.waitFor((s) => s.acknowledged.length >= 1, 5 * 60_000);
    const ms = performance.now() - t0;
    const peakKb = statusKb(pid, 'VmHWM');
    const cpu = processCpuSeconds(pid) - cpu0;
    const size = big.raw.length;
    lines.push(
      `(1) one ${(size / MB).toFixed(1)} MB message (a ${(big.attachment.length / MB).toFixed(1)} MB attachment): delivered in ${(ms / 1000).toFixed(1)} s, daemon CPU ${cpu.toFixed(2)} s`,
      `    RSS idle ${(idleKb / 1024).toFixed(0)} MiB, peak ${(peakKb / 1024).toFixed(0)} MiB: +${((peakKb - idleKb) / 1024).toFixed(0)} MiB = ${((peakKb - idleKb) * 1024 / size).toFixed(2)} × the message (goal < 4 ×)`,
    );
    await d.stop();
    await sink.close();
  }

  // (2) the hostile corpus at full size, between normal messages, over IMAP and POP3
  const all = new Map(hostileCorpus({ scale: 'full' }).map((c) => [c.name, c]));
  for (const protocol of ['imap', 'pop3'] as const) {
    if (!PARTS.has(protocol)) continue;
    const user = uniqueUser(`hostile-${protocol}`);
    const sink = await WebhookSink.start();
    const raws: Buffer[] = [Buffer.from(makeMessage(0, { messageId: '<n0@example.com>' }))];
    for (const [i, name] of HOSTILE.entries()) {
      const c = all.get(name);
      if (!c) throw new Error(`no case ${name}`);
      raws.push(c.build(), Buffer.from(makeMessage(i + 1, { messageId: `<n${i + 1}@example.com>` })));
    }
    const bytes = raws.reduce((s, r) => s + r.length, 0);
    await saveMessages(h, user, raws);
    // Above the 100 MB cases, so they are really downloaded and parsed.
    const d = await daemonFor(protocol, user, sink, '      maxMessageSize: 128MB\n');
    const pid = d.child.pid ?? 0;
    resetPeak(pid);
    await scrape(d); // resets the event-loop delay histogram
    const cpu0 = processCpuSeconds(pid);
    const t0 = performance.now();
    const slowest = await slowestHealth(d, sink.waitFor((s) => s.acknowledged.length >= raws.length, 15 * 60_000));
    const ms = performance.now() - t0;
    const lag = await scrape(d);
    const failed = sink.acknowledged.filter((r) => r.headers['x-mailgate-event'] === 'message.failed').length;
    lines.push(
      `(2) ${protocol.toUpperCase()}: ${HOSTILE.length} hostile cases (${(bytes / MB).toFixed(0)} MB in all) between ${HOSTILE.length + 1} normal messages: all ${raws.length} delivered in ${(ms / 1000).toFixed(1)} s (${failed} as message.failed), daemon CPU ${(processCpuSeconds(pid) - cpu0).toFixed(1)} s, peak RSS ${(statusKb(pid, 'VmHWM') / 1024).toFixed(0)} MiB`,
      `    main-thread event-loop delay over the run: p50 ${((lag.mailgate_nodejs_eventloop_lag_p50_seconds ?? NaN) * 1000).toFixed(1)} ms, p99 ${((lag.mailgate_nodejs_eventloop_lag_p99_seconds ?? NaN) * 1000).toFixed(1)} ms (goal < 100 ms), max ${((lag.mailgate_nodejs_eventloop_lag_max_seconds ?? NaN) * 1000).toFixed(0)} ms; slowest /healthz ${slowest.toFixed(0)} ms`,
    );
    await d.stop();
    await sink.close();
  }
  report('hostile', lines);
});
