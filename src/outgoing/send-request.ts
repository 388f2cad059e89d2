import addressparser from 'nodemailer/lib/addressparser';
import { z } from 'zod';
import { MailgateError } from '../errors.js';

/** The decoded size of all attachments plus bodies may not exceed this (Gmail's and Microsoft 365's limit is 25–35 MB). */
export const MAX_MESSAGE_BYTES = 25 * 1024 * 1024;
/** The request body limit: base64 makes attachments 4/3 larger, plus JSON. */
export const MAX_REQUEST_BYTES = Math.ceil((MAX_MESSAGE_BYTES * 4) / 3) + 1024 * 1024;
const MAX_RECIPIENTS = 100;

/** Headers the request sets through its own fields, or that we set: `headers` may not override them. */
const RESERVED_HEADERS = new Set([
  'from', 'to', 'cc', 'bcc', 'subject', 'date', 'message-id', 'in-reply-to', 'references', 'reply-to',
  'mime-version', 'content-type', 'content-transfer-encoding', 'sender',
]);

/** One mailbox (`a@b.c` or `Name <a@b.c>`) as nodemailer's own parser reads it. */
function parseMailbox(value: string): { name: string; address: string } | null {
  const list = addressparser(value, { flatten: true });
  if (list.length !== 1) return null;
  const [m] = list;
  if (!m?.address || !/^[^\s@<>()",;:]+@[^\s@<>()",;:]+\.[^\s@<>()",;:]+$/.test(m.address)) return null;
  return { name: m.name, address: m.address };
}

const mailbox = z
  .string()
  .max(998)
  .refine((v) => parseMailbox(v) !== null, { message: 'not an email address (expected a@example.com or "Name <a@example.com>")' });
const mailboxes = z
  .union([mailbox, z.array(mailbox).max(MAX_RECIPIENTS, `at most ${MAX_RECIPIENTS} addresses`)])
  .transform((v) => (Array.isArray(v) ? v : [v]));
const messageId = z
  .string()
  .max(998)
  .transform((v) => v.trim())
  .refine((v) => /^<?[^<>\s]+@[^<>\s]+>?$/.test(v), { message: 'not a Message-ID (expected <id@host>)' })
  .transform((v) => (v.startsWith('<') ? v : `<${v}>`));
const base64 = z
  .string()
  .transform((v) => v.replace(/\s+/g, ''))
  .refine((v) => v.length % 4 === 0 && /^[A-Za-z0-9+/]*={0,2}$/.test(v), { message: 'not valid base64' });

const attachment = z.strictObject({
  filename: z.string().min(1).max(255).refine((v) => !/[\r\n/\\]/.test(v), { message: 'must be a plain file name' }),
  contentType: z
    .string()
    .regex(/^[\w.+-]+\/[\w.+-]+$/, 'not a MIME type (expected type/subtype)')
    .default('application/octet-stream'),
  content: base64,
  contentId: z.string().max(255).optional(),
});

export const sendRequestSchema = z
  .strictObject({
    from: mailbox.optional(),
    replyTo: mailbox.optional(),
    to: mailboxes.default([]),
    cc: mailboxes.default([]),
    bcc: mailboxes.default([]),
    subject: z.string().max(998).refine((v) => !/[\r\n]/.test(v), { message: 'must not contain line breaks' }).default(''),
    text: z.string().optional(),
    html: z.string().optional(),
    attachments: z.array(attachment).max(100).default([]),
    inReplyTo: messageId.optional(),
    references: z
      .union([messageId, z.array(messageId).max(100)])
      .transform((v) => (Array.isArray(v) ? v : [v]))
      .default([]),
    headers: z
      .record(
        z.string().regex(/^[!-9;-~]+$/, 'not a header name'),
        z.string().max(998).refine((v) => !/[\r\n]/.test(v), { message: 'must not contain line breaks' }),
      )
      .default({}),
    /** Send even though the loop guard would refuse a reply to an automatic message. */
    force: z.boolean().default(false),
  })
  .superRefine((r, ctx) => {
    if (r.to.length + r.cc.length + r.bcc.length === 0) {
      ctx.addIssue({ code: 'custom', path: ['to'], message: 'at least one recipient (to, cc or bcc) is required' });
    }
    if (r.text === undefined && r.html === undefined) {
      ctx.addIssue({ code: 'custom', path: ['text'], message: 'text or html is required' });
    }
    for (const name of Object.keys(r.headers)) {
      if (RESERVED_HEADERS.has(name.toLowerCase())) {
        ctx.addIssue({ code: 'custom', path: ['headers', name], message: `${name} is set by mailgate or by its own field; it cannot be given in headers` });
      }
    }
    const bytes =
      Buffer.byteLength(r.text ?? '') +
      Buffer.byteLength(r.html ?? '') +
      r.attachments.reduce((n, a) => n + Math.floor((a.content.length * 3) / 4), 0);
    if (bytes > MAX_MESSAGE_BYTES) {
      ctx.addIssue({
        code: 'custom',
        path: ['attachments'],
        message: `the message is ${(bytes / 1048576).toFixed(1)} MB; the limit is ${MAX_MESSAGE_BYTES / 1048576} MB`,
      });
    }
  });

export type SendRequest = z.output<typeof sendRequestSchema>;

/** `to[1]`, `headers.X-Foo`, `attachments[0].content`. */
function fieldName(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out ? `.${String(p)}` : String(p);
  return out || 'body';
}

/** Validates a send body; a 400 naming the first bad field(s) otherwise. */
export function parseSendRequest(body: unknown): SendRequest {
  const r = sendRequestSchema.safeParse(body ?? null);
  if (r.success) return r.data;
  const issues = r.error.issues.slice(0, 5).map((i) => `${fieldName(i.path)}: ${i.message}`);
  throw new MailgateError('BAD_REQUEST', issues.join('; '), { details: { fields: r.error.issues.map((i) => fieldName(i.path)) } });
}

/** Every envelope recipient's bare address, lower-cased. */
export function recipientAddresses(r: SendRequest): string[] {
  return [...r.to, ...r.cc, ...r.bcc].map((v) => parseMailbox(v)?.address.toLowerCase() ?? v.toLowerCase());
}

export function bareAddress(value: string): string {
  return (parseMailbox(value)?.address ?? value).toLowerCase();
}
