const CR = 0x0d;
const LF = 0x0a;

/**
 * The message with every line ending as CRLF (RFC 5322 §2.1). Old Mac
 * clients and some gateways send bare CR, Unix tools bare LF; mailparser
 * splits headers from the body on CRLF or LF only, so a CR-only message
 * parsed as one long header line: no from, no subject, no text. Returns the
 * same Buffer when nothing needs fixing (the common case costs one scan);
 * the stored raw message always stays as received.
 */
export function toCrlf(raw: Buffer): Buffer {
  let extra = 0;
  for (let i = 0; i < raw.length; i++) {
    const b = raw[i];
    if (b === CR) {
      if (raw[i + 1] === LF) i++;
      else extra++;
    } else if (b === LF) {
      extra++;
    }
  }
  if (extra === 0) return raw;
  const out = Buffer.allocUnsafe(raw.length + extra);
  let o = 0;
  let start = 0;
  for (let i = 0; i < raw.length; i++) {
    const b = raw[i];
    if (b !== CR && b !== LF) continue;
    if (b === CR && raw[i + 1] === LF) {
      i++;
      continue;
    }
    // A bare CR or LF: copy what came before it, then a CRLF in its place.
    o += raw.copy(out, o, start, i);
    out[o++] = CR;
    out[o++] = LF;
    start = i + 1;
  }
  o += raw.copy(out, o, start, raw.length);
  return o === out.length ? out : out.subarray(0, o);
}
