const CR = 0x0d;
const LF = 0x0a;

/**
 * The message with every line ending as CRLF (RFC 5322 §2.1). Old Mac
 * clients and some gateways send bare CR, Unix tools bare LF, and a message
 * converted twice has CR CR LF; mailparser splits lines on LF and ends the
 * header block only at an empty line, so a CR-only message parsed as one
 * long header line (no from, no subject, no text) and a CR CR LF one lost
 * its whole body. A run of CRs followed by LF is one line end; otherwise
 * each bare CR and each bare LF is one. Returns the same Buffer when
 * nothing needs fixing (one scan); the stored raw message stays as received.
 */
export function toCrlf(raw: Buffer): Buffer {
  if (isCrlfOnly(raw)) return raw;
  // At most two bytes per input byte (a bare CR or LF becomes CRLF).
  const out = Buffer.allocUnsafe(raw.length * 2);
  let o = 0;
  let start = 0;
  for (let i = 0; i < raw.length; i++) {
    const b = raw[i];
    if (b !== CR && b !== LF) continue;
    o += raw.copy(out, o, start, i);
    if (b === CR) {
      let j = i;
      while (raw[j + 1] === CR) j++;
      if (raw[j + 1] === LF) {
        // CR…CR LF: one line end.
        i = j + 1;
        out[o++] = CR;
        out[o++] = LF;
      } else {
        // Bare CRs: one line end each.
        for (let k = i; k <= j; k++) {
          out[o++] = CR;
          out[o++] = LF;
        }
        i = j;
      }
    } else {
      out[o++] = CR;
      out[o++] = LF;
    }
    start = i + 1;
  }
  o += raw.copy(out, o, start, raw.length);
  return out.subarray(0, o);
}

/** True when every CR is followed by LF and every LF preceded by exactly one CR. */
function isCrlfOnly(raw: Buffer): boolean {
  for (let i = raw.indexOf(CR); i !== -1; i = raw.indexOf(CR, i + 1)) {
    if (raw[i + 1] !== LF || raw[i - 1] === CR) return false;
  }
  for (let i = raw.indexOf(LF); i !== -1; i = raw.indexOf(LF, i + 1)) {
    if (raw[i - 1] !== CR) return false;
  }
  return true;
}
