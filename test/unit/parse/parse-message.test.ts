import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { loadFixture, makeLargeMessage } from '../../fixtures/eml/index.js';
import { inspectMessage } from '../../../src/parse/auto-submitted.js';
import { buildMessageReceivedPayload, parseMessage } from '../../../src/parse/parse-message.js';

const MB10 = 10 * 1024 * 1024;
const parse = (name: string, max = MB10) => parseMessage(loadFixture(name), { maxInlineAttachmentBytes: max });

describe('parseMessage', () => {
  it('plain text', async () => {
    const p = await parse('plain');
    expect(p).toEqual({
      messageId: '<plain-1@example.com>',
      inReplyTo: null,
      references: [],
      date: '2026-11-22T10:00:00.000Z',
      from: { name: 'Ann Example', address: 'ann@example.com' },
      to: [{ name: '', address: 'support@example.com' }],
      cc: [],
      replyTo: [],
      subject: 'Printer on fire',
      text: 'The printer on floor 3 is on fire.\nPlease send help.\n',
      html: null,
      attachments: [],
      autoSubmitted: false,
      size: loadFixture('plain').length,
      truncated: false,
      truncatedFields: [],
    });
  });

  it('multipart/alternative with UTF-8 and RFC 2047 words (Japanese, emoji)', async () => {
    const p = await parse('multipart-utf8');
    expect(p.subject).toBe('プリンターが動きません 🔥');
    expect(p.from).toEqual({ name: '山田太郎', address: 'taro@example.jp' });
    expect(p.to).toEqual([
      { name: 'Support Team', address: 'support@example.com' },
      { name: '', address: 'bob@example.com' },
    ]);
    expect(p.cc).toEqual([{ name: '', address: 'carol@example.com' }]);
    expect(p.replyTo).toEqual([{ name: '', address: 'replies@example.jp' }]);
    expect(p.text?.trim()).toBe('プリンターが動きません 🔥');
    expect(p.html).toBe('<p>プリンター 🔥</p>');
    expect(p.date).toBe('2026-11-23T00:30:00.000Z');
  });

  it('binary attachment with sha256 and base64 content', async () => {
    const p = await parse('attachment');
    const bytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    expect(p.attachments).toEqual([
      {
        filename: 'data.bin',
        contentType: 'application/octet-stream',
        size: 256,
        sha256: createHash('sha256').update(bytes).digest('hex'),
        contentId: null,
        inline: false,
        content: bytes.toString('base64'),
      },
    ]);
    expect(p.text?.trim()).toBe('See the attached file.');
  });

  it('inline image keeps its cid link in html and its contentId without brackets', async () => {
    const p = await parse('inline-image');
    expect(p.html).toContain('src="cid:shot1@example.com"');
    expect(p.attachments).toHaveLength(1);
    expect(p.attachments[0]).toMatchObject({ filename: 'shot.png', contentType: 'image/png', contentId: 'shot1@example.com', inline: true });
  });

  it('reply threading headers keep their angle brackets', async () => {
    const p = await parse('reply');
    expect(p.messageId).toBe('<reply-5@example.com>');
    expect(p.inReplyTo).toBe('<ticket-42@support.example.com>');
    expect(p.references).toEqual(['<plain-1@example.com>', '<ticket-42@support.example.com>']);
    expect(p.autoSubmitted).toBe(false);
  });

  it('flags auto-replies and bounces', async () => {
    expect((await parse('auto-reply')).autoSubmitted).toBe(true);
    expect((await parse('bounce')).autoSubmitted).toBe(true);
    expect(inspectMessage(loadFixture('auto-reply'))).toEqual({ messageId: '<ooo-6@example.com>', autoSubmitted: true });
    expect(inspectMessage(loadFixture('bounce')).autoSubmitted).toBe(true);
    expect(inspectMessage(loadFixture('plain'))).toEqual({ messageId: '<plain-1@example.com>', autoSubmitted: false });
  });

  it('parses broken MIME as far as it goes instead of failing', async () => {
    const p = await parse('malformed-mime');
    expect(p.subject).toBe('Broken boundaries');
    expect(p.text).toContain('text before a bad part');
    expect(p.attachments[0]?.filename).toBe('x.pdf');
  });

  it('refuses input that is not a message with PARSE_FAILED', async () => {
    await expect(parse('not-a-message')).rejects.toMatchObject({ code: 'PARSE_FAILED' });
    await expect(parseMessage(Buffer.alloc(0), { maxInlineAttachmentBytes: 1 })).rejects.toMatchObject({ code: 'PARSE_FAILED' });
  });

  it('omits attachment content above the inline limit but keeps size and sha256', async () => {
    const { raw, attachment } = makeLargeMessage(5 * 1024 * 1024);
    const small = await parseMessage(raw, { maxInlineAttachmentBytes: 1024 * 1024 });
    expect(small.attachments[0]).toEqual({
      filename: 'big.bin',
      contentType: 'application/octet-stream',
      size: attachment.length,
      sha256: createHash('sha256').update(attachment).digest('hex'),
      contentId: null,
      inline: false,
      contentOmitted: true,
    });
    const big = await parseMessage(raw, { maxInlineAttachmentBytes: MB10 });
    expect(Buffer.from(big.attachments[0]?.content ?? '', 'base64').equals(attachment)).toBe(true);
  });

  it('builds the payload with the contract key order', async () => {
    const p = await parse('plain');
    const payload = buildMessageReceivedPayload({ id: 'msg_1', account: 'support', origin: { kind: 'imap', mailbox: 'INBOX', uid: 42, uidValidity: 7 } }, p);
    expect(Object.keys(payload)).toEqual([
      'event', 'id', 'account', 'mailbox', 'uid', 'uidValidity', 'uidl', 'messageId', 'inReplyTo', 'references', 'date',
      'from', 'to', 'cc', 'replyTo', 'subject', 'text', 'html', 'attachments', 'autoSubmitted', 'size', 'truncated', 'truncatedFields',
    ]);
  });
});
