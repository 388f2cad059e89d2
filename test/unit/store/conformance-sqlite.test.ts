import { randomBytes } from 'node:crypto';
import { copyFileSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SecretCipher } from '../../../src/secrets/cipher.js';
import { silentLogger } from '../../../src/log.js';
import { openStore } from '../../../src/store/open.js';
import { DB_FILE } from '../../../src/store/sqlite/db.js';
import type { Store } from '../../../src/store/store.js';
import { tmpDataDir } from '../../harness/tmp-dir.js';
import { defineStoreConformance, type StoreUnderTest } from '../../store/conformance/index.js';

/** One key for the file: every test's database is a copy of one made with it. */
const KEY = randomBytes(32);
let template: string | null = null;

/**
 * A migrated, empty database, made once: copying it costs a few ms where
 * creating one (WAL switch, four migrations, their fsyncs) costs ~50 ms per
 * test. First-open and migration paths have their own tests
 * (sqlite-store.test.ts).
 */
async function templateDb(): Promise<string> {
  if (template === null) {
    const dir = tmpDataDir('mg-conformance-template-');
    await (await openStore({ dataDir: dir }, { cipher: new SecretCipher(KEY), logger: silentLogger() })).close(); // close checkpoints the WAL into the file
    template = join(dir, DB_FILE);
  }
  return template;
}

/**
 * The SQLite store on a fresh dataDir per test, opened the way the daemon
 * opens it (openStore: migrations, key check): a file, not :memory:, so that
 * peers, restarts and the bytes at rest are the real thing (database, WAL
 * and shared-memory files).
 */
async function sqliteUnderTest(): Promise<StoreUnderTest> {
  const dir = tmpDataDir('mg-conformance-');
  copyFileSync(await templateDb(), join(dir, DB_FILE));
  const opened: Store[] = [];
  const open = async (key: Buffer): Promise<Store> => {
    const s = await openStore({ dataDir: dir }, { cipher: new SecretCipher(key), logger: silentLogger() });
    opened.push(s);
    return s;
  };
  return {
    store: await open(KEY),
    openPeer: () => open(KEY),
    openWithOtherKey: () => open(randomBytes(32)),
    rawBytes: async () => Buffer.concat(readdirSync(dir).map((f) => readFileSync(join(dir, f)))),
    dispose: async () => {
      for (const s of opened.splice(0)) await s.close();
    },
  };
}

defineStoreConformance('sqlite', sqliteUnderTest);
