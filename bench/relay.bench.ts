// npm run bench:relay — the SMTP relay in the daemon process, against the
// ceiling in the same run:
// (ceiling) nodemailer in one process sending straight to Dovecot submission
//   (XOAUTH2) with a pool of the size mailgate's outbox uses;
// (mailgate) legacy applications (nodemailer, AUTH PLAIN, pooled) → the
//   relay → outbox (SQLite, committed before each 250) → the same
//   submission: messages/second accepted (every 250 in) and relayed (the
//   last one at the sink);
// (memory) 10 applications streaming a 10 MB message each at once: the
//   daemon's peak RSS (VmHWM) before and after, until all ten were sent on.
// A private Dovecot and sink keep other runs' mail out of the count.
import { randomBytes } from 'node:crypto';
import { appendFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import nodemailer from 'nodemailer';
import { it } from 'vitest';
import { POOL_CONNECTIONS } from '../src/outgoing/smtp.js';
import { getHarness, oauthAdmin, SmtpSink, startDovecot, uniqueUser } from '../test/harness/index.js';
import { freePort } from '../test/harness/net.js';
import { ADMIN, authorizeThroughDaemon, startDaemon, writeE2EConfig } from '../test/integration/imap/e2e-helpers.js';
import { peakRssMb, report } from './report.js';

const COUNT = Number(process.env.BENCH_MESSAGES ?? 1000);
/** Legacy applications sending at once, each one connection. */
const APPS = 4;
const BIG_CLIENTS = 10;
const MiB = 1024 * 1024;
const BIG_BYTES = 10 * MiB;
const PW = `bench-${randomBytes(6).toString('hex')}`;

/** A scanner's notification with a small attachment, ~6 KB on the wire. */
function message(i: number, run: string, from: string) {
  return {
    from,
    to: `desk${i % 7}@example.org`,
    bcc: 'archive@example.net',
    subject: `Scan ${i} [${run}]`,
    text: `Document ${i} was scanned.\n`.repeat(20),
    attachments: [{ filename: `scan-${i}.txt`, content: Buffer.alloc(3_000, 'p') }],
  };
}

/** A message of `bytes` bytes, made while it is read (the bench process does not hold ten of them). */
function generated(bytes: number, tag: string, from: string): Readable {
  const head = Buffer.from(`From: ${from}\r\nTo: desk@example.org\r\nSubject: ${tag}\r\n\r\n`);
  const line = Buffer.from(`${'x'.repeat(76)}\r\n`);
  const chunk = Buffer.concat(Array.from({ length: 840 }, () => line));
  let left = bytes - head.length;
  let first = true;
  return new Readable({
    read() {
      if (first) {
        first = false;
        return void this.push(head);
      }
      if (left <= 0) return void this.push(null);
      const n = Math.min(left - (left % line.length), chunk.length);
      const piece = n > 0 ? chunk.subarray(0, n) : Buffer.from(`${'y'.repeat(Math.max(0, left - 2))}\r\n`);
      this.push(piece);
      left -= piece.length;
    },
  });
}

async function pool<T>(items: T[], limit: number, fn: (item: T, worker: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async (_, w) => {
      while (next < items.length) await fn(items[next++] as T, w);
    }),
  );
}

