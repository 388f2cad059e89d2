import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { MailgateError } from '../../errors.js';
import type { Logger } from '../../log.js';
import type { SecretCipher } from '../../secrets/cipher.js';
import type { Store } from '../store.js';
import { SqliteAccountStatusRepo } from './account-status-repo.js';
import { SqliteAdminSessionRepo } from './admin-session-repo.js';
import { Checkpointer, type CheckpointerOptions } from './checkpointer.js';
import { InProcessBus, SqliteLeaseRepo, SqliteLockRepo, SqliteNodeRepo } from './cluster-repo.js';
import { SqliteCredentialRepo } from './credential-repo.js';
import { DB_FILE, openDatabase, type Db } from './db.js';
import { SqliteDeliveryRepo } from './delivery-repo.js';
import { SqliteIngestRepo } from './ingest-repo.js';
import { SqliteMessageRepo } from './message-repo.js';
import { SqliteMetaRepo } from './meta-repo.js';
import { SqliteOAuthStateRepo } from './oauth-state-repo.js';
import { SqliteOutboxRepo } from './outbox-repo.js';
import { RawReader } from './raw-reader.js';
import { SqliteTokenRepo } from './token-repo.js';
import { SqliteActivityRepo, SqliteConnectionHistoryRepo } from './activity-repo.js';

/**
 * The embedded backend: one SQLite database in WAL mode, dataDir/mailgate.db.
 * Open it through `openStore` (../open.ts), which also checks the secret key.
 */
export class SqliteStore implements Store {
  readonly db: Db;
  readonly meta: SqliteMetaRepo;
  readonly credentials: SqliteCredentialRepo;
  readonly tokens: SqliteTokenRepo;
  readonly oauthStates: SqliteOAuthStateRepo;
  readonly accountStatus: SqliteAccountStatusRepo;
  readonly ingest: SqliteIngestRepo;
  readonly messages: SqliteMessageRepo;
  readonly deliveries: SqliteDeliveryRepo;
  readonly outbox: SqliteOutboxRepo;
  readonly adminSessions: SqliteAdminSessionRepo;
  readonly activity: SqliteActivityRepo;
  readonly connectionHistory: SqliteConnectionHistoryRepo;
  readonly leases: SqliteLeaseRepo;
  readonly nodes: SqliteNodeRepo;
  readonly locks: SqliteLockRepo;
  readonly bus: InProcessBus;
  #checkpointer: Checkpointer | null = null;
  readonly #rawReader: RawReader;

  private constructor(db: Db, cipher: SecretCipher) {
    this.#rawReader = new RawReader(db.name);
    this.db = db;
    this.meta = new SqliteMetaRepo(db);
    this.credentials = new SqliteCredentialRepo(db, cipher);
    this.tokens = new SqliteTokenRepo(db, cipher);
    this.oauthStates = new SqliteOAuthStateRepo(db, cipher);
    this.accountStatus = new SqliteAccountStatusRepo(db);
    this.ingest = new SqliteIngestRepo(db);
    this.messages = new SqliteMessageRepo(db, this.#rawReader);
    this.deliveries = new SqliteDeliveryRepo(db);
    this.outbox = new SqliteOutboxRepo(db);
    this.adminSessions = new SqliteAdminSessionRepo(db);
    this.activity = new SqliteActivityRepo(db);
    this.connectionHistory = new SqliteConnectionHistoryRepo(db);
    this.leases = new SqliteLeaseRepo(db);
    this.nodes = new SqliteNodeRepo(db);
    this.locks = new SqliteLockRepo(db);
    this.bus = new InProcessBus();
  }

  /** Opens (and migrates) dataDir/mailgate.db, or an in-memory database for ':memory:'. */
  static open(dataDir: string, cipher: SecretCipher): SqliteStore {
    return new SqliteStore(openDatabase(dataDir === ':memory:' ? ':memory:' : join(dataDir, DB_FILE)), cipher);
  }

  /** Large raw messages read on the reader thread so far. */
  get rawThreadReads(): number {
    return this.#rawReader.reads;
  }

  async ping(): Promise<boolean> {
    try {
      this.db.prepare('SELECT 1').get();
      return true;
    } catch {
      return false;
    }
  }

  /**
   * SQLite's online backup API (better-sqlite3's db.backup): pages are
   * copied while other connections keep writing; a write by another
   * connection restarts the copy, so each step takes all remaining pages
   * and a busy daemon cannot keep it from finishing. The result is one
   * self-contained database file (no -wal needed).
   */
  async backup(file: string): Promise<{ bytes: number }> {
    if (existsSync(file)) throw new MailgateError('BAD_REQUEST', `${file} exists already; give a new file name (a backup never overwrites)`);
    await this.db.backup(file, { progress: ({ remainingPages }) => Math.max(1000, remainingPages) });
    return { bytes: statSync(file).size };
  }

  /** The daemon's long-lived connection leaves WAL checkpoints to a thread (see Checkpointer). */
  startBackgroundCheckpoints(logger: Logger, opts?: CheckpointerOptions): Checkpointer {
    this.#checkpointer ??= new Checkpointer(this.db, logger);
    this.#checkpointer.start(opts);
    return this.#checkpointer;
  }

  async close(): Promise<void> {
    await this.#checkpointer?.stop();
    await this.#rawReader.close();
    this.bus.close();
    if (!this.db.open) return;
    this.deliveries.flushPending();
    this.db.close();
  }
}
