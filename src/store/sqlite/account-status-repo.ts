import { accountStatusFromRow, type AccountStatusPatch, type AccountStatusRecord, type AccountStatusRepo, type AccountStatusRow, type Side } from '../meta.js';
import type { Db } from './db.js';

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
    const rows = this.db.prepare('SELECT * FROM account_status ORDER BY account, side').all() as AccountStatusRow[];
    return rows.map(accountStatusFromRow);
  }

  async forAccount(account: string): Promise<AccountStatusRecord[]> {
    const rows = this.db.prepare('SELECT * FROM account_status WHERE account = ? ORDER BY side').all(account) as AccountStatusRow[];
    return rows.map(accountStatusFromRow);
  }
}
