/** A small parser of JavaScript regular expressions (Unicode mode) into a tree, for the shape check (regex-shape.ts). */
import { ANY, complement, DIGIT, normalise, propertySuperset, SPACE, WORD, type Ranges } from './regex-ranges.js';

export interface Span {
  start: number;
  end: number;
}
export type RegexNode =
  | (Span & { t: 'char'; set: Ranges })
  | (Span & { t: 'seq'; items: RegexNode[] })
  | (Span & { t: 'alt'; alts: RegexNode[] })
  | (Span & { t: 'group'; body: RegexNode })
  | (Span & { t: 'look'; body: RegexNode; behind: boolean })
  | (Span & { t: 'assert' })
  | (Span & { t: 'backref' })
  | (Span & { t: 'repeat'; body: RegexNode; min: number; max: number });

export interface ParsedPattern {
  source: string;
  root: RegexNode;
  groupNames: Set<string>;
}

/**
 * Reads a pattern that `new RegExp(source, 'u')` accepted (so the Unicode
 * mode grammar holds: no lone `{`, `}` or `]`, no Annex B escapes).
 */
export function parsePattern(source: string): ParsedPattern {
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
