/**
 * Sizes of strings as they end up in a UTF-8 JSON body, so a webhook body
 * can be kept under its budget before it is serialised (JSON.stringify of a
 * 90 MB body of control characters makes a 540 MB string and throws
 * RangeError). Counts what JSON.stringify writes: a quote or backslash is 2
 * bytes, a control character 2 (\n, \t …) or 6 (\u0001), a lone surrogate 6,
 * others their UTF-8 length. One pass, no allocation per character (this
 * runs over every message's text and html).
 */

/** Strings up to this length are sized with JSON.stringify (at most 6 bytes a character: 48 MB, far from V8's string limit). */
const NATIVE_SIZE_LIMIT_CHARS = 8 * 1024 * 1024;

/**
 * The longest prefix of `s` whose JSON form takes at most `maxBytes`
 * (never splitting a surrogate pair), whether it was cut, and its JSON size.
 */
export function fitJsonString(s: string, maxBytes: number): { text: string; truncated: boolean; bytes: number } {
  // Most texts are small: V8's own serialiser and byte count (native) are several times faster
  // than the loop below. Only for strings whose escaped form could be huge is the loop used.
  if (s.length <= NATIVE_SIZE_LIMIT_CHARS) {
    const bytes = Buffer.byteLength(JSON.stringify(s), 'utf8');
    if (bytes <= maxBytes) return { text: s, truncated: false, bytes };
  }
  let n = 2;
  const len = s.length;
  for (let i = 0; i < len; i++) {
    const c = s.charCodeAt(i);
    let b: number;
    let w = 1;
    if (c >= 0x20 && c < 0x80) b = c === 0x22 || c === 0x5c ? 2 : 1;
    else if (c < 0x20) b = c === 0x08 || c === 0x09 || c === 0x0a || c === 0x0c || c === 0x0d ? 2 : 6;
    else if (c < 0x800) b = 2;
    else if (c >= 0xd800 && c <= 0xdbff) {
      const next = s.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        b = 4;
        w = 2;
      } else b = 6;
    } else if (c >= 0xdc00 && c <= 0xdfff) b = 6;
    else b = 3;
    if (n + b > maxBytes) return { text: s.slice(0, i), truncated: true, bytes: n };
    n += b;
    i += w - 1;
  }
  return { text: s, truncated: false, bytes: n };
}

/** Bytes of `JSON.stringify(s)` in UTF-8, quotes included. */
export function jsonStringBytes(s: string): number {
  return fitJsonString(s, Number.POSITIVE_INFINITY).bytes;
}

/** The longest prefix of `s` whose JSON form takes at most `maxBytes`, and whether it was cut. */
export function truncateToJsonBytes(s: string, maxBytes: number): { text: string; truncated: boolean } {
  const r = fitJsonString(s, maxBytes);
  return { text: r.text, truncated: r.truncated };
}

/** Bytes of base64 for `n` bytes of content. */
export function base64Bytes(n: number): number {
  return Math.ceil(n / 3) * 4;
}
