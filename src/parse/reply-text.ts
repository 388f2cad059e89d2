/**
 * `replyText`: what the sender added to a message, without quoted history
 * and signature (docs: product.md, "What the issue pipeline receives").
 *
 * EVALUATION (placeholder, filled in below once measured)
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
  try {
    if (overBudget()) return fallback('time_budget');
    let lines: MarkedLines;
    let source: 'text' | 'html';
    if (text !== null) {
      lines = textToLines(text);
      source = 'text';
    } else if (input.html !== null) {
      lines = htmlToMarkedLines(input.html, { maxChars: REPLY_HTML_SCAN_CHARS, overBudget });
      source = 'html';
    } else {
      return { replyText: '', truncatedAt: null, ok: true, source: null };
    }
    const result = extractFromLines(lines, overBudget);
    if (result === null) return fallback('too_large');
    // The contract: never longer than text. The line logic only ever drops, but say it here.
    if (text !== null && result.replyText.length > text.length) return fallback('error', new Error('reply text longer than text'));
    return { ...result, ok: true, source };
  } catch (err) {
    if (err instanceof BudgetExceeded) return fallback('time_budget');
    if (err instanceof HtmlTooDeep) return fallback('too_deep');
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
