import { describe, expect, it } from 'vitest';
import { messageIdDomain, normalizeAddress, senderAllowed } from '../../../src/relay/addresses.js';
import { addMissingHeaders, formatMessageDate, missingHeaderLines, presentHeaders } from '../../../src/relay/message.js';

const NOW = Date.UTC(2026, 11, 1, 9, 5, 0);
const opts = { domain: 'example.com', now: NOW, uuid: () => '00000000-0000-4000-8000-000000000000' };
const b = (s: string) => Buffer.from(s, 'utf8');

describe('presentHeaders', () => {
  it('finds Message-ID and Date in any case, with blanks before the colon, among folded fields', () => {
    expect(presentHeaders(b('Subject: a\r\n b\r\nmessage-ID: <x@y>\r\nDATE : Tue, 1 Dec 2026 09:00 +0000\r\n\r\nbody'))).toEqual({ messageId: true, date: true });
  });

  it('looks only at the header section, and only at whole field names', () => {
    const raw = b('Resent-Date: x\r\nX-Date: y\r\nX-Message-ID: z\r\nSubject: Date: no\r\n\r\nDate: in the body\r\nMessage-ID: <body@x>\r\n');
    expect(presentHeaders(raw)).toEqual({ messageId: false, date: false });
  });

  it('ends the header section at a line that is not a field, and copes with bare LF and no body', () => {
    expect(presentHeaders(b('Subject: a\r\nnot a header line\r\nDate: x\r\n'))).toEqual({ messageId: false, date: false });
    expect(presentHeaders(b('Subject: a\nDate: x\n\nbody\n'))).toEqual({ messageId: false, date: true });
    expect(presentHeaders(b('Message-ID: <a@b>'))).toEqual({ messageId: true, date: false });
    expect(presentHeaders(b(''))).toEqual({ messageId: false, date: false });
    expect(presentHeaders(b('\r\nDate: x\r\n'))).toEqual({ messageId: false, date: false });
  });

  it('does not take a folded continuation line for a field', () => {
    expect(presentHeaders(b('Subject: a\r\n Date: folded\r\n\r\n'))).toEqual({ messageId: false, date: false });
  });
});

describe('missingHeaderLines / addMissingHeaders', () => {
  it('adds both in front, in the message’s own line ending, and leaves every byte after them alone', () => {
    const crlf = b('Subject: x\r\n\r\nbody\r\n');
    const out = addMissingHeaders(crlf, opts);
    expect(out.added).toEqual(['messageId', 'date']);
    expect(out.raw.toString()).toBe(`Message-ID: <00000000-0000-4000-8000-000000000000@example.com>\r\nDate: Tue, 01 Dec 2026 09:05:00 +0000\r\n${crlf.toString()}`);
    const lf = b('Subject: x\n\nbody\n');
    expect(missingHeaderLines(lf, opts).lines.toString()).toBe('Message-ID: <00000000-0000-4000-8000-000000000000@example.com>\nDate: Tue, 01 Dec 2026 09:05:00 +0000\n');
  });

  it('adds nothing, and copies nothing, when both are there', () => {
    const raw = b('Date: x\r\nMessage-ID: <a@b>\r\n\r\n');
    const out = addMissingHeaders(raw, opts);
    expect(out.raw).toBe(raw);
    expect(out.added).toEqual([]);
  });

  it('keeps 8-bit bytes that are not UTF-8 as they are', () => {
    const raw = Buffer.concat([b('Subject: '), Buffer.from([0xe4, 0xf6, 0xfc]), b('\r\n\r\n'), Buffer.from([0xff, 0x00, 0x80])]);
    const out = addMissingHeaders(raw, opts).raw;
    expect(out.subarray(out.length - raw.length).equals(raw)).toBe(true);
  });
});

describe('formatMessageDate', () => {
  it('writes RFC 5322 date-time in UTC with a numeric zone', () => {
    expect(formatMessageDate(NOW)).toBe('Tue, 01 Dec 2026 09:05:00 +0000');
    expect(formatMessageDate(Date.UTC(2027, 0, 3, 23, 59, 59))).toBe('Sun, 03 Jan 2027 23:59:59 +0000');
    expect(Date.parse(formatMessageDate(NOW))).toBe(NOW);
  });
});

describe('sender addresses', () => {
  it('compares case-insensitively and across the two spellings of an international domain', () => {
    const client = { allowedFrom: ['support@example.com', 'jörg@bücher.example', 'scan@xn--mnchen-3ya.example'] };
    expect(senderAllowed(client, 'Support@EXAMPLE.com')).toBe(true);
    expect(senderAllowed(client, 'jörg@xn--bcher-kva.example')).toBe(true);
    expect(senderAllowed(client, 'scan@münchen.example')).toBe(true);
    expect(senderAllowed(client, 'support@example.com.evil')).toBe(false);
    expect(senderAllowed(client, 'other@example.com')).toBe(false);
    expect(senderAllowed(client, '')).toBe(false);
    expect(normalizeAddress('A@[127.0.0.1]')).toBe('a@[127.0.0.1]');
  });

  it('makes an ASCII Message-ID domain from the sender', () => {
    expect(messageIdDomain('a@Example.com')).toBe('example.com');
    expect(messageIdDomain('jörg@bücher.example')).toBe('xn--bcher-kva.example');
    expect(messageIdDomain('a@[192.0.2.1]')).toBe('[192.0.2.1]');
    expect(messageIdDomain('a@')).toBe('mailgate.invalid');
  });
});
