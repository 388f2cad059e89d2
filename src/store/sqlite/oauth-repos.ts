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
} from '../types.js';
import type { Db } from './db.js';

interface CredentialRow {
  name: string;
  provider: string;
  client_id: string;
  client_secret_enc: Buffer | null;
  settings_json: string;
  created_at: number;
  updated_at: number;
}

export class SqliteCredentialRepo implements CredentialRepo {
  constructor(
    private readonly db: Db,
    private readonly cipher: SecretCipher,
  ) {}

  private toRecord(r: CredentialRow): StoredCredential {
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
    const rows = this.db.prepare('SELECT * FROM credentials ORDER BY name').all() as CredentialRow[];
    return rows.map((r) => this.toRecord(r));
  }

  async get(name: string): Promise<StoredCredential | null> {
    const row = this.db.prepare('SELECT * FROM credentials WHERE name = ?').get(name) as CredentialRow | undefined;
    return row ? this.toRecord(row) : null;
  }

  async upsert(c: Omit<StoredCredential, 'createdAt' | 'updatedAt'>): Promise<StoredCredential> {
    const now = Date.now();
    this.db
      .prepare(
        `INSERT INTO credentials (name, provider, client_id, client_secret_enc, settings_json, created_at, updated_at)
         VALUES (@name, @provider, @clientId, @secret, @settings, @now, @now)
         ON CONFLICT(name) DO UPDATE SET provider = excluded.provider, client_id = excluded.client_id,
           client_secret_enc = excluded.client_secret_enc, settings_json = excluded.settings_json,
           updated_at = excluded.updated_at`,
      )
      .run({
        name: c.name,
        provider: c.provider,
        clientId: c.clientId,
        secret: this.cipher.sealOrNull(c.clientSecret),
        settings: JSON.stringify(c.settings),
        now,
      });
    const saved = await this.get(c.name);
    if (!saved) throw new Error(`credential ${c.name} vanished after upsert`);
    return saved;
  }

  async remove(name: string): Promise<boolean> {
    return this.db.prepare('DELETE FROM credentials WHERE name = ?').run(name).changes > 0;
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

export class SqliteTokenRepo implements TokenRepo {
  constructor(
    private readonly db: Db,
    private readonly cipher: SecretCipher,
  ) {}

  private toRecord(r: TokenRow): TokenRecord {
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
    const row = this.db.prepare('SELECT * FROM tokens WHERE account = ?').get(account) as TokenRow | undefined;
    return row ? this.toRecord(row) : null;
  }

  async list(): Promise<TokenRecord[]> {
    const rows = this.db.prepare('SELECT * FROM tokens ORDER BY account').all() as TokenRow[];
    return rows.map((r) => this.toRecord(r));
  }

  async save(rec: Omit<TokenRecord, 'updatedAt'>): Promise<void> {
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
        now: Date.now(),
      });
  }

  async delete(account: string): Promise<boolean> {
    return this.db.prepare('DELETE FROM tokens WHERE account = ?').run(account).changes > 0;
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
