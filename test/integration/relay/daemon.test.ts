import { randomBytes } from 'node:crypto';
import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FaultProxy } from '../../harness/fault-proxy.js';
import { getHarness, oauthAdmin, relaySink, uniqueUser } from '../../harness/index.js';
import { freePort } from '../../harness/net.js';
import { until } from '../../harness/until.js';
import { runCli, type Daemon } from '../daemon/run-daemon.js';
import { ADMIN, authorizeThroughDaemon, startDaemon, writeE2EConfig } from '../imap/e2e-helpers.js';
import { legacyApp, makeTestCertificate, SmtpTalk } from './relay-rig.js';

/*
 * The relay as it runs: nodemailer as the legacy application → the relay
 * in the real daemon (dist/cli.js serve) → the outbox (SQLite) → the
 * account's outgoing server with XOAUTH2 (the harness Dovecot submission,
 * reached through a fault proxy the last test takes down) → the SMTP sink.
 * Every refusal is checked against the store: nothing was queued for it.
 */
const h = getHarness();
const admin = oauthAdmin(h);
const CLIENT = 'relay-daemon';
const LIMIT = 256 * 1024;
const SCANNER_PW = `scan-${randomBytes(6).toString('hex')}`;
const PRINTER_PW = `print-${randomBytes(6).toString('hex')}`;

let daemon: Daemon;
let cfg: { dir: string; path: string; port: number };
let relayPort: number;
let sender: string;
let proxy: FaultProxy;
let tls: { cert: string; key: string };
const sink = relaySink(h);
const open: SmtpTalk[] = [];

interface OutboxView {
  id: string;
  status: string;
  attempts: number;
  lastError: string | null;
  messageId: string;
}

async function outbox(id: string): Promise<OutboxView> {
  const r = await fetch(`${daemon.url}/v1/outbox/${id}`, { headers: { authorization: `Bearer ${ADMIN}` } });
  expect(r.status).toBe(200);
  return (await r.json()) as OutboxView;
}

async function waitFor(id: string, status: string, timeoutMs = 40_000): Promise<OutboxView> {
  let view: OutboxView | null = null;
  await until(async () => (view = await outbox(id)).status === status, timeoutMs, `outbox ${id} to be ${status}`);
  return view as unknown as OutboxView;
}

const queuedId = (response: string) => {
  const m = /^250 2\.0\.0 queued as (out_[0-9a-f]{24})$/.exec(response);
  expect(m, response).not.toBeNull();
  return m?.[1] ?? '';
};

/** `mailgate status --json` (another process, reading the store). */
async function status(): Promise<{ outbox: Record<string, number>; relay: { clients: { name: string; relayed: number; loginFailures: number; refused: Record<string, number>; lastUsedAt: string | null }[] } | null }> {
  const r = await runCli(['status', '--json', '--config', cfg.path]);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as never;
}
const stored = async () => {
  const o = (await status()).outbox;
  return Object.values(o).reduce((a, b) => a + b, 0);
};

async function session(login: { user: string; pass: string } | null = { user: 'scanner', pass: SCANNER_PW }): Promise<SmtpTalk> {
  const { talk, greeting } = await SmtpTalk.open(relayPort);
  expect(greeting.code).toBe(220);
  open.push(talk);
  expect((await talk.command('EHLO scanner.example')).code).toBe(250);
  if (login) expect((await talk.login(login.user, login.pass)).code).toBe(235);
  return talk;
}

/** The legacy application; it trusts the relay's certificate (nodemailer upgrades with STARTTLS whenever it is offered). */
const app = (user: string, pass: string, extra: Parameters<typeof legacyApp>[2] = {}, method?: 'PLAIN' | 'LOGIN') =>
  legacyApp(relayPort, { user, pass, ...(method ? { method } : {}) }, { tls: { ca: tls.cert, servername: 'localhost' }, ...extra });

const sinkMessage = async (marker: string) => {
  let found: { from: string; to: string[]; raw: string } | undefined;
  await until(async () => (found = (await sink.messages()).find((m) => m.raw.includes(marker))) !== undefined, 40_000, `${marker} at the sink`);
  return found as unknown as { from: string; to: string[]; raw: string };
};

