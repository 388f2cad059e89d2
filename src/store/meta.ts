/** Small shared state: key/value settings of the store itself, and each account's runtime status. */

export interface MetaRepo {
  get(key: string): Promise<string | null>;
  /** Inserts or replaces. */
  set(key: string, value: string): Promise<void>;
  /**
   * Inserts `value` unless the key has one already, atomically across every
   * store on the same storage; returns the value stored now (the first
   * writer's). The secret key check (store/key-check.ts) relies on it.
   */
  setIfAbsent(key: string, value: string): Promise<string>;
}

export type Side = 'incoming' | 'outgoing';

export interface AccountStatusRecord {
  account: string;
  side: Side;
  state: string;
  lastSuccessAt: number | null;
  lastPollAt: number | null;
  lastError: string | null;
  updatedAt: number;
}

export type AccountStatusPatch = Partial<Pick<AccountStatusRecord, 'state' | 'lastSuccessAt' | 'lastPollAt' | 'lastError'>>;

/**
 * Written by the daemon so that `mailgate status` (another process) and
 * other replicas can read it.
 */
export interface AccountStatusRepo {
  /**
   * Creates the row (state 'stopped' unless given) or merges the patch into
   * it: absent fields stay, null clears. updatedAt = `now`.
   */
  update(account: string, side: Side, patch: AccountStatusPatch, now: number): Promise<void>;
  /** Every row, ordered by account, then side. */
  list(): Promise<AccountStatusRecord[]>;
  /** One account's rows (none, one or both sides), ordered by side: one indexed read for a page about one account. */
  forAccount(account: string): Promise<AccountStatusRecord[]>;
}

/** An account_status row as both backends store it (the same column names in SQLite and PostgreSQL). */
export interface AccountStatusRow {
  account: string;
  side: Side;
  state: string;
  last_success_at: number | null;
  last_poll_at: number | null;
  last_error: string | null;
  updated_at: number;
}

export function accountStatusFromRow(r: AccountStatusRow): AccountStatusRecord {
  return {
    account: r.account,
    side: r.side,
    state: r.state,
    lastSuccessAt: r.last_success_at,
    lastPollAt: r.last_poll_at,
    lastError: r.last_error,
    updatedAt: r.updated_at,
  };
}
