// npm run bench:accounts — many IDLE accounts on one Dovecot (issue 18).
//
// For each N in BENCH_ACCOUNTS (default 100,1000,5000) a private Dovecot with
// raised limits and imap_hibernate (settings below, printed in the report)
// holds N password accounts, and the built daemon (`dist/cli.js serve`)
// starts with all N in `mode: idle`. Measured per N:
//   - time until GET /v1/accounts shows every account idle (polled every 2 s;
//     given up after BENCH_IDLE_TIMEOUT_S, default 60 + 0.06 s per account)
//   - peak and mean logins per second and connections dropped before login,
//     from Dovecot's own log up to that moment
//   - reconnects the daemon logged, Dovecot's limit warnings
//   - RSS after a forced GC (SIGUSR2 → gc() from a preload) and per account,
//     peak RSS, idle CPU over 20 s, open file descriptors
//   - GET /v1/accounts latency (20 calls), arrival → webhook p50/p99 for
//     BENCH_SAMPLES (50) messages APPENDed to random idle accounts, next to
//     Dovecot's own IDLE delay for a bare imapflow client (5 samples)
//   - SIGTERM → exit
// BENCH_BACKFILL=1 adds the backfill: one account with 2,000 then 20,000
// messages (2–60 KB, about 60 MB and 600 MB), msg/s and peak RSS of each,
// in the same run (BENCH_BACKFILL_ONLY=1 runs only that), then a webhook
// receiver that answers 503 for BENCH_WEBHOOK_DOWN_S (180) while
// BENCH_WEBHOOK_DOWN_RATE (10) messages a second arrive: post-GC RSS a minute
// in and at the end, then the time to drain once it answers 204.
//
// BENCH_IDLE_RESYNC=30m sets every account's idleResync.
// BENCH_CONFIG_EXTRA is appended to the daemon's YAML at the top level, e.g.
// BENCH_CONFIG_EXTRA=$'limits:\n  loginsPerSecond: 50' (the idle timeout follows the rate).
// BENCH_DOVECOT_LOGIN=performance runs imap-login in high-performance mode
// (service_count 0, process_min_avail 2) instead of Dovecot's default.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { ImapFlow } from 'imapflow';
import { it } from 'vitest';
import { createMaildirs, dovecotLoginStats, dovecotProcesses, type Dovecot, type DovecotLoginStats, type DovecotScale } from '../test/harness/dovecot.js';
import { getHarness, startDovecot, TEST_PASSWORD, tmpDataDir, WebhookSink } from '../test/harness/index.js';
import { freePort } from '../test/harness/net.js';
import { assertBuilt, CLI, ROOT } from '../test/integration/daemon/run-daemon.js';
import { peakRssMb, percentile, processCpuSeconds, report } from './report.js';

const SIZES = (process.env.BENCH_ACCOUNTS ?? '100,1000,5000').split(',').map(Number).filter((n) => n > 0);
const SAMPLES = Number(process.env.BENCH_SAMPLES ?? 50);
const BACKFILL = process.env.BENCH_BACKFILL === '1' || process.env.BENCH_BACKFILL_ONLY === '1';
const BACKFILL_ONLY = process.env.BENCH_BACKFILL_ONLY === '1';
const CONFIG_EXTRA = process.env.BENCH_CONFIG_EXTRA ?? '';
/** BENCH_IDLE_RESYNC (e.g. 30m) sets every account's `idleResync`: each resync wakes a hibernated Dovecot session, N / idleResync a second. */
const IDLE_RESYNC = process.env.BENCH_IDLE_RESYNC ?? '';
const LOGINS_PER_SECOND = Number(/loginsPerSecond:\s*([\d.]+)/.exec(CONFIG_EXTRA)?.[1] ?? 10);
/** The webhook-down phase (with BENCH_BACKFILL): how long the receiver answers 503 while mail keeps arriving, and how fast it arrives. */
const DOWN_S = Number(process.env.BENCH_WEBHOOK_DOWN_S ?? 180);
const DOWN_RATE = Number(process.env.BENCH_WEBHOOK_DOWN_RATE ?? 10);
const ADMIN = 'bench-accounts-admin-token-0123456789';
const STATUS_POLL_MS = 2_000;
const READY_TIMEOUT_MS = 120_000;
const IDLE_CPU_WINDOW_MS = 20_000;
const SETTLE_MS = 10_000;
const HIBERNATE = '5s';
const INOTIFY_PATH = '/proc/sys/fs/inotify/max_user_instances';

