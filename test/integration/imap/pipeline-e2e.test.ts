import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Webhook } from 'standardwebhooks';
import { afterEach, describe, expect, it } from 'vitest';
import { verifyMailgateSignature } from '../../../src/delivery/signing.js';
import { getHarness, passwordClient, tmpDataDir, uniqueUser, type WebhookSink } from '../../harness/index.js';
import { until } from '../../harness/until.js';
import { freePort, runCli } from '../daemon/run-daemon.js';
import { ADMIN, authorizeThroughDaemon, e2eLifecycle } from './e2e-helpers.js';

/**
 * What the issue pipeline receives (issue 16), end to end: the built daemon
 * reads real Dovecot mailboxes with XOAUTH2, parses on its parse threads and
 * posts to real HTTP receivers (the harness sink, the example receiver of
 * examples/receiver as a process).
 */
const h = getHarness();
const CLIENT = 'e2e-pipeline';
const e2e = e2eLifecycle(CLIENT);
const children: ChildProcess[] = [];
afterEach(async () => {
  for (const c of children.splice(0)) {
    if (c.exitCode !== null) continue;
    const exited = once(c, 'exit');
    c.kill('SIGTERM');
    await exited;
  }
});

interface AccountSpec {
  name: string;
  user: string;
  webhook: string;
  protocol?: 'imap' | 'pop3';
  /** Extra lines under incoming (6 spaces). */
  incoming?: string;
  /** Extra lines under the account (4 spaces). */
  extra?: string;
  outgoing?: boolean;
}
interface WebhookSpec {
  name: string;
  url: string;
  /** Lines under the webhook (4 spaces): secret(s), signature, issueKeyPattern. */
  lines: string;
}

function configYaml(port: number, accounts: AccountSpec[], webhooks: WebhookSpec[]): string {
  const acc = accounts
    .map((a) => {
      const protocol = a.protocol ?? 'imap';
      return `  - name: ${a.name}
    email: ${a.user}@example.com
${a.extra ?? ''}    incoming:
      protocol: ${protocol}
      host: 127.0.0.1
      port: ${protocol === 'imap' ? h.imapPort : h.pop3Port}
      tls: false
      user: ${a.user}
      auth: { method: xoauth2, credential: test-idp }
${protocol === 'imap' ? '      mode: poll\n' : ''}      pollInterval: 500ms
      afterDelivery: none
${a.incoming ?? ''}${
        a.outgoing
          ? `    outgoing:
      host: 127.0.0.1
      port: ${h.submissionPort}
      tls: false
      user: ${a.user}
      auth: { method: xoauth2, credential: test-idp }
`
          : ''
      }    webhook: ${a.webhook}
`;
    })
    .join('');
  const hooks = webhooks.map((w) => `  - name: ${w.name}\n    url: ${w.url}\n${w.lines}    backoff: { initial: 100ms, max: 1s }\n    timeout: 5s\n`).join('');
  return `server:
  listen: 127.0.0.1:${port}
  adminToken: ${ADMIN}
dataDir: ./data
credentials:
  - name: test-idp
    provider: custom
    clientId: ${CLIENT}
    clientSecret: secret-${CLIENT}
    authorizationEndpoint: ${h.oauthUrl}/authorize
    tokenEndpoint: ${h.oauthUrl}/token
    scopes: [mail]
accounts:
${acc}webhooks:
${hooks}`;
}

async function writeConfig(accounts: AccountSpec[], webhooks: WebhookSpec[]) {
  const dir = tmpDataDir('mg-e2e16-');
  const port = await freePort();
  const path = join(dir, 'mailgate.yaml');
  const write = (a = accounts, w = webhooks) => writeFileSync(path, configYaml(port, a, w));
  write();
  return { path, port, write };
}

/** IMAP APPEND with flags (password login), in order. */
async function append(user: string, raws: { raw: string; seen?: boolean }[]): Promise<void> {
  const client = await passwordClient(h, user);
  try {
    for (const m of raws) await client.append('INBOX', m.raw, m.seen ? ['\\Seen'] : []);
  } finally {
    await client.logout();
  }
}

