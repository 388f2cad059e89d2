import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { simpleParser } from 'mailparser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendMessages, getHarness, makeMessage, oauthAdmin, SmtpSink, startDovecot, uniqueUser, WebhookSink } from '../../harness/index.js';
import type { Dovecot } from '../../harness/dovecot.js';
import type { Daemon } from '../daemon/run-daemon.js';
import { ADMIN, authorizeThroughDaemon, startDaemon, writeE2EConfig } from '../imap/e2e-helpers.js';

/*
 * A private Dovecot (submission with XOAUTH2 checked against the harness
 * OAuth2 server) relaying to a private SMTP sink: these tests refuse mail
 * and take the sink down, which must not disturb other files' tests.
 */
const h = getHarness();
const admin = oauthAdmin(h);
const CLIENT = 'e2e-send';
let dovecot: Dovecot;
let relay: SmtpSink;
let daemon: Daemon;
let webhook: WebhookSink;
let user: string;

interface OutboxView {
  id: string;
  status: string;
  attempts: number;
  lastError: string | null;
  messageId: string;
}

async function api(method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
  const r = await fetch(`${daemon.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
    body: body === undefined ? null : JSON.stringify(body),
  });
  return { status: r.status, json: (await r.json()) as Record<string, unknown> };
}

const send = (body: unknown, headers: Record<string, string> = {}) => api('POST', '/v1/accounts/support/send', body, headers);

async function waitForStatus(id: string, status: string, timeoutMs = 30_000): Promise<OutboxView> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { json } = await api('GET', `/v1/outbox/${id}`);
    const view = json as unknown as OutboxView;
    if (view.status === status) return view;
    if (Date.now() > deadline) throw new Error(`outbox ${id} stayed ${view.status} (${view.lastError ?? ''})`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const unique = () => randomBytes(4).toString('hex');
const relayed = (marker: string) => relay.messages.filter((m) => m.raw.includes(marker));

beforeAll(async () => {
  await admin.registerClient(CLIENT, `secret-${CLIENT}`);
  relay = await SmtpSink.start();
  dovecot = await startDovecot({ introspectionUrl: `${h.oauthUrl}/introspect`, relayPort: relay.port });
  webhook = await WebhookSink.start();
  user = uniqueUser('send');
  const cfg = await writeE2EConfig(h, {
    user,
    clientId: CLIENT,
    webhookUrl: webhook.url,
    imapPort: dovecot.imapPort,
    outgoing: { port: dovecot.submissionPort },
  });
  daemon = await startDaemon(cfg.path, cfg.port);
  await authorizeThroughDaemon(daemon);
});

afterAll(async () => {
  await daemon?.stop('SIGTERM');
  await dovecot?.stop();
  await relay?.close();
  await webhook?.close();
});

describe('sending through Dovecot submission with XOAUTH2 (daemon process, real relay sink)', () => {
  it('a revoked access token is refreshed once and the message is sent', async () => {
    const refreshedAt = async () => {
      const { json } = await api('GET', '/v1/accounts');
      return (json.accounts as { token: { lastRefreshAt: string | null } }[])[0]?.token.lastRefreshAt;
    };
    const before = await refreshedAt();
    // First in the file: no pooled SMTP session is logged in yet, so this send must log in.
    await admin.revokeAccess(user);
    const marker = unique();
    const { json } = await send({ to: 'ann@example.net', subject: `after revoke ${marker}`, text: 'x' });
    const done = await waitForStatus(json.id as string, 'sent');
    expect(done.attempts).toBe(1);
    expect(await refreshedAt()).not.toBe(before);
    expect(relayed(marker)).toHaveLength(1);
  });

  it('sends text, html, a UTF-8 subject and an attachment intact, logged in with XOAUTH2', async () => {
    const marker = unique();
    const attachment = randomBytes(70_000);
    const { status, json } = await send({
      to: ['Ann Example <ann@example.net>'],
      cc: 'bob@example.net',
      subject: `Ticket ABC-123 créé ✅ ${marker}`,
      text: `Hello ${marker}\nYour issue was created.`,
      html: `<p>Hello <b>${marker}</b></p>`,
      attachments: [{ filename: 'report.bin', contentType: 'application/octet-stream', content: attachment.toString('base64') }],
      inReplyTo: '<orig-1@example.net>',
      references: ['<root@example.net>', '<orig-1@example.net>'],
      headers: { 'X-Ticket': 'ABC-123' },
    });
    expect(status).toBe(202);
    expect(json).toMatchObject({ status: 'queued', id: expect.stringMatching(/^out_/), messageId: expect.stringMatching(/^<.+@example\.com>$/) });
    const done = await waitForStatus(json.id as string, 'sent');
    expect(done).toMatchObject({ attempts: 1, lastError: null, messageId: json.messageId });

    await relay.waitFor(() => relayed(marker).length === 1);
    const [msg] = relayed(marker);
    expect(msg?.to.sort()).toEqual(['ann@example.net', 'bob@example.net']);
    const parsed = await simpleParser(msg?.raw ?? '');
    expect(parsed.subject).toBe(`Ticket ABC-123 créé ✅ ${marker}`);
    expect(parsed.from?.text).toBe(`${user}@example.com`);
    expect(parsed.messageId).toBe(json.messageId);
    expect(parsed.inReplyTo).toBe('<orig-1@example.net>');
    expect(parsed.references).toEqual(['<root@example.net>', '<orig-1@example.net>']);
    expect(parsed.headers.get('x-ticket')).toBe('ABC-123');
    expect(parsed.text).toContain(`Hello ${marker}`);
    expect(parsed.html).toContain(`<b>${marker}</b>`);
    expect(parsed.attachments).toHaveLength(1);
    const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
    expect(sha(parsed.attachments[0]?.content ?? Buffer.alloc(0))).toBe(sha(attachment));
    expect(readFileSync(dovecot.logPath, 'utf8')).toMatch(new RegExp(`submission-login: Info: Login: user=<${user}>, method=XOAUTH2`));
  });

  it('an Idempotency-Key repeat answers with the first id and sends one message', async () => {
    const marker = unique();
    const body = { to: 'ann@example.net', subject: `once ${marker}`, text: 'x' };
    const first = await send(body, { 'Idempotency-Key': `k-${marker}` });
    const again = await send(body, { 'Idempotency-Key': `k-${marker}` });
    expect(first.status).toBe(202);
    expect(again.status).toBe(200);
    expect(again.json.id).toBe(first.json.id);
    await waitForStatus(first.json.id as string, 'sent');
    const third = await send(body, { 'Idempotency-Key': `k-${marker}` });
    expect(third.json).toMatchObject({ id: first.json.id, status: 'sent' });
    const other = await send({ ...body, text: 'different' }, { 'Idempotency-Key': `k-${marker}` });
    expect(other.status).toBe(409);
    await new Promise((r) => setTimeout(r, 500));
    expect(relayed(marker)).toHaveLength(1);
  });

  it('retries while the relay is down, then sends', async () => {
    await relay.setDown(true);
    const marker = unique();
    const { json } = await send({ to: 'ann@example.net', subject: `while down ${marker}`, text: 'x' });
    const deadline = Date.now() + 20_000;
    let view: OutboxView;
    do {
      view = (await api('GET', `/v1/outbox/${json.id as string}`)).json as unknown as OutboxView;
      await new Promise((r) => setTimeout(r, 100));
    } while (view.lastError === null && Date.now() < deadline);
    expect(view.status).toBe('queued');
    expect(view.lastError).toMatch(/4\d\d/);
    await relay.setDown(false);
    const done = await waitForStatus(json.id as string, 'sent', 30_000);
    expect(done.attempts).toBeGreaterThanOrEqual(2);
    expect(relayed(marker)).toHaveLength(1);
  }, 60_000);

  it('a permanent 550 fails at once with the server reply', async () => {
    relay.rejectNext(550, '5.7.1 Relaying denied by policy');
    const marker = unique();
    const { json } = await send({ to: 'ann@example.net', subject: `refused ${marker}`, text: 'x' });
    const failed = await waitForStatus(json.id as string, 'failed');
    expect(failed.attempts).toBe(1);
    expect(failed.lastError).toMatch(/550/);
    expect(failed.lastError).toMatch(/Relaying denied by policy/);
    expect(relayed(marker)).toHaveLength(0);
  });

  it('refuses bad bodies with a 400 naming the field', async () => {
    const cases: [unknown, RegExp][] = [
      [{ to: 'not-an-address', text: 'x' }, /^to: not an email address/],
      [{ to: ['a@example.net', 'Bob <bob@>'], text: 'x' }, /^to\[1\]: not an email address/],
      [{ to: 'a@example.net' }, /^text: text or html is required/],
      [{ to: 'a@example.net', text: 'x', attachments: [{ filename: 'a.txt', content: '%%%' }] }, /attachments\[0\]\.content: not valid base64/],
      [{ to: 'a@example.net', text: 'x', subject: 'a\r\nBcc: evil@example.org' }, /^subject: must not contain line breaks/],
      [{ to: 'a@example.net', text: 'x', headers: { From: 'x@example.org' } }, /headers\.From: From is set by mailgate/],
      [{ to: 'a@example.net', text: 'x', bogus: 1 }, /bogus/],
    ];
    for (const [body, message] of cases) {
      const r = await send(body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.json.error).toMatch(message);
    }
    const missing = await api('POST', '/v1/accounts/nobody/send', { to: 'a@example.net', text: 'x' });
    expect(missing.status).toBe(404);
  });

  it('the loop guard refuses mail to the account itself and replies to automatic messages unless forced', async () => {
    const own = await send({ to: `${user}@example.com`, text: 'x' });
    expect(own.status).toBe(409);
    expect(own.json.error).toMatch(/own address/);

    // An auto-reply arrives in the mailbox and is ingested; answering it is refused.
    const autoId = `<auto-${unique()}@example.net>`;
    const autoReply = makeMessage(1, { subject: 'Out of office', messageId: autoId }).replace('MIME-Version', 'Auto-Submitted: auto-replied\r\nMIME-Version');
    await appendMessages({ ...h, imapPort: dovecot.imapPort }, user, [autoReply]);
    await webhook.waitFor((s) => s.acknowledged.some((r) => JSON.stringify(r.json).includes(autoId)), 20_000);
    const reply = await send({ to: 'ann@example.net', text: 'thanks', inReplyTo: autoId });
    expect(reply.status).toBe(409);
    expect(reply.json.error).toMatch(/automatic message/);
    const forced = await send({ to: 'ann@example.net', text: 'thanks', inReplyTo: autoId, force: true });
    expect(forced.status).toBe(202);
  });

  it('POST /v1/accounts/{name}/test logs in to both servers', async () => {
    const { status, json } = await api('POST', '/v1/accounts/support/test');
    expect(status).toBe(200);
    expect(json).toEqual({ incoming: { ok: true, error: null, code: null }, outgoing: { ok: true, error: null, code: null } });
  });
});