function idleTimeoutMs(n: number): number {
  // Paced: n / loginsPerSecond (10 unless BENCH_CONFIG_EXTRA says otherwise) and half again, plus a minute.
  return Number(process.env.BENCH_IDLE_TIMEOUT_S ?? 60 + (1.5 * n) / LOGINS_PER_SECOND) * 1000;
}

/**
 * Dovecot for N sessions: processes and client slots for all of them (the
 * login processes of a storm and the imap processes before they hibernate),
 * IDLE sessions hibernated after 5 s. imap-login stays in Dovecot's default
 * high-security mode (a process per connection) unless BENCH_DOVECOT_LOGIN.
 */
function dovecotScale(n: number): DovecotScale {
  const performance = process.env.BENCH_DOVECOT_LOGIN === 'performance';
  return {
    processLimit: n + 500,
    clientLimit: 2 * n + 1000,
    imapHibernateTimeout: HIBERNATE,
    ...(performance ? { login: { serviceCount: 0, processMinAvail: 2 } } : {}),
  };
}

function describeScale(): string {
  const s = dovecotScale(1);
  const login = s.login
    ? `service imap-login { service_count = ${s.login.serviceCount}; process_min_avail = ${s.login.processMinAvail} } (high-performance mode)`
    : "imap-login in Dovecot's default high-security mode (service_count 1: a process per connection, process_min_avail 0)";
  return `default_process_limit = N + 500, default_client_limit = 2N + 1000, imap_hibernate_timeout = ${s.imapHibernateTimeout}, ${login}, mail_max_userip_connections 10 and mailbox_idle_check_interval 30 s (defaults)`;
}

/**
 * Every hibernated session hands its inotify instance to imap-hibernate, all
 * under uid dovecot: past fs.inotify.max_user_instances (128 here) Dovecot
 * falls back to checking every mailbox_idle_check_interval (30 s). Raised for
 * the run when it is lower than needed and writable, put back afterwards.
 */
function raiseInotify(n: number): () => void {
  let before: number;
  try {
    before = Number(readFileSync(INOTIFY_PATH, 'utf8'));
  } catch {
    return () => undefined;
  }
  const want = n + 512;
  if (before >= want) return () => undefined;
  try {
    writeFileSync(INOTIFY_PATH, String(want));
    console.log(`bench: fs.inotify.max_user_instances ${before} → ${want} for the run`);
  } catch {
    console.log(`bench: fs.inotify.max_user_instances is ${before} and cannot be raised: Dovecot will poll hibernated sessions every 30 s`);
    return () => undefined;
  }
  return () => writeFileSync(INOTIFY_PATH, String(before));
}

function accountsYaml(o: { port: number; imapPort: number; users: string[]; webhookUrl: string; backoff?: string }): string {
  const accounts = o.users
    .map(
      (u) => `  - name: ${u}
    email: ${u}@example.com
    incoming:
      protocol: imap
      host: 127.0.0.1
      port: ${o.imapPort}
      tls: false
      user: ${u}
      auth: { method: password, password: ${TEST_PASSWORD} }
      mode: idle
${IDLE_RESYNC ? `      idleResync: ${IDLE_RESYNC}\n` : ''}    webhook: sink
`,
    )
    .join('');
  return `server:
  listen: 127.0.0.1:${o.port}
  adminToken: ${ADMIN}
dataDir: ./data
logLevel: info
accounts:
${accounts}webhooks:
  - name: sink
    url: ${o.webhookUrl}
    secret: whsec-bench
    backoff: ${o.backoff ?? '{ initial: 100ms, max: 1s }'}
    timeout: 5s
${CONFIG_EXTRA ? CONFIG_EXTRA.replace(/\s*$/, '\n') : ''}`;
}

/** What the daemon's log said, counted as it streams (it is not kept whole). */
interface DaemonLog {
  reconnects: number;
  tlsHints: number;
  lines: number;
  tail: string[];
}

interface RunningDaemon {
  child: ChildProcess;
  pid: number;
  url: string;
  log: DaemonLog;
  stop(): Promise<number>;
}

