import { setTimeout as sleep } from 'node:timers/promises';
import { MailgateError } from '../../errors.js';
import type { Logger } from '../../log.js';
import { computeBackoff } from '../../runtime/backoff.js';
import type { SecretCipher } from '../../secrets/cipher.js';
import { checkSecretKey } from '../key-check.js';
import type { Store } from '../store.js';
import { type AvailabilityListener, isUnreachable, PgDb, type PgDbOptions, StoreUnavailableError } from './db.js';
import { PgLeaseRepo, PgLockRepo, PgNodeRepo, PgWakeBus } from './cluster-repos.js';
import { PgDeliveryRepo } from './delivery-repo.js';
import { PgIngestRepo } from './ingest-repo.js';
import { PgMessageRepo } from './message-repo.js';
import { migratePg } from './migrations.js';
import { PgCredentialRepo, PgOAuthStateRepo, PgTokenRepo } from './oauth-repos.js';
import { PgOutboxRepo } from './outbox-repo.js';
import { PgAccountStatusRepo, PgAdminSessionRepo, PgMetaRepo } from './small-repos.js';
import { PgActivityRepo, PgConnectionHistoryRepo } from './activity-repo.js';

/**
 * The backend for several replicas: one PostgreSQL database, reached with
 * node-postgres through a small pool. Open it through `openStore`
 * (../open.ts), which migrates it and checks the secret key first.
 */
export class PostgresStore implements Store {
  readonly db: PgDb;
  readonly meta: PgMetaRepo;
  readonly credentials: PgCredentialRepo;
  readonly tokens: PgTokenRepo;
  readonly oauthStates: PgOAuthStateRepo;
  readonly accountStatus: PgAccountStatusRepo;
  readonly ingest: PgIngestRepo;
  readonly messages: PgMessageRepo;
  readonly deliveries: PgDeliveryRepo;
  readonly outbox: PgOutboxRepo;
  readonly adminSessions: PgAdminSessionRepo;
  readonly activity: PgActivityRepo;
  readonly connectionHistory: PgConnectionHistoryRepo;
  readonly leases: PgLeaseRepo;
  readonly nodes: PgNodeRepo;
  readonly locks: PgLockRepo;
  readonly bus: PgWakeBus;

  /** Set while the daemon waits for a database it could not reach at start (Store.opened). */
  opened?: Promise<void>;
  readonly #opts: PgDbOptions;
  readonly #cipher: SecretCipher;
  readonly #stopOpening = new AbortController();

  private constructor(opts: PgDbOptions, cipher: SecretCipher) {
    this.#opts = opts;
    this.#cipher = cipher;
    const db = new PgDb(opts, false);
    this.db = db;
    this.meta = new PgMetaRepo(db);
    this.credentials = new PgCredentialRepo(db, cipher);
    this.tokens = new PgTokenRepo(db, cipher);
    this.oauthStates = new PgOAuthStateRepo(db, cipher);
    this.accountStatus = new PgAccountStatusRepo(db);
    this.ingest = new PgIngestRepo(db);
    this.messages = new PgMessageRepo(db);
    this.deliveries = new PgDeliveryRepo(db);
    this.outbox = new PgOutboxRepo(db);
    this.adminSessions = new PgAdminSessionRepo(db);
    this.activity = new PgActivityRepo(db);
    this.connectionHistory = new PgConnectionHistoryRepo(db);
    this.leases = new PgLeaseRepo(db);
    this.nodes = new PgNodeRepo(db);
    this.locks = new PgLockRepo(db);
    this.bus = new PgWakeBus(db, opts.url);
  }

  /**
   * Opens the database: migrations (a newer schema is refused), then the
   * secret key check, on a connection of their own; only then does the store
   * take calls. With `waitForServer` (the daemon), a server that cannot be
   * reached yet does not fail the open: the store is returned at once,
   * refusing calls with a transient error, and tries again with backoff
   * (`opened` settles when it is done). Anything else (a wrong key, a newer
   * schema, a refused login) fails at once.
   */
  static async open(opts: PgDbOptions, cipher: SecretCipher, how: { waitForServer?: boolean; logger?: Logger } = {}): Promise<PostgresStore> {
    const store = new PostgresStore(opts, cipher);
    try {
      await store.#prepare();
      return store;
    } catch (err) {
      if (!how.waitForServer || !isUnreachable(err)) {
        await store.close();
        throw unreachableAsError(store, err);
      }
      store.db.markUnreachable(`the PostgreSQL database at ${store.db.where} cannot be reached (${(err as Error).message}); retrying`);
      how.logger?.warn({ event: 'store.unreachable', where: store.db.where, error: (err as Error).message }, 'the database cannot be reached; starting anyway and retrying');
      store.opened = store.#keepTrying(how.logger);
      store.opened.catch(() => undefined); // the daemon listens; an unobserved rejection must not end the process
      return store;
    }
  }

  async #prepare(): Promise<void> {
    const setup = new PgDb({ ...this.#opts, poolSize: 1 });
    try {
      await migratePg(setup);
      await checkSecretKey(new PgMetaRepo(setup), this.#cipher);
    } finally {
      await setup.close();
    }
    this.db.markReady();
  }

  async #keepTrying(logger: Logger | undefined): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await sleep(computeBackoff(attempt, { initialMs: 500, maxMs: 30_000 }), undefined, { signal: this.#stopOpening.signal });
      } catch {
        throw new StoreUnavailableError('the store was closed before the database could be reached');
      }
      try {
        await this.#prepare();
        logger?.info({ event: 'store.reachable', where: this.db.where, attempts: attempt + 1 }, 'the database answers; opened');
        return;
      } catch (err) {
        if (!isUnreachable(err)) throw err;
        this.db.markUnreachable(`the PostgreSQL database at ${this.db.where} cannot be reached (${(err as Error).message}); retrying`);
      }
    }
  }

  async ping(): Promise<boolean> {
    if (this.db.closed) return false;
    try {
      await this.db.run('SELECT 1');
      return true;
    } catch {
      return false;
    }
  }

  /** Why the database cannot be reached now, or null. */
  get unavailable(): string | null {
    return this.db.unavailable;
  }

  watch(listener: AvailabilityListener): () => void {
    return this.db.onAvailability(listener);
  }

  /**
   * `mailgate backup` copies an embedded SQLite database; a PostgreSQL
   * database is backed up with PostgreSQL's own tools, which copy it
   * consistently while replicas write.
   */
  async backup(_file: string): Promise<{ bytes: number }> {
    throw new MailgateError(
      'BAD_REQUEST',
      'mailgate backup copies the embedded SQLite database; this store is PostgreSQL: back it up with pg_dump (for example pg_dump --format=custom "$URL" > mailgate.dump) and keep it with the secret key',
    );
  }

  async close(): Promise<void> {
    this.#stopOpening.abort();
    await this.bus.close();
    await this.db.close();
  }
}

/** A server that cannot be reached, in the store's words (which database, never its password). */
function unreachableAsError(store: PostgresStore, err: unknown): unknown {
  if (!isUnreachable(err)) return err;
  return new StoreUnavailableError(`the PostgreSQL database at ${store.db.where} cannot be reached: ${(err as Error).message}`, err);
}
