import { createHash } from 'node:crypto';
import { simpleParser, type AddressObject, type Attachment, type ParsedMail } from 'mailparser';
import { MailgateError } from '../errors.js';
import { isAutoSubmitted } from './auto-submitted.js';

export interface Address {
  name: string;
  address: string;
}

export interface AttachmentPayload {
  filename: string | null;
  contentType: string;
  size: number;
  sha256: string;
  contentId: string | null;
  inline: boolean;
  content?: string;
  contentOmitted?: true;
}

/** The fields of `message.received` that come from the message itself. */
export interface ParsedMessage {
  messageId: string | null;
  inReplyTo: string | null;
  references: string[];
  date: string | null;
  from: Address | null;
  to: Address[];
  cc: Address[];
  replyTo: Address[];
  subject: string;
  text: string | null;
  html: string | null;
  attachments: AttachmentPayload[];
  autoSubmitted: boolean;
  size: number;
}

export interface MessageEnvelope {
  id: string;
  account: string;
  mailbox: string;
  uid: number | null;
  uidValidity: number | null;
  uidl: string | null;
}

export type MessageReceivedPayload = { event: 'message.received' } & MessageEnvelope & ParsedMessage;

/** Builds the webhook body with keys in the contract's order. */
export function buildMessageReceivedPayload(env: MessageEnvelope, p: ParsedMessage): MessageReceivedPayload {
  return {
    event: 'message.received',
    id: env.id,
    account: env.account,
    mailbox: env.mailbox,
    uid: env.uid,
    uidValidity: env.uidValidity,
    uidl: env.uidl,
    messageId: p.messageId,
    inReplyTo: p.inReplyTo,
    references: p.references,
    date: p.date,
    from: p.from,
    to: p.to,
    cc: p.cc,
    replyTo: p.replyTo,
    subject: p.subject,
    text: p.text,
    html: p.html,
    attachments: p.attachments,
    autoSubmitted: p.autoSubmitted,
    size: p.size,
  };
}

const HEADER_LINE = /^[!-9;-~]+:/;

/**
 * What we call malformed: mailparser accepts almost anything, so we refuse
 * only input that is not a message at all: empty, or not starting with a
 * header field. Everything else is parsed as well as mailparser can.
 */
function assertLooksLikeMessage(raw: Buffer): void {
  if (raw.length === 0) throw new MailgateError('PARSE_FAILED', 'the message is empty');
  const firstLine = raw.subarray(0, Math.min(raw.length, 1000)).toString('latin1').split(/\r?\n/, 1)[0] ?? '';
  if (!HEADER_LINE.test(firstLine)) {
    throw new MailgateError('PARSE_FAILED', 'the message does not start with a header field');
  }
}

export async function parseMessage(raw: Buffer, opts: { maxInlineAttachmentBytes: number }): Promise<ParsedMessage> {
  assertLooksLikeMessage(raw);
  let mail: ParsedMail;
  try {
    mail = await simpleParser(raw, {
      // html keeps cid: links as they are (the contract); no text → html invention.
      keepCidLinks: true,
      skipImageLinks: true,
      skipTextToHtml: true,
      skipTextLinks: true,
    });
  } catch (cause) {
    throw new MailgateError('PARSE_FAILED', `mailparser could not read the message: ${(cause as Error).message}`, { cause });
  }
  const header = (name: string): string | undefined => {
    const v = mail.headers.get(name);
    if (v === undefined || v === null) return undefined;
    if (typeof v === 'string') return v;
    if (typeof v === 'object' && 'value' in v) {
      const params = 'params' in v && v.params ? Object.entries(v.params as Record<string, string>).map(([k, p]) => `; ${k}=${p}`).join('') : '';
      return `${String((v as { value: unknown }).value)}${params}`;
    }
    if (typeof v === 'object' && 'text' in v) return String((v as { text: unknown }).text);
    return String(v);
  };
  return {
    messageId: bracket(mail.messageId),
    inReplyTo: bracket(firstId(mail.inReplyTo)),
    references: toIdList(mail.references),
    date: mail.date && !Number.isNaN(mail.date.getTime()) ? mail.date.toISOString() : null,
    from: addresses(mail.from)[0] ?? null,
    to: addresses(mail.to),
    cc: addresses(mail.cc),
    replyTo: addresses(mail.replyTo),
    subject: mail.subject ?? '',
    text: mail.text ?? null,
    html: typeof mail.html === 'string' ? mail.html : null,
    attachments: mail.attachments.map((a) => attachment(a, opts.maxInlineAttachmentBytes)),
    autoSubmitted: isAutoSubmitted(header),
    size: raw.length,
  };
}

function attachment(a: Attachment, maxInline: number): AttachmentPayload {
  const content = a.content;
  const out: AttachmentPayload = {
    filename: a.filename ?? null,
    contentType: a.contentType,
    size: content.length,
    sha256: createHash('sha256').update(content).digest('hex'),
    contentId: a.contentId ? a.contentId.replace(/^<|>$/g, '') : null,
    inline: a.contentDisposition === 'inline' || a.related === true,
  };
  if (content.length > maxInline) out.contentOmitted = true;
  else out.content = content.toString('base64');
  return out;
}

function addresses(obj: AddressObject | AddressObject[] | undefined): { name: string; address: string }[] {
  if (!obj) return [];
  const list = Array.isArray(obj) ? obj : [obj];
  const out: { name: string; address: string }[] = [];
  const add = (v: { name?: string; address?: string; group?: { name?: string; address?: string }[] }) => {
    if (v.group) v.group.forEach(add);
    else if (v.address) out.push({ name: v.name ?? '', address: v.address });
  };
  for (const o of list) o.value.forEach(add);
  return out;
}

/** Message-IDs keep their angle brackets, as in the headers (contract). */
function bracket(id: string | undefined | null): string | null {
  if (!id) return null;
  const t = id.trim();
  if (!t) return null;
  return t.startsWith('<') ? t : `<${t}>`;
}

function firstId(v: string | string[] | undefined): string | undefined {
  if (Array.isArray(v)) return v[0];
  return v?.match(/<[^<>]+>/)?.[0] ?? v;
}

function toIdList(v: string | string[] | undefined): string[] {
  if (!v) return [];
  const parts = (Array.isArray(v) ? v : [v]).flatMap((s) => s.match(/<[^<>]+>/g) ?? s.split(/\s+/).filter(Boolean));
  return parts.map((p) => bracket(p)).filter((p): p is string => p !== null);
}

/** The `message.received` body for a stored message, serialised once (the signature covers these bytes). */
export async function renderMessageReceived(raw: Buffer, env: MessageEnvelope, opts: { maxInlineAttachmentBytes: number }): Promise<string> {
  return JSON.stringify(buildMessageReceivedPayload(env, await parseMessage(raw, opts)));
}
