import { describe, expect, it } from 'vitest';
import {
  bodyLines,
  MAX_STATUS_LINE_BYTES,
  parseCapabilities,
  parseScanListing,
  parseStatusLine,
  parseUidlListing,
  ResponseReader,
  type Expect,
  type Pop3Response,
} from '../../src/incoming/pop3/protocol.js';
import { Pop3ProtocolError } from '../../src/incoming/pop3/errors.js';
import { decodeOAuthChallenge, saslMechanisms } from '../../src/incoming/pop3/sasl.js';
import { oauthbearerResponse, plainResponse, xoauth2Response } from '../../src/oauth/sasl.js';

const b = (s: string) => Buffer.from(s, 'latin1');

/** Feeds `wire` in the given pieces and returns the one response it yields. */
function readOne(kind: Expect, pieces: Buffer[]): Pop3Response {
  const reader = new ResponseReader();
  let response = reader.start(kind);
  for (const piece of pieces) {
    const got = reader.push(piece);
    if (got) {
      expect(response).toBeNull();
      response = got;
    }
  }
  if (!response) throw new Error('no complete response');
  return response;
}

/** Every way to cut `wire` in two, plus one byte at a time. */
function splits(wire: Buffer): Buffer[][] {
  const out: Buffer[][] = [[wire], [...wire].map((byte) => Buffer.from([byte]))];
  for (let i = 1; i < wire.length; i++) out.push([wire.subarray(0, i), wire.subarray(i)]);
  return out;
}

describe('status lines', () => {
  it('reads +OK, -ERR with an RFC 2449 response code, and SASL continuations', () => {
    expect(parseStatusLine('+OK')).toEqual({ status: 'ok', text: '', code: null });
    expect(parseStatusLine('+OK Dovecot ready.')).toEqual({ status: 'ok', text: 'Dovecot ready.', code: null });
    expect(parseStatusLine('-ERR [IN-USE] Mailbox is locked')).toEqual({ status: 'err', text: '[IN-USE] Mailbox is locked', code: 'IN-USE' });
    expect(parseStatusLine('-ERR')).toEqual({ status: 'err', text: '', code: null });
    expect(parseStatusLine('+ eyJzdGF0dXMiOiI0MDEifQ==')).toEqual({ status: 'cont', text: 'eyJzdGF0dXMiOiI0MDEifQ==', code: null });
    expect(parseStatusLine('+ ')).toEqual({ status: 'cont', text: '', code: null });
    expect(parseStatusLine('+')).toEqual({ status: 'cont', text: '', code: null });
  });
  it('refuses anything else', () => {
    for (const line of ['* OK IMAP4rev1', '220 smtp ready', '+OKAY', '']) {
      expect(() => parseStatusLine(line)).toThrow(Pop3ProtocolError);
    }
  });
});

describe('ResponseReader', () => {
  const multi = b('+OK 5 octets\r\nline one\r\n..dot-stuffed\r\n..\r\n...\r\n\r\nlast\r\n.\r\n');
  const unstuffed = b('line one\r\n.dot-stuffed\r\n.\r\n..\r\n\r\nlast\r\n');

  it('un-stuffs dots and drops the terminator, however the bytes are split', () => {
    for (const pieces of splits(multi)) {
      const response = readOne('multi', pieces);
      expect(response.status).toBe('ok');
      expect(response.text).toBe('5 octets');
      expect(response.body?.equals(unstuffed)).toBe(true);
    }
  });

  it('reads a single line split anywhere, CRLF included', () => {
    for (const pieces of splits(b('+OK 2 320\r\n'))) {
      expect(readOne('single', pieces)).toEqual({ status: 'ok', text: '2 320', code: null, body: null });
    }
  });

  it('keeps 8-bit bytes exactly', () => {
    const raw = Buffer.from([0xff, 0xfe, 0x00, 0x80, 0x0d, 0x0a, 0x2e, 0x2e, 0xc3, 0x28, 0x0d, 0x0a]);
    const response = readOne('multi', [b('+OK\r\n'), raw, b('.\r\n')]);
    expect(response.body?.equals(Buffer.from([0xff, 0xfe, 0x00, 0x80, 0x0d, 0x0a, 0x2e, 0xc3, 0x28, 0x0d, 0x0a]))).toBe(true);
  });

  it('answers an empty body with an empty buffer, and -ERR to a multi-line command with no body', () => {
    expect(readOne('multi', [b('+OK\r\n.\r\n')]).body?.length).toBe(0);
    expect(readOne('multi', [b('-ERR no such message\r\n')])).toEqual({ status: 'err', text: 'no such message', code: null, body: null });
  });

  it('accepts a bare-LF terminator from a sloppy server', () => {
    expect(readOne('multi', [b('+OK\nabc\n.\n')]).body?.toString()).toBe('abc\n');
  });

  it('keeps bytes after a response for the next one, and buffers bytes nobody asked for', () => {
    const reader = new ResponseReader();
    expect(reader.push(b('+OK hello\r\n+OK 1 2\r\n'))).toBeNull();
    expect(reader.hasBuffered()).toBe(true);
    expect(reader.start('single')?.text).toBe('hello');
    expect(reader.start('single')?.text).toBe('1 2');
    expect(reader.hasBuffered()).toBe(false);
    expect(reader.start('multi')).toBeNull();
    expect(reader.push(b('+OK\r\n1 a\r\n.\r\n-ERR x'))?.body?.toString()).toBe('1 a\r\n');
    expect(reader.hasBuffered()).toBe(true);
    expect(reader.start('single')).toBeNull();
    expect(reader.push(b('\r\n'))?.status).toBe('err');
  });

  it('refuses a status line without end, and garbage', () => {
    const reader = new ResponseReader();
    reader.start('single');
    expect(() => reader.push(Buffer.alloc(MAX_STATUS_LINE_BYTES + 1, 0x41))).toThrow(/status line longer/);
    expect(() => readOne('single', [b('HTTP/1.1 400 Bad Request\r\n')])).toThrow(Pop3ProtocolError);
  });

  it('has no line-length limit inside a body', () => {
    const long = Buffer.alloc(MAX_STATUS_LINE_BYTES * 3, 0x61);
    const response = readOne('multi', [b('+OK\r\n'), long, b('\r\n.\r\n')]);
    expect(response.body?.length).toBe(long.length + 2);
  });
});

