import { createHash, randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import type { RelayClient } from './types.js';

/**
 * Relay passwords. A client from the YAML has its password in plain text (the
 * admin wrote it there); a client kept in the database has only a scrypt hash
 * (RFC 7914) in the PHC string format:
 * `$scrypt$ln=15,r=8,p=1$<salt, base64>$<hash, base64>`.
 * Every comparison is constant-time.
 */

/** N = 2^15, r = 8: about 32 MiB and some 50–100 ms per check, OWASP's scrypt minimum and then some. */
export const SCRYPT_LOG_N = 15;
export const SCRYPT_R = 8;
export const SCRYPT_P = 1;
const SALT_BYTES = 16;
const HASH_BYTES = 32;
/** Hashes the relay checks at once: each takes ~32 MiB and a libuv thread, and a login flood must not take them all. */
export const MAX_CONCURRENT_HASH_CHECKS = 2;
/** Parameters a stored hash may carry: anything larger is refused rather than allowed to take gigabytes. */
const LIMITS = { logN: [10, 20], r: [1, 32], p: [1, 4] } as const;

export interface ParsedPasswordHash {
  logN: number;
  r: number;
  p: number;
  salt: Buffer;
  hash: Buffer;
}

const b64 = (b: Buffer) => b.toString('base64').replace(/=+$/, '');

function derive(password: string, salt: Buffer, h: Pick<ParsedPasswordHash, 'logN' | 'r' | 'p'>, keyLen: number): Promise<Buffer> {
  const N = 2 ** h.logN;
  // scrypt needs 128·N·r bytes (plus 128·r·p); Node's default maxmem (32 MiB) is exactly too small for N = 2^15, r = 8.
  const opts: ScryptOptions = { N, r: h.r, p: h.p, maxmem: 256 * N * h.r + 1024 * 1024 };
  return new Promise((resolve, reject) => scrypt(password, salt, keyLen, opts, (err, key) => (err ? reject(err) : resolve(key))));
}

/** A new hash for a relay client kept in the database. */
export async function hashRelayPassword(password: string): Promise<string> {
  const salt = randomBytes(SALT_BYTES);
  const hash = await derive(password, salt, { logN: SCRYPT_LOG_N, r: SCRYPT_R, p: SCRYPT_P }, HASH_BYTES);
  return `$scrypt$ln=${SCRYPT_LOG_N},r=${SCRYPT_R},p=${SCRYPT_P}$${b64(salt)}$${b64(hash)}`;
}

/** The parts of a stored hash, or null when it is not one mailgate made (or asks for more than LIMITS allow). */
export function parseRelayPasswordHash(value: string): ParsedPasswordHash | null {
  const m = /^\$scrypt\$ln=(\d{1,2}),r=(\d{1,2}),p=(\d)\$([A-Za-z0-9+/]{16,88})\$([A-Za-z0-9+/]{16,88})$/.exec(value);
  if (!m?.[1] || !m[2] || !m[3] || !m[4] || !m[5]) return null;
  const [logN, r, p] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const within = (v: number, [lo, hi]: readonly [number, number]) => v >= lo && v <= hi;
  if (!within(logN, LIMITS.logN) || !within(r, LIMITS.r) || !within(p, LIMITS.p)) return null;
  return { logN, r, p, salt: Buffer.from(m[4], 'base64'), hash: Buffer.from(m[5], 'base64') };
}

/** A tiny semaphore: at most `max` holders, the rest wait in order. */
class Gate {
  #free: number;
  readonly #waiting: (() => void)[] = [];
  constructor(max: number) {
    this.#free = max;
  }
  async run<T>(op: () => Promise<T>): Promise<T> {
    if (this.#free > 0) this.#free--;
    else await new Promise<void>((r) => this.#waiting.push(r));
    try {
      return await op();
    } finally {
      const next = this.#waiting.shift();
      if (next) next();
      else this.#free++;
    }
  }
}

const hashChecks = new Gate(MAX_CONCURRENT_HASH_CHECKS);

/** Plain text: both sides hashed first, so timingSafeEqual gets equal lengths and the real length does not leak (as src/http/admin-auth.ts). */
function plainMatches(presented: string, expected: string): boolean {
  const a = createHash('sha256').update(presented, 'utf8').digest();
  const b = createHash('sha256').update(expected, 'utf8').digest();
  return timingSafeEqual(a, b);
}

/** Whether `presented` is the client's password. */
export async function relayPasswordMatches(client: RelayClient, presented: string): Promise<boolean> {
  if (client.password !== undefined) return plainMatches(presented, client.password);
  const parsed = parseRelayPasswordHash(client.passwordHash);
  if (!parsed) return false;
  const derived = await hashChecks.run(() => derive(presented, parsed.salt, parsed, parsed.hash.length));
  return timingSafeEqual(derived, parsed.hash);
}
