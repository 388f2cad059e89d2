/**
 * A conservative static check of a regular expression for shapes that can
 * backtrack catastrophically (used for issueKeyPattern, issue-keys.ts).
 */

export interface PatternProblem {
  message: string;
  offset: number | null;
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

import { intersects, NONE, union, type Ranges } from './regex-ranges.js';
import type { ParsedPattern, RegexNode, Span } from './regex-parse.js';
export { parsePattern } from './regex-parse.js';

export function nullable(n: RegexNode): boolean {
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

export function shapeProblem(p: ParsedPattern): PatternProblem | null {
  const frag = (n: Span) => JSON.stringify(p.source.slice(n.start, n.end));
  const refuse = (n: Span, message: string): PatternProblem => ({ message, offset: n.start });

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
