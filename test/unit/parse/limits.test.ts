import { describe, expect, it } from 'vitest';
import { FIXTURES, loadFixture } from '../../fixtures/eml/index.js';
import { base64Bytes, jsonStringBytes, truncateToJsonBytes } from '../../../src/parse/json-size.js';
import { toCrlf } from '../../../src/parse/line-endings.js';
import { MAX_MIME_PARTS, parseMessage, renderMessageReceived } from '../../../src/parse/parse-message.js';

const MB = 1024 * 1024;
const env = { id: 'msg_x', account: 'a', origin: { kind: 'imap', mailbox: 'INBOX', uid: 1, uidValidity: 1 } } as const;

describe('line endings', () => {
  it('turns bare CR and bare LF into CRLF, leaves CRLF alone, and returns the same buffer when nothing changes', () => {
    const crlf = Buffer.from('a\r\nb\r\n');
    expect(toCrlf(crlf)).toBe(crlf);
    expect(toCrlf(Buffer.from('a\rb\nc\r\nd\r')).toString()).toBe('a\r\nb\r\nc\r\nd\r\n');
    expect(toCrlf(Buffer.from('\n\n\r\r')).toString()).toBe('\r\n\r\n\r\n\r\n');
    expect(toCrlf(Buffer.alloc(0)).length).toBe(0);
  });

  it('parses CR-only and LF-only mail exactly like its CRLF original', async () => {
    for (const name of FIXTURES.filter((f) => f !== 'not-a-message')) {
      const crlf = loadFixture(name);
      const original = await parseMessage(crlf, { maxInlineAttachmentBytes: 10 * MB });
      for (const eol of ['\r', '\n']) {
        const variant = Buffer.from(crlf.toString('latin1').replace(/\r\n/g, eol), 'latin1');
        const p = await parseMessage(variant, { maxInlineAttachmentBytes: 10 * MB });
        expect({ ...p, size: 0 }, `${name} with ${JSON.stringify(eol)}`).toEqual({ ...original, size: 0 });
        expect(p.size).toBe(variant.length);
      }
    }
  });
});

describe('JSON sizes', () => {
  it('counts what JSON.stringify writes, in UTF-8', () => {
    for (const s of ['', 'abc', '"\\', '\u0001\u001f', '\n\t\r\b\f', 'é', '€', '🔥', '\ud800', 'x\udc00y', '<br>'.repeat(10)]) {
      expect(jsonStringBytes(s), JSON.stringify(s)).toBe(Buffer.byteLength(JSON.stringify(s)));
    }
  });

  it('cuts to the byte budget without splitting a surrogate pair', () => {
    const s = 'ab🔥🔥\u0001';
    for (let max = 2; max <= jsonStringBytes(s); max++) {
      const cut = truncateToJsonBytes(s, max);
      expect(jsonStringBytes(cut.text)).toBeLessThanOrEqual(max);
      expect(cut.text).not.toMatch(/[\ud800-\udbff]$/);
      expect(s.startsWith(cut.text)).toBe(true);
    }
    expect(truncateToJsonBytes(s, 1000)).toEqual({ text: s, truncated: false });
    expect(base64Bytes(256)).toBe(Buffer.alloc(256).toString('base64').length);
  });
});

function message(parts: string[], boundary = 'b'): Buffer {
  const head = ['From: ann@example.com', 'To: s@example.com', 'Subject: big', 'MIME-Version: 1.0', `Content-Type: multipart/mixed; boundary="${boundary}"`, ''];
  return Buffer.from([...head, ...parts.flatMap((p) => [`--${boundary}`, p]), `--${boundary}--`, ''].join('\r\n'));
}

const attachmentPart = (name: string, bytes: number) =>
  `Content-Type: application/octet-stream\r\nContent-Disposition: attachment; filename="${name}"\r\nContent-Transfer-Encoding: base64\r\n\r\n${Buffer.alloc(bytes, 7)
    .toString('base64')
    .replace(/.{76}/g, '$&\r\n')}`;