beforeAll(async () => {
  await admin.registerClient(CLIENT, `secret-${CLIENT}`);
  const user = uniqueUser('relayd');
  sender = `${user}@example.com`;
  proxy = await FaultProxy.start({ port: h.submissionPort });
  cfg = await writeE2EConfig(h, { user, clientId: CLIENT, webhookUrl: 'http://127.0.0.1:9/unused', imapPort: h.imapPort, outgoing: { port: proxy.port } });
  relayPort = await freePort();
  tls = makeTestCertificate();
  mkdirSync(join(cfg.dir, 'tls'));
  writeFileSync(join(cfg.dir, 'tls/relay.crt'), tls.cert);
  writeFileSync(join(cfg.dir, 'tls/relay.key'), tls.key);
  writeFileSync(join(cfg.dir, 'printer-password'), `${PRINTER_PW}\n`);
  appendFileSync(
    cfg.path,
    `relay:
  listen: 127.0.0.1:${relayPort}
  tls: { certFile: ./tls/relay.crt, keyFile: ./tls/relay.key }
  maxMessageSize: ${LIMIT}
  clients:
    - { name: scanner, username: scanner, password: ${SCANNER_PW}, account: support }
    - { name: printer, username: printer, passwordFile: ./printer-password, account: support, allowedFrom: [${sender}, printer@example.com] }
`,
  );
  daemon = await startDaemon(cfg.path, cfg.port);
  await authorizeThroughDaemon(daemon);
});

afterAll(async () => {
  for (const t of open.splice(0)) t.close();
  await daemon?.stop('SIGKILL');
  await proxy?.close();
});

