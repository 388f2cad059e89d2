/**
 * `replyText`: what the sender added to a message, without quoted history
 * and signature (product.md, "What the issue pipeline receives").
 *
 * Why our own code and not a library. Measured 2026-12-01 on Node 20.20 with
 * `npm run bench:replies` over test/fixtures/replies/ (164 messages, 26 of
 * them HTML-only; libraries compared after whitespace normalisation, ours
 * strictly), on a shared 2-core machine at load 5-9, so times vary by run:
 *
 * - planer 1.2.0 (npm; CoffeeScript port of Mailgun's talon, CommonJS; last
 *   release tagged 2023-12-18, later commits are CI files only; no runtime
 *   dependency, runs on Node 20): 66/164 = 40.2 % right, 93 keep quoted
 *   text, 7 lose new text. It removes no signature and no mobile sign-off,
 *   and knows no attribution in es/pt/it/ja/zh and none of Outlook's
 *   localised header fields. Its HTML path needs an injected DOM with XPath
 *   (`document.evaluate`): with jsdom 26 (the current jsdom 31 needs Node 22;
 *   36 packages, 17 MB with planer) a message takes 2.9-5.4 ms warm, p99
 *   38-68 ms; linkedom (14 packages, 8.3 MB) has no XPath and planer throws
 *   on all 26 HTML-only messages. Its ON_DATE_SMB_WROTE pattern
 *   (`.*(,|…)(.*\n){0,2}.*(wrote|…)`) runs over the whole body and
 *   backtracks polynomially: one 16 KB line "On x,x,x,…" takes 0.5-1.5 s,
 *   64 KB 21.8 s, with the thread blocked.
 * - email-reply-parser 1.9.4 (npm, crisp-oss, 2025-02-18; text only, no
 *   dependency, Node >= 10; 2.x since 2025-04 needs Node >= 22 and wants the
 *   native re2 addon): 93/164 = 56.7 % right, 52 keep quoted text, 15 lose
 *   new text (its English closing rules, /^Cheers/ and /Regards/, cut the
 *   customer's own words; no Outlook header block, no forward, no ja/zh
 *   Outlook). Without re2 its `^-*\s*(On\s.+\s.+\n?wrote:…)$`-style
 *   patterns backtrack: a 16 KB line "On a a a …" takes 130-330 ms, 64 KB
 *   5.5 s. HTML has to be rendered to text first.
 * - this module: 158/164 = 96.3 % exactly right (2 keep quoted text, 4 lose
 *   new text; each miss is listed with its reason in
 *   test/unit/parse/reply-text-corpus.test.ts; of 12 cases written after
 *   the code was frozen, 10 were right before the two fixes they led to),
 *   0.08-0.19 ms per corpus message warm (p99 0.15-6.7 ms, the tail is the
 *   machine), no dependency and no DOM. A one-pass HTML reader
 *   (reply/html-lines.ts) knows the quote containers of Gmail, Outlook,
 *   Apple Mail, Thunderbird, Yahoo, Proton and Zimbra; a line classifier
 *   (reply/lines.ts) applies patterns (reply/patterns.ts) that are anchored,
 *   have no nested quantifier and only ever see one line of at most 600
 *   characters (or three joined), so the cost is linear in the scanned
 *   window whatever the input (16 KB pathological line: under 0.3 ms).
 *
 * From talon/planer we took the idea of classifying lines (text, quote,
 * splitter) and cutting at the first splitter; from email-reply-parser the
 * idea of a list of translated attributions. The code is our own.
 */
import { htmlToMarkedLines, HtmlTooDeep } from './reply/html-lines.js';
import { BudgetExceeded, extractFromLines, type MarkedLines } from './reply/lines.js';

/** Only this much of `text` is searched for the end of the new text (UTF-16 units). */
export const REPLY_TEXT_SCAN_CHARS = 128 * 1024;
/** Only this much of `html` is read when there is no `text`. */
export const REPLY_HTML_SCAN_CHARS = 256 * 1024;
/** Default time budget per message; the work is bounded by the windows above, this is the backstop. */
export const REPLY_TEXT_TIME_BUDGET_MS = 100;

export interface ReplyTextInput {
  text: string | null;
  html: string | null;
  /**
   * `text` was rendered from `html` (mailparser does so with html-to-text when
   * a message has no text/plain part): read the HTML, whose quote containers
   * say more, and still never return more than `text` is long.
   */
  textFromHtml?: boolean;
}

