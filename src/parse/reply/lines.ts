import {
  attributionStrength,
  HEADER_BLOCK_SPAN,
  isHeaderBlock,
  isHeaderBlockStart,
  isQuoted,
  isRule,
  isSeparator,
  isSignOff,
  MAX_CANDIDATE_CHARS,
  unquote,
  type AttributionStrength,
} from './patterns.js';

/**
 * What the HTML reader already knows about a line from the markup: the
 * place of a quote container (its content is not in `lines`), a signature
 * container, or the start of history that runs to the end (Outlook's
 * #divRplyFwdMsg and friends).
 */
export type LineMark = 'quote' | 'signature' | 'cut';

export interface MarkedLines {
  lines: string[];
  /** Sparse: a mark for the line at the same index. */
  marks: (LineMark | undefined)[];
  /** False when the body went on beyond the scanned window. */
  complete: boolean;
}

export interface LinesResult {
  replyText: string;
  truncatedAt: 'quote' | 'signature' | null;
}

/** Thrown by the clock check; caught at the API boundary (reply-text.ts). */
export class BudgetExceeded extends Error {
  constructor() {
    super('reply extraction time budget exceeded');
  }
}

/** An attribution's lines may be wrapped over at most this many lines (Gmail wraps at 78 columns). */
const MAX_ATTRIBUTION_LINES = 3;
/** Fewer ">" lines than this, with no attribution anywhere, are the customer's own text (a shell prompt, a log). */
const MIN_BARE_QUOTED_LINES = 3;
/** How often (in lines) the clock is read. */
const CLOCK_EVERY = 256;

const enum Kind {
  Text,
  Blank,
  Quoted,
  MarkedQuote,
  Attribution,
  Signature,
}

/**
 * Splits the lines into what the sender wrote and what is history or
 * signature. One pass over the lines; each line is matched against
 * bounded, anchored patterns (patterns.ts) at most MAX_ATTRIBUTION_LINES
 * times. Returns null when the window ended before we could tell where
 * the new text ends (the caller then reports ok: false).
 */
export function extractFromLines(input: MarkedLines, overBudget: () => boolean): LinesResult | null {
  const { lines, marks } = input;
  const n = lines.length;
  const kinds = new Uint8Array(n);
  // Each line is trimmed once (attribution joins look at a line up to three times).
  const trimCache: (string | undefined)[] = new Array<string | undefined>(n);
  const trimmed = (i: number): string => {
    let t = trimCache[i];
    if (t === undefined) {
      const l = lines[i] ?? '';
      t = l.length > MAX_CANDIDATE_CHARS * 2 ? l : l.trim();
      trimCache[i] = t;
    }
    return t;
  };
  let cut = n;
  let bareQuoted = 0;
  let attributed = false;

  for (let i = 0; i < n; i++) {
    if (i % CLOCK_EVERY === 0 && overBudget()) throw new BudgetExceeded();
    const mark = marks[i];
    if (mark === 'cut') {
      cut = i;
      break;
    }
    if (mark === 'quote') {
      kinds[i] = Kind.MarkedQuote;
      attributed = true;
      continue;
    }
    if (mark === 'signature') {
      kinds[i] = Kind.Signature;
      continue;
    }
    const raw = lines[i] ?? '';
    const s = trimmed(i);
    if (s === '') {
      kinds[i] = Kind.Blank;
      continue;
    }
    if (isQuoted(raw)) {
      kinds[i] = Kind.Quoted;
      bareQuoted++;
      // Apple Mail on iOS quotes its own attribution: "> On … wrote:".
      if (!attributed && looksLikeAttributionEnd(s) && attributionStrength(unquote(s)) === 'strong') {
        attributed = true;
      }
      continue;
    }
    if (s === '--') {
      kinds[i] = Kind.Signature;
      continue;
    }
    if (isSeparator(s) || (isHeaderBlockStart(s) && isHeaderBlock(headerBlockLines(lines, i, trimmed)))) {
      cut = i;
      break;
    }
    const attribution = attributionAt(input, i, trimmed);
    if (attribution) {
      const last = i + attribution.span - 1;
      if (quotedFollows(input, last + 1)) {
        for (let j = i; j <= last; j++) kinds[j] = Kind.Attribution;
        attributed = true;
        i = last;
        continue;
      }
      // An attribution above unquoted history (Yahoo, Apple Mail's plain text): all of it is history.
      if (attribution.strength === 'strong') {
        cut = i;
        break;
      }
    }
    kinds[i] = Kind.Text;
  }

  const dropQuoted = attributed || bareQuoted >= MIN_BARE_QUOTED_LINES || cut < n;
  // Quoted lines that end the message (a reply above a trimmed quote) are history
  // however few; a customer's own ">" line has their text after it.
  let trailingQuotes = cut;
  for (let i = cut - 1; i >= 0 && (kinds[i] === Kind.Quoted || kinds[i] === Kind.Blank); i--) {
    if (kinds[i] === Kind.Quoted) trailingQuotes = i;
  }
  const out: string[] = [];
  const outIndex: number[] = [];
  let gap = false;
  let firstRemoved = cut < n ? cut : -1;
  let signatureAt = -1;
  let noTextAfterRemoval = true;
  for (let i = 0; i < cut; i++) {
    const k = kinds[i] as Kind;
    const removed = k === Kind.MarkedQuote || k === Kind.Attribution || (k === Kind.Quoted && (dropQuoted || i >= trailingQuotes));
    if (removed) {
      gap = true;
      if (firstRemoved === -1 || i < firstRemoved) firstRemoved = i;
      continue;
    }
    if (k === Kind.Signature) {
      // RFC 3676 §4.3: everything after "-- " is signature, up to the history.
      signatureAt = i;
      break;
    }
    if (k === Kind.Blank) {
      // One blank line between paragraphs is enough (HTML renderings double them).
      if (!gap && out[out.length - 1] !== '') {
        out.push('');
        outIndex.push(i);
      }
      continue;
    }
    if (gap) {
      trimTrailingBlanks(out, outIndex);
      if (out.length > 0) {
        out.push('');
        outIndex.push(i);
      }
      gap = false;
      noTextAfterRemoval = false;
    }
    out.push((lines[i] ?? '').trimEnd());
    outIndex.push(i);
  }

  trimTrailing(out, outIndex);
  const signOffAt = outIndex[out.length - 1];
  if (out.length > 0 && signOffAt !== undefined && isSignOff((out[out.length - 1] ?? '').trim())) {
    out.pop();
    outIndex.pop();
    if (signatureAt === -1 || signOffAt < signatureAt) signatureAt = signOffAt;
    trimTrailing(out, outIndex);
  }
  if (out[0] === '') out.shift(); // blank runs are already one line long

  if (!input.complete) {
    // The window ended inside the body. We still know where the new text ends when
    // history runs to the end from a hard cut or a signature, or when the window
    // holds new text followed only by quoted lines (a top-posted reply above a long thread).
    const topPosted = firstRemoved !== -1 && noTextAfterRemoval && out.length > 0;
    if (cut === n && signatureAt === -1 && !topPosted) return null;
  }

  let truncatedAt: LinesResult['truncatedAt'] = null;
  if (signatureAt !== -1 && (firstRemoved === -1 || signatureAt < firstRemoved)) truncatedAt = 'signature';
  else if (firstRemoved !== -1) truncatedAt = 'quote';
  return { replyText: out.join('\n'), truncatedAt };
}