describe('listings', () => {
  it('parses UIDL and LIST in server order', () => {
    expect(parseUidlListing(bodyLines(b('1 whqtswO00WBw418f9t5JxYwZ\r\n2 QhdPYR:00WBw1Ph7x7\r\n')))).toEqual([
      { n: 1, uidl: 'whqtswO00WBw418f9t5JxYwZ' },
      { n: 2, uidl: 'QhdPYR:00WBw1Ph7x7' },
    ]);
    expect(parseScanListing(['1 120', '3 200 extra info'])).toEqual([
      { n: 1, size: 120 },
      { n: 3, size: 200 },
    ]);
    expect(parseUidlListing([])).toEqual([]);
  });
  it('refuses malformed lines', () => {
    expect(() => parseUidlListing(['1'])).toThrow(Pop3ProtocolError);
    expect(() => parseScanListing(['x 12'])).toThrow(Pop3ProtocolError);
  });
  it('upper-cases CAPA keywords and reads the SASL mechanisms', () => {
    const caps = parseCapabilities(['top', 'uidl', 'sasl plain xoauth2 OAuthBearer', 'stls', '']);
    expect(caps).toEqual(['TOP', 'UIDL', 'SASL plain xoauth2 OAuthBearer', 'STLS']);
    expect(saslMechanisms(caps)).toEqual(['PLAIN', 'XOAUTH2', 'OAUTHBEARER']);
    expect(saslMechanisms(['USER'])).toBeNull();
  });
});

describe('SASL responses', () => {
  const decode = (s: string) => Buffer.from(s, 'base64').toString('utf8');
  it('XOAUTH2 is user, ^A, Bearer token, ^A^A', () => {
    expect(decode(xoauth2Response('a@b.test', 'ya29.tok'))).toBe('user=a@b.test\x01auth=Bearer ya29.tok\x01\x01');
  });
  it('OAUTHBEARER starts with a GS2 header whose authzid escapes , and =', () => {
    expect(decode(oauthbearerResponse('a,b=c@d.test', 'tok'))).toBe('n,a=a=2Cb=3Dc@d.test,\x01auth=Bearer tok\x01\x01');
  });
  it('PLAIN has an empty authzid', () => {
    expect(decode(plainResponse('u', 'p\u00e4ss'))).toBe('\0u\0p\u00e4ss');
  });
  it('decodes an OAuth error challenge, and ignores one that is not JSON', () => {
    const json = Buffer.from(JSON.stringify({ status: '401', schemes: 'bearer', scope: 'https://mail.google.com/' })).toString('base64');
    expect(decodeOAuthChallenge(json)).toEqual({ status: '401', schemes: 'bearer', scope: 'https://mail.google.com/' });
    expect(decodeOAuthChallenge(Buffer.from('{"status":400}').toString('base64'))).toEqual({ status: '400' });
    expect(decodeOAuthChallenge('bm90IGpzb24=')).toBeNull();
  });
});
