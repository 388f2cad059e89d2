import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { SecretCipher } from '../../../src/secrets/cipher.js';
import { silentLogger } from '../../../src/log.js';
import { openStore } from '../../../src/store/open.js';
import { SqliteStore } from '../../../src/store/sqlite/sqlite-store.js';
import { MIGRATIONS } from '../../../src/store/migrations/index.js';
import { tmpDataDir } from '../../harness/tmp-dir.js';

function freshDir(): string {
  return tmpDataDir('mg-store-');
}

describe('SqliteStore', () => {
  it('opens in WAL mode at the latest schema version', async () => {
    const store = SqliteStore.open(freshDir(), new SecretCipher(randomBytes(32)));
    expect(store.db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(store.db.pragma('user_version', { simple: true })).toBe(MIGRATIONS.length);
    expect(await store.ping()).toBe(true);
    await store.close();
  });

  it('refuses a database newer than the code', () => {
    const dir = freshDir();
    const cipher = new SecretCipher(randomBytes(32));
    SqliteStore.open(dir, cipher).db.close();
    const raw = new Database(join(dir, 'mailgate.db'));
    raw.pragma(`user_version = ${MIGRATIONS.length + 1}`);
    raw.close();
    expect(() => SqliteStore.open(dir, cipher)).toThrow(/newer than this mailgate/);
  });

  it('migration 2 moves raw messages out of the messages table and keeps every byte', async () => {
    const dir = freshDir();
    const v1 = new Database(join(dir, 'mailgate.db'));
    v1.exec(MIGRATIONS[0]?.sql ?? '');
    v1.pragma('user_version = 1');
    const raw = Buffer.concat([Buffer.from('Subject: x\r\n\r\n'), randomBytes(50_000)]);
    v1.prepare(`INSERT INTO messages (id, account, mailbox, size, raw, received_at) VALUES ('msg_1', 'a', 'INBOX', ?, ?, 1)`).run(raw.length, raw);
    v1.close();
    const store = SqliteStore.open(dir, new SecretCipher(randomBytes(32)));
    expect(store.db.pragma('user_version', { simple: true })).toBe(MIGRATIONS.length);
    expect((await store.messages.getRaw('msg_1'))?.equals(raw)).toBe(true);
    expect((await store.messages.getWithRaw('msg_1'))?.info).toMatchObject({ id: 'msg_1', size: raw.length });
    const columns = (store.db.prepare('PRAGMA table_info(messages)').all() as { name: string }[]).map((c) => c.name);
    expect(columns).not.toContain('raw');
    await store.close();
  });

  it('refuses to open with a different secret key', async () => {
    // The key check is what openStore guarantees for every backend (store/key-check.ts).
    const dir = freshDir();
    const opts = (key: Buffer) => ({ cipher: new SecretCipher(key), logger: silentLogger() });
    await (await openStore({ dataDir: dir }, opts(randomBytes(32)))).close();
    await expect(openStore({ dataDir: dir }, opts(randomBytes(32)))).rejects.toThrow(/secret key does not match this database/);
  });

  it('keeps tokens and client secrets encrypted on disk', async () => {
    const dir = freshDir();
    const store = SqliteStore.open(dir, new SecretCipher(randomBytes(32)));
    await store.credentials.upsert({
      name: 'g',
      provider: 'google',
      clientId: 'cid',
      clientSecret: 'CLIENT-SECRET-PLAINTEXT',
      settings: { tenant: 'x' },
    }, 1);
    await store.tokens.save({
      account: 'support',
      credential: 'g',
      refreshToken: 'REFRESH-TOKEN-PLAINTEXT',
      accessToken: 'ACCESS-TOKEN-PLAINTEXT',
      accessExpiresAt: 123,
      scope: 'mail',
      state: 'ok',
      lastRefreshAt: 1,
      refreshTokenIssuedAt: 1,
      lastError: null,
    }, 1);
    expect((await store.tokens.get('support'))?.refreshToken).toBe('REFRESH-TOKEN-PLAINTEXT');
    expect((await store.credentials.get('g'))?.clientSecret).toBe('CLIENT-SECRET-PLAINTEXT');
    store.db.pragma('wal_checkpoint(TRUNCATE)');
    await store.close();
    const bytes = readFileSync(join(dir, 'mailgate.db'));
    for (const s of ['CLIENT-SECRET-PLAINTEXT', 'REFRESH-TOKEN-PLAINTEXT', 'ACCESS-TOKEN-PLAINTEXT']) {
      expect(bytes.includes(Buffer.from(s))).toBe(false);
    }
    expect(bytes.includes(Buffer.from('support'))).toBe(true);
  });

  it('consumes an OAuth state exactly once and rejects expired ones', async () => {
    const store = SqliteStore.open(':memory:', new SecretCipher(randomBytes(32)));
    const base = { account: 'a', credential: 'c', codeVerifier: 'v'.repeat(43), redirectUri: 'http://x/cb', createdAt: 0 };
    await store.oauthStates.create({ ...base, state: 's1', expiresAt: 1_000 });
    await store.oauthStates.create({ ...base, state: 's2', expiresAt: 1_000 });
    const first = await store.oauthStates.consume('s1', 500);
    expect(first.ok && first.record.codeVerifier).toBe('v'.repeat(43));
    expect(await store.oauthStates.consume('s1', 600)).toEqual({ ok: false, reason: 'used' });
    expect(await store.oauthStates.consume('s2', 2_000)).toEqual({ ok: false, reason: 'expired' });
    expect(await store.oauthStates.consume('nope', 0)).toEqual({ ok: false, reason: 'unknown' });
  });

  it('merges account status patches', async () => {
    const store = SqliteStore.open(':memory:', new SecretCipher(randomBytes(32)));
    await store.accountStatus.update('a', 'incoming', { state: 'connecting' }, 1);
    await store.accountStatus.update('a', 'incoming', { state: 'idle', lastSuccessAt: 10 }, 2);
    await store.accountStatus.update('a', 'incoming', { lastError: 'boom' }, 3);
    const [row] = await store.accountStatus.list();
    expect(row).toMatchObject({ account: 'a', side: 'incoming', state: 'idle', lastSuccessAt: 10, lastError: 'boom' });
  });
});
