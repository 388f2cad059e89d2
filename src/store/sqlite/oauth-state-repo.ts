import type { SecretCipher } from '../../secrets/cipher.js';
import type { ConsumeStateResult, OAuthStateRecord, OAuthStateRepo } from '../oauth.js';
import type { Db } from './db.js';

interface StateRow {
  state: string;
  account: string;
  credential: string;
  code_verifier_enc: Buffer;
  redirect_uri: string;
  created_at: number;
  expires_at: number;
  used_at: number | null;
}

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
        const row = this.db.prepare('SELECT * FROM oauth_states WHERE state = ?').get(state) as StateRow | undefined;
        if (!row) return { ok: false, reason: 'unknown' };
        if (row.used_at !== null) return { ok: false, reason: 'used' };
        this.db.prepare('UPDATE oauth_states SET used_at = ? WHERE state = ?').run(now, state);
        if (row.expires_at <= now) return { ok: false, reason: 'expired' };
        return {
          ok: true,
          record: {
            state: row.state,
            account: row.account,
            credential: row.credential,
            codeVerifier: this.cipher.open(row.code_verifier_enc, 'PKCE verifier'),
            redirectUri: row.redirect_uri,
            createdAt: row.created_at,
            expiresAt: row.expires_at,
          },
        };
      })
      .immediate();
  }

  async prune(olderThan: number): Promise<number> {
    return this.db.prepare('DELETE FROM oauth_states WHERE expires_at < ?').run(olderThan).changes;
  }
}