const api = async (url: string, path: string, init: RequestInit = {}) => {
  const r = await fetch(`${url}${path}`, { ...init, headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json', ...(init.headers ?? {}) } });
  return { status: r.status, json: (await r.json()) as Record<string, unknown> };
};

interface AccountView {
  name: string;
  incoming: { state: string; lastSuccessAt: string | null };
}
const accountsOf = async (url: string) => ((await api(url, '/v1/accounts')).json.accounts as AccountView[]);
/** mailgate's logins (XOAUTH2) to Dovecot for this user; the test's own APPENDs log in with a password. */
const loginsOf = (user: string) => (readFileSync(h.dovecotLog, 'utf8').match(new RegExp(`Login: user=<${user}>, method=XOAUTH2`, 'g')) ?? []).length;

type Payload = {
  id: string;
  account: string;
  event: string;
  subject: string;
  text: string | null;
  replyText: string;
  conversationId: string;
  issueKeys: string[];
  autoType: string | null;
  autoSubmitted: boolean;
  bounce: Record<string, unknown> | null;
};
const received = (sink: WebhookSink, account?: string) =>
  sink.acknowledged.map((r) => r.json as Payload).filter((p) => p.event === 'message.received' && (account === undefined || p.account === account));

function mail(o: { from?: string; subject: string; id: string; inReplyTo?: string; references?: string; headers?: string[]; type?: string; body: string }): string {
  return [
    `From: ${o.from ?? 'Ann Customer <ann@customer.example>'}`,
    'To: support@example.com',
    `Subject: ${o.subject}`,
    `Message-ID: ${o.id}`,
    ...(o.inReplyTo ? [`In-Reply-To: ${o.inReplyTo}`] : []),
    ...(o.references ? [`References: ${o.references}`] : []),
    ...(o.headers ?? []),
    'Date: Tue, 01 Dec 2026 10:00:00 +0000',
    'MIME-Version: 1.0',
    `Content-Type: ${o.type ?? 'text/plain; charset=utf-8'}`,
    '',
    o.body,
    '',
  ].join('\r\n');
}

/** The example receiver (examples/receiver/receiver.mjs) as a process; its stdout lines as JSON. */
async function startReceiver(mode: 'mailgate' | 'standard', secrets: string[]) {
  const child = spawn(process.execPath, [join(import.meta.dirname, '../../../examples/receiver/receiver.mjs')], {
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1', MAILGATE_SIGNATURE: mode, MAILGATE_WEBHOOK_SECRETS: JSON.stringify(secrets) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  const out: Record<string, unknown>[] = [];
  const err: string[] = [];
  createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (l) => out.push(JSON.parse(l) as Record<string, unknown>));
  createInterface({ input: child.stderr as NodeJS.ReadableStream }).on('line', (l) => err.push(l));
  await until(() => out.length > 0, 10_000, 'the example receiver did not start');
  return { url: String(out[0]?.listening), out, err };
}

describe('what the issue pipeline receives, through Dovecot to real receivers', () => {
  it('gives a thread of replies in several client styles one conversationId (also through a reply sent with the send API), types an auto-reply and a bounce, and the example receiver comments on the issue and skips the auto-reply', async () => {
    const user = uniqueUser('thread');
    const sink = await e2e.sink();
    const receiver = await startReceiver('mailgate', ['example-secret']);
    // Two accounts read the same mailbox: one posts to the sink, one to the example receiver.
    const cfg = await writeConfig(
      [
        { name: 'support', user, webhook: 'sink', outgoing: true },
        { name: 'tracker', user, webhook: 'example' },
      ],
      [
        { name: 'sink', url: sink.url, lines: '    secret: sink-secret\n' },
        { name: 'example', url: receiver.url, lines: '    secret: example-secret\n' },
      ],
    );
    await append(user, [
      { raw: mail({ subject: '[SUP-7] Printer on fire', id: '<root-1@customer.example>', body: 'The printer on floor 3 is on fire.\r\n\r\n--\r\nAnn Customer\r\nACME Ltd.' }) },
      {
        // Gmail: attribution line and > quotes.
        raw: mail({
          subject: 'Re: [SUP-7] Printer on fire',
          id: '<CAGmail-2@mail.gmail.com>',
          inReplyTo: '<root-1@customer.example>',
          references: '<root-1@customer.example>',
          body: 'It is still burning.\r\n\r\nOn Tue, Dec 1, 2026 at 10:00 AM Ann Customer <ann@customer.example> wrote:\r\n> The printer on floor 3 is on fire.',
        }),
      },
      {
        // Outlook: In-Reply-To alone, and its "From: … Sent: …" block.
        raw: mail({
          from: 'Bob Colleague <bob@customer.example>',
          subject: 'RE: [SUP-7] Printer on fire',
          id: '<AM0PR01MB-3@eurprd01.prod.outlook.com>',
          inReplyTo: '<CAGmail-2@mail.gmail.com>',
          body: 'I called the fire brigade.\r\n\r\nFrom: Ann Customer <ann@customer.example>\r\nSent: Tuesday, December 1, 2026 10:05 AM\r\nTo: support@example.com\r\nSubject: Re: [SUP-7] Printer on fire\r\n\r\nIt is still burning.',
        }),
      },
      {
        // Apple Mail, HTML only, References starting at the Outlook message (which had none).
        raw: mail({
          subject: 'Re: Printer on fire',
          id: '<A1B2-4@customer.example>',
          inReplyTo: '<AM0PR01MB-3@eurprd01.prod.outlook.com>',
          references: '<AM0PR01MB-3@eurprd01.prod.outlook.com>',
          type: 'text/html; charset=utf-8',
          body: '<html><body><div>Thanks, it is out now.</div><div><br><blockquote type="cite"><div>On 1 Dec 2026, at 10:10, Bob Colleague wrote:</div><div>I called the fire brigade.</div></blockquote></div></body></html>',
        }),
      },
      {
        raw: mail({
          from: 'Carol Away <carol@customer.example>',
          subject: 'Automatic reply: [SUP-7] Printer on fire',
          id: '<ooo-5@customer.example>',
          inReplyTo: '<root-1@customer.example>',
          headers: ['Auto-Submitted: auto-replied', 'X-Auto-Response-Suppress: All'],
          body: 'I am out of the office until Monday.',
        }),
      },
    ]);
    const d = await e2e.daemon(cfg.path, cfg.port);
    await authorizeThroughDaemon(d, 'support');
    await authorizeThroughDaemon(d, 'tracker');
    await sink.waitFor(() => received(sink, 'support').length >= 5, 30_000);

    const bySubject = new Map(received(sink, 'support').map((p) => [p.subject, p]));
    const root = bySubject.get('[SUP-7] Printer on fire');
    const thread = root?.conversationId;
    expect(thread).toMatch(/^cnv_[0-9a-f]{32}$/);
    expect(root).toMatchObject({ replyText: 'The printer on floor 3 is on fire.', issueKeys: ['SUP-7'], autoType: null, bounce: null, autoSubmitted: false });
    expect(bySubject.get('Re: [SUP-7] Printer on fire')).toMatchObject({ conversationId: thread, replyText: 'It is still burning.' });
    expect(bySubject.get('RE: [SUP-7] Printer on fire')).toMatchObject({ conversationId: thread, replyText: 'I called the fire brigade.' });
    const apple = bySubject.get('Re: Printer on fire');
    expect(apple).toMatchObject({ conversationId: thread, issueKeys: [] });
    expect(apple?.replyText).toBe('Thanks, it is out now.');
    expect(bySubject.get('Automatic reply: [SUP-7] Printer on fire')).toMatchObject({ conversationId: thread, autoType: 'auto_reply', autoSubmitted: true, bounce: null });
    // The example receiver made one issue and commented on it.
    await until(() => receiver.out.length >= 6, 30_000, `the example receiver got ${receiver.out.length - 1} deliveries; stderr: ${receiver.err.join('\n')}`);
    const actions = receiver.out.slice(1).map((l) => l.tracker as { action: string; issue?: string; thread: string; body?: string; reason?: string });
    // Deliveries run concurrently, so their order varies: the three that name SUP-7 always comment on it; the
    // Apple Mail reply (no key) comments on the thread's issue, or opens one when it comes first.
    const persons = actions.filter((a) => a.action !== 'skip');
    expect(persons).toHaveLength(4);
    expect(persons.filter((a) => a.action === 'comment' && a.issue === 'SUP-7').length).toBeGreaterThanOrEqual(3);
    expect(persons.filter((a) => a.action === 'create').length).toBeLessThanOrEqual(1);
    expect(new Set(persons.map((a) => a.body))).toEqual(new Set(['The printer on floor 3 is on fire.', 'It is still burning.', 'I called the fire brigade.', 'Thanks, it is out now.']));
    expect(actions.filter((a) => a.action === 'skip').map((a) => a.reason)).toEqual(['auto_reply']);
    expect(new Set(actions.map((a) => a.thread))).toEqual(new Set([thread]));

    // The pipeline answers through the send API; the customer's client answers that with In-Reply-To alone.
    const sent = await api(d.url, '/v1/accounts/support/send', {
      method: 'POST',
      body: JSON.stringify({ to: ['ann@customer.example'], subject: 'Re: [SUP-7] Printer on fire', text: 'Glad to hear it.', inReplyTo: '<A1B2-4@customer.example>' }),
    });
    expect(sent.status).toBe(202);
    const outbox = await api(d.url, `/v1/outbox/${String(sent.json.id)}`);
    const sentId = String(outbox.json.messageId);
    await append(user, [
      { raw: mail({ subject: 'Re: Printer on fire', id: '<after-send-6@customer.example>', inReplyTo: sentId, body: 'One more thing: the scanner smokes too.\r\n\r\nSent from my iPhone' }) },
      {
        raw: mail({
          from: 'Mail Delivery System <MAILER-DAEMON@mx.customer.example>',
          subject: 'Undelivered Mail Returned to Sender',
          id: '<bounce-7@mx.customer.example>',
          type: 'multipart/report; report-type=delivery-status; boundary="b7"',
          headers: ['Auto-Submitted: auto-replied'],
          body: [
            '--b7',
            'Content-Type: text/plain',
            '',
            'I could not deliver your message to nobody@customer.example.',
            '--b7',
            'Content-Type: message/delivery-status',
            '',
            'Reporting-MTA: dns; mx.customer.example',
            '',
            'Final-Recipient: rfc822; nobody@customer.example',
            'Action: failed',
            'Status: 5.1.1',
            '',
            '--b7',
            'Content-Type: text/rfc822-headers',
            '',
            `Message-ID: ${sentId}`,
            'Subject: Re: [SUP-7] Printer on fire',
            '',
            '--b7--',
          ].join('\r\n'),
        }),
      },
    ]);
    await sink.waitFor(() => received(sink, 'support').length >= 7, 30_000);
    const later = new Map(received(sink, 'support').map((p) => [p.subject, p]));
    expect(received(sink, 'support').find((p) => p.replyText.startsWith('One more thing'))).toMatchObject({
      conversationId: thread,
      replyText: 'One more thing: the scanner smokes too.',
    });
    expect(later.get('Undelivered Mail Returned to Sender')).toMatchObject({
      autoType: 'bounce',
      autoSubmitted: true,
      bounce: { originalMessageId: sentId, recipient: 'nobody@customer.example', status: '5.1.1', action: 'failed' },
    });
    // Never longer than text.
    for (const p of received(sink)) expect(p.replyText.length).toBeLessThanOrEqual((p.text ?? '').length);
  });

  it('initialSync unseen, all and new on mailboxes with seen and unseen mail, and POP3 new; later mail always comes', async () => {
    const users = { unseen: uniqueUser('is-unseen'), all: uniqueUser('is-all'), new: uniqueUser('is-new'), pop3: uniqueUser('is-pop3') };
    const sink = await e2e.sink();
    for (const [mode, user] of Object.entries(users)) {
      await append(user, [
        { raw: mail({ subject: `${mode} old seen 1`, id: `<${user}-s1@x>`, body: 'old' }), seen: true },
        { raw: mail({ subject: `${mode} old unseen 1`, id: `<${user}-u1@x>`, body: 'old' }) },
        { raw: mail({ subject: `${mode} old seen 2`, id: `<${user}-s2@x>`, body: 'old' }), seen: true },
        { raw: mail({ subject: `${mode} old unseen 2`, id: `<${user}-u2@x>`, body: 'old' }) },
      ]);
    }
    const cfg = await writeConfig(
      [
        { name: 'unseen', user: users.unseen, webhook: 'w' }, // the IMAP default
        { name: 'all', user: users.all, webhook: 'w', incoming: '      initialSync: all\n' },
        { name: 'new', user: users.new, webhook: 'w', incoming: '      initialSync: new\n' },
        { name: 'pop3', user: users.pop3, webhook: 'w', protocol: 'pop3', incoming: '      initialSync: new\n' },
      ],
      [{ name: 'w', url: sink.url, lines: '    secret: s\n' }],
    );
    const d = await e2e.daemon(cfg.path, cfg.port);
    for (const a of Object.keys(users)) await authorizeThroughDaemon(d, a);
    // Every account has had its first sync.
    await until(async () => (await accountsOf(d.url)).every((a) => a.incoming.lastSuccessAt !== null), 30_000, 'not every account synced');
    await sink.waitFor(() => received(sink, 'unseen').length >= 2 && received(sink, 'all').length >= 4, 30_000);
    // Later mail, seen or not, comes in every mode.
    for (const [mode, user] of Object.entries(users)) await append(user, [{ raw: mail({ subject: `${mode} later`, id: `<${user}-later@x>`, body: 'new' }), seen: true }]);
    await sink.waitFor(() => Object.keys(users).every((a) => received(sink, a).some((p) => p.subject.endsWith(' later'))), 30_000);
    const subjects = (a: string) => received(sink, a).map((p) => p.subject).sort();
    expect(subjects('unseen')).toEqual(['unseen later', 'unseen old unseen 1', 'unseen old unseen 2']);
    expect(subjects('all')).toEqual(['all later', 'all old seen 1', 'all old seen 2', 'all old unseen 1', 'all old unseen 2']);
    expect(subjects('new')).toEqual(['new later']);
    expect(subjects('pop3')).toEqual(['pop3 later']);

    // After a restart the cursors stand: nothing old comes back, nothing later is skipped.
    await d.stop();
    const again = await e2e.daemon(cfg.path, cfg.port);
    for (const [mode, user] of Object.entries(users)) await append(user, [{ raw: mail({ subject: `${mode} after restart`, id: `<${user}-restart@x>`, body: 'new' }) }]);
    await sink.waitFor(() => Object.keys(users).every((a) => received(sink, a).some((p) => p.subject.endsWith('after restart'))), 30_000);
    expect(subjects('new')).toEqual(['new after restart', 'new later']);
    expect(subjects('pop3')).toEqual(['pop3 after restart', 'pop3 later']);
    expect(subjects('unseen')).toHaveLength(4);
    await again.stop();
  });

  it('a paused account never logs in and shows paused; a reload starts it, and another reload pauses it again', async () => {
    const paused = uniqueUser('paused');
    const other = uniqueUser('active');
    const sink = await e2e.sink();
    const accounts: AccountSpec[] = [
      { name: 'paused', user: paused, webhook: 'w', extra: '    enabled: false\n' },
      { name: 'active', user: other, webhook: 'w' },
    ];
    const cfg = await writeConfig(accounts, [{ name: 'w', url: sink.url, lines: '    secret: s\n' }]);
    await append(paused, [{ raw: mail({ subject: 'waiting', id: `<${paused}-1@x>`, body: 'x' }) }]);
    const d = await e2e.daemon(cfg.path, cfg.port);
    await authorizeThroughDaemon(d, 'paused');
    await authorizeThroughDaemon(d, 'active');
    // The active account delivers twice (two polls at least): the paused one had every chance to log in.
    await append(other, [{ raw: mail({ subject: 'active 1', id: `<${other}-1@x>`, body: 'x' }) }]);
    await sink.waitFor(() => received(sink, 'active').length >= 1, 30_000);
    await append(other, [{ raw: mail({ subject: 'active 2', id: `<${other}-2@x>`, body: 'x' }) }]);
    await sink.waitFor(() => received(sink, 'active').length >= 2, 30_000);
    expect(loginsOf(paused)).toBe(0);
    expect(received(sink, 'paused')).toEqual([]);
    expect((await accountsOf(d.url)).find((a) => a.name === 'paused')?.incoming.state).toBe('paused');
    const status = await runCli(['status', '--json', '--config', cfg.path]);
    expect(status.code).toBe(0);
    expect((JSON.parse(status.stdout) as { accounts: { name: string; incoming: string }[] }).accounts.find((a) => a.name === 'paused')?.incoming).toBe('paused');

    cfg.write([{ ...accounts[0], extra: '    enabled: true\n' } as AccountSpec, accounts[1] as AccountSpec]);
    expect((await api(d.url, '/v1/reload', { method: 'POST', body: '{}' })).status).toBe(200);
    await sink.waitFor(() => received(sink, 'paused').length >= 1, 30_000);
    expect(loginsOf(paused)).toBeGreaterThan(0);
    expect((await accountsOf(d.url)).find((a) => a.name === 'paused')?.incoming.state).not.toBe('paused');

    cfg.write();
    expect((await api(d.url, '/v1/reload', { method: 'POST', body: '{}' })).status).toBe(200);
    expect((await accountsOf(d.url)).find((a) => a.name === 'paused')?.incoming.state).toBe('paused');
    const logins = loginsOf(paused);
    await append(paused, [{ raw: mail({ subject: 'while paused again', id: `<${paused}-2@x>`, body: 'x' }) }]);
    await append(other, [{ raw: mail({ subject: 'active 3', id: `<${other}-3@x>`, body: 'x' }) }]);
    await sink.waitFor(() => received(sink, 'active').length >= 3, 30_000);
    await append(other, [{ raw: mail({ subject: 'active 4', id: `<${other}-4@x>`, body: 'x' }) }]);
    await sink.waitFor(() => received(sink, 'active').length >= 4, 30_000);
    expect(loginsOf(paused)).toBe(logins);
    expect(received(sink, 'paused').map((p) => p.subject)).toEqual(['waiting']);
  });

  it('signs in both modes with two secrets: each secret alone verifies, the Standard Webhooks one with the standardwebhooks library', async () => {
    const user = uniqueUser('sig');
    const sink = await e2e.sink();
    const whsec = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
    const cfg = await writeConfig(
      [
        { name: 'legacy', user, webhook: 'mailgate-mode' },
        { name: 'modern', user, webhook: 'standard-mode' },
      ],
      [
        { name: 'mailgate-mode', url: `${sink.url}/mailgate`, lines: '    secrets: [new-secret, old-secret]\n' },
        { name: 'standard-mode', url: `${sink.url}/standard`, lines: `    signature: standard\n    secrets: [${whsec}, plain-old-secret]\n` },
      ],
    );
    await append(user, [{ raw: mail({ subject: 'signed', id: `<${user}-1@x>`, body: 'x' }) }]);
    const d = await e2e.daemon(cfg.path, cfg.port);
    await authorizeThroughDaemon(d, 'legacy');
    await authorizeThroughDaemon(d, 'modern');
    await sink.waitFor((s) => s.acknowledged.length >= 2, 30_000);
    const legacy = sink.acknowledged.find((r) => r.path.endsWith('/mailgate'));
    const modern = sink.acknowledged.find((r) => r.path.endsWith('/standard'));
    if (!legacy || !modern) throw new Error('a delivery is missing');

    const header = String(legacy.headers['x-mailgate-signature']);
    expect(header).toMatch(/^t=\d+,v1=[0-9a-f]{64},v1=[0-9a-f]{64}$/);
    expect(verifyMailgateSignature(['new-secret'], header, legacy.raw)).toBe(true);
    expect(verifyMailgateSignature(['old-secret'], header, legacy.raw)).toBe(true);
    expect(verifyMailgateSignature(['other'], header, legacy.raw)).toBe(false);
    expect(legacy.headers['webhook-signature']).toBeUndefined();

    const headers = { 'webhook-id': String(modern.headers['webhook-id']), 'webhook-timestamp': String(modern.headers['webhook-timestamp']), 'webhook-signature': String(modern.headers['webhook-signature']) };
    expect(headers['webhook-id']).toBe(modern.headers['x-mailgate-delivery']);
    expect(headers['webhook-signature'].split(' ')).toHaveLength(2);
    expect(modern.headers['x-mailgate-event']).toBe('message.received');
    expect(modern.headers['x-mailgate-signature']).toBeUndefined();
    expect(new Webhook(whsec).verify(modern.raw, headers)).toMatchObject({ event: 'message.received', subject: 'signed' });
    expect(new Webhook(Buffer.from('plain-old-secret', 'utf8'), { format: 'raw' }).verify(modern.raw, headers)).toMatchObject({ subject: 'signed' });
    expect(() => new Webhook(Buffer.from('other', 'utf8'), { format: 'raw' }).verify(modern.raw, headers)).toThrow();
  });
});
