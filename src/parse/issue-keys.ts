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
export interface IssueKeyPatternProblem {
  message: string;
  offset: number | null;
}

/**
 * Why `pattern` cannot be an issueKeyPattern, or null when it can. For the
 * config loader, which adds `file:line:col` (and may add `offset` to the
 * column of a plain or single-quoted YAML scalar).
 */
export function issueKeyPatternProblem(pattern: unknown): IssueKeyPatternProblem | null {
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

/*
 * The static check. A regular expression backtracks catastrophically when
 * one stretch of text can be split between its parts in exponentially (or
 * polynomially, with a high degree) many ways, and the engine tries them all
 * before it fails. The shapes below are the known causes; each rule refuses
 * a superset of them, so some harmless patterns are refused too (and the
 * message says how to write them). Rules, for a repeat R that may run more
 * than once:
 *  1. R's body holds no repeat of variable length (`(a+)+`, `(a?a)+`,
 *     `(\d{1,3}-)+`): nested quantifiers.
 *  2. R's body cannot match the empty string (`(a?)*`, `(\b)+`).
 *  3. Every choice in R's body has alternatives that start with different
 *     characters and that cannot match the empty string (`(a|ab)+`,
 *     `(\w|\d)+`, `(x|)+`): overlapping alternations under a quantifier.
 * and, for any two repeats of variable length A before B:
 *  4. Either what may follow A cannot continue A (so where A ends is forced,
 *     `[A-Z]+-` ends at the dash), or A and B share no character
 *     (`\d+\d+`, `[a-z]+x?[a-z]+!` are refused: two repeats taking turns
 *     over one run of characters cost n² per start, n³ per subject).
 * Back-references are refused (no bound is known for them), and so are
 * variable repeats inside a lookbehind (V8 matches those backwards).
 * Character classes are compared as sets of code points; `.`, `\p{…}` and
 * the negated classes count as "any character", which only refuses more.
 */

type Ranges = readonly (readonly [number, number])[];
const MAX_CP = 0x10ffff;
const ANY: Ranges = [[0, MAX_CP]];
const NONE: Ranges = [];
const DIGIT: Ranges = [[0x30, 0x39]];
const WORD: Ranges = [
  [0x30, 0x39],
  [0x41, 0x5a],
  [0x5f, 0x5f],
  [0x61, 0x7a],
];
const SPACE: Ranges = normalise([
  [0x09, 0x0d],
  [0x20, 0x20],
  [0xa0, 0xa0],
  [0x1680, 0x1680],
  [0x2000, 0x200a],
  [0x2028, 0x2029],
  [0x202f, 0x202f],
  [0x205f, 0x205f],
  [0x3000, 0x3000],
  [0xfeff, 0xfeff],
]);

/** ASCII code points that are not letters / not digits. */
const ASCII_NON_LETTER: Ranges = [
  [0x00, 0x40],
  [0x5b, 0x60],
  [0x7b, 0x7f],
];
const ASCII_NON_DIGIT: Ranges = [
  [0x00, 0x2f],
  [0x3a, 0x7f],
];
const LETTER_PROPERTIES = new Set(
  'L Letter LC Cased_Letter Lu Uppercase_Letter Ll Lowercase_Letter Lt Titlecase_Letter Lm Modifier_Letter Lo Other_Letter Alphabetic Alpha Uppercase Upper Lowercase Lower'.split(' '),
);
const NUMBER_PROPERTIES = new Set('N Number Nd Decimal_Number digit'.split(' '));

/**
 * A superset of the code points of `\p{name}`, good enough to tell that a
 * letter class never takes `-` or a digit: letters and numbers outside
 * ASCII are not listed, all of them count. Anything else: any character.
 */
function propertySuperset(name: string): Ranges {
  const value = name.replace(/^(?:General_Category|gc)=/, '');
  if (LETTER_PROPERTIES.has(value)) return complement(ASCII_NON_LETTER);
  if (NUMBER_PROPERTIES.has(value)) return complement(ASCII_NON_DIGIT);
  const script = /^(?:Script|sc|Script_Extensions|scx)=(\w+)$/.exec(name)?.[1];
  if (script === undefined || /^(?:Common|Zyyy|Inherited|Zinh|Qaai)$/.test(script)) return ANY;
  // Latin has the ASCII letters; every other script has no ASCII at all.
  return complement(ASCII_NON_LETTER);
}

function normalise(input: readonly (readonly [number, number])[]): Ranges {
  const sorted = [...input].sort((a, b) => a[0] - b[0]);
  const out: [number, number][] = [];
  for (const [lo, hi] of sorted) {
    const last = out[out.length - 1];
    if (last && lo <= last[1] + 1) last[1] = Math.max(last[1], hi);
    else out.push([lo, hi]);
  }
  return out;
}

function union(a: Ranges, b: Ranges): Ranges {
  if (a.length === 0) return b;
  if (b.length === 0) return a;
  return normalise([...a, ...b]);
}

function complement(a: Ranges): Ranges {
  const out: [number, number][] = [];
  let next = 0;
  for (const [lo, hi] of normalise(a)) {
    if (lo > next) out.push([next, lo - 1]);
    next = hi + 1;
  }
  if (next <= MAX_CP) out.push([next, MAX_CP]);
  return out;
}

function intersects(a: Ranges, b: Ranges): boolean {
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    const x = a[i] as readonly [number, number];
    const y = b[j] as readonly [number, number];
    if (x[1] < y[0]) i++;
    else if (y[1] < x[0]) j++;
    else return true;
  }
  return false;
}