describe('the webhook body budget', () => {
  it('cuts text and html to a quarter each, omits attachments that do not fit, and stays under maxBodyBytes', async () => {
    const text = 'x'.repeat(2 * MB);
    const html = `<p>${'y'.repeat(2 * MB)}</p>`;
    const raw = message([
      `Content-Type: text/plain\r\n\r\n${text}`,
      `Content-Type: text/html\r\n\r\n${html}`,
      attachmentPart('small.bin', 100_000),
      attachmentPart('big.bin', 3 * MB),
      attachmentPart('after.bin', 200_000),
    ]);
    const maxBodyBytes = 4 * MB;
    const body = await renderMessageReceived(raw, env, { maxInlineAttachmentBytes: 10 * MB, maxBodyBytes });
    expect(body.length).toBeLessThanOrEqual(maxBodyBytes);
    const p = JSON.parse(body.toString()) as { text: string; html: string; truncated: boolean; truncatedFields: string[]; attachments: { filename: string; contentOmitted?: boolean; content?: string; size: number }[] };
    expect(p.truncated).toBe(true);
    expect(p.truncatedFields).toEqual(['text', 'html']);
    expect(p.text.length).toBeLessThan(MB + 1);
    expect(p.text.length).toBeGreaterThan(0.9 * MB);
    expect(text.startsWith(p.text)).toBe(true);
    const byName = Object.fromEntries(p.attachments.map((a) => [a.filename, a]));
    expect(Buffer.from(byName['small.bin']?.content ?? '', 'base64').length).toBe(100_000);
    expect(byName['big.bin']).toMatchObject({ contentOmitted: true, size: 3 * MB });
    expect(byName['big.bin']?.content).toBeUndefined();
    // A smaller attachment after the one that did not fit still gets in.
    expect(Buffer.from(byName['after.bin']?.content ?? '', 'base64').length).toBe(200_000);
  });

  it('leaves a message that fits untouched', async () => {
    const raw = loadFixture('attachment');
    const unlimited = JSON.parse((await renderMessageReceived(raw, env, { maxInlineAttachmentBytes: 10 * MB })).toString());
    const budgeted = JSON.parse((await renderMessageReceived(raw, env, { maxInlineAttachmentBytes: 10 * MB, maxBodyBytes: MB })).toString());
    expect(budgeted).toEqual(unlimited);
    expect(budgeted.truncated).toBe(false);
  });

  it('counts escaped control characters: 8 MB of 0x01 never makes a body over budget', async () => {
    const raw = message([`Content-Type: text/plain\r\n\r\n${'\u0001'.repeat(8 * MB)}`]);
    const body = await renderMessageReceived(raw, env, { maxInlineAttachmentBytes: 10 * MB, maxBodyBytes: 4 * MB });
    expect(body.length).toBeLessThanOrEqual(4 * MB);
    const p = JSON.parse(body.toString()) as { text: string; truncatedFields: string[] };
    expect(p.truncatedFields).toEqual(['text']);
    expect(p.text.length).toBeGreaterThan(MB / 6 - 1000);
  });
});

describe('MIME part bound', () => {
  it('takes 1,500 parts (a digest), and refuses more than the bound with PARSE_FAILED', async () => {
    const parts = Array.from({ length: 1_500 }, (_, i) => attachmentPart(`p${i}.bin`, 10));
    const p = await parseMessage(message(parts), { maxInlineAttachmentBytes: MB });
    expect(p.attachments).toHaveLength(1_500);
    const tooMany = Array.from({ length: MAX_MIME_PARTS + 10 }, () => 'Content-Type: text/plain\r\n\r\nx');
    await expect(parseMessage(message(tooMany), { maxInlineAttachmentBytes: MB })).rejects.toMatchObject({
      code: 'PARSE_FAILED',
      message: expect.stringContaining('MIME parts'),
    });
  }, 60_000);
});