function headerBlockLines(lines: readonly string[], from: number, trimmed: (i: number) => string): string[] {
  const out: string[] = [];
  for (let j = from; j < lines.length && out.length < HEADER_BLOCK_SPAN; j++) {
    const s = trimmed(j);
    if (s === '') break; // a header block has no blank line inside
    out.push(s);
  }
  return out;
}

function attributionAt(
  input: MarkedLines,
  i: number,
  trimmed: (i: number) => string,
): { span: number; strength: AttributionStrength } | null {
  const { lines, marks } = input;
  const first = trimmed(i);
  if (first.length > MAX_CANDIDATE_CHARS) return null;
  for (let span = 1; span <= MAX_ATTRIBUTION_LINES; span++) {
    const j = i + span - 1;
    if (span > 1) {
      if (j >= lines.length || marks[j] !== undefined) return null;
      const next = trimmed(j);
      if (next === '' || isQuoted(lines[j] ?? '') || next.length > MAX_CANDIDATE_CHARS) return null;
    }
    // Joined or not, a candidate ends as its last line does: test that before joining.
    if (!looksLikeAttributionEnd(trimmed(j))) continue;
    const candidate = span === 1 ? first : joinLines(i, span, trimmed);
    const strength = attributionStrength(candidate);
    // When the last line alone is an attribution, this line belongs to it only if the
    // joined lines read as a complete one ("Em … <" + "support@acme.test> escreveu:");
    // otherwise it is the customer's own line above the attribution.
    if (span > 1 && strength !== 'strong') {
      const last = trimmed(i + span - 1);
      if (looksLikeAttributionEnd(last) && attributionStrength(last) !== null) return null;
    }
    // A wrapped attribution opens with its date or its sender's address, and
    // only the fully worded ones ("On … wrote:") may span lines unless an address is in the first.
    if (strength === 'strong' || (strength === 'weak' && (span === 1 || first.includes('@')))) return { span, strength };
  }
  return null;
}

function joinLines(from: number, count: number, trimmed: (i: number) => string): string {
  const parts: string[] = [];
  for (let j = from; j < from + count; j++) parts.push(trimmed(j));
  return parts.join(' ');
}

/** Cheap prefilter before the patterns: every attribution ends with a colon (or has Yahoo's "> wrote:"). */
function looksLikeAttributionEnd(s: string): boolean {
  const c = s.charCodeAt(s.length - 1);
  return c === 0x3a /* : */ || c === 0xff1a /* ： */ || s.includes('> wrote:');
}

/** Is the next non-blank line (from `from` on) quoted, textually or by the HTML reader? */
function quotedFollows(input: MarkedLines, from: number): boolean {
  const { lines, marks } = input;
  for (let j = from; j < lines.length; j++) {
    const mark = marks[j];
    if (mark !== undefined) return mark === 'quote' || mark === 'cut';
    const l = lines[j] ?? '';
    if (l.trim() === '') continue;
    return isQuoted(l);
  }
  return false;
}

function trimTrailingBlanks(out: string[], outIndex: number[]): void {
  while (out.length > 0 && out[out.length - 1] === '') {
    out.pop();
    outIndex.pop();
  }
}

/** Drops trailing blank lines and the rule OWA draws above its header block. */
function trimTrailing(out: string[], outIndex: number[]): void {
  for (;;) {
    const last = out[out.length - 1];
    if (last === undefined) return;
    const s = last.trim();
    if (s !== '' && !isRule(s)) return;
    out.pop();
    outIndex.pop();
  }
}
