import type { Config } from '../config/types.js';
import type { Logger } from '../log.js';
import type { SecretCipher } from '../secrets/cipher.js';
import { checkSecretKey } from './key-check.js';
import { PostgresStore } from './postgres/postgres-store.js';
import { readPgCredentialNames } from './postgres/credential-names.js';
import { readCredentialNames } from './sqlite/credential-names.js';
import { SqliteStore } from './sqlite/sqlite-store.js';
import type { Store } from './store.js';

/** What of the config decides where the store is: `store` (default: SQLite in dataDir). */
export type StoreConfig = Pick<Config, 'dataDir'> & { store?: Config['store'] };

export interface OpenStoreOptions {
  /** The secret key: secrets at rest are sealed with it, and it must be the storage's own. */
  cipher: SecretCipher;
  logger: Logger;
  /**
   * The daemon's long-lived store: run the backend's background upkeep
   * (SQLite: WAL checkpoints on a thread), and (PostgreSQL) start even when
   * the server cannot be reached yet (Store.opened). One-shot CLI commands
   * leave it off and fail at once.
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
  const kind = config.store?.kind ?? 'sqlite';
  if (kind === 'postgres' && config.store?.kind === 'postgres') {
    return PostgresStore.open({ url: config.store.url, poolSize: config.store.poolSize }, opts.cipher, {
      waitForServer: opts.daemon === true,
      logger: opts.logger,
    });
  }
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
 * storage). No storage yet, or one that cannot be read, has none; a
 * PostgreSQL server that cannot be reached may have any (it is not the
 * config's fault, and the daemon starts and waits for it).
 */
export function storedCredentialNames(dataDir: string, store?: Config['store']): Promise<{ has(name: string): boolean }> {
  if (store?.kind === 'postgres') return readPgCredentialNames(store.url);
  return readCredentialNames(dataDir);
}
