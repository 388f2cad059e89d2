/**
 * Webhook signatures in both modes, with several secrets for rotation
 * (product.md, "Webhook signatures and secret rotation").
 *
 * - `signature: mailgate` (v1): `X-Mailgate-Signature: t=<ts>,v1=<hex>,…`,
 *   one `v1=` per secret, newest first, each the hex HMAC-SHA256 of
 *   `<ts>.<body>` keyed with the secret's UTF-8 bytes (as v1 did; a secret
 *   that happens to start with `whsec_` is used as written).
 * - `signature: standard` (Standard Webhooks v1): `webhook-id` (the delivery
 *   id, the same on every attempt), `webhook-timestamp` (unix seconds) and
 *   `webhook-signature: v1,<base64> v1,<base64>`, each the base64
 *   HMAC-SHA256 of `<id>.<ts>.<body>`; a `whsec_<base64>` secret is keyed
 *   with the decoded bytes (the spec's form), any other string with its
 *   UTF-8 bytes.
 *
 * Why node:crypto and not the `standardwebhooks` package's `sign`: the
 * package (1.1.1) hashes with fast-sha256, pure JavaScript, and turns a
 * Buffer body into a string and back first; measured on Node 20 here, a
 * 10 MB body took 209 ms per secret against 10 ms with node:crypto, and a
 * 4 KB one 89 µs against 6 µs, on the thread that runs every delivery. The
 * bytes are the same: test/unit/delivery/signing.test.ts has the package's
 * own `Webhook.verify` accept every signature made here, for every secret of
 * a rotation, and compares with its `sign`.
 *
 * Receivers using the package with a secret that is not `whsec_…` must pass
 * its UTF-8 bytes: `new Webhook(Buffer.from(secret, 'utf8'), { format: 'raw' })`.
 * The package's raw *string* form takes each UTF-16 unit as one byte, which
 * is the UTF-8 form only for ASCII secrets.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { MailgateError } from '../errors.js';

export const SIGNATURE_MODES = ['mailgate', 'standard'] as const;
export type SignatureMode = (typeof SIGNATURE_MODES)[number];

/** The Standard Webhooks spelling of a secret given as base64 key bytes. */
export const STANDARD_SECRET_PREFIX = 'whsec_';
/** More secrets than this in one rotation is a mistake (each costs one HMAC per attempt). */
export const MAX_SECRETS = 8;
/** Receivers should refuse a timestamp further than this from their clock (both modes). */
export const SIGNATURE_TOLERANCE_SECONDS = 300;

/** Canonical, padded standard base64 (what the `standardwebhooks` libraries decode). */
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** A webhook's validated signing setup: the mode and each secret's key bytes, newest first, without repeats. */
export interface Signer {
  readonly mode: SignatureMode;
  readonly keys: readonly Buffer[];
}

/**
 * Why `secret` cannot sign in `mode`, in plain words (never quoting the
 * secret), or null. For the config loader, which adds `file:line:col`.
 */
export function secretProblem(mode: SignatureMode, secret: unknown): string | null {
  if (typeof secret !== 'string') return 'must be a string';
  if (secret.length === 0) return 'is empty';
  if (mode !== 'standard' || !secret.startsWith(STANDARD_SECRET_PREFIX)) return null;
  const encoded = secret.slice(STANDARD_SECRET_PREFIX.length);
  if (encoded.length === 0) return `is ${STANDARD_SECRET_PREFIX} with no key after it`;
  if (!BASE64.test(encoded) || Buffer.from(encoded, 'base64').toString('base64') !== encoded) {
    return (
      `starts with ${STANDARD_SECRET_PREFIX} but what follows is not valid base64: the Standard Webhooks form is ${STANDARD_SECRET_PREFIX} followed by the ` +
      'standard (not URL-safe), padded base64 of the key bytes, without spaces or line breaks; a secret that is not meant as base64 must not start with ' +
      STANDARD_SECRET_PREFIX
    );
  }
  return null;
}

/** One problem of a webhook's signing keys: the key it is about, the list index for `secrets`, and why. */
export interface SigningProblem {
  key: 'signature' | 'secret' | 'secrets';
  index: number | null;
  message: string;
}

/**
 * Everything wrong with a webhook's `signature`, `secret` and `secrets` (as
 * written in the YAML, `${VAR}` already replaced, `secretFile` already
 * read into `secret`). Empty when a Signer can be made.
 */
