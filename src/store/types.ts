import type { DeliveryRepo, IngestRepo, MessageRepo } from './ingest.js';
import type { OutboxRepo } from './outbox.js';

/**
 * The storage boundary. Everything above this file talks to these small async
 * interfaces; SQLite (src/store/sqlite) is the embedded default and a
 * PostgreSQL backend for several replicas will implement the same ones.
 * Each method is one transactional unit. Secrets cross this boundary in
 * plaintext and are encrypted by the implementation.
 */

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
  list(): Promise<StoredCredential[]>;
  get(name: string): Promise<StoredCredential | null>;
  upsert(c: Omit<StoredCredential, 'createdAt' | 'updatedAt'>): Promise<StoredCredential>;
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
  list(): Promise<TokenRecord[]>;
  /** Insert or replace the whole record (new access token and rotated refresh token together). */
  save(rec: Omit<TokenRecord, 'updatedAt'>): Promise<void>;
  delete(account: string): Promise<boolean>;
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
  /** Atomically marks the state used; a second call for the same state fails with 'used'. */
  consume(state: string, now: number): Promise<ConsumeStateResult>;
  prune(olderThan: number): Promise<number>;
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

export interface AccountStatusRepo {
  update(
    account: string,
    side: Side,
    patch: Partial<Pick<AccountStatusRecord, 'state' | 'lastSuccessAt' | 'lastPollAt' | 'lastError'>>,
  ): Promise<void>;
  list(): Promise<AccountStatusRecord[]>;
}

export interface MetaRepo {
  get(key: string): Promise<string | null>;
  set(key: string, value: string): Promise<void>;
}

export interface AdminSessionFlash {
  kind: 'ok' | 'error';
  text: string;
}

/** A signed-in admin web UI session (src/http/admin/session.ts). */
export interface AdminSessionRecord {
  /** The cookie value. Implementations store only its SHA-256 hash, never the value. */
  id: string;
  /** The session's CSRF token, sent back by every form. */
  csrf: string;
  /** A message shown once on the next page (post/redirect/get). */
  flash: AdminSessionFlash | null;
  createdAt: number;
  expiresAt: number;
}

export interface AdminSessionRepo {
  create(rec: AdminSessionRecord): Promise<void>;
  /** The session with this id if it is live at `now`; an expired one is deleted on the way. */
  get(id: string, now: number): Promise<AdminSessionRecord | null>;
  /** Replaces the session's flash message; false when there is no such session. */
  setFlash(id: string, flash: AdminSessionFlash | null): Promise<boolean>;
  delete(id: string): Promise<boolean>;
  /** Deletes every session expired at `now`; returns how many. */
  pruneExpired(now: number): Promise<number>;
}

export interface Store {
  readonly meta: MetaRepo;
  readonly credentials: CredentialRepo;
  readonly tokens: TokenRepo;
  readonly oauthStates: OAuthStateRepo;
  readonly accountStatus: AccountStatusRepo;
  readonly ingest: IngestRepo;
  readonly messages: MessageRepo;
  readonly deliveries: DeliveryRepo;
  readonly outbox: OutboxRepo;
  readonly adminSessions: AdminSessionRepo;
  /** Cheap liveness probe for /readyz. */
  ping(): Promise<boolean>;
  close(): Promise<void>;
}