interface Span {
  start: number;
  end: number;
}
type RegexNode =
  | (Span & { t: 'char'; set: Ranges })
  | (Span & { t: 'seq'; items: RegexNode[] })
  | (Span & { t: 'alt'; alts: RegexNode[] })
  | (Span & { t: 'group'; body: RegexNode })
  | (Span & { t: 'look'; body: RegexNode; behind: boolean })
  | (Span & { t: 'assert' })
  | (Span & { t: 'backref' })
  | (Span & { t: 'repeat'; body: RegexNode; min: number; max: number });

interface ParsedPattern {
  source: string;
  root: RegexNode;
  groupNames: Set<string>;
}

/**
 * Reads a pattern that `new RegExp(source, 'u')` accepted (so the Unicode
 * mode grammar holds: no lone `{`, `}` or `]`, no Annex B escapes).
 */
function parsePattern(source: string): ParsedPattern {
  let i = 0;
  const groupNames = new Set<string>();
  const s = source;

  const codePoint = (): number => {
    const cp = s.codePointAt(i) ?? 0;
    i += cp > 0xffff ? 2 : 1;
    return cp;
  };
  const hex = (digits: number): number => {
    const v = parseInt(s.slice(i, i + digits), 16);
    i += digits;
    return v;
  };

  /** After a backslash: one code point, a set, or (outside a class) an assertion or a back-reference. */
  const escape = (inClass: boolean): number | Ranges | 'assert' | 'backref' => {
    const c = s[i++] ?? '';
    switch (c) {
      case 'd':
        return DIGIT;
      case 'D':
        return complement(DIGIT);
      case 'w':
        return WORD;
      case 'W':
        return complement(WORD);
      case 's':
        return SPACE;
      case 'S':
        return complement(SPACE);
      case 'p':
      case 'P': {
        const close = s.indexOf('}', i);
        const name = s.slice(i + 1, close);
        i = close + 1;
        return c === 'p' ? propertySuperset(name) : ANY;
      }
      case 't':
        return 0x09;
      case 'n':
        return 0x0a;
      case 'v':
        return 0x0b;
      case 'f':
        return 0x0c;
      case 'r':
        return 0x0d;
      case '0':
        return 0;
      case 'c':
        return (s.charCodeAt(i++) || 0) % 32;
      case 'x':
        return hex(2);
      case 'u': {
        if (s[i] === '{') {
          const close = s.indexOf('}', i);
          const v = parseInt(s.slice(i + 1, close), 16);
          i = close + 1;
          return v;
        }
        const high = hex(4);
        if (high >= 0xd800 && high <= 0xdbff && s.startsWith('\\u', i) && /^[dD][c-fC-F]/.test(s.slice(i + 2, i + 4))) {
          i += 2;
          const low = hex(4);
          return (high - 0xd800) * 0x400 + (low - 0xdc00) + 0x10000;
        }
        return high;
      }
      case 'b':
        return inClass ? 0x08 : 'assert';
      case 'B':
        return 'assert';
      case 'k':
        i = s.indexOf('>', i) + 1;
        return 'backref';
      default:
        if (c >= '1' && c <= '9') {
          while (s[i] !== undefined && /[0-9]/.test(s[i] as string)) i++;
          return 'backref';
        }
        // An identity escape of a syntax character, `/` or (in a class) `-`.
        i--;
        return codePoint();
    }
  };

  const classAtom = (): number | Ranges => {
    if (s[i] === '\\') {
      i++;
      const e = escape(true);
      return e === 'assert' || e === 'backref' ? ANY : e;
    }
    return codePoint();
  };

  const parseClass = (start: number): RegexNode => {
    i++; // [
    const negated = s[i] === '^';
    if (negated) i++;
    const parts: [number, number][] = [];
    while (i < s.length && s[i] !== ']') {
      const a = classAtom();
      if (typeof a !== 'number') {
        parts.push(...a.map((r) => [r[0], r[1]] as [number, number]));
        continue;
      }
      if (s[i] === '-' && s[i + 1] !== ']' && i + 1 < s.length) {
        i++;
        const b = classAtom();
        if (typeof b === 'number') parts.push([a, b]);
        continue;
      }
      parts.push([a, a]);
    }
    i++; // ]
    const set = normalise(parts);
    return { t: 'char', set: negated ? complement(set) : set, start, end: i };
  };

  const parseAtom = (): RegexNode => {
    const start = i;
    const c = s[i];
    if (c === '^' || c === '$') {
      i++;
      return { t: 'assert', start, end: i };
    }
    if (c === '.') {
      i++;
      return { t: 'char', set: ANY, start, end: i };
    }
    if (c === '[') return parseClass(start);
    if (c === '(') {
      i++;
      let look: { behind: boolean } | null = null;
      if (s.startsWith('?:', i)) i += 2;
      else if (s.startsWith('?=', i) || s.startsWith('?!', i)) {
        i += 2;
        look = { behind: false };
      } else if (s.startsWith('?<=', i) || s.startsWith('?<!', i)) {
        i += 3;
        look = { behind: true };
      } else if (s.startsWith('?<', i)) {
        const close = s.indexOf('>', i);
        groupNames.add(s.slice(i + 2, close));
        i = close + 1;
      }
      const body = parseAlt();
      i++; // )
      return look ? { t: 'look', body, behind: look.behind, start, end: i } : { t: 'group', body, start, end: i };
    }
    if (c === '\\') {
      i++;
      const e = escape(false);
      if (e === 'assert') return { t: 'assert', start, end: i };
      if (e === 'backref') return { t: 'backref', start, end: i };
      return { t: 'char', set: typeof e === 'number' ? [[e, e]] : e, start, end: i };
    }
    const cp = codePoint();
    return { t: 'char', set: [[cp, cp]], start, end: i };
  };

  const parseQuantifier = (): { min: number; max: number } | null => {
    const c = s[i];
    let q: { min: number; max: number };
    if (c === '*') q = { min: 0, max: Infinity };
    else if (c === '+') q = { min: 1, max: Infinity };
    else if (c === '?') q = { min: 0, max: 1 };
    else if (c === '{') {
      const m = /^\{(\d+)(,(\d*))?\}/.exec(s.slice(i));
      if (!m) return null;
      const min = Number(m[1]);
      q = { min, max: m[2] === undefined ? min : m[3] === '' ? Infinity : Number(m[3]) };
      i += m[0].length - 1;
    } else return null;
    i++;
    if (s[i] === '?') i++; // lazy: the same paths, tried in another order
    return q;
  };

  const parseTerm = (): RegexNode => {
    const start = i;
    const atom = parseAtom();
    const q = parseQuantifier();
    return q ? { t: 'repeat', body: atom, min: q.min, max: q.max, start, end: i } : atom;
  };

  const parseSeq = (): RegexNode => {
    const start = i;
    const items: RegexNode[] = [];
    while (i < s.length && s[i] !== '|' && s[i] !== ')') items.push(parseTerm());
    return items.length === 1 && items[0] ? items[0] : { t: 'seq', items, start, end: i };
  };

  function parseAlt(): RegexNode {
    const start = i;
    const alts = [parseSeq()];
    while (s[i] === '|') {
      i++;
      alts.push(parseSeq());
    }
    return alts.length === 1 && alts[0] ? alts[0] : { t: 'alt', alts, start, end: i };
  }

  return { source, root: parseAlt(), groupNames };
}

