import type { IncomingHttpHeaders } from 'node:http';
import { AuthorizationCode, ClientCredentials, type ModuleOptions } from 'simple-oauth2';
import { parseRetryAfter } from '../runtime/backoff.js';
import { describeError, explainSystemError, MailgateError } from '../errors.js';
import { CLIENT_ASSERTION_TYPE, buildClientAssertion } from './client-assertion.js';
import { buildJwtBearerAssertion, JWT_BEARER_GRANT_TYPE } from './jwt-bearer.js';
import { classifyTokenError, RETRY_SLOWLY_MS, type TokenErrorClass, type TokenGrant } from './provider-errors.js';
import type { ResolvedCredential } from './providers.js';

/**
 * The one module that talks to token endpoints (RFC 6749 §3.2, RFC 8628,
 * RFC 7523). Every grant goes through `requestToken`, so client
 * authentication, classification and secrets-in-logs are handled in one
 * place:
 * - authorization code (with PKCE), refresh and client credentials go
 *   through simple-oauth2 (its errors keep the response, so `Retry-After`
 *   and the provider's error body are read from them);
 * - the device grant (RFC 8628, which simple-oauth2 does not have), the
 *   JWT-bearer grant of Google service accounts (RFC 7523 §2.1) and requests
 *   of public clients (no secret: simple-oauth2 always sends a
 *   `client_secret`, even an empty one) are a plain form POST beside it.
 * Either way the answer is read by one function and classified by the one
 * provider error table (./provider-errors.ts).
 *
 * Client authentication: `client_secret_post`, or with a certificate
 * (`clientAssertion`) a fresh signed client assertion per request
 * (RFC 7523 §2.2, Entra's certificate credentials). Neither secret,
 * assertion nor token is ever put in a message or a log line.
 */

export const TOKEN_REQUEST_TIMEOUT_MS = 30_000;

export interface TokenResponse {
  accessToken: string;
  refreshToken: string | null;
  expiresIn: number | null;
  scope: string | null;
}

export type GrantRequest =
  | { grant: 'authorization_code'; code: string; redirectUri: string; codeVerifier: string }
  | { grant: 'refresh_token'; refreshToken: string }
  | { grant: 'client_credentials' }
  | { grant: 'device_code'; deviceCode: string }
  /** Google service account: a new assertion for `subject` (the mailbox login) each time. */
  | { grant: 'jwt_bearer'; subject: string };

/** What the classification needs besides the response (the words name the mailbox; the Testing-app evidence). */
export interface RequestContext {
  subject?: string;
  refreshTokenIssuedAt?: number | null;
  now?: number;
}

/** RFC 8628 §3.5: keep polling on these. */
const DEVICE_WAIT_ERRORS = new Set(['authorization_pending', 'slow_down']);

/**
 * A token endpoint's refusal or failure, under the catalogue:
 * OAUTH_GRANT_REJECTED (failure `auth`: the grant is dead (`action`
 * reauth) or the credential's settings are wrong (`fix_config`)),
 * OAUTH_PENDING (device grant: keep polling) or OAUTH_TRANSIENT (failure
 * `transient`, `throttled` when the endpoint said how long to wait or the
 * table says to retry slowly). `classification` is the provider error
 * table's entry: the decision and the plain words.
 */
export class TokenEndpointError extends MailgateError {
  constructor(
    code: 'OAUTH_GRANT_REJECTED' | 'OAUTH_PENDING' | 'OAUTH_TRANSIENT',
    readonly oauthError: string | null,
    readonly description: string | null,
    readonly httpStatus: number | null,
    readonly retryAfterMs: number | null,
    options: { cause?: unknown; classification?: TokenErrorClass; message?: string; systemCode?: string } = {},
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
    this.classification = options.classification ?? null;
    this.systemCode = options.systemCode ?? null;
  }

  /** Set when the endpoint never answered: the socket, DNS or TLS code (ECONNREFUSED, ENOTFOUND, …). */
  readonly systemCode: string | null;

  /** True when the endpoint never answered (nothing was refused: it could not be asked). */
  get unreachable(): boolean {
    return this.systemCode !== null || (this.httpStatus === null && this.oauthError === null);
  }

