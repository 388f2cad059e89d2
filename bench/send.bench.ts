// npm run bench:send — 1,000 messages through Dovecot submission (XOAUTH2)
// to an SMTP sink: (ceiling) nodemailer in one process with a pool of the
// same size mailgate uses, sending directly; (mailgate) the daemon process,
// from the first POST /v1/accounts/{name}/send to the last message the sink
// received. A private Dovecot and sink keep other runs' mail out of the count.
import { randomBytes } from 'node:crypto';
import nodemailer from 'nodemailer';
import { it } from 'vitest';
import { POOL_CONNECTIONS } from '../src/outgoing/smtp.js';
import { getHarness, oauthAdmin, SmtpSink, startDovecot, uniqueUser, WebhookSink } from '../test/harness/index.js';
import { ADMIN, authorizeThroughDaemon, startDaemon, writeE2EConfig } from '../test/integration/imap/e2e-helpers.js';
import { peakRssMb, report } from './report.js';

const COUNT = Number(process.env.BENCH_MESSAGES ?? 1000);
/** Requests the bench keeps open against the API at once (a pipeline posting replies). */
const CLIENT_CONCURRENCY = 16;

function message(i: number, run: string) {
  return {
    to: [`customer${i}@example.net`],
    subject: `Re: ticket ${i} [${run}]`,
    text: `Your issue ABC-${i} was created.\n`.repeat(40),
    html: `<p>Your issue <b>ABC-${i}</b> was created.</p>`.repeat(40),
  };
}

async function pool<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < items.length) await fn(items[next++] as T);
    }),
  );
}

it('bench:send', { timeout: 600_000 }, async () => {
  const h = getHarness();
  const admin = oauthAdmin(h);
  const client = 'bench-send';
  await admin.registerClient(client, `secret-${client}`);
  const sink = await SmtpSink.start();
  const dovecot = await startDovecot({ introspectionUrl: `${h.oauthUrl}/introspect`, relayPort: sink.port });
  const webhook = await WebhookSink.start();
  const indices = Array.from({ length: COUNT }, (_, i) => i);
  try {
    // Ceiling: nodemailer straight to submission, same pool size.
    const user = uniqueUser('bsend');
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
    await Promise.all(indices.map((i) => direct.sendMail({ from: `${user}@example.com`, ...message(i, runA) })));
    await sink.waitFor((s) => s.messages.filter((m) => m.raw.includes(runA)).length >= COUNT, 300_000);
    const directMs = performance.now() - t0;
    direct.close();

    // mailgate: the API accepts, the outbox worker sends.
    const mgUser = uniqueUser('bsend');
    const cfg = await writeE2EConfig(h, {
      user: mgUser,
      clientId: client,
      webhookUrl: webhook.url,
      imapPort: dovecot.imapPort,
      mode: 'poll',
      outgoing: { port: dovecot.submissionPort },
    });
    const daemon = await startDaemon(cfg.path, cfg.port);
    try {
      await authorizeThroughDaemon(daemon);
      const runB = randomBytes(3).toString('hex');
      const t1 = performance.now();
      let acceptedAt = 0;
      await pool(indices, CLIENT_CONCURRENCY, async (i) => {
        const r = await fetch(`${daemon.url}/v1/accounts/support/send`, {
          method: 'POST',
          headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
          body: JSON.stringify(message(i, runB)),
        });
        if (r.status !== 202) throw new Error(`send ${i}: HTTP ${r.status} ${await r.text()}`);
      });
      acceptedAt = performance.now() - t1;
      await sink.waitFor((s) => s.messages.filter((m) => m.raw.includes(runB)).length >= COUNT, 300_000);
      const mgMs = performance.now() - t1;
      const rss = peakRssMb(daemon.child.pid ?? 0);
      const rate = (ms: number) => Math.round((COUNT / ms) * 1000);
      report('send', [
        `${COUNT} messages (~5 KB text+html) through Dovecot submission (XOAUTH2) relaying to a local SMTP sink; pool ${POOL_CONNECTIONS} connections`,
        `| | ms | msg/s |`,
        `|---|---|---|`,
        `| nodemailer direct, one process (ceiling) | ${Math.round(directMs)} | ${rate(directMs)} |`,
        `| mailgate: POST /send → relayed | ${Math.round(mgMs)} | ${rate(mgMs)} |`,
        `| (mailgate API accepted all ${COUNT}, ${CLIENT_CONCURRENCY} requests in flight) | ${Math.round(acceptedAt)} | ${rate(acceptedAt)} |`,
        `ratio mailgate / ceiling: ${(directMs / mgMs).toFixed(2)}`,
        `daemon peak RSS: ${rss.toFixed(1)} MiB`,
      ]);
    } finally {
      await daemon.stop('SIGTERM');
    }
  } finally {
    await dovecot.stop();
    await sink.close();
    await webhook.close();
  }
});
