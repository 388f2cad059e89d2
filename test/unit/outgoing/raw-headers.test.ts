import { describe, expect, it } from 'vitest';
import { headerValue } from '../../../src/outgoing/raw-headers.js';

describe('headerValue', () => {
  const raw = (s: string) => Buffer.from(s, 'latin1');

  it('finds a field case-insensitively, unfolded and trimmed, in the header section only', () => {
    expect(headerValue(raw('From: a@x\r\nmessage-id:\r\n  <id-1@x>\r\nSubject: s\r\n\r\nMessage-ID: <body@x>\r\n'), 'Message-ID')).toBe('<id-1@x>');
    expect(headerValue(raw('Message-ID : <obs@x>\n\nbody'), 'message-id')).toBe('<obs@x>');
    expect(headerValue(raw('Subject: s\r\n\r\nMessage-ID: <body@x>\r\n'), 'message-id')).toBeNull();
    expect(headerValue(raw('not a header line\r\nMessage-ID: <x@x>\r\n'), 'message-id')).toBeNull();
    expect(headerValue(raw('Message-ID:   \r\n\r\n'), 'message-id')).toBeNull();
  });

  it('looks no further than the first 256 KB and returns at most 998 characters', () => {
    const long = `X-Pad: ${'a'.repeat(300 * 1024)}\r\nMessage-ID: <late@x>\r\n\r\n`;
    expect(headerValue(raw(long), 'message-id')).toBeNull();
    expect(headerValue(raw(`Message-ID: <${'b'.repeat(5000)}@x>\r\n\r\n`), 'message-id')?.length).toBe(998);
  });
});
