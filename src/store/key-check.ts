import { MailgateError } from '../errors.js';
import type { SecretCipher } from '../secrets/cipher.js';
import type { MetaRepo } from './meta.js';

/** A fixed plaintext sealed by the first store opened on a storage: opening it proves a later key is the same. */
export const KEY_CHECK_META = 'secret_key_check';
const KEY_CHECK_PLAINTEXT = 'mailgate-key-check-v1';

/**
 * Refuses a key that is not the one the storage's secrets are sealed with,
 * before anything is read or written with it. The first store on a storage
 * records the check (atomically: of two first opens, one wins and the other
 * is checked against it); every later open, on any backend and any replica,
 * must open it. Throws SECRET_KEY_INVALID.
 */
export async function checkSecretKey(meta: MetaRepo, cipher: SecretCipher): Promise<void> {
  const mine = cipher.seal(KEY_CHECK_PLAINTEXT).toString('base64');
  const stored = await meta.setIfAbsent(KEY_CHECK_META, mine);
  if (stored === mine) return;
  let opened: string;
  try {
    opened = cipher.open(Buffer.from(stored, 'base64'), 'key check');
  } catch (cause) {
    throw new MailgateError('SECRET_KEY_INVALID', `the secret key does not match this database: ${(cause as Error).message}`, { cause });
  }
  if (opened !== KEY_CHECK_PLAINTEXT) {
    throw new MailgateError('SECRET_KEY_INVALID', 'the secret key check in the database is corrupt');
  }
}
