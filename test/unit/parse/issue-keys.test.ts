import { describe, expect, it } from 'vitest';
import { MailgateError } from '../../../src/errors.js';
import {
  DEFAULT_ISSUE_KEY_PATTERN,
  MAX_ISSUE_KEYS,
  MAX_SUBJECT_CHARS,
  compileIssueKeyPattern,
  issueKeyPatternProblem,
  issueKeysOf,
} from '../../../src/parse/issue-keys.js';

const jira = compileIssueKeyPattern(undefined);

describe('issueKeysOf', () => {
  it('finds every Jira key in the subject, in order, without repeats', () => {
    expect(jira?.source).toBe(DEFAULT_ISSUE_KEY_PATTERN);
    expect(issueKeysOf('Re: [JIRA] (ABC-123) Printer on fire', jira)).toEqual(['ABC-123']);
    expect(issueKeysOf('AW: OPS-7 and ABC-123, again OPS-7; see X_Y2-44', jira)).toEqual(['OPS-7', 'ABC-123', 'X_Y2-44']);
    expect(issueKeysOf('Printer on fire', jira)).toEqual([]);
    expect(issueKeysOf('', jira)).toEqual([]);
    expect(issueKeysOf(null, jira)).toEqual([]);
    // Lower case and single-letter projects are not Jira keys.
    expect(issueKeysOf('abc-123 A-1', jira)).toEqual([]);
    // The default is the contract's pattern as it stands: UTF-8 looks like a key; pipelines look keys up before trusting them.
    expect(issueKeysOf('Encoding UTF-8 broken', jira)).toEqual(['UTF-8']);
  });

  it('is off with null', () => {
    expect(compileIssueKeyPattern(null)).toBeNull();
    expect(issueKeysOf('ABC-123', null)).toEqual([]);
  });

  it('takes a named group "key" as the key when the pattern has one', () => {
    const m = compileIssueKeyPattern('\\[(?<key>[A-Z]+-[0-9]+)\\]');
    expect(issueKeysOf('[ABC-1] and ABC-2 and [DEF-3] and [ABC-1]', m)).toEqual(['ABC-1', 'DEF-3']);
    const servicenow = compileIssueKeyPattern('(?:INC|RITM)[0-9]{7}');
    expect(issueKeysOf('Re: INC0012345 / RITM0000042', servicenow)).toEqual(['INC0012345', 'RITM0000042']);
    const hash = compileIssueKeyPattern('#[0-9]+');
    expect(issueKeysOf('Re: ticket #42 (was #41) #42', hash)).toEqual(['#42', '#41']);
  });

  it('searches only the first MAX_SUBJECT_CHARS of the subject and returns at most MAX_ISSUE_KEYS', () => {
    const late = `${'x'.repeat(MAX_SUBJECT_CHARS)} ABC-1`;
    expect(issueKeysOf(late, jira)).toEqual([]);
    const many = Array.from({ length: 100 }, (_, i) => `K-${i} KEY-${i}`).join(' ');
    expect(issueKeysOf(many, jira)).toHaveLength(MAX_ISSUE_KEYS);
  });

  it('can be called again and again on one compiled matcher (no lastIndex left behind)', () => {
    expect(issueKeysOf('ABC-1 ABC-2', jira)).toEqual(['ABC-1', 'ABC-2']);
    expect(issueKeysOf('ABC-3', jira)).toEqual(['ABC-3']);
  });
});

