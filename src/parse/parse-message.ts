import { convert, type HtmlToTextOptions } from 'html-to-text';
import { simpleParser, type AddressObject, type MailParserOptions } from 'mailparser';
import { readMail, type ReadAttachment, type ReadMail } from './mail-reader.js';
import { MailgateError } from '../errors.js';
import { originFields, type MessageOrigin, type OriginFields } from '../store/origin.js';
import { isAutoSubmitted } from './auto-submitted.js';
import { autoTypeOf, bounceOf, type AutoType, type Bounce, type MimePart } from './auto-type.js';
import { conversationIdOfRoot, conversationRootOf } from './conversation.js';
import { compileIssueKeyPattern, issueKeysOf, type IssueKeyMatcher } from './issue-keys.js';
import { extractReplyText, type ReplyTextFailure } from './reply-text.js';
import { base64Bytes, fitJsonString } from './json-size.js';
import { toCrlf } from './line-endings.js';

/**
 * MIME parts a message may have. mailparser's splitter refuses more than
 * 1,000 by default, which turns legitimate digests and mail merges into
 * failures; beyond this bound a message is reported as message.failed.
 */
export const MAX_MIME_PARTS = 10_000;
/**
 * Multipart containers (each declares a boundary) a message may have.
 * mailparser walks every ancestor boundary for every line and recurses per
 * level: 5,000 nested levels overflow its stack, 20,000 took 26 s. No real
 * message nests its parts more than a few levels deep.
 */
export const MAX_MULTIPART_CONTAINERS = 1_000;
/**
 * An HTML-only message gets its `text` made from at most this much of its
 * HTML (the `html` field still carries all of it, within the body budget).
 */
export const MAX_HTML_TO_TEXT_CHARS = 1024 * 1024;
/**
 * mailparser's own conversion wraps words at 80 columns, which costs
 * quadratic time on tables (1 MB of `<td>` took 52 s, a 500 × 100 table
 * 13 s); without wrapping, with tables as plain blocks and node limits,
 * both take under a second and a half.
 */
const HTML_TO_TEXT: HtmlToTextOptions = {
  wordwrap: false,
  limits: { maxDepth: 200, maxChildNodes: 50_000, ellipsis: '…' },
  selectors: [
    { selector: 'table', format: 'block' },
    { selector: 'tr', format: 'block' },
    { selector: 'td', format: 'inline' },
    { selector: 'th', format: 'inline' },
    { selector: 'img', format: 'skip' },
  ],
};

/** The text of an HTML-only message, from at most MAX_HTML_TO_TEXT_CHARS of it; empty when it cannot be read. */
export function textOfHtml(html: string): string {
  try {
    return convert(html.length > MAX_HTML_TO_TEXT_CHARS ? html.slice(0, MAX_HTML_TO_TEXT_CHARS) : html, HTML_TO_TEXT);
  } catch {
    return '';
  }
}

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
  /** What the sender added (quoted history and signature removed); `text` when extraction gave up. */
  replyText: string;
  /** Matches of the webhook's issueKeyPattern in the subject. */
  issueKeys: string[];
  autoType: AutoType | null;
  bounce: Bounce | null;
  /** True when `text` or `html` was cut to fit the webhook's body budget (then `truncatedFields` names them). */
  truncated: boolean;
  truncatedFields: ('text' | 'html')[];
}

/** What a webhook body may hold (per webhook). */
export interface BodyLimits {
  /** An attachment larger than this comes without content (contentOmitted). */
  maxInlineAttachmentBytes: number;
  /**
   * The whole JSON body at most (text, html and attachment contents share
   * it; each of text and html gets at most a quarter of it, attachments the
   * rest, in order). Default: no budget (tests, tools).
   */
  maxBodyBytes?: number;
}

/** What a webhook asks of a body besides its limits (contract v2, "What the issue pipeline receives"). */
export interface RenderOptions extends BodyLimits {
  /** The webhook's issueKeyPattern: absent → Jira keys, null → off (no keys). Checked by the config loader. */
  issueKeyPattern?: string | null;
  /** The account's own addresses: a list server that is the mailbox itself is not bulk mail. */
  ownAddresses?: readonly string[];
}

/** Something the parse noticed that the caller logs (the parse thread has no logger). */
export interface RenderNote {
  kind: 'reply_text_failed' | 'auto_type_failed';
  reason: ReplyTextFailure;
  error: string | null;
}

/**
 * Bench only: `MAILGATE_BENCH_NO_PIPELINE_FIELDS=1` skips reply extraction,
 * issue keys, the auto type and the ingest step's conversation lookups (the
 * fields get their empty values, conversationId its header root), to
 * measure what they cost (bench/ingest.bench.ts). Read once, when the module
 * loads (parse threads inherit the environment).
 */