/** `serve` with a GC hook (SIGUSR2) and a readiness wait long enough for a start under load. */
async function startBenchDaemon(dir: string, configPath: string, port: number): Promise<{ daemon: RunningDaemon; readyMs: number; t0: number }> {
  assertBuilt();
  const preload = join(dir, 'gc-on-signal.mjs');
  writeFileSync(preload, "process.on('SIGUSR2', () => { globalThis.gc?.(); });\n");
  const t0 = performance.now();
  const child = spawn(process.execPath, ['--expose-gc', '--import', pathToFileURL(preload).href, CLI, 'serve', '--config', configPath], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const log: DaemonLog = { reconnects: 0, tlsHints: 0, lines: 0, tail: [] };
  let partial = '';
  const onData = (d: Buffer) => {
    const parts = (partial + d.toString()).split('\n');
    partial = parts.pop() ?? '';
    for (const line of parts) {
      log.lines++;
      if (line.includes('reconnecting later')) log.reconnects++;
      if (line.includes('Maybe should use TLS') || line.includes('did not greet within')) log.tlsHints++;
      log.tail.push(line);
      if (log.tail.length > 50) log.tail.shift();
    }
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`daemon exited with ${child.exitCode}:\n${log.tail.join('\n')}`);
    const ok = await fetch(`${url}/readyz`).then(
      (r) => r.status === 200,
      () => false,
    );
    if (ok) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`daemon not ready within ${READY_TIMEOUT_MS / 1000} s:\n${log.tail.join('\n')}`);
    }
    await sleep(50);
  }
  const readyMs = performance.now() - t0;
  const daemon: RunningDaemon = {
    child,
    pid: child.pid ?? 0,
    url,
    log,
    async stop() {
      const s = performance.now();
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
      return performance.now() - s;
    },
  };
  return { daemon, readyMs, t0 };
}

interface AccountRow {
  name: string;
  incoming: { state: string };
}

async function getAccounts(d: RunningDaemon): Promise<{ ms: number; accounts: AccountRow[] }> {
  const t = performance.now();
  const r = await fetch(`${d.url}/v1/accounts`, { headers: { authorization: `Bearer ${ADMIN}` } });
  if (!r.ok) throw new Error(`GET /v1/accounts: HTTP ${r.status}`);
  const body = (await r.json()) as { accounts: AccountRow[] };
  return { ms: performance.now() - t, accounts: body.accounts };
}

function states(accounts: AccountRow[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const a of accounts) out[a.incoming.state] = (out[a.incoming.state] ?? 0) + 1;
  return out;
}

function countLines(log: string, re: RegExp): number {
  let n = 0;
  for (const line of log.split('\n')) if (re.test(line)) n++;
  return n;
}

/** The bench's own sessions (writers, the IDLE baseline) wait out a Dovecot still busy with a login storm. */
const HELPER_TIMEOUT_MS = 180_000;

function imapLogin(port: number, user: string): Promise<ImapFlow> {
  const c = new ImapFlow({
    host: '127.0.0.1',
    port,
    secure: false,
    doSTARTTLS: false,
    auth: { user, pass: TEST_PASSWORD },
    logger: false,
    disableAutoIdle: true,
    connectionTimeout: HELPER_TIMEOUT_MS,
    greetingTimeout: HELPER_TIMEOUT_MS,
  });
  c.on('error', () => undefined);
  return c.connect().then(() => c);
}

/** APPEND → EXISTS for a bare imapflow client whose IDLE session has hibernated: what Dovecot itself takes. */
async function dovecotIdleDelay(d: Dovecot, user: string, samples: number): Promise<number[]> {
  const watcher = await imapLogin(d.imapPort, user);
  const writer = await imapLogin(d.imapPort, user);
  await watcher.mailboxOpen('INBOX');
  const out: number[] = [];
  for (let i = 0; i < samples; i++) {
    const seen = new Promise<number>((r) => watcher.once('exists', () => r(Date.now())));
    void watcher.idle();
    await sleep(6_000); // past imap_hibernate_timeout, like the daemon's sessions
    const t = Date.now();
    await writer.append('INBOX', `Subject: baseline ${i}\r\n\r\nx\r\n`);
    out.push((await seen) - t);
  }
  await watcher.logout();
  await writer.logout();
  return out;
}

