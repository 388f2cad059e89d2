// npm run bench:ingest — IMAP ingest throughput on one 2,000-message mailbox:
// (a) raw imapflow fetch('1:*', {source}) loop, (b) (a) + mailparser
// simpleParser per message in one thread, (c) mailgate end to end (daemon
// process start → last webhook acknowledged by a local sink), (d) fetchmail
// to a null MDA. Then IDLE latency APPEND → webhook over 200 messages, and
// (e) mailgate reading the same maildrop over POP3. Part f (BENCH_PARTS=f, its
// own report): the CPU the issue 16 fields add per message, paired runs.
import { spawn } from 'node:child_process';
import { existsSync, writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { ImapFlow } from 'imapflow';
import { simpleParser } from 'mailparser';
import { it } from 'vitest';
import { appendMessages, getHarness, oauthAdmin, passwordClient, tmpDataDir, uniqueUser, WebhookSink, TEST_PASSWORD } from '../test/harness/index.js';
import { runCli, startDaemon } from '../test/integration/daemon/run-daemon.js';
import { writeE2EConfig } from '../test/integration/imap/e2e-helpers.js';
import { machineBusySeconds, peakRssMb, percentile, processCpuSeconds, report } from './report.js';

const COUNT = Number(process.env.BENCH_MESSAGES ?? 2000);
const IDLE_SAMPLES = Number(process.env.BENCH_IDLE_SAMPLES ?? 200);
/** BENCH_PARTS=c runs only some parts (for profiling); the report needs them all. */
const PARTS = new Set((process.env.BENCH_PARTS ?? 'a,b,c,d,e,idle').split(','));
const SKIPPED: { ms: number; n: number; ok: boolean; note: string; cpu?: CpuUse } = { ms: NaN, n: 0, ok: false, note: 'skipped' };

/** Deterministic mixed corpus: 2–60 KB, one in five with a binary attachment. */
function corpus(n: number): Buffer[] {
  let seed = 42;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
  const out: Buffer[] = [];
  for (let i = 0; i < n; i++) {
    const size = 2048 + Math.floor(rnd() * 58 * 1024);
    const withAttachment = i % 5 === 0;
    const textLen = withAttachment ? Math.floor(size * 0.3) : size;
    const text = ('Lorem ipsum dolor sit amet, ticket ' + i + ' needs attention. ').repeat(Math.ceil(textLen / 60)).slice(0, textLen);
    const lines = [
      `From: Customer ${i} <c${i}@example.com>`,
      'To: support@example.com',
      `Subject: Bench message ${i}`,
      `Message-ID: <bench-${i}@example.com>`,
      'Date: Sun, 22 Nov 2026 10:00:00 +0000',
      'MIME-Version: 1.0',
    ];
    if (withAttachment) {
      const bin = randomBytes(size - textLen).toString('base64').replace(/.{76}/g, '$&\r\n');
      lines.push('Content-Type: multipart/mixed; boundary="b"', '', '--b', 'Content-Type: text/plain; charset=utf-8', '', text.replace(/.{70}/g, '$&\r\n'), '--b',
        'Content-Type: application/octet-stream; name="file.bin"', 'Content-Disposition: attachment; filename="file.bin"', 'Content-Transfer-Encoding: base64', '', bin, '--b--', '');
    } else {
      lines.push('Content-Type: text/plain; charset=utf-8', '', text.replace(/.{70}/g, '$&\r\n'), '');
    }
    out.push(Buffer.from(lines.join('\r\n')));
  }
  return out;
}

interface CpuUse {
  /** Busy CPU seconds of the whole machine (2 cores: at most 2 per second of wall time). */
  machine: number;
  /** This bench process: the loop itself, or the webhook sink during (c). */
  bench: number;
}

function cpuMark(): () => CpuUse {
  const m0 = machineBusySeconds();
  const b0 = process.cpuUsage();
  return () => {
    const b = process.cpuUsage(b0);
    return { machine: machineBusySeconds() - m0, bench: (b.user + b.system) / 1e6 };
  };
}

async function fetchLoop(user: string, parse: boolean): Promise<{ ms: number; n: number; cpu?: CpuUse }> {
  const h = getHarness();
  const client = await passwordClient(h, user);
  const cpu = cpuMark();
  const t0 = performance.now();
  let n = 0;
  const lock = await client.getMailboxLock('INBOX');
  try {
    for await (const m of client.fetch('1:*', { uid: true, source: true })) {
      if (parse && m.source) await simpleParser(m.source);
      n++;
    }
  } finally {
    lock.release();
  }
  const ms = performance.now() - t0;
  const used = cpu();
  await client.logout();
  return { ms, n, cpu: used };
}

async function fetchmail(user: string): Promise<{ ms: number; ok: boolean; note: string }> {
  if (!existsSync('/usr/bin/fetchmail')) return { ms: NaN, ok: false, note: 'fetchmail not installed (apt-get install fetchmail)' };
  const h = getHarness();
  const dir = tmpDataDir('mg-fetchmail-');
  const rc = join(dir, 'fetchmailrc');
  writeFileSync(
    rc,
    `set no syslog\nset logfile ${join(dir, 'log')}\npoll 127.0.0.1 service ${h.imapPort} protocol IMAP auth password\n  user "${user}" password "${TEST_PASSWORD}"\n  keep fetchall sslproto "" no sslcertck\n  mda "/bin/cat >/dev/null"\n`,
  );
  chmodSync(rc, 0o600);
  const t0 = performance.now();
  const code = await new Promise<number | null>((r) => {
    const c = spawn('/usr/bin/fetchmail', ['-f', rc, '--nodetach', '--idfile', join(dir, 'ids')], { stdio: 'ignore', env: { ...process.env, HOME: dir } });
    c.once('exit', r);
  });
  return { ms: performance.now() - t0, ok: code === 0, note: `exit ${code}` };
}

/** APPEND → EXISTS for a bare imapflow client in IDLE: what the server itself takes to announce new mail. */
async function idleBaseline(user: string, samples: number): Promise<number[]> {
  const h = getHarness();
  const { access_token } = await oauthAdmin(h).issue('bench', user);
  const watcher = new ImapFlow({ host: '127.0.0.1', port: h.imapPort, secure: false, auth: { user, accessToken: access_token }, logger: false });
  const writer = await passwordClient(h, user);
  await watcher.connect();
  await watcher.mailboxOpen('INBOX');
  const out: number[] = [];
  for (let i = 0; i < samples; i++) {
    const seen = new Promise<number>((r) => watcher.once('exists', () => r(performance.now())));
    void watcher.idle();
    await new Promise((r) => setTimeout(r, 50));
    const t = performance.now();
    await writer.append('INBOX', `Subject: baseline ${i}\r\n\r\nx\r\n`);
    out.push((await seen) - t);
  }
  await watcher.logout();
  await writer.logout();
  return out;
}

function fmtCpu(s: number | undefined): string {
  return s === undefined ? 'n/a' : `${s.toFixed(2)} s`;
}

/** (e) mailgate over POP3 on the same maildrop, afterDelivery: none. */
async function pop3Run(user: string, popTotal: number): Promise<{ ms: number }> {
  const h = getHarness();
  const admin = oauthAdmin(h);
  const popSink = await WebhookSink.start();
  let popLastAck = 0;
  popSink.setBehaviour(() => {
    popLastAck = performance.now();
    return { status: 204 };
  });
  const popCfg = await writeE2EConfig(h, { user, clientId: 'bench', webhookUrl: popSink.url, protocol: 'pop3', afterDelivery: 'none' });
  writeFileSync(join(popCfg.dir, 'rt'), (await admin.issue('bench', user)).refresh_token);
  const popImp = await runCli(['tokens', 'import', 'support', '--refresh-token-file', join(popCfg.dir, 'rt'), '--config', popCfg.path]);
  if (popImp.code !== 0) throw new Error(popImp.stderr);
  const tp = performance.now();
  const popDaemon = await startDaemon(popCfg.path, popCfg.port);
  await popSink.waitFor((s) => s.acknowledged.length >= popTotal, 10 * 60_000);
  const ms = popLastAck - tp;
  await popDaemon.stop();
  await popSink.close();
  return { ms };
}

it('ingest benchmark', async () => {
  // BENCH_PARTS=f runs only the pipeline fields comparison below.
  if (!['a', 'b', 'c', 'd', 'e', 'idle'].some((p) => PARTS.has(p))) return;
  const h = getHarness();
  const admin = oauthAdmin(h);
  await admin.registerClient('bench', 'secret-bench');
  const user = uniqueUser('bench');
  const raws = corpus(COUNT);
  const bytes = raws.reduce((s, r) => s + r.length, 0);
  await appendMessages(h, user, raws);

  const a = PARTS.has('a') ? await fetchLoop(user, false) : SKIPPED;
  const b = PARTS.has('b') ? await fetchLoop(user, true) : SKIPPED;
  const d = PARTS.has('d') ? await fetchmail(user) : SKIPPED;

  // (c) mailgate end to end
  const sink = await WebhookSink.start();
  let lastAck = 0;
  sink.setBehaviour(() => {
    lastAck = performance.now();
    return { status: 204 };
  });
  const cfg = await writeE2EConfig(h, { user, clientId: 'bench', webhookUrl: sink.url, mode: 'idle', concurrency: Number(process.env.BENCH_CONCURRENCY ?? 8) });
  const { refresh_token } = await admin.issue('bench', user);
  writeFileSync(join(cfg.dir, 'rt'), refresh_token);
  const imp = await runCli(['tokens', 'import', 'support', '--refresh-token-file', join(cfg.dir, 'rt'), '--config', cfg.path]);
  if (imp.code !== 0) throw new Error(imp.stderr);
  const cCpu = cpuMark();
  const t0 = performance.now();
  // DAEMON_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" profiles the daemon.
  const nodeArgs = (process.env.DAEMON_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const daemonEnv: Record<string, string> = {};
  if (process.env.DAEMON_NODE_OPTIONS) daemonEnv.NODE_OPTIONS = process.env.DAEMON_NODE_OPTIONS;
  if (process.env.MAILGATE_PARSE_THREADS) daemonEnv.MAILGATE_PARSE_THREADS = process.env.MAILGATE_PARSE_THREADS;
  const daemon = await startDaemon(cfg.path, cfg.port, daemonEnv, nodeArgs);
  const readyAt = performance.now();
  await sink.waitFor((s) => s.acknowledged.length >= COUNT, 10 * 60_000);
  const c = { ms: lastAck - t0, fromReadyMs: lastAck - readyAt, cpu: cCpu(), daemonCpu: processCpuSeconds(daemon.child.pid ?? 0) };
  const rssAfterBulk = peakRssMb(daemon.child.pid ?? 0);

  // IDLE latency: APPEND one message, wait for its webhook, pause, repeat.
  // The pause outlasts the ack coalescing timer (250 ms), whose wake-up would
  // otherwise sync the mailbox early and hide the server's IDLE delay.
  const latencies: number[] = [];
  const client = await passwordClient(h, user);
  const idleSamples = PARTS.has('idle') ? IDLE_SAMPLES : 0;
  for (let i = 0; i < idleSamples; i++) {
    const before = sink.acknowledged.length;
    const raw = `From: l@example.com\r\nTo: support@example.com\r\nSubject: latency ${i}\r\nMessage-ID: <lat-${i}@example.com>\r\n\r\nping ${i}\r\n`;
    const t = performance.now();
    await client.append('INBOX', raw);
    await sink.waitFor((s) => s.acknowledged.length > before, 30_000);
    latencies.push(lastAck - t);
    await new Promise((r) => setTimeout(r, 400));
  }
  await client.logout();
  const peak = peakRssMb(daemon.child.pid ?? 0);
  await daemon.stop();
  await sink.close();
  const exists = PARTS.has('idle') ? await idleBaseline(user, Math.min(IDLE_SAMPLES, 50)) : [];

  // (e) mailgate over POP3 on the same maildrop (now COUNT + IDLE_SAMPLES messages), afterDelivery: none.
  const popTotal = COUNT + idleSamples + exists.length;
  const e = PARTS.has('e') ? await pop3Run(user, popTotal) : { ms: NaN };

  const rate = (ms: number) => (COUNT / (ms / 1000)).toFixed(0);
  report(PARTS.size === 6 ? 'ingest' : 'ingest-partial', [
    `mailbox: ${COUNT} messages, ${(bytes / 1048576).toFixed(1)} MiB (2–60 KB, 1 in 5 with an attachment); Dovecot 2.3 on loopback; 2 cores`,
    `(a) imapflow fetch loop           ${a.ms.toFixed(0).padStart(7)} ms  ${rate(a.ms).padStart(6)} msg/s`,
    `(b) fetch + simpleParser          ${b.ms.toFixed(0).padStart(7)} ms  ${rate(b.ms).padStart(6)} msg/s`,
    `(c) mailgate end to end           ${c.ms.toFixed(0).padStart(7)} ms  ${rate(c.ms).padStart(6)} msg/s  (from /readyz: ${rate(c.fromReadyMs)} msg/s)`,
    `(d) fetchmail → null MDA          ${Number.isNaN(d.ms) ? '    n/a' : d.ms.toFixed(0).padStart(7)} ms  ${Number.isNaN(d.ms) ? '   n/a' : rate(d.ms).padStart(6)} msg/s  (${d.note})`,
    `(e) mailgate over POP3            ${e.ms.toFixed(0).padStart(7)} ms  ${(popTotal / (e.ms / 1000)).toFixed(0).padStart(6)} msg/s  (${popTotal} messages: the mailbox plus the latency samples)`,
    `CPU seconds (2 cores): (b) machine ${fmtCpu(b.cpu?.machine)} of which the loop ${fmtCpu(b.cpu?.bench)}; ` +
      `(c) machine ${fmtCpu(c.cpu.machine)} = daemon ${fmtCpu(c.daemonCpu)} + webhook sink ${fmtCpu(c.cpu.bench)} + Dovecot and the rest ${fmtCpu(c.cpu.machine - c.daemonCpu - c.cpu.bench)}`,
    `ratios: (c)/(a) ${(a.ms / c.ms).toFixed(2)}  (c)/(b) ${(b.ms / c.ms).toFixed(2)}  (c)/(d) ${Number.isNaN(d.ms) ? 'n/a' : (d.ms / c.ms).toFixed(2)}`,
    `Dovecot's own IDLE delay, raw imapflow APPEND → EXISTS over ${exists.length}: p50 ${percentile(exists, 50).toFixed(0)} ms, p99 ${percentile(exists, 99).toFixed(0)} ms`,
    `IDLE latency APPEND → webhook over ${idleSamples}: p50 ${percentile(latencies, 50).toFixed(0)} ms, p99 ${percentile(latencies, 99).toFixed(0)} ms, max ${Math.max(...latencies).toFixed(0)} ms`,
    `daemon peak RSS: ${rssAfterBulk.toFixed(0)} MiB after the bulk ingest, ${peak.toFixed(0)} MiB at the end`,
  ]);
});

/**
 * (f) What replyText, issueKeys, autoType, bounce and the conversation
 * lookups cost: the daemon's CPU seconds per message (main and parse
 * threads) over one mailbox, with the fields on and off
 * (MAILGATE_BENCH_NO_PIPELINE_FIELDS=1), alternating off/on so that both see
 * the same machine load. One in four messages is a reply with a quote
 * block and a signature; the rest are the corpus above, with no quote, so
 * extraction reads the whole text (its costly case).
 */
it('pipeline fields: added CPU per message', async () => {
  if (!PARTS.has('f')) return;
  const n = Number(process.env.BENCH_FIELDS_MESSAGES ?? 1000);
  const pairs = Number(process.env.BENCH_FIELDS_PAIRS ?? 2);
  const h = getHarness();
  const admin = oauthAdmin(h);
  await admin.registerClient('bench-f', 'secret-bench-f');
  const user = uniqueUser('bench-f');
  const raws = corpus(n).map((raw, i) => {
    if (i % 4 !== 1) return raw;
    const reply = [
      `From: Customer ${i} <c${i}@example.com>`, 'To: support@example.com', `Subject: Re: [SUP-${i}] Bench message ${i}`,
      `Message-ID: <bench-f-${i}@example.com>`, `In-Reply-To: <bench-${i - 1}@example.com>`, `References: <bench-${i - 1}@example.com>`,
      'Date: Sun, 22 Nov 2026 10:00:00 +0000', 'MIME-Version: 1.0', 'Content-Type: text/plain; charset=utf-8', '',
      `Thanks, ticket ${i} is fixed now.`, '', 'Regards,', 'Customer', '', `On Sun, Nov 22, 2026 at 9:00 AM Support <support@example.com> wrote:`,
      ...raw.toString('latin1').split('\r\n\r\n').slice(1).join('\r\n').slice(0, 4000).split('\r\n').map((l) => `> ${l}`), '',
    ];
    return Buffer.from(reply.join('\r\n'));
  });
  await appendMessages(h, user, raws);
  const run = async (fields: boolean) => {
    const sink = await WebhookSink.start();
    sink.setBehaviour(() => ({ status: 204 }));
    const cfg = await writeE2EConfig(h, { user, clientId: 'bench-f', webhookUrl: sink.url, mode: 'idle', afterDelivery: 'none', extraIncoming: '      initialSync: all\n' });
    const { refresh_token } = await admin.issue('bench-f', user);
    writeFileSync(join(cfg.dir, 'rt'), refresh_token);
    const imp = await runCli(['tokens', 'import', 'support', '--refresh-token-file', join(cfg.dir, 'rt'), '--config', cfg.path]);
    if (imp.code !== 0) throw new Error(imp.stderr);
    const env: Record<string, string> = fields ? {} : { MAILGATE_BENCH_NO_PIPELINE_FIELDS: '1' };
    const t0 = performance.now();
    const daemon = await startDaemon(cfg.path, cfg.port, env);
    await sink.waitFor((s) => s.acknowledged.length >= n, 10 * 60_000);
    const ms = performance.now() - t0;
    const cpu = processCpuSeconds(daemon.child.pid ?? 0);
    const sample = sink.acknowledged.map((r) => r.json as { replyText?: string; issueKeys?: string[] });
    await daemon.stop();
    await sink.close();
    return { ms, cpuPerMsgMs: (cpu * 1000) / n, replies: sample.filter((p) => (p.issueKeys ?? []).length > 0).length };
  };
  const off: { ms: number; cpuPerMsgMs: number }[] = [];
  const on: { ms: number; cpuPerMsgMs: number; replies: number }[] = [];
  for (let i = 0; i < pairs; i++) {
    off.push(await run(false));
    on.push(await run(true));
  }
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const offCpu = mean(off.map((r) => r.cpuPerMsgMs));
  const onCpu = mean(on.map((r) => r.cpuPerMsgMs));
  report('ingest-pipeline-fields', [
    `mailbox: ${n} messages (corpus of bench:ingest, 1 in 4 replaced by a reply with a 4 KB quote); daemon process, Dovecot on loopback, 2 shared cores; ${pairs} off/on pairs`,
    ...off.map((r, i) => `pair ${i + 1}: off ${r.cpuPerMsgMs.toFixed(3)} ms CPU/msg (${r.ms.toFixed(0)} ms wall), on ${on[i]?.cpuPerMsgMs.toFixed(3)} ms CPU/msg (${on[i]?.ms.toFixed(0)} ms wall)`),
    `daemon CPU per message: off ${offCpu.toFixed(3)} ms, on ${onCpu.toFixed(3)} ms, added ${(onCpu - offCpu).toFixed(3)} ms = ${(((onCpu - offCpu) / offCpu) * 100).toFixed(1)} % of the daemon's CPU per message`,
    `check: with the fields on, ${on[0]?.replies ?? 0} payloads had an issue key (expected ${Math.floor((n + 2) / 4)})`,
  ]);
});
