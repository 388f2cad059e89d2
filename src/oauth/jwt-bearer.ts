import { constants, sign, type KeyObject } from 'node:crypto';
import type { ServiceAccountKey } from './service-account-key.js';

/**
 * The JWT-bearer authorization grant (RFC 7523 §2.1) as Google's domain-wide
 * delegation uses it: the service account signs a JWT saying "I act for
 * `sub`", and the token endpoint answers with an access token for that one
 * mailbox. There is no refresh token; a fresh assertion buys each new access
 * token. Pure: the clock is a parameter, nothing here does I/O.
 *
 * Claims and header as Google documents them:
 * https://developers.google.com/identity/protocols/oauth2/service-account#authorizingrequests
 * (header {alg: RS256, typ: JWT, kid}; iss = client_email, sub = the user,
 * scope = space-delimited, aud = token_uri, iat, exp at most one hour later).
 */

export const JWT_BEARER_GRANT_TYPE = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
/** Google refuses assertions valid longer than an hour ("Token must be a short-lived token (60 minutes)"). */
export const MAX_ASSERTION_LIFETIME_S = 3600;

export type JwtAlg = 'RS256' | 'PS256';

/** base64url without padding (RFC 7515 §2), as every JWT segment is written. */
export function base64url(data: Buffer | string): string {
  return Buffer.from(data).toString('base64url');
}

/**
 * A compact JWS (RFC 7515 §7.1) over JSON header and claims. RS256 is
 * RSASSA-PKCS1-v1_5 with SHA-256, PS256 RSASSA-PSS with SHA-256, MGF1-SHA-256
 * and a 32-byte salt (RFC 7518 §3.3, §3.5).
 */
export function signJwt(header: Record<string, unknown>, claims: Record<string, unknown>, key: KeyObject, alg: JwtAlg = 'RS256'): string {
  const input = `${base64url(JSON.stringify({ ...header, alg }))}.${base64url(JSON.stringify(claims))}`;
  const signature =
    alg === 'PS256'
      ? sign('sha256', Buffer.from(input), { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 })
      : sign('sha256', Buffer.from(input), key);
  return `${input}.${base64url(signature)}`;
}

export interface JwtBearerOptions {
  /** The mailbox login the token is for (`sub`): the account's `user`, default its email. */
  subject: string;
  /** The credential's scopes; Google's mail scope is https://mail.google.com/. */
  scopes: readonly string[];
  /** Milliseconds since the epoch; tests pass a fixed clock. */
  now?: number;
  /** Seconds the assertion is valid, at most an hour. */
  lifetimeSeconds?: number;
}

export interface JwtBearerAssertion {
  /** The signed JWT: a bearer credential for its lifetime, never logged or stored. */
  assertion: string;
  issuedAt: number;
  expiresAt: number;
}

export function buildJwtBearerAssertion(key: ServiceAccountKey, opts: JwtBearerOptions): JwtBearerAssertion {
  const lifetime = opts.lifetimeSeconds ?? MAX_ASSERTION_LIFETIME_S;
  if (!(lifetime > 0 && lifetime <= MAX_ASSERTION_LIFETIME_S)) throw new RangeError(`assertion lifetime must be 1..${MAX_ASSERTION_LIFETIME_S} seconds`);
  if (!opts.subject) throw new TypeError('a JWT-bearer assertion needs the mailbox login as its subject');
  if (opts.scopes.length === 0) throw new TypeError('a JWT-bearer assertion needs at least one scope');
  const iat = Math.floor((opts.now ?? Date.now()) / 1000);
  const exp = iat + lifetime;
  const assertion = signJwt(
    { typ: 'JWT', kid: key.privateKeyId },
    { iss: key.clientEmail, sub: opts.subject, scope: opts.scopes.join(' '), aud: key.tokenUri, iat, exp },
    key.privateKey,
    'RS256',
  );
  return { assertion, issuedAt: iat * 1000, expiresAt: exp * 1000 };
}

/**
 * The token request body (RFC 7523 §2.1): form fields for POST
 * application/x-www-form-urlencoded to the key's token_uri. No client
 * authentication: the assertion is the credential.
 */
export function jwtBearerTokenRequest(key: ServiceAccountKey, opts: JwtBearerOptions): { url: string; body: Record<string, string> } {
  const { assertion } = buildJwtBearerAssertion(key, opts);
  return { url: key.tokenUri, body: { grant_type: JWT_BEARER_GRANT_TYPE, assertion } };
}