  readonly classification: TokenErrorClass | null;

  /** The table's words, or the message when there is no entry. */
  get words(): string {
    return this.classification?.words ?? this.message;
  }
}

/** One token request. Throws TokenEndpointError for anything but a token. */
export async function requestToken(cred: ResolvedCredential, req: GrantRequest, ctx: RequestContext = {}): Promise<TokenResponse> {
  const answer = await send(cred, req, ctx);
  return readAnswer(cred, req, ctx, answer);
}

/** What came back, whichever client sent it. */
type Answer =
  | { kind: 'response'; status: number; headers: { get(name: string): string | null }; body: unknown }
  | { kind: 'redirect'; status: number; location: string | null }
  | { kind: 'unreachable'; cause: unknown };

type SimpleOAuth2Grant = Exclude<GrantRequest, { grant: 'device_code' | 'jwt_bearer' }>;

function usesSimpleOAuth2(cred: ResolvedCredential, req: GrantRequest): req is SimpleOAuth2Grant {
  if (req.grant === 'device_code' || req.grant === 'jwt_bearer') return false;
  return Boolean(cred.clientSecret) || cred.clientCertificate !== undefined;
}

async function send(cred: ResolvedCredential, req: GrantRequest, ctx: RequestContext): Promise<Answer> {
  if (usesSimpleOAuth2(cred, req)) return sendWithSimpleOAuth2(cred, req);
  const body = new URLSearchParams(formFor(cred, req, ctx));
  try {
    // redirect: 'manual': a redirect would re-send the client secret and the
    // refresh token to wherever the Location points (fetch re-POSTs on 307/308).
    const res = await fetch(cred.tokenEndpoint, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json' },
      body,
      redirect: 'manual',
      signal: AbortSignal.timeout(TOKEN_REQUEST_TIMEOUT_MS),
    });
    if (res.status >= 300 && res.status < 400) {
      await res.body?.cancel();
      return { kind: 'redirect', status: res.status, location: res.headers.get('location') };
    }
    const text = await res.text();
    let json: unknown = null;
    try {
      json = JSON.parse(text);
    } catch {
      // not JSON: classified by status
    }
    return { kind: 'response', status: res.status, headers: res.headers, body: json };
  } catch (err) {
    return { kind: 'unreachable', cause: (err as { cause?: unknown }).cause ?? err };
  }
}

/** The form of the requests simple-oauth2 does not send. */
function formFor(cred: ResolvedCredential, req: GrantRequest, ctx: RequestContext): Record<string, string> {
  if (req.grant === 'jwt_bearer') {
    const key = cred.serviceAccountKey;
    if (!key) throw new MailgateError('CONFIG_INVALID', `credential ${cred.name} has no service-account key`);
    // No client authentication (RFC 7523 §2.1): the assertion is the credential.
    const { assertion } = buildJwtBearerAssertion(key, { subject: req.subject, scopes: cred.scopes, ...(ctx.now !== undefined ? { now: ctx.now } : {}) });
    return { grant_type: JWT_BEARER_GRANT_TYPE, assertion };
  }
  const form: Record<string, string> =
    req.grant === 'device_code'
      ? { grant_type: 'urn:ietf:params:oauth:grant-type:device_code', device_code: req.deviceCode }
      : req.grant === 'refresh_token'
        ? { grant_type: 'refresh_token', refresh_token: req.refreshToken }
        : req.grant === 'authorization_code'
          ? { grant_type: 'authorization_code', code: req.code, redirect_uri: req.redirectUri, code_verifier: req.codeVerifier }
          : { grant_type: 'client_credentials', scope: cred.scopes.join(' ') };
  return { ...form, ...clientAuthentication(cred) };
}

/** client_secret_post (works with Google, Microsoft and most servers), or a fresh client assertion. */
export function clientAuthentication(cred: ResolvedCredential): Record<string, string> {
  if (cred.clientCertificate) {
    return {
      client_id: cred.clientId,
      client_assertion_type: CLIENT_ASSERTION_TYPE,
      client_assertion: buildClientAssertion(cred.clientCertificate, { clientId: cred.clientId, tokenEndpoint: cred.tokenEndpoint, alg: cred.clientAssertionAlg ?? 'PS256' }),
    };
  }
  return { client_id: cred.clientId, ...(cred.clientSecret ? { client_secret: cred.clientSecret } : {}) };
}

