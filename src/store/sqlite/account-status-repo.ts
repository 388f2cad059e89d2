import type { AccountStatusPatch, AccountStatusRecord, AccountStatusRepo, Side } from '../meta.js';
import type { Db } from './db.js';

interface StatusRow {
  account: string;
  side: Side;
  state: string;
  last_success_at: number | null;
  last_poll_at: number | null;
  last_error: string | null;
  updated_at: number;
}

export class SqliteAccountStatusRepo implements AccountStatusRepo {
  constructor(private readonly db: Db) {}

  async update(account: string, side: Side, patch: AccountStatusPatch, now: number): Promise<void> {
    this.db
      .prepare(
        `INSERT INTO account_status (account, side, state, last_success_at, last_poll_at, last_error, updated_at)
         VALUES (@account, @side, COALESCE(@state, 'stopped'), @lastSuccessAt, @lastPollAt, @lastError, @now)
         ON CONFLICT(account, side) DO UPDATE SET
           state = COALESCE(@state, state),
           last_success_at = CASE WHEN @hasSuccess THEN @lastSuccessAt ELSE last_success_at END,
           last_poll_at = CASE WHEN @hasPoll THEN @lastPollAt ELSE last_poll_at END,
           last_error = CASE WHEN @hasError THEN @lastError ELSE last_error END,
           updated_at = @now`,
      )
      .run({
        account,
        side,
        state: patch.state ?? null,
        lastSuccessAt: patch.lastSuccessAt ?? null,
        lastPollAt: patch.lastPollAt ?? null,
        lastError: patch.lastError ?? null,
        hasSuccess: patch.lastSuccessAt !== undefined ? 1 : 0,
        hasPoll: patch.lastPollAt !== undefined ? 1 : 0,
        hasError: patch.lastError !== undefined ? 1 : 0,
        now,
      });
  }

  async list(): Promise<AccountStatusRecord[]> {
    const rows = this.db.prepare('SELECT * FROM account_status ORDER BY account, side').all() as StatusRow[];
    return rows.map((r) => ({
      account: r.account,
      side: r.side,
      state: r.state,
      lastSuccessAt: r.last_success_at,
      lastPollAt: r.last_poll_at,
      lastError: r.last_error,
      updatedAt: r.updated_at,
    }));
  }
}
