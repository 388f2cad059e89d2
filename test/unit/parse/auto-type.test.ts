import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { simpleParser, type ParsedMail } from 'mailparser';
import { describe, expect, it } from 'vitest';
import { inspectMessage } from '../../../src/parse/auto-submitted.js';
import {
  MAX_PART_SCAN_BYTES,
  autoSignalOf,
  autoTypeOf,
  bounceOf,
  decodeHeaderValue,
  headerLinesOf,
  type Bounce,
  type HeaderLine,
} from '../../../src/parse/auto-type.js';

const dir = join(import.meta.dirname, '../../fixtures/pipeline');
interface Expected {
  autoType: string | null;
  signal: string | null;
  bounce?: Bounce;
  ownAddresses?: string[];
  withoutOwnAddresses?: string;
}
const expected = JSON.parse(readFileSync(join(dir, 'expected.json'), 'utf8')) as Record<string, Expected>;

/** As parseMessage calls mailparser (both settings of keepDeliveryStatus must work). */
function parse(raw: Buffer, keepDeliveryStatus: boolean): Promise<ParsedMail> {
  return simpleParser(raw, { keepCidLinks: true, skipImageLinks: true, skipTextToHtml: true, skipTextLinks: true, keepDeliveryStatus } as Parameters<
    typeof simpleParser
  >[1]);
}

describe('autoType and bounce on the fixture corpus, from mailparser output', () => {
  const files = ['bounces', 'auto-replies', 'bulk', 'person'].flatMap((d) => readdirSync(join(dir, d)).map((f) => `${d}/${f}`));

  it('has an expectation for every fixture, and at least 10 bounces and 10 auto-replies', () => {
    expect(files.sort()).toEqual(Object.keys(expected).sort());
    expect(files.filter((f) => f.startsWith('bounces/')).length).toBeGreaterThanOrEqual(10);
    expect(files.filter((f) => f.startsWith('auto-replies/')).length).toBeGreaterThanOrEqual(10);
  });

  for (const keepDeliveryStatus of [false, true]) {
    it(`classifies every fixture as expected (keepDeliveryStatus: ${keepDeliveryStatus})`, async () => {
      const wrong: string[] = [];
      for (const f of files) {
        const e = expected[f] as Expected;
        const mail = await parse(readFileSync(join(dir, f)), keepDeliveryStatus);
        const got = autoSignalOf(mail.headerLines, mail.attachments, { ownAddresses: e.ownAddresses ?? [] });
        if (got.autoType !== e.autoType || got.signal !== e.signal) wrong.push(`${f}: ${JSON.stringify(got)}`);
        const bounce = bounceOf(mail.headerLines, mail.attachments, mail.text ?? null);
        if (JSON.stringify(bounce) !== JSON.stringify(e.bounce ?? null)) wrong.push(`${f}: bounce ${JSON.stringify(bounce)}`);
        if (e.withoutOwnAddresses) expect(autoTypeOf(mail.headerLines, mail.attachments), f).toBe(e.withoutOwnAddresses);
      }
      expect(wrong).toEqual([]);
    });
  }

  it('supersedes isAutoSubmitted: every message it calls automatic has an autoType (and the v1 fixtures too)', async () => {
    const all = [...files.map((f) => join(dir, f)), ...['auto-reply', 'bounce', 'plain', 'reply'].map((n) => join(dir, `../eml/${n}.eml`))];
    for (const path of all) {
      const raw = readFileSync(path);
      const mail = await parse(raw, false);
      const type = autoTypeOf(mail.headerLines, mail.attachments);
      if (inspectMessage(raw).autoSubmitted) expect(type, path).not.toBeNull();
    }
  });

  it('works from a raw header block alone (ingest, before the full parse) for header-decided mail', () => {
    const raw = readFileSync(join(dir, 'auto-replies/outlook-ja.eml'));
    expect(autoTypeOf(headerLinesOf(raw))).toBe('auto_reply');
    expect(autoTypeOf(headerLinesOf(readFileSync(join(dir, 'bounces/sendmail-dsn.eml'))))).toBe('bounce');
    expect(autoTypeOf(headerLinesOf(readFileSync(join(dir, 'person/gmail-reply.eml'))))).toBeNull();
  });
});

const h = (...lines: string[]): HeaderLine[] => lines.map((line) => ({ key: line.slice(0, line.indexOf(':')).toLowerCase(), line }));