/** APPEND to random idle accounts, one at a time, each to its webhook. */
async function arrivalLatency(d: Dovecot, sink: WebhookSink, idle: string[], samples: number): Promise<{ ms: number[]; lost: number }> {
  const out: number[] = [];
  let lost = 0;
  for (let i = 0; i < samples; i++) {
    const user = idle[Math.floor(Math.random() * idle.length)] as string;
    const subject = `arrival ${i} ${randomBytes(4).toString('hex')}`;
    let t: number;
    try {
      const writer = await imapLogin(d.imapPort, user);
      t = Date.now();
      await writer.append('INBOX', `From: a@example.com\r\nTo: ${user}@example.com\r\nSubject: ${subject}\r\nMessage-ID: <${subject.replace(/ /g, '.')}@bench>\r\n\r\nhello\r\n`);
      await writer.logout();
    } catch (err) {
      console.log(`bench: could not deliver sample ${i}: ${(err as Error).message}`);
      lost++;
      continue;
    }
    const found = () => sink.requests.find((r) => (r.json as { subject?: string } | null)?.subject === subject);
    const deadline = Date.now() + 60_000;
    while (!found() && Date.now() < deadline) await sleep(5);
    const hit = found();
    if (hit) out.push(hit.receivedAt - t);
    else lost++;
    await sleep(300); // past the ack coalescing (250 ms), which would wake the account early
  }
  return { ms: out, lost };
}

function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN) / 1024;
}

interface AccountsResult {
  n: number;
  readyS: number;
  allIdleS: number | null;
  idleAtEnd: number;
  states: Record<string, number>;
  logins: DovecotLoginStats;
  reconnects: number;
  tlsHints: number;
  peakRss: number;
  postGcRss: number;
  idleCpuPct: number;
  fds: number;
  listP50: number;
  listMax: number;
  arrival: { ms: number[]; lost: number };
  baseline: number[];
  sigtermS: number;
  dovecotWarnings: { processLimit: number; clientLimit: number; inotify: number };
  dovecotImapProcesses: number;
}

async function runAccounts(n: number): Promise<AccountsResult> {
  const h = getHarness();
  const restoreInotify = raiseInotify(n);
  const scale = dovecotScale(n);
  const dovecot = await startDovecot({ introspectionUrl: `${h.oauthUrl}/introspect`, relayPort: h.relaySinkPort, scale });
  const sink = await WebhookSink.start();
  try {
    const tag = randomBytes(3).toString('hex');
    const prefix = `b${tag}-`;
    const users = Array.from({ length: n }, (_, i) => `${prefix}${String(i).padStart(5, '0')}`);
    const baselineUser = `base${tag}`;
    await createMaildirs(dovecot, [...users, baselineUser]);
    const dir = tmpDataDir('mg-bench-accounts-');
    const port = await freePort();
    const configPath = join(dir, 'mailgate.yaml');
    writeFileSync(configPath, accountsYaml({ port, imapPort: dovecot.imapPort, users, webhookUrl: sink.url }));

    // Only what Dovecot logs from the daemon's start on (the harness's port probes come before).
    const logFrom = readFileSync(dovecot.logPath).length;
    const { daemon, readyMs, t0 } = await startBenchDaemon(dir, configPath, port);
    let allIdleS: number | null = null;
    let last: AccountRow[] = [];
    const deadline = t0 + idleTimeoutMs(n);
    for (;;) {
      last = (await getAccounts(daemon)).accounts;
      const idle = last.filter((a) => a.incoming.state === 'idle').length;
      if (idle === n) {
        allIdleS = (performance.now() - t0) / 1000;
        break;
      }
      if (performance.now() > deadline) break;
      await sleep(STATUS_POLL_MS);
    }
    const logins = dovecotLoginStats(readFileSync(dovecot.logPath).subarray(logFrom).toString('utf8'), prefix);
    const reconnects = daemon.log.reconnects;

    await sleep(SETTLE_MS);
    const cpu0 = processCpuSeconds(daemon.pid);
    await sleep(IDLE_CPU_WINDOW_MS);
    const idleCpuPct = ((processCpuSeconds(daemon.pid) - cpu0) / (IDLE_CPU_WINDOW_MS / 1000)) * 100;
    daemon.child.kill('SIGUSR2');
    await sleep(1_000);
    const postGcRss = rssMb(daemon.pid);
    const fds = readdirSync(`/proc/${daemon.pid}/fd`).length;
    const dovecotImapProcesses = dovecotProcesses(dovecot).imap;

    const lists: number[] = [];
    for (let i = 0; i < 20; i++) {
      const r = await getAccounts(daemon);
      lists.push(r.ms);
      last = r.accounts;
    }
    const idleNow = last.filter((a) => a.incoming.state === 'idle').map((a) => a.name);
    const arrival = idleNow.length > 0 ? await arrivalLatency(dovecot, sink, idleNow, SAMPLES) : { ms: [], lost: SAMPLES };
    const peakRss = peakRssMb(daemon.pid);
    const endStates = states(last);
    const sigtermMs = await daemon.stop();
    const baseline = await dovecotIdleDelay(dovecot, baselineUser, 5).catch((err: unknown) => {
      console.log(`bench: no IDLE baseline: ${(err as Error).message}`);
      return [] as number[];
    });

    const dlog = readFileSync(dovecot.logPath, 'utf8');
    return {
      n,
      readyS: readyMs / 1000,
      allIdleS,
      idleAtEnd: idleNow.length,
      states: endStates,
      logins,
      reconnects,
      tlsHints: daemon.log.tlsHints,
      peakRss,
      postGcRss,
      idleCpuPct,
      fds,
      listP50: percentile(lists, 50),
      listMax: Math.max(...lists),
      arrival,
      baseline,
      sigtermS: sigtermMs / 1000,
      dovecotWarnings: {
        processLimit: countLines(dlog, /process_limit .* reached/),
        clientLimit: countLines(dlog, /client_limit .* reached/),
        inotify: countLines(dlog, /[Ii]notify instance limit/),
      },
      dovecotImapProcesses,
    };
  } finally {
    await sink.close();
    await dovecot.stop();
    restoreInotify();
  }
}

