import { randomUUID } from 'node:crypto';

/**
 * The relay keeps the application's bytes as they came: headers as written,
 * body untouched. RFC 5322 §3.6 requires `Date` and expects `Message-ID`;
 * RFC 6409 §8.2 and §8.3 let a submission server add them when they are
 * missing, which old applications often leave out. Nothing else is added,
 * removed or reordered.
 */

const LF = 0x0a;
const CR = 0x0d;
const SP = 0x20;
const TAB = 0x09;

/** Which of the headers we may add the header section already has. */
export interface PresentHeaders {
  messageId: boolean;
  date: boolean;
}

/**
 * Reads the header section (up to the first empty line, or the first line
 * that is neither a field nor a folded continuation) for `Message-ID` and
 * `Date` fields. Field names are case-insensitive; RFC 5322 §4.5 (obsolete
 * syntax) allows blanks before the colon.
 */
export function presentHeaders(raw: Buffer): PresentHeaders {
  const found: PresentHeaders = { messageId: false, date: false };
  let pos = 0;
  while (pos < raw.length) {
    const nl = raw.indexOf(LF, pos);
    const end = nl === -1 ? raw.length : nl;
    const lineEnd = end > pos && raw[end - 1] === CR ? end - 1 : end;
    if (lineEnd === pos) break; // the empty line: the body starts
    const first = raw[pos];
    if (first !== SP && first !== TAB) {
      const colon = raw.indexOf(':', pos);
      if (colon === -1 || colon > lineEnd) break; // not a header field: what follows is body
      const name = raw
        .subarray(pos, colon)
        .toString('latin1')
        .replace(/[ \t]+$/, '')
        .toLowerCase();
      if (name === 'message-id') found.messageId = true;
      else if (name === 'date') found.date = true;
      if (found.messageId && found.date) break;
    }
    if (nl === -1) break;
    pos = nl + 1;
  }
  return found;
}

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const pad = (n: number) => String(n).padStart(2, '0');

/** An RFC 5322 §3.3 date-time in UTC: `Tue, 01 Dec 2026 09:05:00 +0000`. */
export function formatMessageDate(ms: number): string {
  const d = new Date(ms);
  return (
    `${DAYS[d.getUTCDay()] ?? 'Sun'}, ${pad(d.getUTCDate())} ${MONTHS[d.getUTCMonth()] ?? 'Jan'} ${d.getUTCFullYear()} ` +
    `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())} +0000`
  );
}

export interface AddHeadersOptions {
  /** The Message-ID's right side: the envelope sender's domain (messageIdDomain). */
  domain: string;
  now: number;
  /** For tests; a random UUID by default. */
  uuid?: () => string;
}

/**
 * The header lines to put in front of `raw`: `Message-ID: <uuid@domain>`
 * and `Date` when missing, each ended like the message's own first line
 * (CRLF, or a bare LF from an application that writes those). Empty when
 * nothing is missing.
 */
export function missingHeaderLines(raw: Buffer, opts: AddHeadersOptions): { lines: Buffer; added: (keyof PresentHeaders)[] } {
  const present = presentHeaders(raw);
  const added: (keyof PresentHeaders)[] = [];
  if (present.messageId && present.date) return { lines: Buffer.alloc(0), added };
  const firstLf = raw.indexOf(LF);
  const eol = firstLf > 0 && raw[firstLf - 1] !== CR ? '\n' : '\r\n';
  let text = '';
  if (!present.messageId) {
    text += `Message-ID: <${(opts.uuid ?? randomUUID)()}@${opts.domain}>${eol}`;
    added.push('messageId');
  }
  if (!present.date) {
    text += `Date: ${formatMessageDate(opts.now)}${eol}`;
    added.push('date');
  }
  return { lines: Buffer.from(text, 'ascii'), added };
}

/** `raw` with missingHeaderLines in front (a copy), or `raw` itself when nothing is missing. */
export function addMissingHeaders(raw: Buffer, opts: AddHeadersOptions): { raw: Buffer; added: (keyof PresentHeaders)[] } {
  const { lines, added } = missingHeaderLines(raw, opts);
  return { raw: lines.length === 0 ? raw : Buffer.concat([lines, raw]), added };
}
