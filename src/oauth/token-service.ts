import type { AccountConfig, Config, CredentialConfig } from '../config/types.js';
import { computeBackoff } from '../runtime/backoff.js';
import type { EventSink } from '../delivery/events.js';
import { MailgateError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { TokenRecord } from '../store/oauth.js';
import type { Store } from '../store/store.js';
import { resolveCredential, type ResolvedCredential } from './providers.js';
import { TokenEndpointError, tokenRequest, type TokenResponse } from './token-client.js';
import type { AccessToken, TokenProvider } from './token-provider.js';
import { tokenTiming } from './token-timing.js';

/** Transient failures are retried within one request this many times. */
const TRANSIENT_TRIES = 3;
const TRANSIENT_BACKOFF = { initialMs: 500, maxMs: 10_000 };
/**
 * Known refresh-token cliffs: Microsoft expires refresh tokens unused for 90
 * days; Google expires them after 7 days for apps in "Testing" status.
 */
export const MICROSOFT_IDLE_CLIFF_MS = 90 * 86_400_000;
export const GOOGLE_TESTING_CLIFF_MS = 7 * 86_400_000;

export type TokenStateView = 'ok' | 'expiring' | 'reauth_required' | 'missing';

export interface TokenStatus {
  state: TokenStateView;
  expiresAt: string | null;
  lastRefreshAt: string | null;
  refreshTokenIssuedAt: string | null;
  lastError: string | null;
  /** Set when the refresh token nears a known provider cliff (an addition to the contract). */
  warning?: string | null;
}

/** Warn this far before a cliff (fraction of it). */
const CLIFF_WARNING_FRACTION = 0.8;

/**
 * Refresh-token cliffs that admins trip over: Google expires refresh tokens of
 * apps in "Testing" status 7 days after issue (rotation does not reset it);
 * Microsoft expires a refresh token unused for 90 days.
 */
export function cliffWarning(provider: string, issuedAt: number | null, lastRefreshAt: number | null, now: number): string | null {
  if (provider === 'google' && issuedAt !== null && now - issuedAt >= GOOGLE_TESTING_CLIFF_MS * CLIFF_WARNING_FRACTION) {
    const days = ((now - issuedAt) / 86_400_000).toFixed(1);
    return `refresh token is ${days} days old; Google expires it after 7 days if the OAuth app is in "Testing" status (publish the app or authorize again)`;
  }
  if (provider.startsWith('microsoft') && lastRefreshAt !== null && now - lastRefreshAt >= MICROSOFT_IDLE_CLIFF_MS * CLIFF_WARNING_FRACTION) {
    const days = ((now - lastRefreshAt) / 86_400_000).toFixed(0);
    return `refresh token unused for ${days} days; Microsoft expires it after 90 days without use`;
  }
  return null;
}

export interface TokenServiceDeps {
  store: Store;
  config: () => Config;
  logger: Logger;
  metrics: Metrics;
  events: EventSink;
  sleep?: (ms: number) => Promise<void>;
  /**
   * Several replicas: this node's name. A refresh then takes the token row
   * first (TokenRepo.takeForRefresh), so one node refreshes a token at a
   * time and the others use its result. Unset: one node.
   */
  node?: string;
}

/** How long one node may hold a token row for a refresh (its tries and their backoff fit in it). */
export const REFRESH_HOLD_MS = 60_000;
/** A node waiting for another's refresh looks at the row this often, at most this long. */
const HOLD_POLL_MS = 200;
const HOLD_WAIT_MS = REFRESH_HOLD_MS + 10_000;

/**
 * The one source of access tokens. Reuses a valid cached token, runs at most
 * one refresh per account at a time (concurrent callers share it), persists a
 * rotated refresh token together with the new access token, and marks the
 * account reauth_required when the provider rejects the grant.
 */
export class TokenService implements TokenProvider {
  readonly #deps: TokenServiceDeps;
  readonly #inFlight = new Map<string, Promise<AccessToken>>();

  constructor(deps: TokenServiceDeps) {
    this.#deps = deps;
  }

  /** The credential an account's OAuth2 logins use (incoming first, else outgoing). */
  credentialNameOf(account: AccountConfig): string | null {
    for (const auth of [account.incoming.auth, account.outgoing?.auth]) {
      if (auth && auth.method !== 'password') return auth.credential;
    }
    return null;
  }

  async resolveCredential(name: string): Promise<ResolvedCredential> {
    const fromConfig = this.#deps.config().credentials.find((c) => c.name === name);
    if (fromConfig) return resolveCredential(fromConfig, 'config');
    const stored = await this.#deps.store.credentials.get(name);
    if (!stored) throw new MailgateError('NOT_FOUND', `credential ${name} is not defined`);
    const s = stored.settings as Partial<CredentialConfig>;
    return resolveCredential(
      {
        name: stored.name,
        provider: stored.provider as CredentialConfig['provider'],
        clientId: stored.clientId,
        clientSecret: stored.clientSecret ?? undefined,
        authorizationEndpoint: s.authorizationEndpoint,
        tokenEndpoint: s.tokenEndpoint,
        deviceAuthorizationEndpoint: s.deviceAuthorizationEndpoint,
        scopes: s.scopes,
        tenant: s.tenant ?? 'common',
        grant: s.grant ?? 'authorization_code',
      },
      'database',
    );
  }

  account(name: string): AccountConfig {
    const a = this.#deps.config().accounts.find((x) => x.name === name);
    if (!a) throw new MailgateError('NOT_FOUND', `no account ${name}`);
    return a;
  }

  async getAccessToken(account: string, opts: { rejectedToken?: string } = {}): Promise<AccessToken> {
    const rec = await this.#deps.store.tokens.get(account);
    if (rec?.state === 'reauth_required') {
      throw new MailgateError('OAUTH_REAUTH_REQUIRED', `account ${account} must be authorized again: ${rec.lastError ?? 'refresh token rejected'}`);
    }
    if (rec?.accessToken && rec.accessToken !== opts.rejectedToken && this.#usable(rec)) {
      return { token: rec.accessToken, expiresAt: rec.accessExpiresAt };
    }
    return this.#singleFlight(account, () => this.#refresh(account, opts.rejectedToken, false));
  }

  /** A cached access token may be handed out until it is about to expire. */
  #usable(rec: TokenRecord): boolean {
    return tokenTiming(rec, this.#deps.config().tokens.refreshBeforeMs, Date.now()) !== 'expired';
  }

  /** Refreshes now, even if the cached token is still valid (the scheduler's call). */
  refresh(account: string): Promise<AccessToken> {
    return this.#singleFlight(account, () => this.#refresh(account, undefined, true));
  }

  /** Concurrent callers for one account share one token request. */
  #singleFlight(account: string, run: () => Promise<AccessToken>): Promise<AccessToken> {
    const running = this.#inFlight.get(account);
    if (running) return running;
    const p = run().finally(() => this.#inFlight.delete(account));
    this.#inFlight.set(account, p);
    return p;
  }

  async #refresh(account: string, rejected: string | undefined, force: boolean): Promise<AccessToken> {
    const acc = this.account(account);
    const credName = this.credentialNameOf(acc);
    if (!credName) throw new MailgateError('BAD_REQUEST', `account ${account} does not use OAuth2`);
    const cred = await this.resolveCredential(credName);
    const node = this.#deps.node;
    if (node) return this.#refreshHeld(account, cred, rejected, force, node);
    return this.#refreshNow(account, cred, rejected, force, await this.#deps.store.tokens.get(account));
  }

  /**
   * Across replicas: take the token row, look again (another node may just
   * have refreshed it; then its token is used, even for a scheduled
   * refresh), refresh, let go. While another node holds it, wait for its result.
   */
  async #refreshHeld(account: string, cred: ResolvedCredential, rejected: string | undefined, force: boolean, node: string): Promise<AccessToken> {
    const { store } = this.#deps;
    const deadline = Date.now() + HOLD_WAIT_MS;
    const fresh = (rec: TokenRecord | null): rec is TokenRecord & { accessToken: string } =>
      !!rec?.accessToken &&
      rec.accessToken !== rejected &&
      (force ? tokenTiming(rec, this.#deps.config().tokens.refreshBeforeMs, Date.now()) === 'fresh' : this.#usable(rec));
    for (;;) {
      const taken = await store.tokens.takeForRefresh(account, node, Date.now(), REFRESH_HOLD_MS);
      if (taken.held) {
        try {
          if (fresh(taken.record)) return { token: taken.record.accessToken, expiresAt: taken.record.accessExpiresAt };
          return await this.#refreshNow(account, cred, rejected, true, taken.record);
        } finally {
          await store.tokens.releaseRefresh(account, node).catch(() => undefined);
        }
      }
      await (this.#deps.sleep ?? sleep)(HOLD_POLL_MS);
      const rec = await store.tokens.get(account);
      if (rec?.state === 'reauth_required') {
        throw new MailgateError('OAUTH_REAUTH_REQUIRED', `account ${account} must be authorized again: ${rec.lastError ?? 'refresh token rejected'}`);
      }
      if (fresh(rec)) return { token: rec.accessToken, expiresAt: rec.accessExpiresAt };
      if (Date.now() > deadline) {
        throw new MailgateError('OAUTH_TRANSIENT', `another replica has been refreshing the token of ${account} for over ${HOLD_WAIT_MS / 1000} s; trying again later`);
      }
    }
  }

  async #refreshNow(account: string, cred: ResolvedCredential, rejected: string | undefined, force: boolean, rec: TokenRecord | null): Promise<AccessToken> {
    // Another caller (or replica) may have refreshed while we waited for the store.
    if (!force && rec?.accessToken && rec.accessToken !== rejected && this.#usable(rec)) {
      return { token: rec.accessToken, expiresAt: rec.accessExpiresAt };
    }
    let params: Record<string, string>;
    if (cred.grant === 'client_credentials') {
      params = { grant_type: 'client_credentials', scope: cred.scopes.join(' ') };
    } else {
      if (rec?.state === 'reauth_required') throw new MailgateError('OAUTH_REAUTH_REQUIRED', `account ${account} must be authorized again`);
      if (!rec?.refreshToken) throw new MailgateError('OAUTH_MISSING_TOKEN', `account ${account} has no token yet; authorize it first`);
      params = { grant_type: 'refresh_token', refresh_token: rec.refreshToken };
    }
    const log = this.#deps.logger.child({ component: 'token', account });
    for (let attempt = 1; ; attempt++) {
      try {
        const res = await tokenRequest(cred, params);
        const saved = await this.save(account, cred.name, res, rec);
        this.#deps.metrics.tokenRefreshes.inc({ account, outcome: 'ok' });
        this.#deps.metrics.reauthRequired.set({ account }, 0);
        log.debug({ expiresAt: saved.expiresAt }, 'access token refreshed');
        return saved;
      } catch (err) {
        if (!(err instanceof TokenEndpointError)) throw err;
        if (err.failure === 'auth') {
          await this.#markReauth(account, cred.name, rec, err.message);
          this.#deps.metrics.tokenRefreshes.inc({ account, outcome: 'permanent' });
          log.warn({ error: err.message }, 'the provider rejected the refresh token; the account must be authorized again');
          throw new MailgateError('OAUTH_REAUTH_REQUIRED', `account ${account} must be authorized again: ${err.message}`, { cause: err });
        }
        this.#deps.metrics.tokenRefreshes.inc({ account, outcome: 'transient' });
        if (attempt >= TRANSIENT_TRIES) {
          await this.#recordError(account, cred.name, rec, err.message);
          log.warn({ error: err.message, attempts: attempt }, 'token refresh failed; will try again later');
          throw new MailgateError('OAUTH_TRANSIENT', `token endpoint failed for ${account}: ${err.message}`, { cause: err });
        }
        const delay = Math.max(computeBackoff(attempt, TRANSIENT_BACKOFF), Math.min(err.retryAfterMs ?? 0, TRANSIENT_BACKOFF.maxMs));
        await (this.#deps.sleep ?? sleep)(delay);
      }
    }
  }

  /** Stores a token response (authorization, import, refresh). Rotation keeps old refresh token only when none was sent. */
  async save(account: string, credential: string, res: TokenResponse, prev: TokenRecord | null): Promise<AccessToken> {
    const now = Date.now();
    const expiresAt = res.expiresIn !== null && Number.isFinite(res.expiresIn) ? now + res.expiresIn * 1000 : null;
    const rotated = res.refreshToken !== null && res.refreshToken !== prev?.refreshToken;
    await this.#deps.store.tokens.save({
      account,
      credential,
      refreshToken: res.refreshToken ?? prev?.refreshToken ?? null,
      accessToken: res.accessToken,
      accessExpiresAt: expiresAt,
      scope: res.scope ?? prev?.scope ?? null,
      state: 'ok',
      lastRefreshAt: now,
      refreshTokenIssuedAt: rotated || !prev ? now : prev.refreshTokenIssuedAt,
      lastError: null,
    }, now);
    return { token: res.accessToken, expiresAt };
  }

  async #markReauth(account: string, credential: string, rec: TokenRecord | null, error: string): Promise<void> {
    await this.#deps.store.tokens.save({
      account,
      credential,
      // The rejected refresh token is dropped: it must never be sent again.
      refreshToken: null,
      accessToken: null,
      accessExpiresAt: null,
      scope: rec?.scope ?? null,
      state: 'reauth_required',
      lastRefreshAt: rec?.lastRefreshAt ?? null,
      refreshTokenIssuedAt: rec?.refreshTokenIssuedAt ?? null,
      lastError: error,
    }, Date.now());
    this.#deps.metrics.reauthRequired.set({ account }, 1);
    await this.#deps.events.emit(account, 'account.reauth_required', { error });
  }

  async #recordError(account: string, credential: string, rec: TokenRecord | null, error: string): Promise<void> {
    if (!rec) return;
    await this.#deps.store.tokens.save({ ...rec, credential, lastError: error }, Date.now());
  }

  async status(account: string, now = Date.now()): Promise<TokenStatus> {
    const rec = await this.#deps.store.tokens.get(account);
    const iso = (t: number | null | undefined) => (t == null ? null : new Date(t).toISOString());
    if (!rec) {
      const acc = this.#deps.config().accounts.find((a) => a.name === account);
      const cred = acc ? this.credentialNameOf(acc) : null;
      const missing = { state: 'missing' as const, expiresAt: null, lastRefreshAt: null, refreshTokenIssuedAt: null, lastError: null };
      if (!cred) return missing;
      // client_credentials accounts have nothing to authorize: fetched on demand.
      try {
        if ((await this.resolveCredential(cred)).grant === 'client_credentials') return { ...missing, state: 'expiring' };
      } catch {
        // unknown credential: report missing
      }
      return missing;
    }
    let state: TokenStateView = rec.state === 'reauth_required' ? 'reauth_required' : rec.refreshToken || rec.accessToken ? 'ok' : 'missing';
    if (state === 'ok' && tokenTiming(rec, this.#deps.config().tokens.refreshBeforeMs, now) !== 'fresh') state = 'expiring';
    if (state !== 'reauth_required' && rec.refreshTokenIssuedAt !== null) {
      this.#deps.metrics.refreshTokenAge.set({ account }, Math.round((now - rec.refreshTokenIssuedAt) / 1000));
    }
    let warning: string | null = null;
    if (state === 'ok' || state === 'expiring') {
      try {
        const cred = await this.resolveCredential(rec.credential);
        warning = cliffWarning(cred.provider, rec.refreshTokenIssuedAt, rec.lastRefreshAt, now);
      } catch {
        // an unknown credential is reported elsewhere
      }
    }
    return {
      state,
      expiresAt: iso(rec.accessExpiresAt),
      lastRefreshAt: iso(rec.lastRefreshAt),
      refreshTokenIssuedAt: iso(rec.refreshTokenIssuedAt),
      lastError: rec.lastError,
      warning,
    };
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
