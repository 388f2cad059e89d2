import { createHash, randomBytes } from 'node:crypto';
import { MailgateError } from '../errors.js';
import type { Store } from '../store/store.js';
import { PROVIDER_ERROR_TABLE } from './provider-errors.js';
import { clientAuthentication, redirectRefused, requestToken, TOKEN_REQUEST_TIMEOUT_MS, TokenEndpointError, unreachableEndpoint } from './token-client.js';
import type { TokenService } from './token-service.js';

/** An authorization request is valid this long (one consent screen). */
export const STATE_TTL_MS = 10 * 60_000;
/** RFC 8628 §3.5: slow_down adds this to the polling interval. */
const SLOW_DOWN_STEP_S = 5;

/** Google's device flow allows a short list of scopes; the Gmail scope is not among them. */
const GOOGLE_DEVICE_REFUSED_SCOPES = new Set(['https://mail.google.com/']);
const GOOGLE_DEVICE_WORDS = PROVIDER_ERROR_TABLE.find((e) => e.id === 'google.device.scope')?.words ?? "Google's device flow does not allow the Gmail scope https://mail.google.com/.";

export function redirectUriFor(publicUrl: string): string {
  return `${publicUrl}/oauth2/callback`;
}

/** RFC 7636: 32 random bytes → 43-char verifier; S256 challenge. */
export function pkcePair(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

export class OAuthFlows {
  constructor(
    private readonly deps: {
      store: Store;
      tokens: TokenService;
      publicUrl: () => string;
      now?: () => number;
      /** Told after tokens for an account were stored by a flow (connectors waiting for them restart). */
      onAuthorized?: (account: string) => void;
    },
  ) {}

  #now(): number {
    return this.deps.now?.() ?? Date.now();
  }

  async #credentialFor(account: string) {
    const acc = this.deps.tokens.account(account);
    const name = this.deps.tokens.credentialNameOf(acc);
    if (!name) throw new MailgateError('CONFLICT', `account ${account} logs in with a password; nothing to authorize`);
    const cred = await this.deps.tokens.resolveCredential(name);
    if (cred.grant === 'client_credentials') {
      throw new MailgateError('CONFLICT', `account ${account} uses app-only (client_credentials) tokens; nothing to authorize`);
    }
    if (cred.grant === 'service_account') {
      throw new MailgateError('CONFLICT', `account ${account} uses a Google service account (domain-wide delegation); nothing to authorize: mailgate signs its own assertions (mailgate setup google-service-account shows the delegation to grant)`);
    }
    return { acc, cred };
  }

  /** Builds the provider URL for the consent screen; the state is single-use and expires. */
  async startAuthorization(account: string): Promise<{ authorizationUrl: string; state: string; expiresAt: number }> {
    const { acc, cred } = await this.#credentialFor(account);
    if (!cred.authorizationEndpoint) throw new MailgateError('CONFLICT', `credential ${cred.name} has no authorizationEndpoint`);
    const state = randomBytes(24).toString('base64url');
    const { verifier, challenge } = pkcePair();
    const redirectUri = redirectUriFor(this.deps.publicUrl());
    const now = this.#now();
    await this.deps.store.oauthStates.create({
      state,
      account,
      credential: cred.name,
      codeVerifier: verifier,
      redirectUri,
      createdAt: now,
      expiresAt: now + STATE_TTL_MS,
    });
    const url = new URL(cred.authorizationEndpoint);
    const params: Record<string, string> = {
      response_type: 'code',
      client_id: cred.clientId,
      redirect_uri: redirectUri,
      scope: cred.scopes.join(' '),
      state,
      code_challenge: challenge,
      code_challenge_method: 'S256',
      login_hint: acc.incoming.user,
      ...cred.authorizationParams,
    };
    for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
    return { authorizationUrl: url.toString(), state, expiresAt: now + STATE_TTL_MS };
  }

  /** The provider redirected back: check the state, exchange the code, store the tokens. */
  async completeAuthorization(query: Record<string, string | undefined>): Promise<{ account: string }> {
    if (!query.state) throw new MailgateError('OAUTH_STATE_INVALID', 'the callback has no state parameter');
    const consumed = await this.deps.store.oauthStates.consume(query.state, this.#now());
    if (!consumed.ok) {
      const why = { unknown: 'unknown', used: 'already used', expired: 'expired' }[consumed.reason];
      throw new MailgateError('OAUTH_STATE_INVALID', `the authorization state is ${why}; start the authorization again`);
    }
    const { account, credential, codeVerifier, redirectUri } = consumed.record;
    if (query.error) {
      throw new MailgateError('BAD_REQUEST', `the provider refused: ${query.error}${query.error_description ? ` (${query.error_description})` : ''}`, {
        details: { account },
      });
    }
    if (!query.code) throw new MailgateError('BAD_REQUEST', 'the callback has no code parameter', { details: { account } });
    const cred = await this.deps.tokens.resolveCredential(credential);
    try {
      const res = await requestToken(cred, { grant: 'authorization_code', code: query.code, redirectUri, codeVerifier });
      if (!res.refreshToken) {
        throw new MailgateError('BAD_REQUEST', 'the provider returned no refresh token (Google: prompt=consent/access_type=offline; Microsoft: offline_access scope)');
      }
      await this.deps.tokens.save(account, credential, res, null);
      this.deps.onAuthorized?.(account);
    } catch (err) {
      if (err instanceof TokenEndpointError) {
        throw new MailgateError('BAD_REQUEST', `the code exchange failed: ${err.message}`, { cause: err, details: { account } });
      }
      throw err;
    }
    return { account };
  }

  /** RFC 8628 device grant: shows a code, polls until the user approved it. */
  async deviceAuthorization(
    account: string,
    onCode: (info: { userCode: string; verificationUri: string; verificationUriComplete: string | null; expiresIn: number }) => void,
    opts: { sleep?: (ms: number) => Promise<void>; signal?: AbortSignal } = {},
  ): Promise<void> {
    const { cred } = await this.#credentialFor(account);
    if (cred.provider === 'google' && cred.scopes.some((sc) => GOOGLE_DEVICE_REFUSED_SCOPES.has(sc))) {
      // Google's device flow has an allow-list of scopes without the Gmail one: say so instead of failing at Google.
      throw new MailgateError('CONFLICT', `${GOOGLE_DEVICE_WORDS} (account ${account}, credential ${cred.name})`);
    }
    if (!cred.deviceAuthorizationEndpoint) {
      throw new MailgateError('CONFLICT', `credential ${cred.name} has no deviceAuthorizationEndpoint`);
    }
    const body = new URLSearchParams({ scope: cred.scopes.join(' '), ...clientAuthentication(cred) });
    // No redirects: the body carries the client secret (see token-client.ts).
    let r: Response;
    try {
      r = await fetch(cred.deviceAuthorizationEndpoint, {
        method: 'POST',
        body,
        headers: { Accept: 'application/json' },
        redirect: 'manual',
        signal: AbortSignal.timeout(TOKEN_REQUEST_TIMEOUT_MS),
      });
    } catch (err) {
      throw unreachableEndpoint('the device authorization endpoint', cred.deviceAuthorizationEndpoint, err);
    }
    if (r.status >= 300 && r.status < 400) {
      await r.body?.cancel();
      throw new MailgateError('BAD_REQUEST', `device authorization failed: ${redirectRefused(cred.deviceAuthorizationEndpoint, r.status, r.headers.get('location'))}`);
    }
    const j = (await r.json().catch(() => ({}))) as Record<string, unknown>;
    if (!r.ok || typeof j.device_code !== 'string') {
      throw new MailgateError('BAD_REQUEST', `device authorization failed: HTTP ${r.status} ${String(j.error ?? '')}`);
    }
    const deviceCode = j.device_code;
    let interval = typeof j.interval === 'number' ? j.interval : 5;
    const expiresIn = typeof j.expires_in === 'number' ? j.expires_in : 900;
    onCode({
      userCode: String(j.user_code),
      verificationUri: String(j.verification_uri ?? j.verification_url),
      verificationUriComplete: typeof j.verification_uri_complete === 'string' ? j.verification_uri_complete : null,
      expiresIn,
    });
    const deadline = this.#now() + expiresIn * 1000;
    const wait = opts.sleep ?? ((ms: number) => new Promise<void>((res) => setTimeout(res, ms)));
    while (this.#now() < deadline) {
      if (opts.signal?.aborted) throw new MailgateError('BAD_REQUEST', 'device authorization cancelled');
      await wait(interval * 1000);
      try {
        const res = await requestToken(cred, { grant: 'device_code', deviceCode });
        await this.deps.tokens.save(account, cred.name, res, null);
        this.deps.onAuthorized?.(account);
        return;
      } catch (err) {
        if (!(err instanceof TokenEndpointError)) throw err;
        if (err.code === 'OAUTH_PENDING') {
          if (err.oauthError === 'slow_down') interval += SLOW_DOWN_STEP_S;
          continue;
        }
        if (err.failure !== 'auth') continue;
        throw new MailgateError('BAD_REQUEST', `device authorization failed: ${err.message}${err.classification ? ` (${err.classification.words})` : ''}`, { cause: err });
      }
    }
    throw new MailgateError('BAD_REQUEST', 'the device code expired before it was approved');
  }

  /** Adopts a refresh token obtained elsewhere, proving it with one refresh. */
  async importRefreshToken(account: string, refreshToken: string): Promise<void> {
    const { cred } = await this.#credentialFor(account);
    try {
      const res = await requestToken(cred, { grant: 'refresh_token', refreshToken });
      await this.deps.tokens.save(account, cred.name, { ...res, refreshToken: res.refreshToken ?? refreshToken }, null);
      this.deps.onAuthorized?.(account);
    } catch (err) {
      if (err instanceof TokenEndpointError && err.code === 'OAUTH_GRANT_REJECTED') {
        throw new MailgateError('BAD_REQUEST', `the provider refused the refresh token: ${err.message}`, { cause: err });
      }
      if (err instanceof TokenEndpointError) {
        // Never "refused": the provider did not judge the token (it could not be reached, or failed).
        const why = err.unreachable ? err.message : `The provider could not check the refresh token (${err.message}); try again later.`;
        throw new MailgateError('OAUTH_TRANSIENT', `${why} Nothing was stored.`, { cause: err, ...(err.systemCode ? { details: { systemCode: err.systemCode } } : {}) });
      }
      throw err;
    }
  }
}
