import type { SecretCipher } from '../../secrets/cipher.js';
import type {
  ConsumeStateResult,
  CredentialRepo,
  OAuthStateRecord,
  OAuthStateRepo,
  StoredCredential,
  TokenRecord,
  TokenRepo,
} from '../oauth.js';
import { credentialFromRow, oauthStateFromRow, tokenFromRow, type CredentialRow, type OAuthStateRow, type TokenRow } from '../oauth-rows.js';
import type { PgDb } from './db.js';

/** Client credentials, tokens and authorization states, sealed with the same envelopes as in SQLite (secrets/cipher.ts). */

export class PgCredentialRepo implements CredentialRepo {
  constructor(
    private readonly db: PgDb,
    private readonly cipher: SecretCipher,
  ) {}


  async list(): Promise<StoredCredential[]> {
    return (await this.db.rows<CredentialRow>('SELECT * FROM credentials ORDER BY name')).map((r) => credentialFromRow(this.cipher, r));
  }

  async get(name: string): Promise<StoredCredential | null> {
    const [row] = await this.db.rows<CredentialRow>('SELECT * FROM credentials WHERE name = $1', [name]);
    return row ? credentialFromRow(this.cipher, row) : null;
  }

  async upsert(c: Omit<StoredCredential, 'createdAt' | 'updatedAt'>, now: number): Promise<StoredCredential> {
    const [row] = await this.db.rows<CredentialRow>(
      `INSERT INTO credentials (name, provider, client_id, client_secret_enc, settings_json, created_at, updated_at)
       VALUES ($1, $2, $3, $4, $5, $6, $6)
       ON CONFLICT (name) DO UPDATE SET provider = excluded.provider, client_id = excluded.client_id,
         client_secret_enc = excluded.client_secret_enc, settings_json = excluded.settings_json, updated_at = excluded.updated_at
       RETURNING *`,
      [c.name, c.provider, c.clientId, this.cipher.sealOrNull(c.clientSecret), JSON.stringify(c.settings), now],
    );
    if (!row) throw new Error(`credential ${c.name} vanished after upsert`);
    return credentialFromRow(this.cipher, row);
  }

  async remove(name: string): Promise<boolean> {
    return ((await this.db.run('DELETE FROM credentials WHERE name = $1', [name])).rowCount ?? 0) > 0;
  }
}

export class PgTokenRepo implements TokenRepo {
  constructor(
    private readonly db: PgDb,
    private readonly cipher: SecretCipher,
  ) {}


  async get(account: string): Promise<TokenRecord | null> {
    const [row] = await this.db.rows<TokenRow>('SELECT * FROM tokens WHERE account = $1', [account]);
    return row ? tokenFromRow(this.cipher, row) : null;
  }

  async list(): Promise<TokenRecord[]> {
    return (await this.db.rows<TokenRow>('SELECT * FROM tokens ORDER BY account')).map((r) => tokenFromRow(this.cipher, r));
  }

  async save(rec: Omit<TokenRecord, 'updatedAt'>, now: number): Promise<void> {
    await this.db.run(
      `INSERT INTO tokens (account, credential, refresh_token_enc, access_token_enc, access_expires_at, scope, state,
         last_refresh_at, refresh_token_issued_at, last_error, updated_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
       ON CONFLICT (account) DO UPDATE SET credential = excluded.credential,
         refresh_token_enc = excluded.refresh_token_enc, access_token_enc = excluded.access_token_enc,
         access_expires_at = excluded.access_expires_at, scope = excluded.scope, state = excluded.state,
         last_refresh_at = excluded.last_refresh_at, refresh_token_issued_at = excluded.refresh_token_issued_at,
         last_error = excluded.last_error, updated_at = excluded.updated_at`,
      [
        rec.account,
        rec.credential,
        this.cipher.sealOrNull(rec.refreshToken),
        this.cipher.sealOrNull(rec.accessToken),
        rec.accessExpiresAt,
        rec.scope,
        rec.state,
        rec.lastRefreshAt,
        rec.refreshTokenIssuedAt,
        rec.lastError,
        now,
      ],
    );
  }

  async delete(account: string): Promise<boolean> {
    return ((await this.db.run('DELETE FROM tokens WHERE account = $1', [account])).rowCount ?? 0) > 0;
  }

  async takeForRefresh(account: string, owner: string, now: number, ttlMs: number): Promise<{ held: false } | { held: true; record: TokenRecord | null }> {
    // The token row's lock makes two nodes take turns; the second then sees the first's hold.
    return this.db.tx(async (c): Promise<{ held: false } | { held: true; record: TokenRecord | null }> => {
      const { rows } = await c.query<TokenRow & { refresh_owner: string | null; refresh_until: number | null }>(
        'SELECT * FROM tokens WHERE account = $1 FOR UPDATE',
        [account],
      );
      const row = rows[0];
      if (!row) return { held: true, record: null };
      if (row.refresh_owner !== null && row.refresh_owner !== owner && (row.refresh_until ?? 0) > now) return { held: false };
      await c.query('UPDATE tokens SET refresh_owner = $2, refresh_until = $3 WHERE account = $1', [account, owner, now + ttlMs]);
      return { held: true, record: tokenFromRow(this.cipher, row) };
    });
  }

  async releaseRefresh(account: string, owner: string): Promise<void> {
    await this.db.run('UPDATE tokens SET refresh_owner = NULL, refresh_until = NULL WHERE account = $1 AND refresh_owner = $2', [account, owner]);
  }
}

export class PgOAuthStateRepo implements OAuthStateRepo {
  constructor(
    private readonly db: PgDb,
    private readonly cipher: SecretCipher,
  ) {}

  async create(rec: OAuthStateRecord): Promise<void> {
    await this.db.run(
      `INSERT INTO oauth_states (state, account, credential, code_verifier_enc, redirect_uri, created_at, expires_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7)`,
      [rec.state, rec.account, rec.credential, this.cipher.seal(rec.codeVerifier), rec.redirectUri, rec.createdAt, rec.expiresAt],
    );
  }

  async consume(state: string, now: number): Promise<ConsumeStateResult> {
    // The row lock makes a second consume wait for the first and then see it used.
    return this.db.tx(async (c): Promise<ConsumeStateResult> => {
      const { rows } = await c.query<OAuthStateRow>('SELECT * FROM oauth_states WHERE state = $1 FOR UPDATE', [state]);
      const row = rows[0];
      if (!row) return { ok: false, reason: 'unknown' };
      if (row.used_at !== null) return { ok: false, reason: 'used' };
      await c.query('UPDATE oauth_states SET used_at = $1 WHERE state = $2', [now, state]);
      if (row.expires_at <= now) return { ok: false, reason: 'expired' };
      return {
        ok: true,
        record: oauthStateFromRow(this.cipher, row),
      };
    });
  }

  async prune(olderThan: number): Promise<number> {
    return (await this.db.run('DELETE FROM oauth_states WHERE expires_at < $1', [olderThan])).rowCount ?? 0;
  }
}
