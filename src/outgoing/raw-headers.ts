/**
 * Reading one header field out of a message given as bytes, without parsing
 * the message: the header section is the lines before the first empty line;
 * a field may be folded over several lines (RFC 5322 §2.2.3). Only the
 * header section is looked at, and at most MAX_HEADER_SCAN bytes of it.
 */

/** A header section longer than this is not searched further (a header field line is at most 998 bytes). */
const MAX_HEADER_SCAN = 256 * 1024;
/** A header field line is at most 998 characters (RFC 5322 §2.1.1); a folded one (References) may be longer. */
const MAX_VALUE_CHARS = 998;

/** The unfolded, trimmed value of the first field called `name` (case-insensitive), at most `maxChars` long, or null. */
export function headerValue(raw: Buffer, name: string, maxChars = MAX_VALUE_CHARS): string | null {
  const head = raw.subarray(0, Math.min(raw.length, MAX_HEADER_SCAN)).toString('latin1');
  const want = name.toLowerCase();
  const lines = head.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] ?? '';
    if (line === '') return null;
    if (line.startsWith(' ') || line.startsWith('\t')) continue;
    const colon = line.indexOf(':');
    if (colon <= 0) return null;
    if (line.slice(0, colon).trimEnd().toLowerCase() !== want) continue;
    let value = line.slice(colon + 1);
    for (let j = i + 1; j < lines.length && /^[ \t]/.test(lines[j] ?? ''); j++) value += lines[j];
    const v = value.replace(/\s+/g, ' ').trim();
    return v === '' ? null : v.slice(0, maxChars);
  }
  return null;
}