/** Deterministic mixed corpus (the same shape as bench:ingest): 2–60 KB, one in five with a binary attachment. */
function* corpus(n: number, seed0: number): Generator<Buffer> {
  let seed = seed0;
  const rnd = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
  for (let i = 0; i < n; i++) {
    const size = 2048 + Math.floor(rnd() * 58 * 1024);
    const withAttachment = i % 5 === 0;
    const textLen = withAttachment ? Math.floor(size * 0.3) : size;
    const text = ('Lorem ipsum dolor sit amet, ticket ' + i + ' needs attention. ').repeat(Math.ceil(textLen / 60)).slice(0, textLen).replace(/.{70}/g, '$&\r\n');
    const head = [`From: Customer ${i} <c${i}@example.com>`, 'To: support@example.com', `Subject: Backfill ${i}`, `Message-ID: <backfill-${seed0}-${i}@example.com>`, 'Date: Sun, 22 Nov 2026 10:00:00 +0000', 'MIME-Version: 1.0'];
    if (withAttachment) {
      const bin = randomBytes(size - textLen).toString('base64').replace(/.{76}/g, '$&\r\n');
      head.push('Content-Type: multipart/mixed; boundary="b"', '', '--b', 'Content-Type: text/plain; charset=utf-8', '', text, '--b', 'Content-Type: application/octet-stream; name="file.bin"', 'Content-Disposition: attachment; filename="file.bin"', 'Content-Transfer-Encoding: base64', '', bin, '--b--', '');
    } else {
      head.push('Content-Type: text/plain; charset=utf-8', '', text, '');
    }
    yield Buffer.from(head.join('\r\n'));
  }
}

interface BackfillResult {
  messages: number;
  mib: number;
  seconds: number;
  peakRss: number;
}

