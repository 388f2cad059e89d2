import { adminSessionFromRow, flashJson, sessionIdHash, type AdminSessionRow } from '../admin-session-row.js';
import type { AdminSessionFlash, AdminSessionRecord, AdminSessionRepo } from '../admin-sessions.js';
import type { Db } from './db.js';

export class SqliteAdminSessionRepo implements AdminSessionRepo {
  constructor(private readonly db: Db) {}

  async create(rec: AdminSessionRecord): Promise<void> {
    this.db
      .prepare('INSERT INTO admin_sessions (id_sha256, csrf, flash_json, created_at, expires_at) VALUES (?, ?, ?, ?, ?)')
      .run(sessionIdHash(rec.id), rec.csrf, flashJson(rec.flash), rec.createdAt, rec.expiresAt);
  }

  async get(id: string, now: number): Promise<AdminSessionRecord | null> {
    const hash = sessionIdHash(id);
    const row = this.db.prepare('SELECT csrf, flash_json, created_at, expires_at FROM admin_sessions WHERE id_sha256 = ?').get(hash) as
      | AdminSessionRow
      | undefined;
    if (!row) return null;
    if (row.expires_at <= now) {
      this.db.prepare('DELETE FROM admin_sessions WHERE id_sha256 = ?').run(hash);
      return null;
    }
    return adminSessionFromRow(id, row);
  }

  async setFlash(id: string, flash: AdminSessionFlash | null): Promise<boolean> {
    const res = this.db.prepare('UPDATE admin_sessions SET flash_json = ? WHERE id_sha256 = ?').run(flashJson(flash), sessionIdHash(id));
    return res.changes > 0;
  }

  async delete(id: string): Promise<boolean> {
    return this.db.prepare('DELETE FROM admin_sessions WHERE id_sha256 = ?').run(sessionIdHash(id)).changes > 0;
  }

  async pruneExpired(now: number): Promise<number> {
    return this.db.prepare('DELETE FROM admin_sessions WHERE expires_at <= ?').run(now).changes;
  }
}