describe('autoType signals', () => {
  it('ranks bounce over auto_reply over list mail over X-Auto-Response-Suppress over other Auto-Submitted values', () => {
    expect(autoTypeOf(h('From: MAILER-DAEMON@x', 'Auto-Submitted: auto-replied'))).toBe('bounce');
    expect(autoTypeOf(h('Auto-Submitted: auto-replied', 'Precedence: bulk'))).toBe('auto_reply');
    expect(autoTypeOf(h('Auto-Submitted: auto-generated', 'Subject: Automatic reply: x'))).toBe('auto_reply');
    expect(autoTypeOf(h('List-Id: <l.example.org>', 'X-Auto-Response-Suppress: All'))).toBe('bulk');
    expect(autoTypeOf(h('Auto-Submitted: auto-generated', 'X-Auto-Response-Suppress: OOF, AutoReply'))).toBe('auto_reply');
    expect(autoTypeOf(h('Auto-Submitted: auto-notified'))).toBe('bulk');
    expect(autoTypeOf(h('Auto-Submitted: auto-something-new'))).toBe('bulk');
    expect(autoTypeOf(h('Auto-Submitted: No'))).toBeNull();
    expect(autoTypeOf(h('X-Auto-Response-Suppress: DR, RN, NRN'))).toBeNull();
    expect(autoTypeOf(h('Precedence: list'))).toBe('bulk');
    expect(autoTypeOf(h('Precedence: first-class'))).toBeNull();
    expect(autoTypeOf(h('X-Autoreply: no'))).toBeNull();
    expect(autoTypeOf(h('X-Autogenerated: Reply'))).toBe('auto_reply');
    expect(autoTypeOf(h('Content-Type: multipart/report; report-type=tlsrpt; boundary=x'))).toBe('bulk');
    expect(autoTypeOf(h('Content-Type: multipart/mixed; boundary=x'), [{ contentType: 'message/delivery-status', content: Buffer.from('Action: failed') }])).toBe('bounce');
  });

  it('knows the mailer-daemon senders, and only those', () => {
    for (const from of [
      'From: MAILER-DAEMON@mx.example (Mail Delivery System)',
      'From: "Mail Delivery Subsystem" <mailer-daemon@googlemail.com>',
      'From: <postmaster@contoso.example>',
      'From: Microsoft Outlook <MicrosoftExchange329e71ec88ae4615bbc36ab6ce41109e@contoso.onmicrosoft.com>',
      'From: Mail Delivery Subsystem <MAILER-DAEMON>',
    ]) {
      expect(autoTypeOf(h(from)), from).toBe('bounce');
    }
    for (const from of ['From: postmaster-general@x.example', 'From: "MAILER-DAEMON@x" <ann@x.example>', 'From: daemon@x.example']) expect(autoTypeOf(h(from)), from).toBeNull();
  });

  it('reads out-of-office subjects in many languages and spellings, only as a prefix', () => {
    for (const s of [
      'Automatic reply: x',
      'AUTOMATIC REPLY:x',
      'Out of Office: x',
      'Out of Office',
      'Out of Office AutoReply: x',
      'Abwesenheitsnotiz: x',
      'Réponse automatique : x',
      'Re\u0301ponse automatique\u00a0: x',
      'Respuesta automática: x',
      'Automatisch antwoord: x',
      'Resposta automática: x',
      'Risposta automatica: x',
      'Autosvar: x',
      'Automatyczna odpowiedź: x',
      'Автоматический ответ: x',
      '自動応答: x',
      '自动回复：x',
      '自動回覆: x',
      '자동 회신: x',
    ]) {
      expect(autoTypeOf(h(`Subject: ${s}`)), s).toBe('auto_reply');
    }
    for (const s of ['Re: Automatic reply: x', 'Question about automatic reply settings', 'Absence: Dana next week', 'Abwesend: Urlaubsantrag', 'Auto: my car', 'Out of office policy']) {
      expect(autoTypeOf(h(`Subject: ${s}`)), s).toBeNull();
    }
  });

  it('takes a List-Id that is the mailbox itself for the mailbox, not for bulk mail', () => {
    const group = h('List-ID: "Support" <Support.Example.com>', 'Precedence: list');
    expect(autoTypeOf(group)).toBe('bulk');
    expect(autoTypeOf(group, [], { ownAddresses: ['support@example.com'] })).toBeNull();
    expect(autoTypeOf(h('List-ID: <other.example.com>'), [], { ownAddresses: ['support@example.com'] })).toBe('bulk');
    // Precedence: bulk is a sender's statement, whatever the list.
    expect(autoTypeOf(h('List-ID: <support.example.com>', 'Precedence: bulk'), [], { ownAddresses: ['support@example.com'] })).toBe('bulk');
  });
});

