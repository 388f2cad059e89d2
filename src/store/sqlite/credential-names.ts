import { existsSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { DB_FILE } from './db.js';

/**
 * Names of the credentials kept in dataDir's database, read without writing
 * anything (the config is checked before the daemon touches dataDir). No
 * database yet, or one that cannot be read, has none.
 */
export async function readCredentialNames(dataDir: string): Promise<ReadonlySet<string>> {
  const path = join(dataDir, DB_FILE);
  if (!existsSync(path)) return new Set();
  let db: Database.Database | null = null;
  try {
    db = new Database(path, { readonly: true, fileMustExist: true });
    const rows = db.prepare('SELECT name FROM credentials').all() as { name: string }[];
    return new Set(rows.map((r) => r.name));
  } catch {
    return new Set();
  } finally {
    db?.close();
  }
}
