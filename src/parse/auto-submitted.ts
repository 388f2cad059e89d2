import { msgIdsOf } from './conversation.js';

/**
 * Is this message machine-generated? Pipelines must not open issues for (or
 * reply to) auto-replies and bounces, or two robots mail each other forever.
 * Header names are lower case.
 */
export function isAutoSubmitted(header: (name: string) => string | undefined): boolean {
  // RFC 3834 §5: any value other than "no" marks an automatic message.
  const auto = header('auto-submitted')?.trim().toLowerCase();
  if (auto && auto !== 'no') return true;
  const precedence = header('precedence')?.trim().toLowerCase();
  if (precedence && ['bulk', 'junk', 'list', 'auto_reply'].includes(precedence)) return true;
  if (header('x-autoreply') !== undefined || header('x-autorespond') !== undefined) return true;
  // Microsoft sets this on out-of-office and auto replies.
  const suppress = header('x-auto-response-suppress')?.toLowerCase() ?? '';
  if (/\b(all|oof|autoreply)\b/.test(suppress)) return true;
  // Delivery status notifications (RFC 3464) and bounces from the mailer daemon.
  const type = header('content-type')?.toLowerCase() ?? '';
  if (type.startsWith('multipart/report') && /report-type\s*=\s*"?delivery-status/.test(type)) return true;
  const from = header('from')?.toLowerCase() ?? '';
  return /(^|[<\s"])(mailer-daemon|postmaster)@/.test(from);
}

/**
 * The header block of a raw message, unfolded, as a lookup. Cheap: reads
 * only up to the first empty line; used at ingest, before the full parse.
 */
export function readHeaders(raw: Buffer): (name: string) => string | undefined {
  let end = raw.indexOf('\r\n\r\n');
  if (end < 0) end = raw.indexOf('\n\n');
  const head = raw.subarray(0, end < 0 ? Math.min(raw.length, 64 * 1024) : end).toString('latin1');
  const map = new Map<string, string>();
  let current: string | null = null;
  for (const line of head.split(/\r?\n/)) {
    if (/^[ \t]/.test(line) && current) {
      map.set(current, `${map.get(current) ?? ''} ${line.trim()}`);
      continue;
    }
    const m = /^([!-9;-~]+):[ \t]*(.*)$/.exec(line);
    if (!m?.[1]) {
      current = null;
      continue;
    }
    current = m[1].toLowerCase();
    // First occurrence wins (a message's own header comes before any trace copies).
    if (!map.has(current)) map.set(current, m[2] ?? '');
    else current = null;
  }
  return (name) => map.get(name);
}

/** What ingest needs before parsing: never throws. */
export function inspectMessage(raw: Buffer): { messageId: string | null; autoSubmitted: boolean; inReplyTo: string | null; references: string[] } {
  const header = readHeaders(raw);
  const id = header('message-id')?.trim().match(/<[^<>\s]+>/)?.[0] ?? null;
  const inReplyTo = msgIdsOf(header('in-reply-to') ?? '', 1)[0] ?? null;
  // The conversation needs the first and last entries only (conversation.ts); the header is bounded by readHeaders' 64 KB.
  const references = msgIdsOf(header('references') ?? '');
  return { messageId: id, autoSubmitted: isAutoSubmitted(header), inReplyTo, references };
}