/** One account whose INBOX holds `count` messages: daemon start → last webhook acknowledged. */
async function backfill(count: number): Promise<BackfillResult> {
  const h = getHarness();
  const user = `backfill-${count}-${randomBytes(3).toString('hex')}`;
  const writer = await imapLogin(h.imapPort, user);
  let bytes = 0;
  for (const raw of corpus(count, count)) {
    bytes += raw.length;
    await writer.append('INBOX', raw);
  }
  await writer.logout();
  const sink = await WebhookSink.start();
  let acked = 0;
  let lastAck = 0;
  // Counted, not kept: 20,000 payloads would fill this process instead.
  sink.setBehaviour(() => {
    acked++;
    lastAck = performance.now();
    if (sink.requests.length > 100) sink.clear();
    return { status: 204 };
  });
  const dir = tmpDataDir('mg-bench-backfill-');
  const port = await freePort();
  const configPath = join(dir, 'mailgate.yaml');
  writeFileSync(configPath, accountsYaml({ port, imapPort: h.imapPort, users: [user], webhookUrl: sink.url }));
  const { daemon, t0 } = await startBenchDaemon(dir, configPath, port);
  try {
    const deadline = Date.now() + 20 * 60_000;
    while (acked < count) {
      if (Date.now() > deadline) throw new Error(`backfill of ${count}: ${acked} acknowledged after 20 min`);
      await sleep(50);
    }
    return { messages: count, mib: bytes / 1048576, seconds: (lastAck - t0) / 1000, peakRss: peakRssMb(daemon.pid) };
  } finally {
    await daemon.stop();
    await sink.close();
  }
}

interface DownResult {
  messages: number;
  seconds: number;
  rssEarly: number;
  rssEnd: number;
  peakRss: number;
  drainS: number;
}

/**
 * A webhook receiver that answers 503 for DOWN_S while DOWN_RATE messages a
 * second keep arriving in one idle account: post-GC RSS a minute in and at
 * the end (the backlog lives in the database, not in memory), then the
 * receiver comes back and every message is acknowledged.
 */
async function webhookDown(): Promise<DownResult> {
  const h = getHarness();
  const user = `down-${randomBytes(3).toString('hex')}`;
  const sink = await WebhookSink.start();
  sink.setBehaviour(() => {
    if (sink.requests.length > 100) sink.clear();
    return { status: 503 };
  });
  const dir = tmpDataDir('mg-bench-down-');
  const port = await freePort();
  const configPath = join(dir, 'mailgate.yaml');
  writeFileSync(configPath, accountsYaml({ port, imapPort: h.imapPort, users: [user], webhookUrl: sink.url, backoff: '{ initial: 1s, max: 30s }' }));
  const writer = await imapLogin(h.imapPort, user);
  const { daemon } = await startBenchDaemon(dir, configPath, port);
  try {
    const idleBy = Date.now() + 60_000;
    while ((await getAccounts(daemon)).accounts[0]?.incoming.state !== 'idle') {
      if (Date.now() > idleBy) throw new Error('webhook-down: the account did not idle within 60 s');
      await sleep(200);
    }
    const gcRss = async () => {
      daemon.child.kill('SIGUSR2');
      await sleep(1_000);
      return rssMb(daemon.pid);
    };
    const t0 = performance.now();
    let sent = 0;
    let rssEarly = NaN;
    const source = corpus(DOWN_S * DOWN_RATE, 7);
    for (let next = source.next(); !next.done; next = source.next()) {
      await writer.append('INBOX', next.value);
      sent++;
      const due = t0 + (sent / DOWN_RATE) * 1000;
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait);
      if (Number.isNaN(rssEarly) && performance.now() - t0 >= 60_000) rssEarly = await gcRss();
    }
    const seconds = (performance.now() - t0) / 1000;
    const rssEnd = await gcRss();
    const peakRss = peakRssMb(daemon.pid);
    let acked = 0;
    sink.setBehaviour(() => {
      acked++;
      if (sink.requests.length > 100) sink.clear();
      return { status: 204 };
    });
    const up = performance.now();
    const deadline = Date.now() + 10 * 60_000;
    while (acked < sent) {
      if (Date.now() > deadline) throw new Error(`webhook-down: ${acked} of ${sent} acknowledged 10 min after the receiver came back`);
      await sleep(200);
    }
    return { messages: sent, seconds, rssEarly, rssEnd, peakRss, drainS: (performance.now() - up) / 1000 };
  } finally {
    await writer.logout().catch(() => writer.close());
    await daemon.stop();
    await sink.close();
  }
}

const f0 = (x: number) => (Number.isFinite(x) ? x.toFixed(0) : 'n/a');
const f1 = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : 'n/a');

