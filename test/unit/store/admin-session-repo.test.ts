import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { SecretCipher } from '../../../src/secrets/cipher.js';
import { MIGRATIONS } from '../../../src/store/migrations/index.js';
import { SqliteStore } from '../../../src/store/sqlite/sqlite-store.js';
import type { AdminSessionRecord } from '../../../src/store/admin-sessions.js';
import { tmpDataDir } from '../../harness/tmp-dir.js';

function open(dir = ':memory:'): SqliteStore {
  return SqliteStore.open(dir, new SecretCipher(randomBytes(32)));
}

function session(over: Partial<AdminSessionRecord> = {}): AdminSessionRecord {
  return {
    id: randomBytes(32).toString('base64url'),
    csrf: randomBytes(32).toString('base64url'),
    flash: null,
    createdAt: 1_000,
    expiresAt: 10_000,
    ...over,
  };
}

const sha256Hex = (s: string) => createHash('sha256').update(s).digest('hex');
const rowCount = (store: SqliteStore) => (store.db.prepare('SELECT count(*) AS n FROM admin_sessions').get() as { n: number }).n;

describe('admin session repository', () => {
  it('creates and finds a session by its id, and nothing by another', async () => {
    const store = open();
    const s = session();
    await store.adminSessions.create(s);
    expect(await store.adminSessions.get(s.id, 5_000)).toEqual(s);
    expect(await store.adminSessions.get(session().id, 5_000)).toBeNull();
    expect(await store.adminSessions.get(sha256Hex(s.id), 5_000)).toBeNull(); // the stored hash is not a key
    await store.close();
  });

  it('treats a session as gone from its expiry on, and deletes it when looked up', async () => {
    const store = open();
    const s = session({ expiresAt: 10_000 });
    await store.adminSessions.create(s);
    expect(await store.adminSessions.get(s.id, 9_999)).not.toBeNull();
    expect(await store.adminSessions.get(s.id, 10_000)).toBeNull();
    expect(rowCount(store)).toBe(0);
    expect(await store.adminSessions.get(s.id, 0)).toBeNull(); // not back with an earlier clock
    await store.close();
  });

  it('keeps the flash message until it is replaced or cleared', async () => {
    const store = open();
    const s = session();
    await store.adminSessions.create(s);
    expect(await store.adminSessions.setFlash(s.id, { kind: 'error', text: 'Credential "x" <b>gone</b>.' })).toBe(true);
    expect((await store.adminSessions.get(s.id, 5_000))?.flash).toEqual({ kind: 'error', text: 'Credential "x" <b>gone</b>.' });
    expect(await store.adminSessions.setFlash(s.id, null)).toBe(true);
    expect((await store.adminSessions.get(s.id, 5_000))?.flash).toBeNull();
    expect(await store.adminSessions.setFlash(session().id, { kind: 'ok', text: 'x' })).toBe(false);
    await store.close();
  });

  it('deletes one session (sign-out) and leaves the others', async () => {
    const store = open();
    const [a, b] = [session(), session()];
    await store.adminSessions.create(a);
    await store.adminSessions.create(b);
    expect(await store.adminSessions.delete(a.id)).toBe(true);
    expect(await store.adminSessions.delete(a.id)).toBe(false);
    expect(await store.adminSessions.get(a.id, 5_000)).toBeNull();
    expect(await store.adminSessions.get(b.id, 5_000)).not.toBeNull();
    await store.close();
  });

  it('prunes exactly the sessions expired at the given time', async () => {
    const store = open();
    const expired = [session({ expiresAt: 2_000 }), session({ expiresAt: 3_000 })];
    const live = session({ expiresAt: 3_001 });
    for (const s of [...expired, live]) await store.adminSessions.create(s);
    expect(await store.adminSessions.pruneExpired(3_000)).toBe(2);
    expect(await store.adminSessions.pruneExpired(3_000)).toBe(0);
    expect(rowCount(store)).toBe(1);
    expect(await store.adminSessions.get(live.id, 3_000)).not.toBeNull();
    await store.close();
  });

  it('stores only the SHA-256 of the session id, in the table and in the database file', async () => {
    const dir = tmpDataDir('mg-sessions-');
    const store = open(dir);
    const s = session({ flash: { kind: 'ok', text: 'saved' } });
    await store.adminSessions.create(s);
    const rows = store.db.prepare('SELECT * FROM admin_sessions').all() as Record<string, unknown>[];
    expect(rows).toHaveLength(1);
    const dump = JSON.stringify(rows);
    expect(dump).not.toContain(s.id);
    expect(rows[0]?.id_sha256).toBe(sha256Hex(s.id));
    store.db.pragma('wal_checkpoint(TRUNCATE)');
    await store.close();
    const bytes = readFileSync(join(dir, 'mailgate.db'));
    expect(bytes.includes(Buffer.from(s.id))).toBe(false);
    expect(bytes.includes(Buffer.from(sha256Hex(s.id)))).toBe(true);
  });

  it('upgrades a schema version 3 database: its data stays, sessions work', async () => {
    const dir = tmpDataDir('mg-sessions-v3-');
    const v3 = new Database(join(dir, 'mailgate.db'));
    v3.pragma('journal_mode = WAL');
    for (const m of MIGRATIONS.slice(0, 3)) v3.exec(m.sql);
    v3.pragma('user_version = 3');
    v3.prepare(`INSERT INTO messages (id, account, mailbox, size, received_at) VALUES ('msg_1', 'a', 'INBOX', 5, 1)`).run();
    v3.prepare(`INSERT INTO message_raw (id, raw) VALUES ('msg_1', ?)`).run(Buffer.from('hello'));
    v3.close();

    const store = open(dir);
    expect(MIGRATIONS[3]?.name).toBe('0004-admin-sessions');
    expect(store.db.pragma('user_version', { simple: true })).toBe(MIGRATIONS.length);
    expect((await store.messages.getRaw('msg_1'))?.toString()).toBe('hello');
    const s = session();
    await store.adminSessions.create(s);
    expect(await store.adminSessions.get(s.id, 5_000)).toEqual(s);
    await store.close();
  });
});