describe('bounceOf', () => {
  const dsn = (body: string) => [{ contentType: 'message/delivery-status', content: Buffer.from(body) }];
  const report = h('From: MAILER-DAEMON@mx.example', 'Content-Type: multipart/report; report-type=delivery-status; boundary=b');

  it('is null for anything but a bounce', () => {
    expect(bounceOf(h('From: ann@example.com'), [{ contentType: 'text/plain', content: 'Final-Recipient: rfc822; a@x\nAction: failed\n' }])).toBeNull();
    expect(bounceOf(h('Auto-Submitted: auto-replied'))).toBeNull();
  });

  it('takes the first recipient whose Action is failed, else the first', () => {
    const fields = 'Reporting-MTA: dns; mx\n\nFinal-Recipient: rfc822; ok@x\nAction: delivered\nStatus: 2.0.0\n\nFinal-Recipient: rfc822; bad@x\nAction: failed\nStatus: 5.1.1\n';
    expect(bounceOf(report, dsn(fields))).toEqual({ originalMessageId: null, recipient: 'bad@x', status: '5.1.1', action: 'failed' });
    const delayed = 'Reporting-MTA: dns; mx\n\nFinal-Recipient: rfc822; a@x\nAction: delayed\nStatus: 4.4.7\n\nFinal-Recipient: rfc822; b@x\nAction: expanded\nStatus: 2.0.0\n';
    expect(bounceOf(report, dsn(delayed))).toMatchObject({ recipient: 'a@x', action: 'delayed', status: '4.4.7' });
  });

  it('reads folded fields, odd case, comments, and leaves unknown values null', () => {
    const fields = 'reporting-mta: dns; mx\n\nFINAL-RECIPIENT: RFC822;\n <Deep@X.example>\nACTION: Failed (bad)\nSTATUS: 5.1.1 (unknown user)\n';
    expect(bounceOf(report, dsn(fields))).toEqual({ originalMessageId: null, recipient: 'Deep@X.example', status: '5.1.1', action: 'failed' });
    expect(bounceOf(report, dsn('Final-Recipient: rfc822; a@x\nAction: exploded\nStatus: soon\n'))).toEqual({
      originalMessageId: null,
      recipient: 'a@x',
      status: null,
      action: null,
    });
    expect(bounceOf(report, [])).toEqual({ originalMessageId: null, recipient: null, status: null, action: null });
  });

  it('decodes an xtext Original-Recipient when there is no Final-Recipient', () => {
    expect(bounceOf(report, dsn('Original-Recipient: rfc822; a+2Bb@x\nAction: failed\n'))?.recipient).toBe('a+b@x');
  });

  it('bounds hostile reports: 100,000 header lines, a 10 MB DSN part, 10,000 parts', () => {
    const manyLines = [...report, ...Array.from({ length: 100_000 }, (_, i) => ({ key: 'x-junk', line: `X-Junk: ${i}` }))];
    const hugeDsn = dsn(`Final-Recipient: rfc822; a@x\nAction: failed\n${'X-Pad: y\n'.repeat(1_200_000)}`);
    const big = Buffer.alloc(MAX_PART_SCAN_BYTES * 2, 'a');
    const manyParts = Array.from({ length: 10_000 }, () => ({ contentType: 'message/rfc822', content: big }));
    const parts = [...hugeDsn, ...manyParts];
    const text = 'x'.repeat(5_000_000);
    const words = [{ key: 'subject', line: `Subject: ${'=?utf-8?B?QQ==?= '.repeat(100_000)}` }];
    // Measured 50 ms on a loaded 2-core machine; an unbounded scan of these inputs takes minutes, which the test timeout catches.
    expect(bounceOf(manyLines, parts, text)).toMatchObject({ recipient: 'a@x', action: 'failed' });
    expect(autoTypeOf(words)).toBeNull();
  }, 30_000);
});

describe('decodeHeaderValue and headerLinesOf', () => {
  it('decodes RFC 2047 words, joins adjacent ones (a character split between two survives), and reads 8-bit UTF-8', () => {
    expect(decodeHeaderValue('=?UTF-8?B?7J6Q64+ZIO0=?= =?UTF-8?B?mozsi6A=?=')).toBe('자동 회신');
    expect(decodeHeaderValue('=?iso-8859-1?Q?Respuesta_autom=E1tica:?= x')).toBe('Respuesta automática: x');
    expect(decodeHeaderValue('a =?utf-8?Q?b?= c')).toBe('a b c');
    expect(decodeHeaderValue('=?utf-8*fr?Q?caf=C3=A9?=')).toBe('café');
    expect(decodeHeaderValue('=?x-unknown?Q?abc?=')).toBe('abc');
    expect(decodeHeaderValue(Buffer.from('Réponse', 'utf8').toString('latin1'))).toBe('Réponse');
    expect(decodeHeaderValue('R\xe9ponse')).toBe('Réponse');
  });

  it('reads a raw header block into mailparser-shaped lines, folding kept, up to the first empty line', () => {
    const lines = headerLinesOf('Subject: a\r\n b\r\nFrom: x@y\r\nbroken line\r\n\r\nBody: no\r\n');
    expect(lines).toEqual([
      { key: 'subject', line: 'Subject: a\r\n b' },
      { key: 'from', line: 'From: x@y' },
    ]);
  });
});