export interface ReplyTextOptions {
  /** Give up (ok: false) once extraction has run this long. Default REPLY_TEXT_TIME_BUDGET_MS. */
  timeBudgetMs?: number;
}

/** Why extraction gave up; absent when ok. */
export type ReplyTextFailure = 'too_large' | 'time_budget' | 'too_deep' | 'error';

export interface ReplyTextResult {
  /**
   * The new text. With `ok: false` it is `text` unchanged ('' when there is
   * no text). Line ends are "\n", trailing blanks of lines are dropped; it is
   * never longer than `text` when there is a `text`.
   */
  replyText: string;
  /** What the new text ended at, first in reading order: quoted history, a signature, or nothing removed. */
  truncatedAt: 'quote' | 'signature' | null;
  /** False when extraction gave up; the caller logs `reason` as a warning. */
  ok: boolean;
  /** Which part the reply text was taken from. */
  source: 'text' | 'html' | null;
  reason?: ReplyTextFailure;
  /** The error when reason is 'error' (a bug: extraction has no other failure). */
  error?: Error;
}

/**
 * Never throws, never runs past its time budget by more than one clock
 * check (a few hundred lines or tags), and reads at most the first
 * REPLY_TEXT_SCAN_CHARS of `text` (or REPLY_HTML_SCAN_CHARS of `html`).
 * When the new text does not end within that window, it returns
 * `text` with `ok: false, reason: 'too_large'`.
 */
export function extractReplyText(input: ReplyTextInput, opts: ReplyTextOptions = {}): ReplyTextResult {
  const budget = opts.timeBudgetMs ?? REPLY_TEXT_TIME_BUDGET_MS;
  const started = performance.now();
  const overBudget = (): boolean => performance.now() - started >= budget;
  const text = input.text;
  const fallback = (reason: ReplyTextFailure, error?: Error): ReplyTextResult => ({
    replyText: text ?? '',
    truncatedAt: null,
    ok: false,
    source: text !== null ? 'text' : input.html !== null ? 'html' : null,
    reason,
    ...(error ? { error } : {}),
  });
  // textFromHtml, when the HTML did not do: the rendered text, within what is left of the budget.
  const fromText = (): ReplyTextResult =>
    extractReplyText({ text, html: null }, { timeBudgetMs: Math.max(0, budget - (performance.now() - started)) });
  try {
    if (overBudget()) return fallback('time_budget');
    let lines: MarkedLines;
    let source: 'text' | 'html';
    if (text !== null && !(input.textFromHtml === true && input.html !== null)) {
      lines = textToLines(text);
      source = 'text';
    } else if (input.html !== null) {
      lines = htmlToMarkedLines(input.html, { maxChars: REPLY_HTML_SCAN_CHARS, overBudget });
      source = 'html';
    } else {
      return { replyText: '', truncatedAt: null, ok: true, source: null };
    }
    const result = extractFromLines(lines, overBudget);
    // The contract: never longer than text. From text the line logic only ever drops
    // lines; from HTML (textFromHtml) the rendering may differ, and then text decides,
    // as it does when the HTML could not be read.
    if (source === 'html' && text !== null && (result === null || result.replyText.length > text.length)) return fromText();
    if (result === null) return fallback('too_large');
    if (text !== null && result.replyText.length > text.length) return fallback('error', new Error('reply text longer than text'));
    return { ...result, ok: true, source };
  } catch (err) {
    if (err instanceof BudgetExceeded) return fallback('time_budget');
    if (err instanceof HtmlTooDeep) return text !== null ? fromText() : fallback('too_deep');
    return fallback('error', err instanceof Error ? err : new Error(String(err)));
  }
}

/** The first REPLY_TEXT_SCAN_CHARS of `text` as lines; a line the window cuts through is left out. */
function textToLines(text: string): MarkedLines {
  const complete = text.length <= REPLY_TEXT_SCAN_CHARS;
  let window = complete ? text : text.slice(0, REPLY_TEXT_SCAN_CHARS);
  if (!complete) {
    const lastBreak = window.lastIndexOf('\n');
    window = lastBreak === -1 ? '' : window.slice(0, lastBreak);
  }
  const lines = window === '' && !complete ? [] : window.split(/\r?\n|\r/);
  return { lines, marks: [], complete };
}