describe('issueKeyPattern validation', () => {
  const problem = (p: unknown) => issueKeyPatternProblem(p)?.message ?? null;

  it('accepts the usual key shapes', () => {
    for (const p of [
      DEFAULT_ISSUE_KEY_PATTERN,
      '[A-Z]+-[0-9]+',
      '[A-Z]{2,10}-\\d+',
      '\\b[A-Z][A-Z0-9]+-\\d+\\b',
      '(?<![A-Z])[A-Z][A-Z0-9_]+-[0-9]+',
      '(?:ABC|OPS|HR)-[0-9]+',
      '\\[(?<key>[A-Z]+-\\d+)\\]',
      '(?:INC|RITM|CHG)\\d{7}',
      '#[0-9]+',
      '[A-Z]+-[0-9]+(?:\\.[0-9]+)?',
      'SR-\\d{4,8}',
      '(?:-[0-9]{3})+',
      '\\p{Lu}\\p{Lu}+-\\d+',
      '\\p{Script=Han}+-\\d+',
      'チケット\\d+',
      '[A-Z]+-?\\d+',
      null,
    ]) {
      expect(problem(p), String(p)).toBeNull();
    }
  });

  it('refuses what is not a regular expression, in plain words', () => {
    expect(problem('[A-Z')).toBe('is not a valid regular expression (JavaScript syntax, Unicode mode): Unterminated character class');
    expect(problem('(ABC-\\d+')).toMatch(/^is not a valid regular expression .*: Unterminated group$/);
    expect(problem('[A-Z]+\\-\\d+')).toMatch(/Invalid escape \(escape only characters that have a meaning/);
    expect(problem('a{2,1}')).toMatch(/numbers out of order/);
    expect(problem('')).toBe('is empty; write null to turn issue keys off');
    expect(problem(42)).toBe('must be a regular expression in a string, or null to turn issue keys off');
    expect(problem('A'.repeat(300))).toBe('is 300 characters long; at most 256 are accepted');
    expect(problem('[A-Z]*')).toBe('can match an empty string; a key pattern must need at least one character');
    expect(problem('\\b')).toBe('can match an empty string; a key pattern must need at least one character');
    expect(problem('(?=ABC)|ABC-1')).toBe('can match an empty string; a key pattern must need at least one character');
  });

  it('refuses catastrophic-backtracking shapes and says where', () => {
    const cases: [string, RegExp, number][] = [
      ['(a+)+$', /nested quantifiers/, 1],
      ['([A-Z]+-?)+\\d', /nested quantifiers/, 1],
      ['(\\w+\\s?)+$', /nested quantifiers/, 1],
      ['^(([a-z])+.)+[A-Z]([a-z])+$', /nested quantifiers/, 2],
      ['(\\d{1,3}\\.)+\\d', /nested quantifiers/, 1],
      ['(.*a){12}', /nested quantifiers/, 1],
      ['(a?){20}a{20}', /can match nothing/, 0],
      ['(?:a?a){20}', /nested quantifiers/, 3],
      ['(a|a)*b', /alternatives can start with the same character/, 1],
      ['(a|ab)+c', /alternatives can start with the same character/, 1],
      ['(?:\\w|\\d)+x', /alternatives can start with the same character/, 3],
      ['(?:x|)+y', /can match nothing/, 0],
      ['(?:a(?:x|))+y', /alternative that can match nothing/, 7],
      ['(?:a?b?)+c', /can match nothing/, 0],
      ['(?:ab?)+c', /nested quantifiers/, 4],
      ['(?:\\b)+A', /can match nothing/, 0],
      ['\\d+\\d+x', /two repeats that can match the same characters, "\\\\d\+" and then "\\\\d\+"/, 3],
      ['[A-Z]+[A-Z]+-\\d+', /two repeats/, 6],
      ['a*a*a*b', /two repeats/, 2],
      ['[A-Z]+.*-\\d+', /two repeats/, 6],
      ['.*.*=.*', /two repeats/, 2],
      ['[a-z]+x?[a-z]+!', /two repeats/, 6],
      ['(a)\\1', /back-reference/, 3],
      ['(?<k>a)\\k<k>', /back-reference/, 7],
      ['(?<=A+)-\\d', /inside a lookbehind/, 4],
      ['\\p{L}+\\p{Lu}+-1', /two repeats/, 6],
      ['\\P{Lu}+-\\d+', /two repeats/, 8],
    ];
    for (const [pattern, message, offset] of cases) {
      const p = issueKeyPatternProblem(pattern);
      expect(p?.message, pattern).toMatch(message);
      expect(p?.offset, pattern).toBe(offset);
    }
  });

  it('compileIssueKeyPattern throws CONFIG_INVALID with the reason for the config loader', () => {
    let err: unknown;
    try {
      compileIssueKeyPattern('(a+)+');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(MailgateError);
    expect((err as MailgateError).code).toBe('CONFIG_INVALID');
    expect((err as MailgateError).message).toMatch(/^issueKeyPattern repeats "\(a\+\)\+", which itself holds a repeat/);
    expect((err as MailgateError).details).toEqual({ offset: 1 });
  });
});

describe('matching cost of accepted patterns on hostile subjects', () => {
  // Subjects built to make each pattern backtrack as much as it can: long runs of
  // the characters its repeats take, with the one character that would complete a
  // match missing. Accepted patterns must stay near n² per subject.
  const n = MAX_SUBJECT_CHARS;
  const hostile = [
    'A'.repeat(n),
    'A1'.repeat(n / 2),
    'AB-'.repeat(n / 3),
    'A-'.repeat(n / 2),
    '1'.repeat(n),
    '-1'.repeat(n / 2),
    `ABC-${'1'.repeat(n - 5)}x`,
    '['.repeat(n),
    '[A-'.repeat(n / 3),
    '#'.repeat(n),
    'INC'.repeat(n / 3),
    'A_'.repeat(n / 2),
    `${'A'.repeat(n / 2)}${'1'.repeat(n / 2)}`,
    'AAAAA-1.'.repeat(n / 8),
  ];
  const patterns = [
    DEFAULT_ISSUE_KEY_PATTERN,
    '[A-Z]{2,10}-\\d+',
    '\\b[A-Z][A-Z0-9]+-\\d+\\b',
    '\\[(?<key>[A-Z]+-\\d+)\\]',
    '(?:INC|RITM|CHG)\\d{7}',
    '#[0-9]+',
    '[A-Z]+-[0-9]+(?:\\.[0-9]+)?',
    '[A-Z]+-?\\d+',
    '(?:-[0-9]{3})+',
  ];

  it('every accepted pattern finishes on every hostile subject', () => {
    // Measured 2-5 ms a subject on a loaded 2-core machine; a pattern that
    // backtracks catastrophically would take minutes here, which the test
    // timeout catches (no wall-clock assertion: the machine is shared).
    for (const p of patterns) {
      const m = compileIssueKeyPattern(p);
      for (const s of hostile) expect(Array.isArray(issueKeysOf(s, m))).toBe(true);
    }
  }, 30_000);

  it('a subject of 1 MB is read only up to MAX_SUBJECT_CHARS', () => {
    const long = `${'A'.repeat(MAX_SUBJECT_CHARS)} ABC-1`;
    expect(issueKeysOf(`ABC-2 ${'A'.repeat(1 << 20)}`, jira)).toEqual(['ABC-2']);
    expect(issueKeysOf(long, jira)).toEqual([]);
  }, 30_000);
});

describe('the static check against generated patterns', () => {
  // A fixed-seed generator of small patterns from the pieces key patterns are made
  // of. Whatever the check accepts must stay fast on the subjects that hurt
  // backtracking most; the seed is fixed so a run is the same every time.
  let seed = 7;
  const rnd = () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed / 0x7fffffff;
  };
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)] as T;
  const atoms = ['a', 'b', '-', '[ab]', '[a-z]', '\\d', '.', '1', '[^-]', '\\w', '\\b'];
  const quantifiers = ['', '', '', '*', '+', '?', '{1,3}', '{2}', '{0,}'];
  const gen = (depth: number): string => {
    let out = '';
    for (let i = 1 + Math.floor(rnd() * 4); i > 0; i--) {
      const r = rnd();
      const atom = depth < 2 && r < 0.2 ? `(?:${gen(depth + 1)})` : depth < 2 && r < 0.3 ? `(?:${gen(depth + 1)}|${gen(depth + 1)})` : pick(atoms);
      out += atom + pick(quantifiers);
    }
    return out;
  };

  it('accepts hundreds of 1,500 generated patterns, and each of those takes milliseconds on hostile subjects', () => {
    const subjects = ['a'.repeat(2048), 'ab'.repeat(1024), '1'.repeat(2048), 'a-'.repeat(1024), 'a1'.repeat(1024), `${'a'.repeat(2047)}!`, 'aa-'.repeat(682)];
    let accepted = 0;
    let worst = 0;
    for (let k = 0; k < 1500; k++) {
      const p = gen(0);
      if (issueKeyPatternProblem(p)) continue;
      accepted++;
      const m = compileIssueKeyPattern(p);
      for (const s of subjects) {
        const t0 = performance.now();
        issueKeysOf(s, m);
        worst = Math.max(worst, performance.now() - t0);
      }
    }
    expect(accepted).toBeGreaterThan(300);
    expect(worst).toBeLessThan(250);
  });
});
