import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkConfigFile } from '../../../src/config/check.js';
import { loadConfig } from '../../../src/config/load.js';
import { tmpDataDir } from '../../harness/tmp-dir.js';

function write(text: string): string {
  const path = join(tmpDataDir('mg-envo-'), 'mailgate.yaml');
  writeFileSync(path, text);
  return path;
}

const FILE = 'server:\n  listen: 127.0.0.1:8025\n  publicUrl: http://127.0.0.1:8025\ndataDir: ../data\n';

describe('MAILGATE_LISTEN, MAILGATE_PUBLIC_URL and MAILGATE_DATA_DIR override the file', () => {
  it('a set variable wins, and the result says which ones applied', async () => {
    const path = write(FILE);
    const env = { MAILGATE_LISTEN: '0.0.0.0:9025', MAILGATE_PUBLIC_URL: 'https://mail.example.com/', MAILGATE_DATA_DIR: '/data' };
    const r = await loadConfig(path, { env });
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
    expect(r.config.server.listen).toEqual({ host: '0.0.0.0', port: 9025 });
    expect(r.config.server.publicUrl).toBe('https://mail.example.com');
    expect(r.config.dataDir).toBe('/data');
    expect(r.overrides.map((o) => o.variable)).toEqual(['MAILGATE_LISTEN', 'MAILGATE_PUBLIC_URL', 'MAILGATE_DATA_DIR']);
    const check = await checkConfigFile(path, env);
    expect(check.overrides).toEqual([
      'MAILGATE_LISTEN=0.0.0.0:9025 overrides server.listen',
      'MAILGATE_PUBLIC_URL=https://mail.example.com/ overrides server.publicUrl',
      'MAILGATE_DATA_DIR=/data overrides dataDir',
    ]);
  });

  it('works when the file has no server section, and changes nothing when unset', async () => {
    const bare = write('accounts: []\n');
    const r = await loadConfig(bare, { env: { MAILGATE_LISTEN: '[::]:8025' } });
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
    expect(r.config.server.listen).toEqual({ host: '::', port: 8025 });
    const same = await loadConfig(write(FILE), { env: {} });
    expect(same.ok && same.overrides).toEqual([]);
    expect(same.ok && same.config.server.listen).toEqual({ host: '127.0.0.1', port: 8025 });
  });

  it('an unusable value is an error naming the variable, together with the file\'s own problems', async () => {
    const path = write(`${FILE}bogus: 1\n`);
    const r = await loadConfig(path, { env: { MAILGATE_LISTEN: 'nope', MAILGATE_PUBLIC_URL: 'ftp://x', MAILGATE_DATA_DIR: '' } });
    if (r.ok) throw new Error('expected errors');
    expect(r.errors.map((e) => e.message)).toEqual([
      'MAILGATE_LISTEN must be host:port (e.g. 0.0.0.0:8025 or [::]:8025), got "nope"',
      'MAILGATE_PUBLIC_URL must be an http(s) URL (how browsers reach mailgate), got "ftp://x"',
      "MAILGATE_DATA_DIR is set but empty; unset it to use the config file's value",
      'unknown key "bogus"',
    ]);
  });
});
