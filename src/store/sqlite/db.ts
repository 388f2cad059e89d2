import Database from 'better-sqlite3';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import { MIGRATIONS } from '../migrations/index.js';
import { tooNewError } from '../schema-version.js';

export type Db = Database.Database;

export const DB_FILE = 'mailgate.db';
/** How long a writer waits for another connection's lock (CLI vs daemon). */
const BUSY_TIMEOUT_MS = 5_000;
const JOURNAL_SIZE_LIMIT = 64 * 1024 * 1024;

export function openDatabase(path: string): Db {
  if (path !== ':memory:') {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    // SQLite gives the -wal and -shm files the mode of the database file
    // (unix VFS, robust_open): creating it 0600 first keeps all three private.
    closeSync(openSync(path, 'a', 0o600));
  }
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  // NORMAL is durable across application crashes in WAL mode; only an OS
  // crash/power loss may lose the last transactions (SQLite docs, "WAL").
  db.pragma('synchronous = NORMAL');
  db.pragma('foreign_keys = ON');
  // After a burst the log is truncated back to this size once checkpointed.
  db.pragma(`journal_size_limit = ${JOURNAL_SIZE_LIMIT}`);
  db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
  migrate(db);
  cacheStatements(db);
  return db;
}

/** Distinct SQL texts kept compiled (IN-lists of varying length make a few hundred at most). */
const STATEMENT_CACHE_SIZE = 1_000;

/**
 * better-sqlite3 compiles SQL on every prepare(), and the repositories call
 * prepare() per operation (a tenth of the daemon's CPU in the ingest
 * profile). Compiled statements are reused per database instead. Safe because
 * no repository uses iterate() (a statement cannot serve two iterations at
 * once) or mutates a statement's mode (pluck/raw/expand).
 */
function cacheStatements(db: Db): void {
  const cache = new Map<string, Database.Statement>();
  const prepare = db.prepare.bind(db) as (sql: string) => Database.Statement;
  const cached = (sql: string): Database.Statement => {
    let stmt = cache.get(sql);
    if (!stmt) {
      if (cache.size >= STATEMENT_CACHE_SIZE) cache.clear();
      stmt = prepare(sql);
      cache.set(sql, stmt);
    }
    return stmt;
  };
  db.prepare = cached as typeof db.prepare;
}

/** Applies pending migrations in one transaction; refuses a newer database. */
export function migrate(db: Db): { from: number; to: number } {
  const current = db.pragma('user_version', { simple: true }) as number;
  const target = MIGRATIONS.length;
  if (current > target) {
    throw tooNewError(current, target);
  }
  if (current === target) return { from: current, to: target };
  db.transaction(() => {
    for (let v = current; v < target; v++) {
      const m = MIGRATIONS[v];
      if (m) db.exec(m.sql);
    }
    db.pragma(`user_version = ${target}`);
  }).immediate();
  return { from: current, to: target };
}
