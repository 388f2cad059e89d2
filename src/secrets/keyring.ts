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
 * The key comes from MAILGATE_SECRET_KEY (base64, 32 bytes), from
 * secretKeyFile, or from dataDir/secret.key, generated on first start with
 * mode 0600 (never for a `shared` store: PostgreSQL, several replicas).
 * `env` is passed in: nothing reads process.env after boot.
 */
export function loadSecretKey(
  dataDir: string,
  env: Record<string, string | undefined>,
  opts: { secretKeyFile?: string | undefined; shared?: boolean } = {},
): KeySource {
  const fromEnv = env[SECRET_KEY_ENV];
  if (fromEnv !== undefined && fromEnv !== '') {
    return { cipher: new SecretCipher(decodeKey(fromEnv, SECRET_KEY_ENV)), source: 'env', path: null };
  }
  if (opts.secretKeyFile !== undefined) {
    let text: string;
    try {
      text = readFileSync(opts.secretKeyFile, 'utf8');
    } catch (err) {
      throw new MailgateError('SECRET_KEY_INVALID', `cannot read secretKeyFile ${opts.secretKeyFile}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    return { cipher: new SecretCipher(decodeKey(text, opts.secretKeyFile)), source: 'file', path: opts.secretKeyFile };
  }
  if (opts.shared) {
    // Every replica must hold the same key: one made up here would seal secrets no other replica can open.
    throw new MailgateError('SECRET_KEY_INVALID', `a store shared by several replicas needs the secret key from ${SECRET_KEY_ENV} or secretKeyFile`);
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
