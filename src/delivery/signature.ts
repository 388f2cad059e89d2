import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * The contract's webhook signature:
 * `X-Mailgate-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`.
 * Signing the timestamp with the body lets receivers refuse replays older
 * than their tolerance (the contract suggests 5 minutes).
 */
export function signPayload(secret: string, rawBody: string | Buffer, nowSeconds: number = Math.floor(Date.now() / 1000)): string {
  // Two updates: no copy of a large body just to prefix the timestamp.
  const mac = createHmac('sha256', secret).update(`${nowSeconds}.`).update(rawBody).digest('hex');
  return `t=${nowSeconds},v1=${mac}`;
}

export const SIGNATURE_TOLERANCE_SECONDS = 300;

export function verifySignature(
  secret: string,
  header: string | null | undefined,
  rawBody: string,
  opts: { toleranceSeconds?: number; nowSeconds?: number } = {},
): boolean {
  if (!header) return false;
  let t: number | null = null;
  const macs: Buffer[] = [];
  for (const part of header.split(',')) {
    const [k, v] = part.split('=', 2);
    if (k?.trim() === 't' && v && /^\d+$/.test(v.trim())) t = Number(v.trim());
    if (k?.trim() === 'v1' && v && /^[0-9a-f]{64}$/i.test(v.trim())) macs.push(Buffer.from(v.trim(), 'hex'));
  }
  if (t === null || macs.length === 0) return false;
  const now = opts.nowSeconds ?? Math.floor(Date.now() / 1000);
  if (Math.abs(now - t) > (opts.toleranceSeconds ?? SIGNATURE_TOLERANCE_SECONDS)) return false;
  const expected = createHmac('sha256', secret).update(`${t}.${rawBody}`).digest();
  return macs.some((m) => m.length === expected.length && timingSafeEqual(m, expected));
}
