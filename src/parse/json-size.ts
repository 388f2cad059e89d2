/**
 * Sizes of strings as they end up in a UTF-8 JSON body, so a webhook body
 * can be kept under its budget before it is serialised (JSON.stringify of a
 * 90 MB body of control characters makes a 540 MB string and throws
 * RangeError). Counts what JSON.stringify writes: a quote or backslash is 2
 * bytes, a control character 2 (\n, \t …) or 6 (\u0001), a lone surrogate 6,
 * others their UTF-8 length.
 */
function charBytes(s: string, i: number): [bytes: number, width: number] {
  const c = s.charCodeAt(i);
  if (c < 0x20) return [c === 0x08 || c === 0x09 || c === 0x0a || c === 0x0c || c === 0x0d ? 2 : 6, 1];
  if (c === 0x22 || c === 0x5c) return [2, 1];
  if (c < 0x80) return [1, 1];
  if (c < 0x800) return [2, 1];
  if (c >= 0xd800 && c <= 0xdbff) {
    const next = s.charCodeAt(i + 1);
    return next >= 0xdc00 && next <= 0xdfff ? [4, 2] : [6, 1];
  }
  if (c >= 0xdc00 && c <= 0xdfff) return [6, 1];
  return [3, 1];
}

/** Bytes of `JSON.stringify(s)` in UTF-8, quotes included. */
export function jsonStringBytes(s: string): number {
  let n = 2;
  for (let i = 0; i < s.length; ) {
    const [b, w] = charBytes(s, i);
    n += b;
    i += w;
  }
  return n;
}

/**
 * The longest prefix of `s` whose JSON form takes at most `maxBytes`
 * (never splitting a surrogate pair), and whether it was cut.
 */
export function truncateToJsonBytes(s: string, maxBytes: number): { text: string; truncated: boolean } {
  let n = 2;
  for (let i = 0; i < s.length; ) {
    const [b, w] = charBytes(s, i);
    if (n + b > maxBytes) return { text: s.slice(0, i), truncated: true };
    n += b;
    i += w;
  }
  return { text: s, truncated: false };
}

/** Bytes of base64 for `n` bytes of content. */
export function base64Bytes(n: number): number {
  return Math.ceil(n / 3) * 4;
}