function nullable(n: RegexNode): boolean {
  switch (n.t) {
    case 'char':
      return false;
    case 'seq':
      return n.items.every(nullable);
    case 'alt':
      return n.alts.some(nullable);
    case 'group':
      return nullable(n.body);
    case 'repeat':
      return n.min === 0 || nullable(n.body);
    default:
      return true;
  }
}

/** The characters a match of n can start with (lookarounds and assertions consume none). */
function first(n: RegexNode): Ranges {
  switch (n.t) {
    case 'char':
      return n.set;
    case 'seq': {
      let out = NONE;
      for (const item of n.items) {
        out = union(out, first(item));
        if (!nullable(item)) break;
      }
      return out;
    }
    case 'alt':
      return n.alts.reduce((acc, a) => union(acc, first(a)), NONE);
    case 'group':
    case 'repeat':
      return first(n.body);
    default:
      return NONE;
  }
}

/** Every character a match of n can consume. */
function chars(n: RegexNode): Ranges {
  switch (n.t) {
    case 'char':
      return n.set;
    case 'seq':
      return n.items.reduce((acc, x) => union(acc, chars(x)), NONE);
    case 'alt':
      return n.alts.reduce((acc, x) => union(acc, chars(x)), NONE);
    case 'group':
    case 'repeat':
      return chars(n.body);
    default:
      return NONE;
  }
}

