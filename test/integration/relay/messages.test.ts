import MailComposer from 'nodemailer/lib/mail-composer';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ACCOUNT, bareMessage, legacyApp, relayConfig, scannerClient, SENDER, SmtpTalk, startRig, type Rig } from './relay-rig.js';

/*
 * nodemailer as the legacy application against the relay on loopback (no
 * TLS needed there): what the outbox gets is the application's bytes and
 * envelope, with Message-ID and Date added only when missing.
 */
let rig: Rig;
const MESSAGE_ID = /^Message-ID: <[0-9a-f-]{36}@example\.com>\r\n/;
const DATE = /Date: (Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} \+0000\r\n/;

beforeAll(async () => {
  rig = await startRig(
    relayConfig({
      clients: [scannerClient(), scannerClient({ name: 'utf8-app', username: 'utf8-app', allowedFrom: ['jörg@bücher.example'] })],
    }),
  );
});
afterAll(async () => {
  await rig?.relay.stop();
});
beforeEach(() => {
  rig.outbox.messages.length = 0;
});

const app = (method?: 'PLAIN' | 'LOGIN') => legacyApp(rig.port, { user: rig.client.username, pass: rig.client.password, ...(method ? { method } : {}) });

describe('relay: what the application sent is what the outbox gets', () => {
  it('keeps a composed message byte for byte, with its envelope, and names the outbox id in the 250', async () => {
    const mail = new MailComposer({
      from: `Scanner <${SENDER}>`,
      to: 'Desk <desk@example.org>',
      cc: 'lead@example.org',
      bcc: 'archive@example.org',
      subject: 'Scan – Überweisung 42',
      // CRLF throughout: SMTP carries CRLF lines (RFC 5321 §2.3.8), nodemailer turns bare LFs into CRLF on the wire.
      text: 'Grüße\r\nline two\r\n.leading dot (dot-stuffed on the wire)\r\n',
      html: '<p>Grüße</p>',
      attachments: [{ filename: 'scan.pdf', content: Buffer.from('%PDF-1.4 fake\n'.repeat(200)) }],
    }).compile();
    const raw = await mail.build();
    const envelope = mail.getEnvelope();
    const t = app();
    const info = await t.sendMail({ envelope, raw });
    t.close();
    expect(info.response).toBe('250 2.0.0 queued as out_test0001');
    expect(rig.outbox.messages).toHaveLength(1);
    const got = rig.outbox.messages[0];
    expect(got?.client).toBe('scanner');
    expect(got?.account).toBe(ACCOUNT);
    expect(got?.envelope).toEqual({ from: SENDER, to: ['desk@example.org', 'lead@example.org', 'archive@example.org'] });
    // nodemailer wrote Message-ID and Date itself, so nothing was added.
    expect(got?.raw?.equals(raw)).toBe(true);
  });

  it('puts Bcc recipients only in the envelope', async () => {
    const t = app();
    const info = await t.sendMail({ from: SENDER, to: 'desk@example.org', bcc: ['hidden@example.org', 'audit@example.net'], subject: 'bcc', text: 'x' });
    t.close();
    const got = rig.outbox.messages[0];
    expect(got?.envelope.to).toEqual(['desk@example.org', 'hidden@example.org', 'audit@example.net']);
    const text = got?.raw?.toString('utf8') ?? '';
    expect(text).not.toMatch(/^bcc:/im);
    expect(text).not.toContain('hidden@example.org');
    expect(text).toContain(`Message-ID: ${info.messageId}`);
  });

  it('adds Message-ID (sender domain) and Date at the top when both are missing, the rest exactly as written', async () => {
    const raw = bareMessage('no ids');
    const t = app();
    await t.sendMail({ envelope: { from: SENDER, to: ['desk@example.org'] }, raw });
    t.close();
    const got = rig.outbox.messages[0]?.raw ?? Buffer.alloc(0);
    const head = got.subarray(0, got.length - raw.length).toString('ascii');
    expect(head).toMatch(new RegExp(`${MESSAGE_ID.source}${DATE.source}$`));
    expect(got.subarray(got.length - raw.length).equals(raw)).toBe(true);
    const date = Date.parse(/Date: (.*)\r\n/.exec(head)?.[1] ?? '');
    expect(Math.abs(date - Date.now())).toBeLessThan(60_000);
  });

  it('adds only what is missing: a Date when the Message-ID is there, a Message-ID when the Date is', async () => {
    const withId = Buffer.from(`message-id: <own@example.com>\r\n${bareMessage('has id').toString()}`);
    const withDate = Buffer.from(`DATE : Tue, 01 Dec 2026 09:00:00 +0100\r\n${bareMessage('has date').toString()}`);
    const t = app();
    await t.sendMail({ envelope: { from: SENDER, to: ['desk@example.org'] }, raw: withId });
    await t.sendMail({ envelope: { from: SENDER, to: ['desk@example.org'] }, raw: withDate });
    t.close();
    const [a, b] = rig.outbox.messages.map((m) => m.raw ?? Buffer.alloc(0));
    expect(a?.toString()).toMatch(new RegExp(`^${DATE.source}`));
    expect(a?.subarray(a.length - withId.length).equals(withId)).toBe(true);
    expect(a?.toString()).not.toMatch(/^Message-ID: <[0-9a-f-]{36}@/m);
    expect(b?.toString()).toMatch(MESSAGE_ID);
    expect(b?.subarray(b.length - withDate.length).equals(withDate)).toBe(true);
    expect(b?.toString().match(/^date/gim)).toHaveLength(1);
  });

  it('logs in with AUTH PLAIN and with AUTH LOGIN', async () => {
    for (const method of ['PLAIN', 'LOGIN'] as const) {
      const t = app(method);
      const info = await t.sendMail({ from: SENDER, to: 'desk@example.org', subject: method, text: method });
      t.close();
      expect(info.response).toMatch(/^250 2\.0\.0 queued as out_test\d{4}$/);
    }
    expect(rig.outbox.messages.map((m) => m.raw?.toString()).every((r) => /^Subject: (PLAIN|LOGIN)$/m.test(r ?? ''))).toBe(true);
    expect(rig.events.relayedBy.filter((c) => c === 'scanner').length).toBeGreaterThanOrEqual(2);
  });

  it('takes 8-bit UTF-8 content and an internationalized sender (8BITMIME, SMTPUTF8) unchanged', async () => {
    const raw = Buffer.from('From: jörg@bücher.example\r\nTo: desk@example.org\r\nSubject: Grüße\r\nMessage-ID: <u@x>\r\nDate: Tue, 01 Dec 2026 09:00:00 +0000\r\n' +
      'Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nÄpfel, Birnen, 日本語\r\n', 'utf8'); // prettier-ignore
    const t = legacyApp(rig.port, { user: 'utf8-app', pass: (rig.config.clients[1] as { password: string }).password });
    await t.sendMail({ envelope: { from: 'jörg@bücher.example', to: ['desk@example.org'] }, raw });
    t.close();
    const got = rig.outbox.messages[0];
    expect(got?.envelope.from).toBe('jörg@bücher.example');
    expect(got?.raw?.equals(raw)).toBe(true);
  });

  it('advertises SIZE, 8BITMIME, SMTPUTF8, PIPELINING and AUTH PLAIN LOGIN, and no STARTTLS without a certificate', async () => {
    const { talk, greeting } = await SmtpTalk.open(rig.port);
    expect(greeting.code).toBe(220);
    const ehlo = await talk.command('EHLO app.example');
    talk.close();
    const features = ehlo.lines.map((l) => l.slice(4));
    expect(features).toEqual(expect.arrayContaining(['PIPELINING', '8BITMIME', 'SMTPUTF8', 'AUTH PLAIN LOGIN', `SIZE ${1024 * 1024}`]));
    expect(features).not.toContain('STARTTLS');
  });
});
