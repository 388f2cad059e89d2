import type { SecretCipher } from '../../secrets/cipher.js';
import type { ConsumeStateResult, OAuthStateRecord, OAuthStateRepo } from '../oauth.js';
import type { Db } from './db.js';
import { oauthStateFromRow, type OAuthStateRow } from '../oauth-rows.js';

export class SqliteOAuthStateRepo implements OAuthStateRepo {
  constructor(
    private readonly db: Db,
    private readonly cipher: SecretCipher,
  ) {}

  async create(rec: OAuthStateRecord): Promise<void> {
    this.db
      .prepare(
        `INSERT INTO oauth_states (state, account, credential, code_verifier_enc, redirect_uri, created_at, expires_at)
         VALUES (?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        rec.state,
        rec.account,
        rec.credential,
        this.cipher.seal(rec.codeVerifier),
        rec.redirectUri,
        rec.createdAt,
        rec.expiresAt,
      );
  }

  async consume(state: string, now: number): Promise<ConsumeStateResult> {
    return this.db
      .transaction((): ConsumeStateResult => {
        const row = this.db.prepare('SELECT * FROM oauth_states WHERE state = ?').get(state) as OAuthStateRow | undefined;
        if (!row) return { ok: false, reason: 'unknown' };
        if (row.used_at !== null) return { ok: false, reason: 'used' };
        this.db.prepare('UPDATE oauth_states SET used_at = ? WHERE state = ?').run(now, state);
        if (row.expires_at <= now) return { ok: false, reason: 'expired' };
        return {
          ok: true,
          record: oauthStateFromRow(this.cipher, row),
        };
      })
      .immediate();
  }

  async prune(olderThan: number): Promise<number> {
    return this.db.prepare('DELETE FROM oauth_states WHERE expires_at < ?').run(olderThan).changes;
  }
}
