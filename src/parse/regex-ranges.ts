/** Sets of code points as sorted ranges, for the regular-expression shape check (regex-shape.ts). */

export type Ranges = readonly (readonly [number, number])[];
export const MAX_CP = 0x10ffff;
export const ANY: Ranges = [[0, MAX_CP]];
export const NONE: Ranges = [];
export const DIGIT: Ranges = [[0x30, 0x39]];
export const WORD: Ranges = [
  [0x30, 0x39],
  [0x41, 0x5a],
  [0x5f, 0x5f],
  [0x61, 0x7a],
];
export const SPACE: Ranges = normalise([
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
export const ASCII_NON_LETTER: Ranges = [
  [0x00, 0x40],
  [0x5b, 0x60],
  [0x7b, 0x7f],
];
export const ASCII_NON_DIGIT: Ranges = [
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
export function propertySuperset(name: string): Ranges {
  const value = name.replace(/^(?:General_Category|gc)=/, '');
  if (LETTER_PROPERTIES.has(value)) return complement(ASCII_NON_LETTER);
  if (NUMBER_PROPERTIES.has(value)) return complement(ASCII_NON_DIGIT);
  const script = /^(?:Script|sc|Script_Extensions|scx)=(\w+)$/.exec(name)?.[1];
  if (script === undefined || /^(?:Common|Zyyy|Inherited|Zinh|Qaai)$/.test(script)) return ANY;
  // Latin has the ASCII letters; every other script has no ASCII at all.
  return complement(ASCII_NON_LETTER);
}

export function normalise(input: readonly (readonly [number, number])[]): Ranges {
  const sorted = [...input].sort((a, b) => a[0] - b[0]);
  const out: [number, number][] = [];
  for (const [lo, hi] of sorted) {
    const last = out[out.length - 1];
    if (last && lo <= last[1] + 1) last[1] = Math.max(last[1], hi);
    else out.push([lo, hi]);
  }
  return out;
}

export function union(a: Ranges, b: Ranges): Ranges {
  if (a.length === 0) return b;
  if (b.length === 0) return a;
  return normalise([...a, ...b]);
}

export function complement(a: Ranges): Ranges {
  const out: [number, number][] = [];
  let next = 0;
  for (const [lo, hi] of normalise(a)) {
    if (lo > next) out.push([next, lo - 1]);
    next = hi + 1;
  }
  if (next <= MAX_CP) out.push([next, MAX_CP]);
  return out;
}

export function intersects(a: Ranges, b: Ranges): boolean {
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