interface Boomish {
  isBoom?: boolean;
  output?: { statusCode?: number };
  data?: { isResponseError?: boolean; headers?: IncomingHttpHeaders; payload?: unknown; redirect?: { status: number; location: string | null } } | Error | null;
}

/**
 * simple-oauth2 (on @hapi/wreck): body authentication; with a certificate
 * the client "secret" is the fresh assertion, sent as `client_assertion`
 * next to its `client_assertion_type`. Redirects are never followed: wreck
 * asks `beforeRedirect`, which refuses (the secret would travel on).
 */
async function sendWithSimpleOAuth2(cred: ResolvedCredential, req: SimpleOAuth2Grant): Promise<Answer> {
  const url = new URL(cred.tokenEndpoint);
  const auth = clientAuthentication(cred);
  const assertion = auth.client_assertion;
  const extra: Record<string, string> = assertion ? { client_assertion_type: CLIENT_ASSERTION_TYPE } : {};
  let redirect: { status: number; location: string | null } | null = null;
  const config: ModuleOptions = {
    client: assertion ? { id: cred.clientId, secret: assertion, secretParamName: 'client_assertion' } : { id: cred.clientId, secret: cred.clientSecret ?? '' },
    auth: { tokenHost: url.origin, tokenPath: `${url.pathname}${url.search}` },
    options: { authorizationMethod: 'body', bodyFormat: 'form' },
    http: {
      json: true,
      timeout: TOKEN_REQUEST_TIMEOUT_MS,
      redirects: 1,
      headers: { Accept: 'application/json' },
      beforeRedirect: (_method: string, status: number, location: string, _headers: unknown, _options: unknown, next: (err?: Error) => void) => {
        redirect = { status, location };
        next(new Error('redirect refused'));
      },
    },
  };
  try {
    let token: Record<string, unknown>;
    if (req.grant === 'client_credentials') {
      token = (await new ClientCredentials(config).getToken({ scope: cred.scopes, ...extra })).token;
    } else if (req.grant === 'authorization_code') {
      token = (await new AuthorizationCode(config).getToken({ code: req.code, redirect_uri: req.redirectUri, code_verifier: req.codeVerifier, ...extra } as never)).token;
    } else {
      const client = new AuthorizationCode(config);
      token = (await client.createToken({ refresh_token: req.refreshToken }).refresh(extra)).token;
    }
    return { kind: 'response', status: 200, headers: { get: () => null }, body: token };
  } catch (err) {
    if (redirect) return { kind: 'redirect', ...(redirect as { status: number; location: string | null }) };
    const b = err as Boomish;
    const data = b.data && !(b.data instanceof Error) ? b.data : null;
    if (b.isBoom && data?.isResponseError) {
      const headers = data.headers ?? {};
      const payload = Buffer.isBuffer(data.payload) ? safeJson(data.payload.toString('utf8')) : data.payload;
      return {
        kind: 'response',
        status: b.output?.statusCode ?? 500,
        headers: { get: (name) => { const v = headers[name.toLowerCase()]; return Array.isArray(v) ? (v[0] ?? null) : (v ?? null); } },
        body: payload ?? null,
      };
    }
    // A timeout, a refused connection, a 2xx that is not JSON: wreck's Boom wraps the cause in data.
    return { kind: 'unreachable', cause: b.data instanceof Error ? b.data : err };
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

const GRANT_NAMES: Record<GrantRequest['grant'], TokenGrant> = {
  authorization_code: 'authorization_code',
  refresh_token: 'refresh_token',
  client_credentials: 'client_credentials',
  device_code: 'device_code',
  jwt_bearer: 'jwt_bearer',
};

function readAnswer(cred: ResolvedCredential, req: GrantRequest, ctx: RequestContext, answer: Answer): TokenResponse {
  if (answer.kind === 'unreachable') {
    throw unreachableEndpoint('the token endpoint', cred.tokenEndpoint, answer.cause);
  }
  if (answer.kind === 'redirect') {
    throw new TokenEndpointError('OAUTH_TRANSIENT', null, redirectRefused(cred.tokenEndpoint, answer.status, answer.location), answer.status, null);
  }
  const json = answer.body !== null && typeof answer.body === 'object' && !Array.isArray(answer.body) ? (answer.body as Record<string, unknown>) : {};
  const ok = answer.status >= 200 && answer.status < 300;
  if (ok && typeof json.access_token === 'string') {
    return {
      accessToken: json.access_token,
      refreshToken: typeof json.refresh_token === 'string' ? json.refresh_token : null,
      expiresIn: typeof json.expires_in === 'number' ? json.expires_in : typeof json.expires_in === 'string' ? Number(json.expires_in) : null,
      scope: typeof json.scope === 'string' ? json.scope : null,
    };
  }
  const error = typeof json.error === 'string' ? json.error : null;
  const description = typeof json.error_description === 'string' ? (json.error_description.split(/\r?\n/)[0] ?? null) : null;
  const retryAfter = parseRetryAfter(answer.headers.get('retry-after'));
  if (error && DEVICE_WAIT_ERRORS.has(error)) throw new TokenEndpointError('OAUTH_PENDING', error, description, answer.status, retryAfter);
  if (ok && !error) {
    throw new TokenEndpointError('OAUTH_TRANSIENT', null, 'answer had no access_token', answer.status, null);
  }
  const errorCodes = Array.isArray(json.error_codes) ? json.error_codes.filter((n): n is number => typeof n === 'number') : null;
  const c = classifyTokenError({
    status: answer.status,
    error,
    error_description: description,
    error_codes: errorCodes,
    provider: cred.provider,
    grant: GRANT_NAMES[req.grant],
    clientId: cred.serviceAccountKey?.clientId ?? cred.clientId,
    scopes: cred.scopes,
    ...(ctx.subject !== undefined ? { subject: ctx.subject } : {}),
    refreshTokenIssuedAt: ctx.refreshTokenIssuedAt ?? null,
    testingApp: cred.testingApp,
    ...(ctx.now !== undefined ? { now: ctx.now } : {}),
  });
  // The status decides where no error code says otherwise (HTTP 401 with no body: the client is refused).
  const statusOnly = !error && answer.status === 401 ? { oauthError: 'invalid_client', description: 'HTTP 401' } : null;
  const oauthError = statusOnly?.oauthError ?? error;
  const desc = statusOnly?.description ?? description;
  switch (c.action) {
    case 'reauth':
    case 'fix_config':
      throw new TokenEndpointError('OAUTH_GRANT_REJECTED', oauthError, desc, answer.status, null, { classification: c });
    case 'retry_slowly':
      throw new TokenEndpointError('OAUTH_TRANSIENT', oauthError, desc, answer.status, Math.max(retryAfter ?? 0, c.retryAfterMs ?? RETRY_SLOWLY_MS), { classification: c });
    case 'retry':
      throw new TokenEndpointError('OAUTH_TRANSIENT', oauthError, desc, answer.status, retryAfter, { classification: c });
  }
}

/** What an admin reads when a token endpoint redirects: mailgate never follows it with a secret. */
export function redirectRefused(endpoint: string, status: number, location: string | null): string {
  return `${new URL(endpoint).host} answered HTTP ${status} with a redirect${location ? ` to ${location}` : ''}; mailgate does not send the client secret or tokens on to another address: set the endpoint to the final URL`;
}

/** A token endpoint that could not be reached, in plain words (what happened, to what, what to check). */
export function unreachableEndpoint(what: string, endpoint: string, err: unknown): TokenEndpointError {
  const target = `${what} at ${new URL(endpoint).host}`;
  const plain = explainSystemError(err, target);
  const message = plain?.message ?? `Could not reach ${target}: ${describeError((err as { cause?: unknown }).cause ?? err)}. Check the endpoint URL and the network.`;
  return new TokenEndpointError('OAUTH_TRANSIENT', null, null, null, null, { cause: err, message, ...(plain ? { systemCode: plain.code } : {}) });
}
