import type { MetaRepo } from '../meta.js';
import type { Db } from './db.js';

export class SqliteMetaRepo implements MetaRepo {
  constructor(private readonly db: Db) {}

  async get(key: string): Promise<string | null> {
    const row = this.db.prepare('SELECT value FROM meta WHERE key = ?').get(key) as { value: string } | undefined;
    return row?.value ?? null;
  }

  async set(key: string, value: string): Promise<void> {
    this.db
      .prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value')
      .run(key, value);
  }

  async setIfAbsent(key: string, value: string): Promise<string> {
    return this.db
      .transaction((): string => {
        this.db.prepare('INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)').run(key, value);
        return (this.db.prepare('SELECT value FROM meta WHERE key = ?').get(key) as { value: string }).value;
      })
      .immediate();
  }
}