export const PIPELINE_FIELDS = process.env.MAILGATE_BENCH_NO_PIPELINE_FIELDS !== '1';

/** Room kept for the envelope fields (id, account, mailbox…) the caller adds around the parsed fields. */
const ENVELOPE_SLACK_BYTES = 4 * 1024;

/** What the payload says about a message besides its content: its id, account and origin. */
export interface MessageEnvelope {
  id: string;
  account: string;
  origin: MessageOrigin;
  /**
   * The conversation the ingest step resolved (it knows the store); absent or
   * null for a message stored before conversations existed: then the
   * thread's root from the headers alone.
   */
  conversationId?: string | null;
}

export type MessageReceivedPayload = { event: 'message.received'; id: string; account: string } & OriginFields &
  Omit<ParsedMessage, 'replyText' | 'issueKeys' | 'autoType' | 'bounce'> & {
    conversationId: string;
    replyText: string;
    issueKeys: string[];
    autoType: AutoType | null;
    bounce: Bounce | null;
  };

/** Builds the webhook body with keys in the contract's order (the origin as its flat fields). */
export function buildMessageReceivedPayload(env: MessageEnvelope, p: ParsedMessage): MessageReceivedPayload {
  const { mailbox, uid, uidValidity, uidl } = originFields(env.origin);
  return {
    event: 'message.received',
    id: env.id,
    account: env.account,
    mailbox,
    uid,
    uidValidity,
    uidl,
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
    truncated: p.truncated,
    truncatedFields: p.truncatedFields,
    conversationId: env.conversationId ?? conversationIdOfRoot(conversationRootOf({ messageId: p.messageId, inReplyTo: p.inReplyTo, references: p.references, id: env.id })),
    replyText: p.replyText,
    issueKeys: p.issueKeys,
    autoType: p.autoType,
    bounce: p.bounce,
  };
}