function* descendants(n: RegexNode): Generator<RegexNode> {
  yield n;
  if (n.t === 'seq') for (const x of n.items) yield* descendants(x);
  else if (n.t === 'alt') for (const x of n.alts) yield* descendants(x);
  else if (n.t === 'group' || n.t === 'look' || n.t === 'repeat') yield* descendants(n.body);
}

const variable = (n: RegexNode): n is Extract<RegexNode, { t: 'repeat' }> => n.t === 'repeat' && n.min !== n.max;

function shapeProblem(p: ParsedPattern): IssueKeyPatternProblem | null {
  const frag = (n: Span) => JSON.stringify(p.source.slice(n.start, n.end));
  const refuse = (n: Span, message: string): IssueKeyPatternProblem => ({ message, offset: n.start });

  for (const n of descendants(p.root)) {
    if (n.t === 'backref') return refuse(n, `uses a back-reference (${frag(n)}); they are refused because matching them can take exponential time`);
    if (n.t === 'look' && n.behind) {
      const inner = [...descendants(n.body)].find(variable);
      if (inner) return refuse(inner, `repeats a part a variable number of times inside a lookbehind (${frag(inner)}); write the lookbehind with a fixed length, like (?<![A-Z])`);
    }
    if (n.t !== 'repeat' || n.max <= 1) continue;
    if (nullable(n.body)) return refuse(n, `repeats a part that can match nothing (${frag(n)}), which gives the engine endless ways to split a subject`);
    for (const inner of descendants(n.body)) {
      if (inner !== n.body && variable(inner)) {
        return refuse(
          inner,
          `repeats ${frag(n)}, which itself holds a repeat of variable length ${frag(inner)} (nested quantifiers, like (a+)+): such a pattern can take exponential time on some subjects; repeat a character class instead, like [A-Z0-9-]+`,
        );
      }
      if (inner.t === 'alt') {
        for (let a = 0; a < inner.alts.length; a++) {
          const alt = inner.alts[a] as RegexNode;
          if (nullable(alt)) return refuse(inner, `repeats a choice with an alternative that can match nothing (${frag(inner)} in ${frag(n)})`);
          for (let b = a + 1; b < inner.alts.length; b++) {
            if (intersects(first(alt), first(inner.alts[b] as RegexNode))) {
              return refuse(
                inner,
                `repeats a choice whose alternatives can start with the same character (${frag(inner)} in ${frag(n)}, like (a|ab)+): such a pattern can take exponential time on some subjects; merge the alternatives into one character class`,
              );
            }
          }
        }
      }
    }
  }

  // Rule 4: what may follow each variable repeat, then pairs in pattern order.
  const follows = new Map<RegexNode, Ranges>();
  const walk = (n: RegexNode, after: Ranges): void => {
    switch (n.t) {
      case 'seq': {
        let next = after;
        for (let k = n.items.length - 1; k >= 0; k--) {
          const item = n.items[k] as RegexNode;
          walk(item, next);
          next = nullable(item) ? union(first(item), next) : first(item);
        }
        return;
      }
      case 'alt':
        for (const a of n.alts) walk(a, after);
        return;
      case 'group':
        walk(n.body, after);
        return;
      case 'look':
        // Its match ends inside it; what follows in the pattern does not extend it.
        walk(n.body, NONE);
        return;
      case 'repeat':
        follows.set(n, after);
        walk(n.body, n.max > 1 ? union(first(n.body), after) : after);
        return;
      default:
        return;
    }
  };
  walk(p.root, NONE);
  const repeats = [...descendants(p.root)].filter(variable).sort((x, y) => x.start - y.start);
  for (let a = 0; a < repeats.length; a++) {
    const A = repeats[a] as Extract<RegexNode, { t: 'repeat' }>;
    const forced = !intersects(follows.get(A) ?? NONE, first(A.body));
    if (forced) continue;
    const own = chars(A.body);
    for (let b = a + 1; b < repeats.length; b++) {
      const B = repeats[b] as Extract<RegexNode, { t: 'repeat' }>;
      if (B.start < A.end) continue; // inside A: rule 1 covered it
      if (intersects(own, chars(B.body))) {
        return refuse(
          B,
          `has two repeats that can match the same characters, ${frag(A)} and then ${frag(B)}, with nothing that forces where the first one ends (like \\d+\\d+): on a long subject the engine tries every way to share the characters between them; put a character the first repeat cannot match between them, like [A-Z]+-[0-9]+`,
        );
      }
    }
  }
  return null;
}
