/** A Set-Cookie header as name, value and its attributes (order-free, attribute names lower-cased). */
export function parseSetCookie(header: string): { name: string; value: string; attrs: Record<string, string | true> } {
  const [pair = '', ...rest] = header.split(';');
  const eq = pair.indexOf('=');
  const attrs: Record<string, string | true> = {};
  for (const part of rest) {
    const [k = '', v] = part.split('=', 2).map((x) => x.trim());
    if (k) attrs[k.toLowerCase()] = v ?? true;
  }
  return { name: pair.slice(0, eq).trim(), value: pair.slice(eq + 1).trim(), attrs };
}

/** A Content-Security-Policy header as directive → sources. */
export function parseCsp(header: string | undefined): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const d of (header ?? '').split(';')) {
    const [name, ...sources] = d.trim().split(/\s+/);
    if (name) out[name.toLowerCase()] = sources;
  }
  return out;
}
