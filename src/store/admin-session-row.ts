import { createHash } from 'node:crypto';
import type { AdminSessionFlash, AdminSessionRecord } from './admin-sessions.js';

/**
 * The key a session is stored under: the lowercase hex SHA-256 of its id, so
 * the database never holds a cookie value (SQLite migration 0004, the same in
 * PostgreSQL). Looking a session up by this hash also leaks nothing through
 * timing: a guess cannot steer which bytes of the hash it matches.
 */
export function sessionIdHash(id: string): string {
  return createHash('sha256').update(id, 'utf8').digest('hex');
}

/** The admin_sessions columns both backends read back (the same names in SQLite and PostgreSQL). */
export interface AdminSessionRow {
  csrf: string;
  flash_json: string | null;
  created_at: number;
  expires_at: number;
}

export function adminSessionFromRow(id: string, row: AdminSessionRow): AdminSessionRecord {
  return {
    id,
    csrf: row.csrf,
    flash: row.flash_json === null ? null : (JSON.parse(row.flash_json) as AdminSessionFlash),
    createdAt: row.created_at,
    expiresAt: row.expires_at,
  };
}

export function flashJson(flash: AdminSessionFlash | null): string | null {
  return flash ? JSON.stringify({ kind: flash.kind, text: flash.text }) : null;
}
