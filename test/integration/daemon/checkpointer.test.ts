import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type * as StoreSource from '../../../src/store/sqlite/sqlite-store.js';
import type * as CipherSource from '../../../src/secrets/cipher.js';
import type * as LogSource from '../../../src/log.js';
import type { NewMessage } from '../../../src/store/messages.js';
import { assertBuilt, ROOT } from './run-daemon.js';
import { until } from '../../harness/until.js';

/*
 * The checkpoint thread runs the compiled worker (dist/store/sqlite/
 * checkpoint-worker.js), so this test loads the built modules, as the daemon does.
 */
let mod: typeof StoreSource;
let cipher: InstanceType<typeof CipherSource.SecretCipher>;
let logger: ReturnType<typeof LogSource.createLogger>;
const dir = mkdtempSync(join(tmpdir(), 'mg-checkpoint-'));

beforeAll(async () => {
  assertBuilt();
  mod = (await import(`${ROOT}/dist/store/sqlite/sqlite-store.js`)) as typeof StoreSource;
  const { SecretCipher } = (await import(`${ROOT}/dist/secrets/cipher.js`)) as typeof CipherSource;
  cipher = new SecretCipher(randomBytes(32));
  logger = ((await import(`${ROOT}/dist/log.js`)) as typeof LogSource).createLogger({ level: 'silent' });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const message = (uid: number): NewMessage => ({
  account: 'support',
  origin: { kind: 'imap', mailbox: 'INBOX', uid, uidValidity: 1 },
  raw: Buffer.concat([Buffer.from(`Subject: ${uid}\r\n\r\n`), randomBytes(64 * 1024)]),
  internalDate: null,
  messageId: `<m${uid}@x>`,
  autoSubmitted: false,
  webhook: 'pipeline',
});

describe('background checkpoints', () => {
  it('start once the log first fills, then copy it into the database file on the thread while the connection never checkpoints, and lose nothing', async () => {
    const store = mod.SqliteStore.open(dir, cipher);
    const cp = store.startBackgroundCheckpoints(logger, { intervalMs: 20, watchMs: 20, walBytes: 1024 * 1024 });
    await new Promise((r) => setTimeout(r, 100));
    expect(cp.active).toBe(false); // an idle database carries no thread
    expect(store.db.pragma('wal_autocheckpoint', { simple: true })).toBe(1000);

    await store.ingest.insertMessages(Array.from({ length: 32 }, (_, j) => message(j + 1)), Date.now()); // 2 MiB
    await until(() => cp.active);
    expect(store.db.pragma('wal_autocheckpoint', { simple: true })).toBe(0);
    const dbFile = join(dir, 'mailgate.db');
    const before = statSync(dbFile).size;
    for (let i = 2; i < 10; i++) await store.ingest.insertMessages(Array.from({ length: 16 }, (_, j) => message(i * 16 + j + 1)), Date.now());
    // 128 × 64 KiB = 8 MiB more; the connection itself cannot have moved it into the database file.
    await until(() => statSync(dbFile).size - before >= 8 * 1024 * 1024 && cp.stats.checkpoints > 0);
    expect(cp.stats.frames).toBeGreaterThan(2_000);

    await cp.stop();
    expect(cp.active).toBe(false);
    expect(store.db.pragma('wal_autocheckpoint', { simple: true })).toBe(1000); // the connection checkpoints again
    await store.close();

    const again = mod.SqliteStore.open(dir, cipher);
    const n = again.db.prepare('SELECT COUNT(*) AS n FROM message_raw').get() as { n: number };
    expect(n.n).toBe(160);
    expect(again.db.pragma('integrity_check', { simple: true })).toBe('ok');
    await again.close();
  });
});
