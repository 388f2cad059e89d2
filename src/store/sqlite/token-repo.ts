import type { SecretCipher } from '../../secrets/cipher.js';
import type { TokenRecord, TokenRepo } from '../oauth.js';
import type { Db } from './db.js';
import { tokenFromRow, type TokenRow } from '../oauth-rows.js';

export class SqliteTokenRepo implements TokenRepo {
  constructor(
    private readonly db: Db,
    private readonly cipher: SecretCipher,
  ) {}


  async get(account: string): Promise<TokenRecord | null> {
    const row = this.db.prepare('SELECT * FROM tokens WHERE account = ?').get(account) as TokenRow | undefined;
    return row ? tokenFromRow(this.cipher, row) : null;
  }

  async list(): Promise<TokenRecord[]> {
    const rows = this.db.prepare('SELECT * FROM tokens ORDER BY account').all() as TokenRow[];
    return rows.map((r) => tokenFromRow(this.cipher, r));
  }

  async save(rec: Omit<TokenRecord, 'updatedAt'>, now: number): Promise<void> {
    this.db
      .prepare(
        `INSERT INTO tokens (account, credential, refresh_token_enc, access_token_enc, access_expires_at, scope, state,
           last_refresh_at, refresh_token_issued_at, last_error, updated_at)
         VALUES (@account, @credential, @refresh, @access, @accessExpiresAt, @scope, @state,
           @lastRefreshAt, @refreshTokenIssuedAt, @lastError, @now)
         ON CONFLICT(account) DO UPDATE SET credential = excluded.credential,
           refresh_token_enc = excluded.refresh_token_enc, access_token_enc = excluded.access_token_enc,
           access_expires_at = excluded.access_expires_at, scope = excluded.scope, state = excluded.state,
           last_refresh_at = excluded.last_refresh_at, refresh_token_issued_at = excluded.refresh_token_issued_at,
           last_error = excluded.last_error, updated_at = excluded.updated_at`,
      )
      .run({
        account: rec.account,
        credential: rec.credential,
        refresh: this.cipher.sealOrNull(rec.refreshToken),
        access: this.cipher.sealOrNull(rec.accessToken),
        accessExpiresAt: rec.accessExpiresAt,
        scope: rec.scope,
        state: rec.state,
        lastRefreshAt: rec.lastRefreshAt,
        refreshTokenIssuedAt: rec.refreshTokenIssuedAt,
        lastError: rec.lastError,
        now,
      });
  }

  async takeForRefresh(
    account: string,
    owner: string,
    now: number,
    ttlMs: number,
  ): Promise<{ held: false } | { held: true; record: TokenRecord | null }> {
    return this.db
      .transaction((): { held: false } | { held: true; record: TokenRecord | null } => {
        const row = this.db.prepare('SELECT * FROM tokens WHERE account = ?').get(account) as
          | (TokenRow & { refresh_owner: string | null; refresh_until: number | null })
          | undefined;
        if (!row) return { held: true, record: null };
        if (row.refresh_owner !== null && row.refresh_owner !== owner && (row.refresh_until ?? 0) > now) return { held: false };
        this.db.prepare('UPDATE tokens SET refresh_owner = ?, refresh_until = ? WHERE account = ?').run(owner, now + ttlMs, account);
        return { held: true, record: tokenFromRow(this.cipher, row) };
      })
      .immediate();
  }

  async releaseRefresh(account: string, owner: string): Promise<void> {
    this.db.prepare('UPDATE tokens SET refresh_owner = NULL, refresh_until = NULL WHERE account = ? AND refresh_owner = ?').run(account, owner);
  }

  async delete(account: string): Promise<boolean> {
    return this.db.prepare('DELETE FROM tokens WHERE account = ?').run(account).changes > 0;
  }
}
