/** What the store keeps for OAuth2: client credentials added at run time, tokens per account, authorization states. */

export type TokenState = 'ok' | 'reauth_required' | 'missing';

export interface StoredCredential {
  name: string;
  provider: string;
  clientId: string;
  clientSecret: string | null;
  /** Endpoints, scopes, tenant, grant, deviceAuthorizationEndpoint. */
  settings: Record<string, unknown>;
  createdAt: number;
  updatedAt: number;
}

export interface CredentialRepo {
  /** Every credential, ordered by name. */
  list(): Promise<StoredCredential[]>;
  get(name: string): Promise<StoredCredential | null>;
  /** Creates (createdAt = updatedAt = `now`) or replaces every field but createdAt; returns the stored record. */
  upsert(c: Omit<StoredCredential, 'createdAt' | 'updatedAt'>, now: number): Promise<StoredCredential>;
  remove(name: string): Promise<boolean>;
}

export interface TokenRecord {
  account: string;
  credential: string;
  refreshToken: string | null;
  accessToken: string | null;
  accessExpiresAt: number | null;
  scope: string | null;
  state: TokenState;
  lastRefreshAt: number | null;
  refreshTokenIssuedAt: number | null;
  lastError: string | null;
  updatedAt: number;
}

export interface TokenRepo {
  get(account: string): Promise<TokenRecord | null>;
  /** Every account's record, ordered by account. */
  list(): Promise<TokenRecord[]>;
  /**
   * Inserts or replaces the whole record (no merge: a null clears), with
   * updatedAt = `now`: a new access token and a rotated refresh token land together.
   */
  save(rec: Omit<TokenRecord, 'updatedAt'>, now: number): Promise<void>;
  delete(account: string): Promise<boolean>;
  /**
   * Takes the account's token row for one refresh across every store on the
   * storage: when nobody holds it (or their hold ended at `now`), holds it
   * for `owner` until `now + ttlMs` and returns the record as it is now, so
   * the caller re-checks freshness (another node may just have refreshed)
   * before calling the token endpoint. `{ held: false }` while another owner
   * holds it; `{ held: true, record: null }` when the account has no row.
   */
  takeForRefresh(account: string, owner: string, now: number, ttlMs: number): Promise<{ held: false } | { held: true; record: TokenRecord | null }>;
  /** Ends this owner's hold (after save, or when the refresh failed). */
  releaseRefresh(account: string, owner: string): Promise<void>;
}

export interface OAuthStateRecord {
  state: string;
  account: string;
  credential: string;
  codeVerifier: string;
  redirectUri: string;
  createdAt: number;
  expiresAt: number;
}

export type ConsumeStateResult =
  | { ok: true; record: OAuthStateRecord }
  | { ok: false; reason: 'unknown' | 'used' | 'expired' };

export interface OAuthStateRepo {
  create(rec: OAuthStateRecord): Promise<void>;
  /**
   * Atomically marks the state used, across every store on the same storage:
   * exactly one consume of a state can succeed; later ones answer 'used'. An
   * expired state (expiresAt <= now) answers 'expired' and is used up too.
   */
  consume(state: string, now: number): Promise<ConsumeStateResult>;
  /** Removes states that expired before `olderThan`, used or not; returns how many. */
  prune(olderThan: number): Promise<number>;
}