describe('relay in the daemon → outbox → XOAUTH2 submission → sink', () => {
  it('AUTH PLAIN: content and headers as written, envelope with Bcc only in the envelope, status in GET /v1/outbox/{id}', async () => {
    const marker = `relayd-plain-${randomBytes(4).toString('hex')}`;
    const scanner = app('scanner', SCANNER_PW, {}, 'PLAIN');
    const info = await scanner.sendMail({
      from: `Scanner <${sender}>`,
      to: 'desk@example.org',
      cc: 'team@example.org',
      bcc: 'hidden-archive@example.net',
      subject: marker,
      text: 'page 1 of 1, scanned at 300 dpi\n',
      headers: { 'X-Scanner': 'Model 9000' },
    });
    scanner.close();
    const id = queuedId(info.response);
    const view = await waitFor(id, 'sent');
    expect(view.attempts).toBe(1);
    expect(view.messageId).toBe(info.messageId);

    const got = await sinkMessage(marker);
    expect(got.from).toBe(sender);
    expect([...got.to].sort()).toEqual(['desk@example.org', 'hidden-archive@example.net', 'team@example.org']);
    expect(got.raw).not.toContain('hidden-archive');
    expect(got.raw).toContain(`Message-ID: ${info.messageId}`);
    expect(got.raw).toContain('X-Scanner: Model 9000');
    expect(got.raw).toContain('page 1 of 1, scanned at 300 dpi');
  });

  it('AUTH LOGIN from passwordFile: bytes kept exactly, Message-ID and Date added only when missing', async () => {
    const marker = `relayd-login-${randomBytes(4).toString('hex')}`;
    // What an old printer writes: no Message-ID, no Date, an odd header case, 8-bit text.
    const raw = Buffer.from(`from: printer@example.com\r\nTO: desk@example.org\r\nSubject: ${marker}\r\nX-Weird:   spaced   value\r\n\r\nJob done \u00e9\r\n.starts with a dot\r\n`, 'utf8');
    // In clear: AUTH without STARTTLS is accepted on a loopback listener.
    const printer = app('printer', PRINTER_PW, { ignoreTLS: true }, 'LOGIN');
    const info = await printer.sendMail({ envelope: { from: 'printer@example.com', to: ['desk@example.org'] }, raw });
    printer.close();
    const id = queuedId(info.response);
    const view = await waitFor(id, 'sent');
    const got = await sinkMessage(marker);
    expect(got.from).toBe('printer@example.com');
    expect(got.to).toEqual(['desk@example.org']);
    // Dovecot may put trace headers in front; from the Message-ID we added on, the bytes are the relay's.
    const ours = got.raw.slice(got.raw.indexOf('Message-ID: '));
    expect(ours).toMatch(/^Message-ID: <[0-9a-f-]{36}@example\.com>\r\nDate: \w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} \+0000\r\n/);
    expect(ours.endsWith(raw.toString('utf8'))).toBe(true);
    expect(ours.startsWith(`Message-ID: ${view.messageId}\r\n`)).toBe(true);

    // A message with both headers gets none added.
    const marker2 = `relayd-has-${randomBytes(4).toString('hex')}`;
    const own = Buffer.from(`Date: Mon, 30 Nov 2026 08:00:00 +0100\r\nMessage-ID: <job-77@printer.example>\r\nFrom: ${sender}\r\nSubject: ${marker2}\r\n\r\nok\r\n`);
    const app2 = app('printer', PRINTER_PW, {}, 'LOGIN');
    const info2 = await app2.sendMail({ envelope: { from: sender, to: ['desk@example.org'] }, raw: own });
    app2.close();
    expect((await waitFor(queuedId(info2.response), 'sent')).messageId).toBe('<job-77@printer.example>');
    const got2 = await sinkMessage(marker2);
    expect(got2.raw.endsWith(own.toString())).toBe(true);
    expect(got2.raw.match(/^Message-ID:/gim)).toHaveLength(1);
  });

  it('STARTTLS with the configured certificate', async () => {
    const marker = `relayd-tls-${randomBytes(4).toString('hex')}`;
    const scanner = app('scanner', SCANNER_PW, { requireTLS: true });
    const info = await scanner.sendMail({ from: sender, to: 'desk@example.org', subject: marker, text: 'over TLS' });
    scanner.close();
    await waitFor(queuedId(info.response), 'sent');
    expect((await sinkMessage(marker)).raw).toContain('over TLS');
    const talk = await session(null);
    expect((await talk.startTls(tls.cert)).code).toBe(220);
    expect((await talk.command('EHLO again.example')).lines.join('\n')).toMatch(/AUTH PLAIN LOGIN/);
  });

  it('each refusal with its code, and nothing stored for any of them', async () => {
    const before = await stored();
    const plain = { from: sender, to: 'desk@example.org', subject: 'refused', text: 'x' };

    // 535: a wrong password.
    const wrong = app('scanner', 'not-the-password');
    await expect(wrong.sendMail(plain)).rejects.toMatchObject({ code: 'EAUTH', responseCode: 535 });
    wrong.close();
    // 530: no AUTH, and a username no client has.
    const anon = await session(null);
    expect((await anon.command(`MAIL FROM:<${sender}>`)).code).toBe(530);
    expect((await anon.login('nobody', 'whatever')).code).toBe(530);

    const talk = await session();
    // 501: malformed addresses.
    expect((await talk.command('MAIL FROM:<not an address>')).code).toBe(501);
    // 550: a sender outside allowedFrom (the scanner may only use the account email).
    const outside = await talk.command('MAIL FROM:<printer@example.com>');
    expect(outside.code).toBe(550);
    expect(outside.text).toContain('allowedFrom');
    // 552 at MAIL FROM for a declared size, before any data (smtp-server answers it; not in the counts).
    expect((await talk.command(`MAIL FROM:<${sender}> SIZE=${LIMIT + 1}`)).code).toBe(552);
    // 552 for one that grows over the limit while streaming, before it was taken whole.
    expect((await talk.command(`MAIL FROM:<${sender}>`)).code).toBe(250);
    expect((await talk.command('RCPT TO:<bad@@example.org>')).code).toBe(501);
    expect((await talk.command('RCPT TO:<desk@example.org>')).code).toBe(250);
    expect((await talk.command('DATA')).code).toBe(354);
    talk.write(Buffer.concat([Buffer.from('Subject: too big\r\n\r\n'), Buffer.alloc(LIMIT * 2, 'x'), Buffer.from('\r\n.\r\n')]));
    const big = await talk.reply();
    expect(big.code).toBe(552);
    expect(big.text).toContain('relay.maxMessageSize');

    expect(await stored()).toBe(before);

    // The counts reach `mailgate status` (written every few seconds) and /metrics.
    await until(
      async () => {
        const s = (await status()).relay?.clients.find((c) => c.name === 'scanner');
        return s !== undefined && s.loginFailures === 1 && s.refused['550'] === 1 && s.refused['552'] === 1;
      },
      30_000,
      'the refusals in mailgate status',
    );
    const metrics = await (await fetch(`${daemon.url}/metrics`)).text();
    expect(metrics).toMatch(/mailgate_relay_login_failures_total\{client="scanner"\} 1\b/);
    expect(metrics).toMatch(/mailgate_relay_login_failures_total\{client="\(unknown\)"\} 1\b/);
    expect(metrics).toMatch(/mailgate_relay_messages_total\{client="scanner",outcome="relayed"\} 2\b/);
    expect(metrics).toMatch(/mailgate_relay_messages_total\{client="scanner",outcome="552"\} 1\b/);
  });

  it('mailgate status and the admin UI show per client: last use, messages relayed, failures', async () => {
    const s = await status();
    const printer = s.relay?.clients.find((c) => c.name === 'printer');
    expect(printer).toMatchObject({ relayed: 2, loginFailures: 0 });
    expect(printer?.lastUsedAt).toMatch(/^\d{4}-\d{2}-\d{2}T/);
    const text = await runCli(['status', '--config', cfg.path]);
    expect(text.stdout).toMatch(new RegExp(`relay: 127\\.0\\.0\\.1:${relayPort} \\(STARTTLS\\), 2 client\\(s\\)`));
    expect(text.stdout).toMatch(/ {2}printer \(printer → support\): 2 relayed, 0 failure\(s\), last use \d{4}-/);

    const form = await fetch(`${daemon.url}/admin/login`);
    const loginCookie = form.headers.getSetCookie()[0]?.split(';')[0] ?? '';
    const csrf = /name="_csrf" value="([^"]+)"/.exec(await form.text())?.[1] ?? '';
    const signedIn = await fetch(`${daemon.url}/admin/login`, {
      method: 'POST',
      redirect: 'manual',
      headers: { cookie: loginCookie, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ _csrf: csrf, token: ADMIN }).toString(),
    });
    expect(signedIn.status).toBe(303);
    const cookie = signedIn.headers.getSetCookie().find((c) => c.startsWith('mailgate_session='))?.split(';')[0] ?? '';
    const page = await fetch(`${daemon.url}/admin/relay`, { headers: { cookie } });
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain(`<code>127.0.0.1:${relayPort}</code>, with STARTTLS`);
    expect(html).toMatch(/<th scope="row">printer<\/th>[\s\S]*?<td>2<\/td>\s*<td>0<\/td>/);
    expect(html).toMatch(/<th scope="row">scanner<\/th>[\s\S]*?<td>2<\/td>\s*<td>3 <small>\(1 wrong password, 1 × 550 \(sender not allowed\), 1 × 552 \(too big\)\)/);
  });

  it('reload: a client added or removed applies to the next login', async () => {
    appendFileSync(cfg.path, `    - { name: monitor, username: monitor, password: mon-pw-1, account: support }\n`);
    const r = await fetch(`${daemon.url}/v1/reload`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN}` } });
    expect(r.status).toBe(200);
    const talk = await session({ user: 'monitor', pass: 'mon-pw-1' });
    expect((await talk.command(`MAIL FROM:<${sender}>`)).code).toBe(250);
  });

  it('kill -9 after the 250, before the message could be sent: it is sent after the restart', async () => {
    // The account's server is unreachable (pooled connections reset, new ones refused), so the relayed message waits in the outbox for a retry.
    proxy.inject({ kind: 'reset' });
    proxy.inject({ kind: 'refuse', how: 'reset' });
    const marker = `relayd-kill-${randomBytes(4).toString('hex')}`;
    const scanner = app('scanner', SCANNER_PW);
    const info = await scanner.sendMail({ from: sender, to: 'desk@example.org', bcc: 'kill-bcc@example.net', subject: marker, text: 'survives kill -9' });
    scanner.close();
    const id = queuedId(info.response);
    // The first attempt failed and a retry is scheduled: the row is queued, not in an SMTP transaction.
    await until(async () => {
      const v = await outbox(id);
      return v.status === 'queued' && v.attempts === 1 && v.lastError !== null;
    }, 30_000, 'the first attempt to fail');
    const killed = await daemon.stop('SIGKILL');
    expect(killed.signal).toBe('SIGKILL');

    await proxy.clear();
    daemon = await startDaemon(cfg.path, cfg.port);
    const view = await waitFor(id, 'sent', 60_000);
    expect(view.attempts).toBe(2);
    const got = await sinkMessage(marker);
    expect([...got.to].sort()).toEqual(['desk@example.org', 'kill-bcc@example.net']);
    expect(got.raw).not.toContain('kill-bcc');
    expect(got.raw).toContain('survives kill -9');
  });
});
