import { createHash } from 'node:crypto';
import type { AdminSessionFlash, AdminSessionRecord, AdminSessionRepo } from '../admin-sessions.js';
import type { Db } from './db.js';

interface SessionRow {
  csrf: string;
  flash_json: string | null;
  created_at: number;
  expires_at: number;
}

/**
 * The key a session is stored under: the lowercase hex SHA-256 of its id, so
 * the database never holds a cookie value (see migration 0004). Looking a
 * session up by this hash also leaks nothing through timing: a guess cannot
 * steer which bytes of the hash it matches.
 */
export function sessionIdHash(id: string): string {
  return createHash('sha256').update(id, 'utf8').digest('hex');
}

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
      | SessionRow
      | undefined;
    if (!row) return null;
    if (row.expires_at <= now) {
      this.db.prepare('DELETE FROM admin_sessions WHERE id_sha256 = ?').run(hash);
      return null;
    }
    return {
      id,
      csrf: row.csrf,
      flash: row.flash_json === null ? null : (JSON.parse(row.flash_json) as AdminSessionFlash),
      createdAt: row.created_at,
      expiresAt: row.expires_at,
    };
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

function flashJson(flash: AdminSessionFlash | null): string | null {
  return flash ? JSON.stringify({ kind: flash.kind, text: flash.text }) : null;
}
