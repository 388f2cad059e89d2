import type { SecretCipher } from '../secrets/cipher.js';
import type { OAuthStateRecord, StoredCredential, TokenRecord, TokenState } from './oauth.js';

/**
 * The credentials, tokens and oauth_states rows as both backends store them
 * (the same column names in SQLite and PostgreSQL; secrets as sealed
 * envelopes, secrets/cipher.ts), and the one mapping of each to its record.
 */

export interface CredentialRow {
  name: string;
  provider: string;
  client_id: string;
  client_secret_enc: Buffer | null;
  settings_json: string;
  created_at: number;
  updated_at: number;
}

export function credentialFromRow(cipher: SecretCipher, r: CredentialRow): StoredCredential {
  return {
    name: r.name,
    provider: r.provider,
    clientId: r.client_id,
    clientSecret: cipher.openOrNull(r.client_secret_enc, `client secret of credential ${r.name}`),
    settings: JSON.parse(r.settings_json) as Record<string, unknown>,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

export interface TokenRow {
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

export function tokenFromRow(cipher: SecretCipher, r: TokenRow): TokenRecord {
  return {
    account: r.account,
    credential: r.credential,
    refreshToken: cipher.openOrNull(r.refresh_token_enc, `refresh token of ${r.account}`),
    accessToken: cipher.openOrNull(r.access_token_enc, `access token of ${r.account}`),
    accessExpiresAt: r.access_expires_at,
    scope: r.scope,
    state: r.state,
    lastRefreshAt: r.last_refresh_at,
    refreshTokenIssuedAt: r.refresh_token_issued_at,
    lastError: r.last_error,
    updatedAt: r.updated_at,
  };
}

export interface OAuthStateRow {
  state: string;
  account: string;
  credential: string;
  code_verifier_enc: Buffer;
  redirect_uri: string;
  created_at: number;
  expires_at: number;
  used_at: number | null;
}

export function oauthStateFromRow(cipher: SecretCipher, r: OAuthStateRow): OAuthStateRecord {
  return {
    state: r.state,
    account: r.account,
    credential: r.credential,
    codeVerifier: cipher.open(r.code_verifier_enc, 'PKCE verifier'),
    redirectUri: r.redirect_uri,
    createdAt: r.created_at,
    expiresAt: r.expires_at,
  };
}