it('bench:relay', { timeout: 900_000 }, async () => {
  const h = getHarness();
  const admin = oauthAdmin(h);
  const client = 'bench-relay';
  await admin.registerClient(client, `secret-${client}`);
  const sink = await SmtpSink.start();
  const dovecot = await startDovecot({ introspectionUrl: `${h.oauthUrl}/introspect`, relayPort: sink.port });
  const indices = Array.from({ length: COUNT }, (_, i) => i);
  const atSink = (run: string) => sink.messages.filter((m) => m.raw.includes(run)).length;
  try {
    // Ceiling: nodemailer straight to submission, the outbox's pool size.
    const user = uniqueUser('brelay');
    const { access_token } = await admin.issue(client, user);
    const direct = nodemailer.createTransport({
      pool: true,
      maxConnections: POOL_CONNECTIONS,
      host: '127.0.0.1',
      port: dovecot.submissionPort,
      secure: false,
      auth: { type: 'OAuth2', user, accessToken: access_token },
    });
    const runA = randomBytes(3).toString('hex');
    const t0 = performance.now();
    await Promise.all(indices.map((i) => direct.sendMail(message(i, runA, `${user}@example.com`))));
    await sink.waitFor(() => atSink(runA) >= COUNT, 300_000);
    const directMs = performance.now() - t0;
    direct.close();

    // mailgate: the relay accepts, the outbox worker sends.
    const mgUser = uniqueUser('brelay');
    const from = `${mgUser}@example.com`;
    const cfg = await writeE2EConfig(h, { user: mgUser, clientId: client, webhookUrl: 'http://127.0.0.1:9/unused', imapPort: dovecot.imapPort, mode: 'poll', outgoing: { port: dovecot.submissionPort } });
    const relayPort = await freePort();
    appendFileSync(cfg.path, `relay:\n  listen: 127.0.0.1:${relayPort}\n  maxMessageSize: 12MB\n  clients:\n    - { name: scanner, username: scanner, password: ${PW}, account: support }\n`);
    const daemon = await startDaemon(cfg.path, cfg.port);
    try {
      await authorizeThroughDaemon(daemon);
      const pid = daemon.child.pid ?? 0;
      const apps = Array.from({ length: APPS }, () =>
        nodemailer.createTransport({ host: '127.0.0.1', port: relayPort, secure: false, ignoreTLS: true, pool: true, maxConnections: 1, maxMessages: Infinity, auth: { user: 'scanner', pass: PW } }),
      );
      const runB = randomBytes(3).toString('hex');
      const t1 = performance.now();
      await pool(indices, APPS, async (i, w) => {
        await (apps[w] as (typeof apps)[number]).sendMail(message(i, runB, from));
      });
      const acceptedMs = performance.now() - t1;
      await sink.waitFor(() => atSink(runB) >= COUNT, 300_000);
      const relayedMs = performance.now() - t1;
      for (const a of apps) a.close();
      const rssAfterThroughput = peakRssMb(pid);

      // Memory: ten applications stream a 10 MB message each at once.
      const runC = randomBytes(3).toString('hex');
      const tBig = performance.now();
      const replies = await Promise.all(
        Array.from({ length: BIG_CLIENTS }, async (_, i) => {
          const t = nodemailer.createTransport({ host: '127.0.0.1', port: relayPort, secure: false, ignoreTLS: true, auth: { user: 'scanner', pass: PW } });
          try {
            return (await t.sendMail({ envelope: { from, to: ['desk@example.org'] }, raw: generated(BIG_BYTES, `big-${i}-${runC}`, from) })).response;
          } finally {
            t.close();
          }
        }),
      );
      const bigAcceptedMs = performance.now() - tBig;
      const ids = replies.map((r) => /queued as (\S+)/.exec(r)?.[1] ?? '');
      const statuses = async () =>
        Promise.all(ids.map(async (id) => ((await (await fetch(`${daemon.url}/v1/outbox/${id}`, { headers: { authorization: `Bearer ${ADMIN}` } })).json()) as { status: string }).status));
      let final: string[] = [];
      const deadline = Date.now() + 300_000;
      while (Date.now() < deadline) {
        final = await statuses();
        if (final.every((s) => s === 'sent' || s === 'failed')) break;
        await new Promise((r) => setTimeout(r, 250));
      }
      const bigDoneMs = performance.now() - tBig;
      const rssAfterBig = peakRssMb(pid);

      const rate = (ms: number) => Math.round((COUNT / ms) * 1000);
      report('relay', [
        `${COUNT} messages (~6 KB: text + a 3 KB attachment, one Bcc) to Dovecot submission (XOAUTH2) relaying to a local SMTP sink; outbox pool ${POOL_CONNECTIONS} connections; ${APPS} legacy applications on one connection each`,
        `| | ms | msg/s |`,
        `|---|---|---|`,
        `| nodemailer straight to submission, one process (ceiling) | ${Math.round(directMs)} | ${rate(directMs)} |`,
        `| mailgate relay: accepted (every 250, row committed) | ${Math.round(acceptedMs)} | ${rate(acceptedMs)} |`,
        `| mailgate relay: relayed (last message at the sink) | ${Math.round(relayedMs)} | ${rate(relayedMs)} |`,
        `ratio relayed / ceiling: ${(directMs / relayedMs).toFixed(2)}; accepted / ceiling: ${(directMs / acceptedMs).toFixed(2)}`,
        `daemon peak RSS after the throughput run: ${rssAfterThroughput.toFixed(1)} MiB`,
        `${BIG_CLIENTS} applications streaming ${BIG_BYTES / MiB} MB each at once: all 250 after ${Math.round(bigAcceptedMs)} ms, outbox done after ${Math.round(bigDoneMs)} ms (${final.join(', ')})`,
        `daemon peak RSS after them: ${rssAfterBig.toFixed(1)} MiB (+${(rssAfterBig - rssAfterThroughput).toFixed(1)} MiB for ${(BIG_CLIENTS * BIG_BYTES) / MiB} MB of messages)`,
      ]);
    } finally {
      await daemon.stop('SIGTERM');
    }
  } finally {
    await dovecot.stop();
    await sink.close();
  }
});
