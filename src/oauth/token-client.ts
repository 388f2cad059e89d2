import { parseRetryAfter } from '../runtime/backoff.js';
import { describeError, explainSystemError, MailgateError } from '../errors.js';
import type { ResolvedCredential } from './providers.js';

/**
 * The one module that talks to token endpoints (RFC 6749 §3.2, RFC 8628).
 * Every grant goes through `tokenRequest`, so retries, classification and
 * secrets-in-logs are handled in one place. It uses fetch rather than
 * simple-oauth2: that library has no device grant (RFC 8628) and does not
 * expose `Retry-After`, and two clients would mean two places that talk to
 * token endpoints.
 */

export const TOKEN_REQUEST_TIMEOUT_MS = 30_000;

export interface TokenResponse {
  accessToken: string;
  refreshToken: string | null;
  expiresIn: number | null;
  scope: string | null;
}

/** RFC 6749 §5.2 errors that no retry will fix: the grant or client is bad. */
const PERMANENT_ERRORS = new Set(['invalid_grant', 'invalid_client', 'unauthorized_client', 'unsupported_grant_type', 'invalid_scope']);
/** RFC 8628 §3.5: keep polling on these. */
const DEVICE_WAIT_ERRORS = new Set(['authorization_pending', 'slow_down']);

/**
 * A token endpoint's refusal or failure, under the catalogue:
 * OAUTH_GRANT_REJECTED (failure `auth`: the grant or the client is bad; no
 * retry will fix it), OAUTH_PENDING (device grant: keep polling) or
 * OAUTH_TRANSIENT (failure `transient`, `throttled` when the endpoint said
 * how long to wait).
 */
export class TokenEndpointError extends MailgateError {
  constructor(
    code: 'OAUTH_GRANT_REJECTED' | 'OAUTH_PENDING' | 'OAUTH_TRANSIENT',
    readonly oauthError: string | null,
    readonly description: string | null,
    readonly httpStatus: number | null,
    readonly retryAfterMs: number | null,
    options: { cause?: unknown; message?: string; systemCode?: string } = {},
  ) {
    super(
      code,
      options.message ??
        (oauthError
          ? `${oauthError}${description ? `: ${description}` : ''}`
          : `token endpoint failed${httpStatus ? ` with HTTP ${httpStatus}` : ''}${description ? `: ${description}` : ''}`),
      {
        ...(options.cause !== undefined ? { cause: options.cause } : {}),
        ...(options.systemCode ? { details: { systemCode: options.systemCode } } : {}),
        ...(code === 'OAUTH_TRANSIENT' && retryAfterMs !== null ? { failure: 'throttled' as const } : {}),
      },
    );
    this.name = 'TokenEndpointError';
    this.systemCode = options.systemCode ?? null;
  }

  /** Set when the endpoint never answered: the socket, DNS or TLS code (ECONNREFUSED, ENOTFOUND, …). */
  readonly systemCode: string | null;

  /** True when the endpoint never answered (nothing was refused: it could not be asked). */
  get unreachable(): boolean {
    return this.systemCode !== null || (this.httpStatus === null && this.oauthError === null);
  }
}

/** A token endpoint that could not be reached, in plain words (what happened, to what, what to check). */
export function unreachableEndpoint(what: string, endpoint: string, err: unknown): TokenEndpointError {
  const target = `${what} at ${new URL(endpoint).host}`;
  const plain = explainSystemError(err, target);
  const message = plain?.message ?? `Could not reach ${target}: ${describeError((err as { cause?: unknown }).cause ?? err)}. Check the endpoint URL and the network.`;
  return new TokenEndpointError('OAUTH_TRANSIENT', null, null, null, null, { cause: err, message, ...(plain ? { systemCode: plain.code } : {}) });
}

export async function tokenRequest(cred: ResolvedCredential, params: Record<string, string>): Promise<TokenResponse> {
  const body = new URLSearchParams(params);
  const headers: Record<string, string> = { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json' };
  // client_secret_post works with Google, Microsoft and most custom servers.
  body.set('client_id', cred.clientId);
  if (cred.clientSecret) body.set('client_secret', cred.clientSecret);
  let res: Response;
  try {
    // redirect: 'manual': a redirect would re-send the client secret and the
    // refresh token to wherever the Location points (fetch re-POSTs on 307/308).
    res = await fetch(cred.tokenEndpoint, { method: 'POST', headers, body, redirect: 'manual', signal: AbortSignal.timeout(TOKEN_REQUEST_TIMEOUT_MS) });
  } catch (err) {
    throw unreachableEndpoint('the token endpoint', cred.tokenEndpoint, err);
  }
  if (res.status >= 300 && res.status < 400) {
    await res.body?.cancel();
    throw new TokenEndpointError('OAUTH_TRANSIENT', null, redirectRefused(cred.tokenEndpoint, res), res.status, null);
  }
  const text = await res.text();
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    // not JSON: classified by status below
  }
  if (res.ok && typeof json.access_token === 'string') {
    return {
      accessToken: json.access_token,
      refreshToken: typeof json.refresh_token === 'string' ? json.refresh_token : null,
      expiresIn: typeof json.expires_in === 'number' ? json.expires_in : typeof json.expires_in === 'string' ? Number(json.expires_in) : null,
      scope: typeof json.scope === 'string' ? json.scope : null,
    };
  }
  const error = typeof json.error === 'string' ? json.error : null;
  const description = typeof json.error_description === 'string' ? json.error_description.split('\r\n')[0] ?? null : null;
  const retryAfter = parseRetryAfter(res.headers.get('retry-after'));
  if (error && DEVICE_WAIT_ERRORS.has(error)) throw new TokenEndpointError('OAUTH_PENDING', error, description, res.status, retryAfter);
  if (error && PERMANENT_ERRORS.has(error)) throw new TokenEndpointError('OAUTH_GRANT_REJECTED', error, description, res.status, null);
  if (res.status === 401 && !error) throw new TokenEndpointError('OAUTH_GRANT_REJECTED', 'invalid_client', 'HTTP 401', res.status, null);
  throw new TokenEndpointError('OAUTH_TRANSIENT', error, description ?? (res.ok ? 'answer had no access_token' : null), res.status, retryAfter);
}

/** What an admin reads when a token endpoint redirects: mailgate never follows it with a secret. */
export function redirectRefused(endpoint: string, res: Response): string {
  const location = res.headers.get('location');
  return `${new URL(endpoint).host} answered HTTP ${res.status} with a redirect${location ? ` to ${location}` : ''}; mailgate does not send the client secret or tokens on to another address: set the endpoint to the final URL`;
}