/** Compiled issue key patterns by source (a parse thread sees a handful of webhooks). */
const matchers = new Map<string, IssueKeyMatcher | null>();
function matcherFor(pattern: string | null | undefined): IssueKeyMatcher | null {
  const key = pattern === null ? '\u0000off' : (pattern ?? '\u0000default');
  let m = matchers.get(key);
  if (m === undefined) {
    m = compileIssueKeyPattern(pattern);
    if (matchers.size > 64) matchers.clear();
    matchers.set(key, m);
  }
  return m;
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

/** How often `needle` occurs in `raw` (no copy of the message). */
function occurrences(raw: Buffer, needle: string, stopAfter: number): number {
  let n = 0;
  for (let i = raw.indexOf(needle, 0, 'latin1'); i !== -1 && n <= stopAfter; i = raw.indexOf(needle, i + needle.length, 'latin1')) n++;
  return n;
}

export async function parseMessage(raw: Buffer, opts: RenderOptions, notes: RenderNote[] = []): Promise<ParsedMessage> {
  assertLooksLikeMessage(raw);
  const containers = occurrences(raw, 'oundary=', MAX_MULTIPART_CONTAINERS) + occurrences(raw, 'OUNDARY=', MAX_MULTIPART_CONTAINERS);
  if (containers > MAX_MULTIPART_CONTAINERS) {
    throw new MailgateError('PARSE_FAILED', `the message declares more than ${MAX_MULTIPART_CONTAINERS.toLocaleString('en')} multipart boundaries`);
  }
  let mail: ReadMail;
  const budget = opts.maxBodyBytes ?? Number.POSITIVE_INFINITY;
  // Attachment content beyond what a body can carry is hashed as it streams, never kept:
  // attachments get at least half of the budget (text and html a quarter each at most), in base64.
  const keep = { perAttachment: opts.maxInlineAttachmentBytes, total: Number.isFinite(budget) ? Math.floor((budget * 3) / 4) : Number.POSITIVE_INFINITY };
  try {
    mail = await readMail(toCrlf(raw), {
      // html keeps cid: links as they are (the contract); no text → html invention.
      keepCidLinks: true,
      skipImageLinks: true,
      skipTextToHtml: true,
      skipTextLinks: true,
      // Text is made from HTML here, with bounds (textOfHtml), not by mailparser.
      skipHtmlToText: true,
      // Passed through to mailsplit's Splitter.
      maxChildNodes: MAX_MIME_PARTS,
      // An inline message/rfc822 is kept as an attachment instead of being
      // parsed into the message: mailparser never settles on one without
      // content (it waits for a decoder nobody reads), and a forwarded
      // message whole is what a pipeline wants anyway.
      ignoreEmbedded: true,
    } as MailParserOptions, keep);
  } catch (cause) {
    const message = (cause as Error).message;
    if (/child nodes exceeded/i.test(message)) {
      throw new MailgateError('PARSE_FAILED', `the message has more than ${MAX_MIME_PARTS.toLocaleString('en')} MIME parts`, { cause });
    }
    throw new MailgateError('PARSE_FAILED', `mailparser could not read the message: ${message}`, { cause });
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
  const meta = {
    messageId: bracket(mail.messageId),
    inReplyTo: bracket(firstId(mail.inReplyTo)),
    references: toIdList(mail.references),
    date: readableDate(mail),
    from: addresses(mail.from)[0] ?? null,
    to: addresses(mail.to),
    cc: addresses(mail.cc),
    replyTo: addresses(mail.replyTo),
    subject: mail.subject ?? '',
  };
  const attachments = mail.attachments.map(attachmentMeta);
  const html = typeof mail.html === 'string' ? mail.html : null;
  const text = mail.text ? mail.text : html !== null ? textOfHtml(html) : (mail.text ?? null);
  // Bench baseline (PIPELINE_FIELDS off): the fields empty, so that their whole cost is measured.
  const pipeline = PIPELINE_FIELDS ? pipelineFields(mail, text, html, opts, notes) : { replyText: '', issueKeys: [], autoType: null, bounce: null };
  // What the body holds besides the contents: bounded by mailsplit's header limits, but counted.
  const fixed =
    Buffer.byteLength(JSON.stringify({ ...meta, text: null, html: null, attachments, issueKeys: pipeline.issueKeys, bounce: pipeline.bounce })) + ENVELOPE_SLACK_BYTES;
  if (fixed > budget) {
    throw new MailgateError('PARSE_FAILED', `the message's headers and attachment list alone take ${fixed} bytes, more than the webhook's maxBodyBytes (${budget})`, {
      details: { reason: 'too_large' },
    });
  }
  let room = budget - fixed;
  const cap = Math.floor((budget - fixed) / 4);
  // Fast path (nearly every message): even if every character of text and html took the
  // 6 bytes of a \u escape, both fit their quarter and every attachment that can be sent
  // fits what is left. Then nothing needs measuring; the body is checked once it is built.
  const worst = (v: string | null) => (v === null ? 0 : 6 * v.length + 2);
  const sendable = mail.attachments.filter((a) => a.content !== null && a.size <= opts.maxInlineAttachmentBytes);
  const attachmentBytes = sendable.reduce((n, a) => n + base64Bytes(a.size) + 2, 0);
  // replyText is never longer than text: it takes at most what text takes.
  const roomy = worst(text) <= cap && worst(html) <= cap && attachmentBytes <= room - 2 * worst(text) - worst(html);
  const truncatedFields: ('text' | 'html')[] = [];
  const fit = (value: string | null, field: 'text' | 'html'): string | null => {
    if (value === null || budget === Number.POSITIVE_INFINITY || roomy) return value;
    const cut = fitJsonString(value, Math.min(cap, room));
    if (cut.truncated) truncatedFields.push(field);
    room -= cut.bytes;
    return cut.text;
  };
  const fittedText = fit(text, 'text');
  const fittedHtml = fit(html, 'html');
  let replyText = pipeline.replyText;
  if (!roomy && budget !== Number.POSITIVE_INFINITY) {
    // Cut like text, and never longer than the text that is sent (the contract).
    const cut = fitJsonString(replyText.length > (fittedText ?? '').length ? replyText.slice(0, (fittedText ?? '').length) : replyText, Math.min(cap, room));
    replyText = cut.text;
    room -= cut.bytes;
  }
  // Attachments in message order; one that does not fit the rest comes without content.
  mail.attachments.forEach((a, i) => {
    const out = attachments[i];
    if (!out) return;
    const cost = base64Bytes(a.size) + 2;
    if (a.content === null || a.size > opts.maxInlineAttachmentBytes || (!roomy && cost > room)) {
      out.contentOmitted = true;
      return;
    }
    out.content = a.content.toString('base64');
    room -= cost;
  });
  return {
    ...meta,
    text: fittedText,
    html: fittedHtml,
    attachments,
    autoSubmitted: isAutoSubmitted(header) || pipeline.autoType !== null,
    size: raw.length,
    truncated: truncatedFields.length > 0,
    truncatedFields,
    ...pipeline,
    replyText,
  };
}

/**
 * replyText, issueKeys, autoType and bounce, from the whole text and html
 * (before any cut for the body budget). `replyText` is then cut like
 * `text` so it is never longer.
 */
function pipelineFields(
  mail: ReadMail,
  text: string | null,
  html: string | null,
  opts: RenderOptions,
  notes: RenderNote[],
): Pick<ParsedMessage, 'replyText' | 'issueKeys' | 'autoType' | 'bounce'> {
  // Reply extraction never throws and is bounded in time (REPLY_TEXT_TIME_BUDGET_MS); when it gives up, replyText is text.
  const reply = extractReplyText({ text, html, textFromHtml: !mail.text && html !== null });
  if (!reply.ok && reply.reason !== undefined) notes.push({ kind: 'reply_text_failed', reason: reply.reason, error: reply.error?.message ?? null });
  // mailparser leaves contentType unset on some broken parts.
  const parts: MimePart[] = mail.attachments.map((a) => ({ contentType: typeof a.contentType === 'string' ? a.contentType : '', content: a.content ?? EMPTY }));
  let autoType: AutoType | null = null;
  let bounce: Bounce | null = null;
  try {
    autoType = autoTypeOf(mail.headerLines, parts, { ownAddresses: opts.ownAddresses ?? [] });
    bounce = autoType === 'bounce' ? bounceOf(mail.headerLines, parts, text) : null;
  } catch (err) {
    // A bug in reading hostile headers must not hold the message back: it is delivered as a person's mail, and logged.
    notes.push({ kind: 'auto_type_failed', reason: 'error', error: err instanceof Error ? err.message : String(err) });
  }
  return {
    replyText: reply.replyText,
    issueKeys: issueKeysOf(mail.subject, matcherFor(opts.issueKeyPattern)),
    autoType,
    bounce,
  };
}
const EMPTY = Buffer.alloc(0);

/**
 * The Date header as an ISO string, or null when it cannot be read:
 * mailparser gives an unreadable or absent-looking date the current time,
 * which a pipeline would take for the sending time.
 */
function readableDate(mail: ReadMail): string | null {
  if (!mail.date || Number.isNaN(mail.date.getTime())) return null;
  const line = mail.headerLines.find((l) => l.key === 'date')?.line;
  if (line === undefined) return null;
  // RFC 5322 comments, e.g. "(PST)", are not dates.
  const value = line.replace(/^date:\s*/i, '').replace(/\([^()]*\)/g, ' ').trim();
  return Number.isNaN(Date.parse(value)) ? null : mail.date.toISOString();
}

/** An attachment's description; its content is added by parseMessage when it fits. */
function attachmentMeta(a: ReadAttachment): AttachmentPayload {
  return {
    filename: a.filename ?? null,
    contentType: a.contentType,
    size: a.size,
    sha256: a.sha256,
    contentId: a.contentId ? a.contentId.replace(/^<|>$/g, '') : null,
    inline: a.contentDisposition === 'inline' || a.related === true,
  };
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

/**
 * The `message.received` body for a stored message, serialised once as
 * UTF-8 (the signature covers these bytes; a parse thread transfers the
 * buffer to the main thread without a copy).
 */
export async function renderMessageReceived(raw: Buffer, env: MessageEnvelope, opts: RenderOptions, notes: RenderNote[] = []): Promise<Buffer> {
  const body = Buffer.from(JSON.stringify(buildMessageReceivedPayload(env, await parseMessage(raw, opts, notes))), 'utf8');
  if (opts.maxBodyBytes !== undefined && body.length > opts.maxBodyBytes) {
    // parseMessage's accounting keeps this from happening; a body over the budget is still never sent.
    throw new MailgateError('PARSE_FAILED', `the webhook body would take ${body.length} bytes, more than maxBodyBytes (${opts.maxBodyBytes})`, {
      details: { reason: 'too_large' },
    });
  }
  return body;
}

/** What the headers of a message that was not downloaded say (message.failed, reason too_large). */
export interface HeaderSummary {
  messageId: string | null;
  subject: string | null;
  from: Address | null;
}

/** Header blocks read for a summary at most (a hostile 10 MB header line is not read whole). */
export const MAX_SUMMARY_HEADER_BYTES = 256 * 1024;

/** Reads Message-ID, Subject and From from a header block; unreadable ones are null. Never throws. */
export async function summarizeHeaders(headers: Buffer): Promise<HeaderSummary> {
  const none: HeaderSummary = { messageId: null, subject: null, from: null };
  if (headers.length === 0) return none;
  try {
    const block = toCrlf(headers.subarray(0, MAX_SUMMARY_HEADER_BYTES));
    const mail = await simpleParser(Buffer.concat([block, Buffer.from('\r\n\r\n')]), { skipHtmlToText: true, skipTextToHtml: true, skipTextLinks: true, skipImageLinks: true });
    return { messageId: bracket(mail.messageId), subject: mail.subject ?? null, from: addresses(mail.from)[0] ?? null };
  } catch {
    return none;
  }
}
