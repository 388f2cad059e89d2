import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { MailgateError } from '../errors.js';
import { KEY_BYTES, SecretCipher } from './cipher.js';

export const SECRET_KEY_FILE = 'secret.key';
export const SECRET_KEY_ENV = 'MAILGATE_SECRET_KEY';

export interface KeySource {
  cipher: SecretCipher;
  /** Where the key came from, for the startup log line (never the key itself). */
  source: 'env' | 'file' | 'generated';
  path: string | null;
}

function decodeKey(text: string, where: string): Buffer {
  const trimmed = text.trim();
  if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(trimmed)) {
    throw new MailgateError('SECRET_KEY_INVALID', `${where} is not base64 (expected ${KEY_BYTES} random bytes, base64-encoded)`);
  }
  const key = Buffer.from(trimmed.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
  if (key.length !== KEY_BYTES) {
    throw new MailgateError(
      'SECRET_KEY_INVALID',
      `${where} decodes to ${key.length} bytes, expected ${KEY_BYTES} (generate one with: openssl rand -base64 32)`,
    );
  }
  return key;
}

/**
 * The key comes from MAILGATE_SECRET_KEY (base64, 32 bytes) or from
 * dataDir/secret.key, generated on first start with mode 0600.
 * `env` is passed in: nothing reads process.env after boot.
 */
export function loadSecretKey(dataDir: string, env: Record<string, string | undefined>): KeySource {
  const fromEnv = env[SECRET_KEY_ENV];
  if (fromEnv !== undefined && fromEnv !== '') {
    return { cipher: new SecretCipher(decodeKey(fromEnv, SECRET_KEY_ENV)), source: 'env', path: null };
  }
  const path = join(dataDir, SECRET_KEY_FILE);
  if (existsSync(path)) {
    const mode = statSync(path).mode & 0o777;
    if ((mode & 0o077) !== 0) {
      // Tighten rather than refuse: a copied volume often loses modes.
      chmodSync(path, 0o600);
    }
    return { cipher: new SecretCipher(decodeKey(readFileSync(path, 'utf8'), path)), source: 'file', path };
  }
  mkdirSync(dataDir, { recursive: true });
  const key = randomBytes(KEY_BYTES);
  writeFileSync(path, key.toString('base64') + '\n', { mode: 0o600, flag: 'wx' });
  return { cipher: new SecretCipher(key), source: 'generated', path };
}