it('accounts benchmark', { timeout: 90 * 60_000 }, async () => {
  const lines: string[] = [];
  if (!BACKFILL_ONLY) {
    lines.push(
      `Dovecot 2.3 on loopback, 2 cores; per N: ${describeScale()}`,
      `daemon: password accounts in mode idle, one INBOX each, logLevel info${IDLE_RESYNC ? `, idleResync ${IDLE_RESYNC}` : ''}${CONFIG_EXTRA ? `, plus: ${CONFIG_EXTRA.replace(/\n/g, ' ')}` : ''}; GET /v1/accounts polled every ${STATUS_POLL_MS / 1000} s while starting`,
      '',
      '| N | HTTP ready | all idle after | logins: peak/s, mean/s | dropped before login | daemon reconnects | post-GC RSS (per account) | peak RSS | idle CPU | fds | GET /v1/accounts p50/max | arrival → webhook p50/p99 (lost) | Dovecot IDLE delay p50/max | SIGTERM exit |',
      '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
    );
    const notes: string[] = [];
    let prev: { n: number; rss: number } | null = null;
    for (const n of SIZES) {
      const r = await runAccounts(n);
      if (prev) notes.push(`RSS per added account from N=${prev.n} to N=${n}: ${f1(((r.postGcRss - prev.rss) * 1024) / (n - prev.n))} KiB (post-GC)`);
      prev = { n, rss: r.postGcRss };
      console.log(JSON.stringify(r));
      const allIdle = r.allIdleS === null ? `not within ${f0(idleTimeoutMs(n) / 1000)} s (${r.idleAtEnd}/${n} idle)` : `${f1(r.allIdleS)} s`;
      lines.push(
        `| ${n} | ${f1(r.readyS)} s | ${allIdle} | ${r.logins.peakPerSecond}, ${f1(r.logins.meanPerSecond)} (${r.logins.logins} logins) | ${r.logins.droppedBeforeLogin} | ${r.reconnects} | ${f0(r.postGcRss)} MiB (${f1((r.postGcRss * 1024) / n)} KiB) | ${f0(r.peakRss)} MiB | ${f1(r.idleCpuPct)} % | ${r.fds} | ${f0(r.listP50)}/${f0(r.listMax)} ms | ${f0(percentile(r.arrival.ms, 50))}/${f0(percentile(r.arrival.ms, 99))} ms (${r.arrival.lost}) | ${f0(percentile(r.baseline, 50))}/${f0(Math.max(...r.baseline))} ms | ${f1(r.sigtermS)} s |`,
      );
      notes.push(
        `N=${n}: states at the end ${JSON.stringify(r.states)}; "Maybe should use TLS" in the daemon log ${r.tlsHints}×; Dovecot warnings: process_limit ${r.dovecotWarnings.processLimit}, client_limit ${r.dovecotWarnings.clientLimit}, inotify ${r.dovecotWarnings.inotify}; imap processes not hibernated when idle: ${r.dovecotImapProcesses}`,
      );
    }
    lines.push('', ...notes);
  }
  if (BACKFILL) {
    const small = await backfill(2_000);
    const large = await backfill(20_000);
    lines.push(
      '',
      'backfill, one account, daemon start → last webhook acknowledged (same run):',
      `  ${small.messages} messages (${f0(small.mib)} MiB): ${f1(small.seconds)} s, ${f0(small.messages / small.seconds)} msg/s, peak RSS ${f0(small.peakRss)} MiB`,
      `  ${large.messages} messages (${f0(large.mib)} MiB): ${f1(large.seconds)} s, ${f0(large.messages / large.seconds)} msg/s, peak RSS ${f0(large.peakRss)} MiB (${(large.peakRss / small.peakRss).toFixed(2)} × the 2,000-message run; goal ≤ 1.2 ×)`,
    );
    const down = await webhookDown();
    lines.push(
      '',
      `webhook receiver down (503) for ${f0(down.seconds)} s while ${down.messages} messages arrived (${DOWN_RATE}/s, one idle account, webhook backoff 1 s → 30 s):`,
      `  post-GC RSS a minute in ${f0(down.rssEarly)} MiB, at the end ${f0(down.rssEnd)} MiB (${(down.rssEnd / down.rssEarly).toFixed(2)} ×), peak ${f0(down.peakRss)} MiB; all ${down.messages} acknowledged ${f1(down.drainS)} s after the receiver came back`,
    );
  }
  report(BACKFILL_ONLY ? 'accounts-backfill' : 'accounts', lines);
});
