import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { MailgateError } from '../errors.js';

/**
 * AES-256-GCM envelope for every secret column.
 *
 *   byte 0      format version (1)
 *   bytes 1-4   key id: first 4 bytes of SHA-256(key), so a wrong key is
 *               reported as "a different key" instead of a bare auth failure
 *   bytes 5-16  96-bit random IV (NIST SP 800-38D recommends 96 bits)
 *   bytes 17-32 GCM tag
 *   rest        ciphertext
 */
const VERSION = 1;
const KEY_ID_BYTES = 4;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const HEADER_BYTES = 1 + KEY_ID_BYTES + IV_BYTES + TAG_BYTES;
export const KEY_BYTES = 32;

export function keyId(key: Buffer): string {
  return createHash('sha256').update(key).digest().subarray(0, KEY_ID_BYTES).toString('hex');
}

export class SecretCipher {
  readonly #key: Buffer;
  readonly #keyId: Buffer;

  constructor(key: Buffer) {
    if (key.length !== KEY_BYTES) {
      throw new MailgateError('SECRET_KEY_INVALID', `secret key must be ${KEY_BYTES} bytes, got ${key.length}`);
    }
    this.#key = Buffer.from(key);
    this.#keyId = Buffer.from(keyId(key), 'hex');
  }

  get keyId(): string {
    return this.#keyId.toString('hex');
  }

  seal(plaintext: string): Buffer {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.#key, iv);
    const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return Buffer.concat([Buffer.from([VERSION]), this.#keyId, iv, cipher.getAuthTag(), body]);
  }

  open(envelope: Buffer, what = 'secret'): string {
    if (envelope.length < HEADER_BYTES || envelope[0] !== VERSION) {
      throw new MailgateError('SECRET_DECRYPT_FAILED', `stored ${what} is not a mailgate secret envelope (corrupt?)`);
    }
    const storedKeyId = envelope.subarray(1, 1 + KEY_ID_BYTES);
    if (!storedKeyId.equals(this.#keyId)) {
      throw new MailgateError(
        'SECRET_DECRYPT_FAILED',
        `stored ${what} was encrypted with a different key (key id ${storedKeyId.toString('hex')}, current key id ${this.keyId}); ` +
          'set MAILGATE_SECRET_KEY or dataDir/secret.key to the key this database was created with',
      );
    }
    const iv = envelope.subarray(1 + KEY_ID_BYTES, 1 + KEY_ID_BYTES + IV_BYTES);
    const tag = envelope.subarray(1 + KEY_ID_BYTES + IV_BYTES, HEADER_BYTES);
    const decipher = createDecipheriv('aes-256-gcm', this.#key, iv);
    decipher.setAuthTag(tag);
    try {
      return Buffer.concat([decipher.update(envelope.subarray(HEADER_BYTES)), decipher.final()]).toString('utf8');
    } catch (cause) {
      throw new MailgateError('SECRET_DECRYPT_FAILED', `stored ${what} failed its integrity check (tampered or corrupt)`, { cause });
    }
  }

  sealOrNull(plaintext: string | null | undefined): Buffer | null {
    return plaintext == null ? null : this.seal(plaintext);
  }

  openOrNull(envelope: Buffer | null | undefined, what?: string): string | null {
    return envelope == null ? null : this.open(envelope, what);
  }
}
