import type { Config } from '../config/types.js';
import type { Logger } from '../log.js';
import type { SecretCipher } from '../secrets/cipher.js';
import { checkSecretKey } from './key-check.js';
import { readCredentialNames } from './sqlite/credential-names.js';
import { SqliteStore } from './sqlite/sqlite-store.js';
import type { Store } from './store.js';

/** What of the config decides where the store is (issue 15 adds `store: { kind, url }`). */
export type StoreConfig = Pick<Config, 'dataDir'>;

export interface OpenStoreOptions {
  /** The secret key: secrets at rest are sealed with it, and it must be the storage's own. */
  cipher: SecretCipher;
  logger: Logger;
  /**
   * The daemon's long-lived store: run the backend's background upkeep
   * (SQLite: WAL checkpoints on a thread). One-shot CLI commands leave it off.
   */
  daemon?: boolean;
}

/**
 * The one way to a `Store`, and the only place that knows the backends.
 * Whatever the backend, the store it returns is migrated to this mailgate's
 * schema (a newer one is refused: DB_TOO_NEW) and opened with the storage's
 * own secret key (a different one is refused: SECRET_KEY_INVALID), before
 * anything else reads or writes it.
 */
export async function openStore(config: StoreConfig, opts: OpenStoreOptions): Promise<Store> {
  const store = SqliteStore.open(config.dataDir, opts.cipher);
  try {
    await checkSecretKey(store.meta, opts.cipher);
  } catch (err) {
    await store.close();
    throw err;
  }
  if (opts.daemon) store.startBackgroundCheckpoints(opts.logger);
  return store;
}

/**
 * Names of the credentials kept in the store, read without writing or
 * migrating anything (the config is checked before the daemon touches its
 * storage). No storage yet, or one that cannot be read, has none.
 */
export function storedCredentialNames(dataDir: string): Promise<ReadonlySet<string>> {
  return readCredentialNames(dataDir);
}
