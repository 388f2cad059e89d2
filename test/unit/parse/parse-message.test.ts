import type { RenderNote } from '../../../src/parse/parse-message.js';
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
      replyText: 'The printer on floor 3 is on fire.\nPlease send help.',
      issueKeys: [],
      autoType: null,
      bounce: null,
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
    const ooo = await parse('auto-reply');
    expect(ooo).toMatchObject({ autoSubmitted: true, autoType: 'auto_reply', bounce: null });
    const bounce = await parse('bounce');
    expect(bounce).toMatchObject({ autoSubmitted: true, autoType: 'bounce' });
    expect(bounce.bounce).not.toBeNull();
    expect(inspectMessage(loadFixture('auto-reply'))).toMatchObject({ messageId: '<ooo-6@example.com>', autoSubmitted: true });
    expect(inspectMessage(loadFixture('bounce')).autoSubmitted).toBe(true);
    expect(inspectMessage(loadFixture('plain'))).toEqual({ messageId: '<plain-1@example.com>', autoSubmitted: false, inReplyTo: null, references: [] });
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
      'conversationId', 'replyText', 'issueKeys', 'autoType', 'bounce',
    ]);
    // Without a conversation from the ingest step: the root from the headers (here its own Message-ID).
    expect(payload.conversationId).toMatch(/^cnv_[0-9a-f]{32}$/);
    const again = buildMessageReceivedPayload({ id: 'msg_2', account: 'support', origin: { kind: 'pop3', uidl: 'u' }, conversationId: 'cnv_known' }, p);
    expect(again.conversationId).toBe('cnv_known');
  });

  it('replyText is text, with a note for the log, when extraction gives up; issue keys follow the webhook pattern', async () => {
    const body = Array.from({ length: 6000 }, (_, i) => `line ${i} of a long report, nothing quoted`).join('\r\n');
    const raw = Buffer.from(`From: a@example.com\r\nTo: b@example.com\r\nSubject: Re: [SUP-12] ABC-1 and SUP-12 again\r\nMessage-ID: <long@example.com>\r\n\r\n${body}\r\n`);
    const notes: RenderNote[] = [];
    const p = await parseMessage(raw, { maxInlineAttachmentBytes: 1024 }, notes);
    expect(p.text?.length).toBeGreaterThan(128 * 1024);
    expect(p.replyText).toBe(p.text);
    expect(notes).toEqual([{ kind: 'reply_text_failed', reason: 'too_large', error: null }]);
    expect(p.issueKeys).toEqual(['SUP-12', 'ABC-1']);
    expect((await parseMessage(raw, { maxInlineAttachmentBytes: 1024, issueKeyPattern: null })).issueKeys).toEqual([]);
    expect((await parseMessage(raw, { maxInlineAttachmentBytes: 1024, issueKeyPattern: '\\[(?<key>[A-Z]+-\\d+)\\]' })).issueKeys).toEqual(['SUP-12']);
  });

  it('replyText of a reply drops the quote, and is cut with text to the body budget, never longer', async () => {
    const p = await parse('reply');
    expect(p.replyText.length).toBeLessThan((p.text ?? '').length);
    expect(p.text).toContain(p.replyText.split('\n')[0]);
    const long = `Hello,\r\n${'x'.repeat(200_000)}\r\n\r\nOn Mon, 1 Dec 2026 at 10:00, Bob <bob@example.com> wrote:\r\n> old\r\n`;
    const raw = Buffer.from(`From: a@example.com\r\nSubject: s\r\n\r\n${long}`);
    const cut = await parseMessage(raw, { maxInlineAttachmentBytes: 1024, maxBodyBytes: 256 * 1024 });
    expect(cut.truncatedFields).toContain('text');
    expect(cut.replyText.length).toBeLessThanOrEqual((cut.text ?? '').length);
  });
});