export function signingConfigProblems(webhook: { signature?: unknown; secret?: unknown; secrets?: unknown }): SigningProblem[] {
  const problems: SigningProblem[] = [];
  const add = (key: SigningProblem['key'], message: string, index: number | null = null) => problems.push({ key, index, message });
  let mode: SignatureMode = 'mailgate';
  if (webhook.signature !== undefined) {
    if (typeof webhook.signature === 'string' && (SIGNATURE_MODES as readonly string[]).includes(webhook.signature)) mode = webhook.signature as SignatureMode;
    else add('signature', `must be ${SIGNATURE_MODES.join(' or ')}`);
  }
  const hasSecret = webhook.secret !== undefined;
  const hasSecrets = webhook.secrets !== undefined;
  if (hasSecret && hasSecrets) {
    add('secrets', 'set either secret or secrets, not both (secrets: [new, old] replaces secret during a rotation)');
    return problems;
  }
  if (!hasSecret && !hasSecrets) {
    add('secret', 'a webhook needs secret (or secretFile), or secrets: [newest, …] during a rotation');
    return problems;
  }
  if (hasSecret) {
    const p = secretProblem(mode, webhook.secret);
    if (p) add('secret', p);
    return problems;
  }
  const list = webhook.secrets;
  if (!Array.isArray(list)) {
    add('secrets', 'must be a list of secrets, newest first');
    return problems;
  }
  if (list.length === 0) add('secrets', 'is empty; list at least one secret, newest first');
  if (list.length > MAX_SECRETS) add('secrets', `lists ${list.length} secrets; at most ${MAX_SECRETS} are accepted (the new one and those still being retired)`);
  list.forEach((s, i) => {
    const p = secretProblem(mode, s);
    if (p) add('secrets', p, i);
  });
  return problems;
}

/** The key bytes of one secret in `mode` (the secret must have passed secretProblem). */
function keyOf(mode: SignatureMode, secret: string): Buffer {
  if (mode === 'standard' && secret.startsWith(STANDARD_SECRET_PREFIX)) return Buffer.from(secret.slice(STANDARD_SECRET_PREFIX.length), 'base64');
  return Buffer.from(secret, 'utf8');
}

/**
 * A Signer for `secrets` (newest first). Throws CONFIG_INVALID naming the
 * first bad entry by position. The same key listed twice (two variables with
 * one value during a rotation) signs once.
 */
export function createSigner(mode: SignatureMode, secrets: readonly string[]): Signer {
  if (!(SIGNATURE_MODES as readonly string[]).includes(mode)) throw new MailgateError('CONFIG_INVALID', `signature must be ${SIGNATURE_MODES.join(' or ')}`);
  if (secrets.length === 0) throw new MailgateError('CONFIG_INVALID', 'a webhook needs at least one secret');
  if (secrets.length > MAX_SECRETS) throw new MailgateError('CONFIG_INVALID', `at most ${MAX_SECRETS} secrets are accepted`);
  const keys: Buffer[] = [];
  secrets.forEach((s, i) => {
    const p = secretProblem(mode, s);
    if (p) throw new MailgateError('CONFIG_INVALID', `secret ${i + 1} of ${secrets.length} ${p}`);
    const key = keyOf(mode, s);
    if (!keys.some((k) => k.equals(key))) keys.push(key);
  });
  return Object.freeze({ mode, keys: Object.freeze(keys) });
}

function hmac(key: Buffer, prefix: string, body: string | Buffer): Buffer {
  // Two updates: no copy of a large body just to prefix it.
  return createHmac('sha256', key).update(prefix, 'utf8').update(body).digest();
}

/**
 * The signature headers of one delivery attempt, signed now (every attempt
 * is signed afresh). `body` is the exact bytes sent (a string is sent as
 * UTF-8). The caller adds Content-Type, X-Mailgate-Event and
 * X-Mailgate-Delivery in both modes.
 */
export function signatureHeaders(
  signer: Signer,
  deliveryId: string,
  body: string | Buffer,
  nowSeconds: number = Math.floor(Date.now() / 1000),
): Record<string, string> {
  const ts = String(Math.floor(nowSeconds));
  if (signer.mode === 'mailgate') {
    const macs = signer.keys.map((k) => `v1=${hmac(k, `${ts}.`, body).toString('hex')}`);
    return { 'X-Mailgate-Signature': `t=${ts},${macs.join(',')}` };
  }
  const sigs = signer.keys.map((k) => `v1,${hmac(k, `${deliveryId}.${ts}.`, body).toString('base64')}`);
  return { 'webhook-id': deliveryId, 'webhook-timestamp': ts, 'webhook-signature': sigs.join(' ') };
}

/**
 * Receiver side of `signature: mailgate` with a rotation: true when any
 * `v1=` of the header is the HMAC under any of `secrets` and `t` is within
 * the tolerance. (The Standard Webhooks side is the `standardwebhooks`
 * package's `Webhook.verify`.)
 */
export function verifyMailgateSignature(
  secrets: readonly string[],
  header: string | null | undefined,
  body: string | Buffer,
  opts: { toleranceSeconds?: number; nowSeconds?: number } = {},
): boolean {
  if (!header || header.length > 4096) return false;
  let t: string | null = null;
  const macs: Buffer[] = [];
  for (const part of header.split(',')) {
    const eq = part.indexOf('=');
    const k = part.slice(0, eq).trim();
    const v = part.slice(eq + 1).trim();
    if (k === 't' && /^\d{1,12}$/.test(v)) t = v;
    else if (k === 'v1' && /^[0-9a-f]{64}$/i.test(v)) macs.push(Buffer.from(v, 'hex'));
  }
  if (t === null || macs.length === 0) return false;
  const now = opts.nowSeconds ?? Math.floor(Date.now() / 1000);
  if (Math.abs(now - Number(t)) > (opts.toleranceSeconds ?? SIGNATURE_TOLERANCE_SECONDS)) return false;
  return secrets.some((secret) => {
    const expected = hmac(Buffer.from(secret, 'utf8'), `${t}.`, body);
    return macs.some((m) => timingSafeEqual(m, expected));
  });
}
