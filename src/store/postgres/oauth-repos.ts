import type { SecretCipher } from '../../secrets/cipher.js';
import type {
  ConsumeStateResult,
  CredentialRepo,
  OAuthStateRecord,
  OAuthStateRepo,
  StoredCredential,
  TokenRecord,
  TokenRepo,
  TokenState,
} from '../oauth.js';
import type { PgDb } from './db.js';

/** Client credentials, tokens and authorization states, sealed with the same envelopes as in SQLite (secrets/cipher.ts). */

interface CredentialRow {
  name: string;
  provider: string;
  client_id: string;
  client_secret_enc: Buffer | null;
  settings_json: string;
  created_at: number;
  updated_at: number;
}

export class PgCredentialRepo implements CredentialRepo {
  constructor(
    private readonly db: PgDb,
    private readonly cipher: SecretCipher,
  ) {}

  #toRecord(r: CredentialRow): StoredCredential {
    return {
      name: r.name,
      provider: r.provider,
      clientId: r.client_id,
      clientSecret: this.cipher.openOrNull(r.client_secret_enc, `client secret of credential ${r.name}`),
      settings: JSON.parse(r.settings_json) as Record<string, unknown>,
      createdAt: r.created_at,
      updatedAt: r.updated_at,
    };
  }

  async list(): Promise<StoredCredential[]> {
    return (await this.db.rows<CredentialRow>('SELECT * FROM credentials ORDER BY name')).map((r) => this.#toRecord(r));
  }

  async get(name: string): Promise<StoredCredential | null> {
    const [row] = await this.db.rows<CredentialRow>('SELECT * FROM credentials WHERE name = $1', [name]);
    return row ? this.#toRecord(row) : null;
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
    return this.#toRecord(row);
  }

  async remove(name: string): Promise<boolean> {
    return ((await this.db.run('DELETE FROM credentials WHERE name = $1', [name])).rowCount ?? 0) > 0;
  }
}

interface TokenRow {
  account: string;
  credential: string;
  refresh_token_enc: Buffer | null;
  access_token_enc: Buffer | null;
  access_expires_at: number | null;
  scope: string | null;
  state: TokenState;
  last_refresh_at: number | null;
  refresh_token_issued_at: number | null;
  last_error: string | null;
  updated_at: number;
}

export class PgTokenRepo implements TokenRepo {
  constructor(
    private readonly db: PgDb,
    private readonly cipher: SecretCipher,
  ) {}

  #toRecord(r: TokenRow): TokenRecord {
    return {
      account: r.account,
      credential: r.credential,
      refreshToken: this.cipher.openOrNull(r.refresh_token_enc, `refresh token of ${r.account}`),
      accessToken: this.cipher.openOrNull(r.access_token_enc, `access token of ${r.account}`),
      accessExpiresAt: r.access_expires_at,
      scope: r.scope,
      state: r.state,
      lastRefreshAt: r.last_refresh_at,
      refreshTokenIssuedAt: r.refresh_token_issued_at,
      lastError: r.last_error,
      updatedAt: r.updated_at,
    };
  }

  async get(account: string): Promise<TokenRecord | null> {
    const [row] = await this.db.rows<TokenRow>('SELECT * FROM tokens WHERE account = $1', [account]);
    return row ? this.#toRecord(row) : null;
  }

  async list(): Promise<TokenRecord[]> {
    return (await this.db.rows<TokenRow>('SELECT * FROM tokens ORDER BY account')).map((r) => this.#toRecord(r));
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
      return { held: true, record: this.#toRecord(row) };
    });
  }

  async releaseRefresh(account: string, owner: string): Promise<void> {
    await this.db.run('UPDATE tokens SET refresh_owner = NULL, refresh_until = NULL WHERE account = $1 AND refresh_owner = $2', [account, owner]);
  }
}

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
      const { rows } = await c.query<StateRow>('SELECT * FROM oauth_states WHERE state = $1 FOR UPDATE', [state]);
      const row = rows[0];
      if (!row) return { ok: false, reason: 'unknown' };
      if (row.used_at !== null) return { ok: false, reason: 'used' };
      await c.query('UPDATE oauth_states SET used_at = $1 WHERE state = $2', [now, state]);
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
    });
  }

  async prune(olderThan: number): Promise<number> {
    return (await this.db.run('DELETE FROM oauth_states WHERE expires_at < $1', [olderThan])).rowCount ?? 0;
  }
}
