import { join } from 'node:path';
import { MailgateError } from '../../errors.js';
import type { SecretCipher } from '../../secrets/cipher.js';
import type { Store } from '../types.js';
import type { Logger } from '../../log.js';
import { SqliteAdminSessionRepo } from './admin-session-repo.js';
import { Checkpointer, type CheckpointerOptions } from './checkpointer.js';
import { DB_FILE, openDatabase, type Db } from './db.js';
import { SqliteDeliveryRepo } from './delivery-repo.js';
import { SqliteIngestRepo } from './ingest-repo.js';
import { SqliteAccountStatusRepo, SqliteMetaRepo } from './meta-repo.js';
import { SqliteCredentialRepo, SqliteOAuthStateRepo, SqliteTokenRepo } from './oauth-repos.js';
import { SqliteOutboxRepo } from './outbox-repo.js';
import { RawReader } from './raw-reader.js';

/** A fixed plaintext sealed at creation: opening it proves the key is right. */
const KEY_CHECK_META = 'secret_key_check';
const KEY_CHECK_PLAINTEXT = 'mailgate-key-check-v1';

export class SqliteStore implements Store {
  readonly db: Db;
  readonly meta: SqliteMetaRepo;
  readonly credentials: SqliteCredentialRepo;
  readonly tokens: SqliteTokenRepo;
  readonly oauthStates: SqliteOAuthStateRepo;
  readonly accountStatus: SqliteAccountStatusRepo;
  readonly ingest: SqliteIngestRepo;
  readonly messages: SqliteIngestRepo;
  readonly deliveries: SqliteDeliveryRepo;
  readonly outbox: SqliteOutboxRepo;
  readonly adminSessions: SqliteAdminSessionRepo;
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
    this.ingest = new SqliteIngestRepo(db, this.#rawReader);
    this.messages = this.ingest;
    this.deliveries = new SqliteDeliveryRepo(db);
    this.outbox = new SqliteOutboxRepo(db);
    this.adminSessions = new SqliteAdminSessionRepo(db);
  }

  /** Opens (and migrates) dataDir/mailgate.db and checks that `cipher` is the database's key. */
  static open(dataDir: string, cipher: SecretCipher): SqliteStore {
    const db = openDatabase(dataDir === ':memory:' ? ':memory:' : join(dataDir, DB_FILE));
    try {
      verifyKey(db, cipher);
    } catch (err) {
      db.close();
      throw err;
    }
    return new SqliteStore(db, cipher);
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

  /** The daemon's long-lived connection leaves WAL checkpoints to a thread (see Checkpointer). */
  startBackgroundCheckpoints(logger: Logger, opts?: CheckpointerOptions): Checkpointer {
    this.#checkpointer ??= new Checkpointer(this.db, logger);
    this.#checkpointer.start(opts);
    return this.#checkpointer;
  }

  async close(): Promise<void> {
    await this.#checkpointer?.stop();
    await this.#rawReader.close();
    if (!this.db.open) return;
    this.deliveries.flushPending();
    this.db.close();
  }
}

function verifyKey(db: Db, cipher: SecretCipher): void {
  const row = db.prepare('SELECT value FROM meta WHERE key = ?').get(KEY_CHECK_META) as { value: string } | undefined;
  if (!row) {
    db.prepare('INSERT INTO meta (key, value) VALUES (?, ?)').run(
      KEY_CHECK_META,
      cipher.seal(KEY_CHECK_PLAINTEXT).toString('base64'),
    );
    return;
  }
  let opened: string;
  try {
    opened = cipher.open(Buffer.from(row.value, 'base64'), 'key check');
  } catch (cause) {
    throw new MailgateError(
      'SECRET_KEY_INVALID',
      `the secret key does not match this database: ${(cause as Error).message}`,
      { cause },
    );
  }
  if (opened !== KEY_CHECK_PLAINTEXT) {
    throw new MailgateError('SECRET_KEY_INVALID', 'the secret key check in the database is corrupt');
  }
}
