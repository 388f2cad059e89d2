/**
 * `issueKeys`: every match of a webhook's `issueKeyPattern` in the subject,
 * in order, without repeats (product.md, "What the issue pipeline
 * receives"). Default: Jira keys; `issueKeyPattern: null` turns it off.
 *
 * The pattern comes from an admin's YAML and runs on every subject a
 * stranger sends, on V8's backtracking engine, which has no time limit. So a
 * pattern is accepted only when a conservative static check (below) shows
 * it cannot backtrack catastrophically, and matching only ever sees
 * the first MAX_SUBJECT_CHARS of the subject: an accepted pattern then costs
 * at most about n² steps for n = MAX_SUBJECT_CHARS (every start position,
 * one linear scan each), a few milliseconds.
 *
 * Syntax: a JavaScript regular expression source without slashes or flags,
 * compiled in Unicode mode (`u`) and case-sensitive. A named group `key`
 * (`\[(?<key>[A-Z]+-\d+)\]`) makes that group the key; otherwise the whole
 * match is.
 */
import { MailgateError } from '../errors.js';
import { nullable, parsePattern, shapeProblem, type PatternProblem } from './regex-shape.js';

/** Jira's key shape (the contract's default). */
export const DEFAULT_ISSUE_KEY_PATTERN = '[A-Z][A-Z0-9_]+-[0-9]+';
/** Only this much of a subject is searched (UTF-16 units). Real subjects are far shorter. */
export const MAX_SUBJECT_CHARS = 2048;
/** A pattern longer than this is refused: no key shape needs it, and the static check's cost grows with it. */
export const MAX_PATTERN_CHARS = 256;
/** At most this many keys per subject. */
export const MAX_ISSUE_KEYS = 32;

export interface IssueKeyMatcher {
  /** The pattern as configured. */
  readonly source: string;
  /** Global, Unicode mode. Used only through issueKeysOf (lastIndex is reset there). */
  readonly regex: RegExp;
  /** True when the pattern has a named group `key`. */
  readonly keyGroup: boolean;
}

/** A pattern mailgate refuses, in plain words; `offset` (0-based, in the pattern) points at the part at fault when known. */
/** Why a pattern was refused, and where in it (for the config loader's column). */
export type { PatternProblem as IssueKeyPatternProblem } from './regex-shape.js';

/**
 * Why `pattern` cannot be an issueKeyPattern, or null when it can. For the
 * config loader, which adds `file:line:col` (and may add `offset` to the
 * column of a plain or single-quoted YAML scalar).
 */
export function issueKeyPatternProblem(pattern: unknown): PatternProblem | null {
  if (pattern === null) return null;
  if (typeof pattern !== 'string') return { message: 'must be a regular expression in a string, or null to turn issue keys off', offset: null };
  if (pattern.length === 0) return { message: 'is empty; write null to turn issue keys off', offset: null };
  if (pattern.length > MAX_PATTERN_CHARS) return { message: `is ${pattern.length} characters long; at most ${MAX_PATTERN_CHARS} are accepted`, offset: null };
  let regex: RegExp;
  try {
    regex = new RegExp(pattern, 'u');
  } catch (err) {
    // V8: "Invalid regular expression: /…/u: Unterminated character class"; keep the reason only.
    const reason = (err as Error).message.replace(/^Invalid regular expression: \/.*\/[a-z]*: /s, '');
    return {
      message:
        `is not a valid regular expression (JavaScript syntax, Unicode mode): ${reason}` +
        (/\\[^\w\s^$\\.*+?()[\]{}|/]/.test(pattern) || /Invalid escape/i.test(reason)
          ? ' (escape only characters that have a meaning, like \\. or \\[; write - and other characters as they are)'
          : ''),
      offset: null,
    };
  }
  const parsed = parsePattern(pattern);
  if (regex.test('') || nullable(parsed.root)) return { message: 'can match an empty string; a key pattern must need at least one character', offset: null };
  return shapeProblem(parsed);
}

/**
 * The matcher for a webhook: `undefined` (key absent) → the default pattern,
 * `null` → off (null), a string → that pattern. Throws CONFIG_INVALID with
 * the plain-words reason when issueKeyPatternProblem refuses it.
 */
export function compileIssueKeyPattern(pattern: string | null | undefined): IssueKeyMatcher | null {
  if (pattern === null) return null;
  const source = pattern ?? DEFAULT_ISSUE_KEY_PATTERN;
  const problem = issueKeyPatternProblem(source);
  if (problem) {
    throw new MailgateError('CONFIG_INVALID', `issueKeyPattern ${problem.message}`, { details: { offset: problem.offset } });
  }
  return { source, regex: new RegExp(source, 'gu'), keyGroup: parsePattern(source).groupNames.has('key') };
}

/** Every key in the subject, in order of appearance, each once; [] when the matcher is null (turned off). */
export function issueKeysOf(subject: string | null | undefined, matcher: IssueKeyMatcher | null): string[] {
  if (matcher === null || !subject) return [];
  const text = subject.length > MAX_SUBJECT_CHARS ? subject.slice(0, MAX_SUBJECT_CHARS) : subject;
  const re = matcher.regex;
  re.lastIndex = 0;
  const seen = new Set<string>();
  const out: string[] = [];
  let m: RegExpExecArray | null;
  while (out.length < MAX_ISSUE_KEYS && (m = re.exec(text)) !== null) {
    // Refused at compile time, kept as a guard: an empty match would never advance.
    if (m[0].length === 0) re.lastIndex++;
    const key = matcher.keyGroup ? m.groups?.key : m[0];
    if (key && !seen.has(key)) {
      seen.add(key);
      out.push(key);
    }
  }
  re.lastIndex = 0;
  return out;
}

