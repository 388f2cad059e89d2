import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SecretCipher } from '../../../src/secrets/cipher.js';
import { loadSecretKey } from '../../../src/secrets/keyring.js';
import { MailgateError } from '../../../src/errors.js';
import { tmpDataDir } from '../../harness/tmp-dir.js';

describe('SecretCipher', () => {
  const cipher = new SecretCipher(randomBytes(32));

  it('round-trips and never stores the plaintext', () => {
    const sealed = cipher.seal('1//0refresh-token-ü');
    expect(sealed.includes(Buffer.from('refresh-token'))).toBe(false);
    expect(cipher.open(sealed)).toBe('1//0refresh-token-ü');
  });

  it('uses a fresh IV each time', () => {
    expect(cipher.seal('same').equals(cipher.seal('same'))).toBe(false);
  });

  it('names a wrong key instead of failing obscurely', () => {
    const other = new SecretCipher(randomBytes(32));
    const sealed = other.seal('x');
    expect(() => cipher.open(sealed, 'refresh token of support')).toThrow(/refresh token of support was encrypted with a different key/);
  });

  it('detects tampering', () => {
    const sealed = cipher.seal('secret value');
    sealed[sealed.length - 1] = (sealed[sealed.length - 1] ?? 0) ^ 1;
    expect(() => cipher.open(sealed)).toThrow(/integrity check/);
  });

  it('rejects a truncated envelope', () => {
    expect(() => cipher.open(Buffer.from([1, 2, 3]))).toThrow(MailgateError);
  });

  it('refuses keys that are not 32 bytes', () => {
    expect(() => new SecretCipher(randomBytes(16))).toThrow(/32 bytes, got 16/);
  });
});

describe('loadSecretKey', () => {
  it('generates dataDir/secret.key with mode 0600 and reuses it', () => {
    const dir = tmpDataDir('mg-key-');
    const first = loadSecretKey(dir, {});
    expect(first.source).toBe('generated');
    const path = join(dir, 'secret.key');
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(Buffer.from(readFileSync(path, 'utf8').trim(), 'base64')).toHaveLength(32);
    const second = loadSecretKey(dir, {});
    expect(second.source).toBe('file');
    expect(second.cipher.open(first.cipher.seal('v'))).toBe('v');
  });

  it('prefers MAILGATE_SECRET_KEY and explains a bad one', () => {
    const dir = tmpDataDir('mg-key-');
    const key = randomBytes(32).toString('base64');
    expect(loadSecretKey(dir, { MAILGATE_SECRET_KEY: key }).source).toBe('env');
    expect(() => loadSecretKey(dir, { MAILGATE_SECRET_KEY: 'c2hvcnQ=' })).toThrow(/decodes to 5 bytes, expected 32/);
    expect(() => loadSecretKey(dir, { MAILGATE_SECRET_KEY: 'not base64!' })).toThrow(/is not base64/);
  });

  it('rejects a corrupt key file', () => {
    const dir = tmpDataDir('mg-key-');
    writeFileSync(join(dir, 'secret.key'), 'abc\n', { mode: 0o600 });
    expect(() => loadSecretKey(dir, {})).toThrow(/secret\.key decodes to 2 bytes/);
  });
});
