import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config/load.js';
import { createLogger } from '../../../src/log.js';
import { redactUrl, whereOf } from '../../../src/store/postgres/url.js';
import { tmpDataDir } from '../../harness/tmp-dir.js';

function write(text: string, files: Record<string, string> = {}): string {
  const dir = tmpDataDir('mg-cfg-store-');
  for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, name), content);
  const path = join(dir, 'mailgate.yaml');
  writeFileSync(path, text);
  return path;
}

const KEY_ENV = { MAILGATE_SECRET_KEY: Buffer.alloc(32, 7).toString('base64') };

async function errorsOf(text: string, env: Record<string, string> = KEY_ENV): Promise<string[]> {
  const path = write(text);
  const r = await loadConfig(path, { env });
  if (r.ok) throw new Error('expected errors');
  return r.errors.map((e) => `${e.file === path ? '' : e.file}${e.line}:${e.col} ${e.message}`);
}

describe('store: in the config', () => {
  it('defaults to SQLite in dataDir', async () => {
    const r = await loadConfig(write('dataDir: ./state\n'), { env: {} });
    if (!r.ok) throw new Error('expected a valid config');
    expect(r.config.store).toEqual({ kind: 'sqlite', url: undefined, poolSize: 5 });
    expect(r.config.secretKeyFile).toBeUndefined();
  });

  it('reads kind postgres with its url and poolSize, next to cluster', async () => {
    const r = await loadConfig(write('store:\n  kind: postgres\n  url: postgres://mg:pw@db.internal:5432/mailgate\n  poolSize: 3\ncluster: { nodeName: a }\n'), { env: KEY_ENV });
    if (!r.ok) throw new Error(r.errors.map((e) => e.message).join('; '));
    expect(r.config.store).toEqual({ kind: 'postgres', url: 'postgres://mg:pw@db.internal:5432/mailgate', poolSize: 3 });
    expect(r.config.cluster?.nodeName).toBe('a');
  });

  it('reads the url from urlFile and the key from secretKeyFile (relative to the config file)', async () => {
    const path = write('secretKeyFile: ./key\nstore:\n  kind: postgres\n  urlFile: ./db-url\n', { 'db-url': 'postgresql://mg@db/mailgate\n', key: 'x' });
    const r = await loadConfig(path, { env: {} });
    if (!r.ok) throw new Error(r.errors.map((e) => e.message).join('; '));
    expect(r.config.store.url).toBe('postgresql://mg@db/mailgate');
    expect(r.config.secretKeyFile).toBe(join(path, '..', 'key'));
  });

  it('refuses a bad kind at file:line:col', async () => {
    expect(await errorsOf('store:\n  kind: mysql\n')).toEqual(['2:9 store.kind: must be one of sqlite, postgres']);
  });

  it('refuses a url that is not postgres://, at the url, without echoing it (it may hold a password)', async () => {
    const errors = await errorsOf('store:\n  kind: postgres\n  url: mysql://root:hunter2@db/x\n');
    expect(errors).toEqual(['3:8 store.url must be a postgres:// (or postgresql://) URL, e.g. postgres://mailgate:secret@db.internal:5432/mailgate']);
    expect(errors.join('')).not.toContain('hunter2');
  });

  it('needs a url with kind postgres, and takes none with kind sqlite', async () => {
    expect(await errorsOf('store:\n  kind: postgres\n')).toEqual([expect.stringMatching(/^\d+:\d+ missing required key "url" \(or urlFile\)$/)]);
    expect(await errorsOf('store:\n  kind: sqlite\n  url: postgres://db/x\n')).toEqual(['3:8 store.url is only used with kind: postgres (SQLite lives in dataDir)']);
  });

  it('with kind postgres, refuses a secret key that would be generated into dataDir: every replica needs the same one', async () => {
    const errors = await errorsOf('store:\n  kind: postgres\n  url: postgres://db/x\n', {});
    expect(errors).toEqual([expect.stringMatching(/^2:9 kind: postgres needs the secret key from MAILGATE_SECRET_KEY or secretKeyFile: every replica must/)]);
  });
});

describe('the store URL is never shown with its password', () => {
  it('redactUrl masks the password and password-like parameters, and hides what is not a URL', () => {
    expect(redactUrl('postgres://mg:hunter2@db:5432/mail?sslmode=require&password=x')).toBe('postgres://mg:***@db:5432/mail?sslmode=require&password=***');
    expect(redactUrl('postgres://mg@db/mail')).toBe('postgres://mg@db/mail');
    expect(redactUrl('hunter2')).toBe('(an unreadable URL)');
    expect(whereOf('postgres://mg:hunter2@db.internal/mail')).toBe('db.internal:5432/mail');
  });

  it('the logger censors store.url wherever a config lands in a log line', async () => {
    const out = new PassThrough();
    let text = '';
    out.on('data', (d: Buffer) => (text += d.toString()));
    const log = createLogger({ level: 'info', destination: out });
    log.info({ store: { kind: 'postgres', url: 'postgres://mg:hunter2@db/x' } }, 'starting');
    log.info({ config: { store: { url: 'postgres://mg:hunter2@db/x' } } }, 'reloaded');
    await new Promise((r) => setImmediate(r));
    expect(text).toContain('starting');
    expect(text).not.toContain('hunter2');
  });
});
