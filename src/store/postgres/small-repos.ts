import { adminSessionFromRow, flashJson, sessionIdHash, type AdminSessionRow } from '../admin-session-row.js';
import type { AdminSessionFlash, AdminSessionRecord, AdminSessionRepo } from '../admin-sessions.js';
import { accountStatusFromRow, type AccountStatusPatch, type AccountStatusRecord, type AccountStatusRepo, type AccountStatusRow, type MetaRepo, type Side } from '../meta.js';
import type { PgDb } from './db.js';

/** Meta, account status and admin sessions: one statement each. */
export class PgMetaRepo implements MetaRepo {
  constructor(private readonly db: PgDb) {}

  async get(key: string): Promise<string | null> {
    const [row] = await this.db.rows<{ value: string }>('SELECT value FROM meta WHERE key = $1', [key]);
    return row?.value ?? null;
  }

  async set(key: string, value: string): Promise<void> {
    await this.db.run('INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value', [key, value]);
  }

  async setIfAbsent(key: string, value: string): Promise<string> {
    // The insert either wins or waits for the winner's commit and does nothing; the next statement then sees it.
    return this.db.tx(async (c) => {
      const ins = await c.query<{ value: string }>('INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING RETURNING value', [key, value]);
      if (ins.rows[0]) return ins.rows[0].value;
      const { rows } = await c.query<{ value: string }>('SELECT value FROM meta WHERE key = $1', [key]);
      if (!rows[0]) throw new Error(`meta key ${key} vanished during setIfAbsent`);
      return rows[0].value;
    });
  }
}

export class PgAccountStatusRepo implements AccountStatusRepo {
  constructor(private readonly db: PgDb) {}

  async update(account: string, side: Side, patch: AccountStatusPatch, now: number): Promise<void> {
    await this.db.run(
      `INSERT INTO account_status (account, side, state, last_success_at, last_poll_at, last_error, updated_at)
       VALUES ($1, $2, COALESCE($3, 'stopped'), $4, $5, $6, $7)
       ON CONFLICT (account, side) DO UPDATE SET
         state = COALESCE($3, account_status.state),
         last_success_at = CASE WHEN $8 THEN $4 ELSE account_status.last_success_at END,
         last_poll_at = CASE WHEN $9 THEN $5 ELSE account_status.last_poll_at END,
         last_error = CASE WHEN $10 THEN $6 ELSE account_status.last_error END,
         updated_at = $7`,
      [
        account,
        side,
        patch.state ?? null,
        patch.lastSuccessAt ?? null,
        patch.lastPollAt ?? null,
        patch.lastError ?? null,
        now,
        patch.lastSuccessAt !== undefined,
        patch.lastPollAt !== undefined,
        patch.lastError !== undefined,
      ],
    );
  }

  async list(): Promise<AccountStatusRecord[]> {
    return (await this.db.rows<AccountStatusRow>('SELECT * FROM account_status ORDER BY account, side')).map(accountStatusFromRow);
  }

  async forAccount(account: string): Promise<AccountStatusRecord[]> {
    return (await this.db.rows<AccountStatusRow>('SELECT * FROM account_status WHERE account = $1 ORDER BY side', [account])).map(accountStatusFromRow);
  }
}

/** Only the SHA-256 of a session id is stored, as in SQLite (migration 0004 there). */
export class PgAdminSessionRepo implements AdminSessionRepo {
  constructor(private readonly db: PgDb) {}

  async create(rec: AdminSessionRecord): Promise<void> {
    await this.db.run('INSERT INTO admin_sessions (id_sha256, csrf, flash_json, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)', [
      sessionIdHash(rec.id),
      rec.csrf,
      flashJson(rec.flash),
      rec.createdAt,
      rec.expiresAt,
    ]);
  }

  async get(id: string, now: number): Promise<AdminSessionRecord | null> {
    const hash = sessionIdHash(id);
    const [row] = await this.db.rows<AdminSessionRow>('SELECT csrf, flash_json, created_at, expires_at FROM admin_sessions WHERE id_sha256 = $1', [hash]);
    if (!row) return null;
    if (row.expires_at <= now) {
      await this.db.run('DELETE FROM admin_sessions WHERE id_sha256 = $1', [hash]);
      return null;
    }
    return adminSessionFromRow(id, row);
  }

  async setFlash(id: string, flash: AdminSessionFlash | null): Promise<boolean> {
    const r = await this.db.run('UPDATE admin_sessions SET flash_json = $1 WHERE id_sha256 = $2', [flashJson(flash), sessionIdHash(id)]);
    return (r.rowCount ?? 0) > 0;
  }

  async delete(id: string): Promise<boolean> {
    return ((await this.db.run('DELETE FROM admin_sessions WHERE id_sha256 = $1', [sessionIdHash(id)])).rowCount ?? 0) > 0;
  }

  async pruneExpired(now: number): Promise<number> {
    return (await this.db.run('DELETE FROM admin_sessions WHERE expires_at <= $1', [now])).rowCount ?? 0;
  }
}
