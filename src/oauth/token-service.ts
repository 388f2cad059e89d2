import type { AccountConfig, Config, CredentialConfig } from '../config/types.js';
import { computeBackoff } from '../runtime/backoff.js';
import type { EventSink } from '../delivery/events.js';
import { MailgateError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { TokenRecord } from '../store/oauth.js';
import type { Store } from '../store/store.js';
import { resolveCredential, type ResolvedCredential } from './providers.js';
import { parseServiceAccountKey, type ServiceAccountKey } from './service-account-key.js';
import { requestToken, TokenEndpointError, type GrantRequest, type TokenResponse } from './token-client.js';
import type { AccessToken, TokenProvider } from './token-provider.js';
import { RETRY_SLOWLY_MS } from './provider-errors.js';
import { tokenTiming } from './token-timing.js';
import { accountNamed } from '../config/lookup.js';

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
  /** The last failure in plain words (the provider error table), when the token service knows it. */
  explanation?: string | null;
  /** Token requests that failed in a row; 0 after a success. */
  consecutiveFailures?: number;
  /** While retrying slowly: not before this time. */
  retryAt?: string | null;
}

/** Warn this far before a cliff (fraction of it). */
const CLIFF_WARNING_FRACTION = 0.8;

/**
 * Refresh-token cliffs that admins trip over, warned only on real evidence:
 * - Google expires the refresh tokens of apps in "Testing" status 7 days
 *   after consent. Google does not rotate refresh tokens, so the issue date
 *   of every Google token is its consent date and its age alone says
 *   nothing (every healthy Google account would warn from day 6): the
 *   warning needs the admin's word that the app is in Testing
 *   (`testingApp: true` on the credential). A refresh Google rejects at
 *   about 7 days is read as the cliff by the provider error table.
 * - Microsoft expires a refresh token unused for 90 days.
 */
export function cliffWarning(
  provider: string,
  issuedAt: number | null,
  lastRefreshAt: number | null,
  now: number,
  evidence: { testingApp?: boolean } = {},
): string | null {
  if (provider === 'google' && evidence.testingApp === true && issuedAt !== null && now - issuedAt >= GOOGLE_TESTING_CLIFF_MS * CLIFF_WARNING_FRACTION) {
    const days = ((now - issuedAt) / 86_400_000).toFixed(1);
    return `refresh token is ${days} days old and the credential is marked as a Google app in "Testing" status (testingApp): Google expires it 7 days after consent (publish the app, or authorize again)`;
  }
  if (provider.startsWith('microsoft') && lastRefreshAt !== null && now - lastRefreshAt >= MICROSOFT_IDLE_CLIFF_MS * CLIFF_WARNING_FRACTION) {
    const days = ((now - lastRefreshAt) / 86_400_000).toFixed(0);
    return `refresh token unused for ${days} days; Microsoft expires it after 90 days without use`;
  }
  return null;
}

/** Where an admin starts the re-consent of an account (`authorizeUrl` of account.reauth_required). */
export function authorizeUrlFor(publicUrl: string, account: string): string {
  return `${publicUrl.replace(/\/+$/, '')}/admin/accounts/${encodeURIComponent(account)}/authorize`;
}

/** How a connector's login went, told to the token service (account.recovered, error counters). */
export type LoginOutcome = { ok: true } | { ok: false; error: string };

/** The meta key that remembers, across processes, that an account was reauth_required until it logs in again. */
const RECOVERY_KEY = (account: string) => `account.recovery.${account}`;

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
  /** Accounts whose grant is refused in a way only someone outside mailgate fixes: no request before `until`. */
  readonly #holds = new Map<string, { until: number; error: MailgateError; config: Config }>();
  /** Failed token requests and logins in a row, per account; cleared by a success. */
  readonly #failures = new Map<string, { count: number; since: number; error: string; explanation: string | null }>();
  /** Parsed service-account keys of database credentials, by credential (re-read when the stored key changes). */
  readonly #dbKeys = new Map<string, { json: string; key: ServiceAccountKey }>();
  /** A run of failures that ended with a token: announced as account.recovered at the next login. */
  readonly #recovering = new Map<string, { count: number; since: number; error: string; explanation: string | null }>();
  /** Accounts known to have no pending recovery marker (saves a store read per login). */
  readonly #recoveryClear = new Set<string>();

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
    const grant = s.grant ?? 'authorization_code';
    // A service account's key is its secret: stored sealed where client secrets go.
    const serviceAccountKey = grant === 'service_account' ? this.#storedKey(stored.name, stored.clientSecret) : undefined;
    return resolveCredential(
      {
        name: stored.name,
        provider: stored.provider as CredentialConfig['provider'],
        clientId: serviceAccountKey?.clientId ?? stored.clientId,
        clientSecret: grant === 'service_account' ? undefined : (stored.clientSecret ?? undefined),
        authorizationEndpoint: s.authorizationEndpoint,
        tokenEndpoint: s.tokenEndpoint,
        deviceAuthorizationEndpoint: s.deviceAuthorizationEndpoint,
        scopes: s.scopes,
        tenant: s.tenant ?? 'common',
        grant,
        serviceAccountKey,
        clientSecretExpiresAt: typeof s.clientSecretExpiresAt === 'number' ? s.clientSecretExpiresAt : undefined,
        testingApp: s.testingApp === true,
      },
      'database',
    );
  }

  #storedKey(name: string, json: string | null): ServiceAccountKey {
    if (!json) throw new MailgateError('CONFIG_INVALID', `credential ${name} is a service account without a stored key; add it again with --service-account-key-file`);
    const cached = this.#dbKeys.get(name);
    if (cached?.json === json) return cached.key;
    const key = parseServiceAccountKey(json, `the service-account key stored for credential ${name}`);
    this.#dbKeys.set(name, { json, key });
    return key;
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
    const acc = this.account(account);
    const log = this.#deps.logger.child({ component: 'token', account });
    const hold = this.#holds.get(account);
    if (hold && hold.config === this.#deps.config() && Date.now() < hold.until) throw hold.error;
    this.#holds.delete(account);
    let request: GrantRequest;
    if (cred.grant === 'client_credentials') {
      request = { grant: 'client_credentials' };
    } else if (cred.grant === 'service_account') {
      // sub = the mailbox login; a fresh assertion (no refresh token) for each new access token.
      request = { grant: 'jwt_bearer', subject: acc.incoming.user };
    } else {
      if (rec?.state === 'reauth_required') throw new MailgateError('OAUTH_REAUTH_REQUIRED', `account ${account} must be authorized again`);
      if (!rec?.refreshToken) throw new MailgateError('OAUTH_MISSING_TOKEN', `account ${account} has no token yet; authorize it first`);
      request = { grant: 'refresh_token', refreshToken: rec.refreshToken };
    }
    const delegated = request.grant === 'refresh_token';
    for (let attempt = 1; ; attempt++) {
      try {
        const res = await requestToken(cred, request, { subject: acc.incoming.user, refreshTokenIssuedAt: rec?.refreshTokenIssuedAt ?? null });
        const saved = await this.save(account, cred.name, res, rec);
        this.#deps.metrics.tokenRefreshes.inc({ account, outcome: 'ok' });
        this.#deps.metrics.reauthRequired.set({ account }, 0);
        // The counters start again at 0; the run of failures is kept until a login says the account is back.
        const run = this.#failures.get(account);
        if (run) this.#recovering.set(account, run);
        this.#failures.delete(account);
        log.debug({ expiresAt: saved.expiresAt }, 'access token refreshed');
        return saved;
      } catch (err) {
        if (!(err instanceof TokenEndpointError)) throw err;
        const action = err.classification?.action ?? (err.failure === 'auth' ? 'reauth' : 'retry');
        const words = err.words;
        if (action === 'reauth' && delegated) {
          await this.#markReauth(account, cred.name, rec, err.message, words);
          this.#deps.metrics.tokenRefreshes.inc({ account, outcome: 'permanent' });
          this.#noteFailure(account, err.message, words);
          log.warn({ error: err.message, explanation: words }, 'the provider rejected the refresh token; the account must be authorized again');
          throw new MailgateError('OAUTH_REAUTH_REQUIRED', `account ${account} must be authorized again: ${err.message}`, { cause: err });
        }
        if (action === 'reauth' || action === 'fix_config' || action === 'retry_slowly') {
          // Nothing mailgate can retry its way out of: the words say who must change what. The refresh
          // token (if any) is kept (an expired client secret does not kill it) and the endpoint is asked
          // again only slowly, or as soon as the configuration is reloaded.
          const until = Date.now() + (err.retryAfterMs ?? RETRY_SLOWLY_MS);
          const raised =
            action === 'retry_slowly'
              ? new TokenEndpointError('OAUTH_TRANSIENT', err.oauthError, err.description, err.httpStatus, until - Date.now(), { cause: err, ...(err.classification ? { classification: err.classification } : {}) })
              : new TokenEndpointError('OAUTH_GRANT_REJECTED', err.oauthError, err.description, err.httpStatus, until - Date.now(), { cause: err, ...(err.classification ? { classification: err.classification } : {}) });
          const error = withAccount(raised, account, words);
          this.#holds.set(account, { until, error, config: this.#deps.config() });
          this.#deps.metrics.tokenRefreshes.inc({ account, outcome: action === 'retry_slowly' ? 'transient' : 'permanent' });
          this.#noteFailure(account, err.message, words);
          await this.#recordError(account, cred.name, rec, `${words} (${err.message})`);
          log.warn({ error: err.message, explanation: words, retryAt: new Date(until).toISOString() }, 'the token endpoint refused the grant; retrying slowly');
          throw error;
        }
        this.#deps.metrics.tokenRefreshes.inc({ account, outcome: 'transient' });
        if (attempt >= TRANSIENT_TRIES) {
          this.#noteFailure(account, err.message, null);
          await this.#recordError(account, cred.name, rec, err.message);
          log.warn({ error: err.message, attempts: attempt }, 'token refresh failed; will try again later');
          throw new MailgateError('OAUTH_TRANSIENT', `token endpoint failed for ${account}: ${err.message}`, { cause: err, ...(err.failure === 'throttled' ? { failure: 'throttled' as const } : {}) });
        }
        const delay = Math.max(computeBackoff(attempt, TRANSIENT_BACKOFF), Math.min(err.retryAfterMs ?? 0, TRANSIENT_BACKOFF.maxMs));
        await (this.#deps.sleep ?? sleep)(delay);
      }
    }
  }

  #noteFailure(account: string, error: string, explanation: string | null): void {
    const prev = this.#failures.get(account);
    this.#failures.set(account, { count: (prev?.count ?? 0) + 1, since: prev?.since ?? Date.now(), error, explanation });
  }

  /**
   * A connector's login went through or was refused. After a run of
   * failures, or once an account that was reauth_required logs in again,
   * `account.recovered` is emitted and the error counters start again at 0.
   */
  async reportLogin(account: string, outcome: LoginOutcome): Promise<void> {
    if (!outcome.ok) {
      this.#noteFailure(account, outcome.error, null);
      return;
    }
    const failing = this.#failures.get(account) ?? this.#recovering.get(account);
    this.#failures.delete(account);
    this.#recovering.delete(account);
    this.#holds.delete(account);
    let previous: { state: 'reauth_required' | 'failing'; since: number; error: string | null } | null = failing
      ? { state: 'failing', since: failing.since, error: failing.error }
      : null;
    const marker = this.#recoveryClear.has(account) ? null : await this.#deps.store.meta.get(RECOVERY_KEY(account));
    this.#recoveryClear.add(account);
    if (marker) {
      await this.#deps.store.meta.set(RECOVERY_KEY(account), '');
      try {
        const m = JSON.parse(marker) as { since?: number; error?: string };
        previous = { state: 'reauth_required', since: m.since ?? Date.now(), error: m.error ?? previous?.error ?? null };
      } catch {
        previous = { state: 'reauth_required', since: Date.now(), error: null };
      }
    }
    if (!previous) return;
    this.#deps.logger.info({ component: 'token', account, previousState: previous.state }, 'the account logs in again');
    await this.#deps.events.emit(account, 'account.recovered', {
      previousState: previous.state,
      since: new Date(previous.since).toISOString(),
      ...(previous.error ? { lastError: previous.error } : {}),
      ...(failing ? { failures: failing.count } : {}),
    });
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

  async #markReauth(account: string, credential: string, rec: TokenRecord | null, error: string, explanation: string): Promise<void> {
    const now = Date.now();
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
      lastError: explanation === error ? error : `${error} (${explanation})`,
    }, now);
    this.#deps.metrics.reauthRequired.set({ account }, 1);
    // Remembered in the store: the re-authorization may happen in another process (mailgate authorize --device).
    this.#recoveryClear.delete(account);
    await this.#deps.store.meta.set(RECOVERY_KEY(account), JSON.stringify({ since: now, error }));
    await this.#deps.events.emit(account, 'account.reauth_required', {
      error,
      explanation,
      authorizeUrl: authorizeUrlFor(this.#deps.config().server.publicUrl, account),
    });
  }

  async #recordError(account: string, credential: string, rec: TokenRecord | null, error: string): Promise<void> {
    if (!rec) return;
    await this.#deps.store.tokens.save({ ...rec, credential, lastError: error }, Date.now());
  }

  async status(account: string, now = Date.now()): Promise<TokenStatus> {
    const rec = await this.#deps.store.tokens.get(account);
    const acc = rec ? undefined : accountNamed(this.#deps.config(), account);
    return this.#view(account, rec, acc, now, (name) => this.#credentialOrNull(name));
  }

  /**
   * Every configured account's token status from one read of the token
   * table: O(accounts), no store query per account (GET /v1/accounts,
   * `mailgate status`, the admin UI at thousands of accounts). A credential
   * is resolved once, however many accounts use it.
   */
  async statusAll(now = Date.now()): Promise<Map<string, TokenStatus>> {
    const records = new Map((await this.#deps.store.tokens.list()).map((r) => [r.account, r]));
    const credentials = new Map<string, Promise<ResolvedCredential | null>>();
    const credential = (name: string) => {
      let c = credentials.get(name);
      if (!c) credentials.set(name, (c = this.#credentialOrNull(name)));
      return c;
    };
    const out = new Map<string, TokenStatus>();
    for (const acc of this.#deps.config().accounts) {
      out.set(acc.name, await this.#view(acc.name, records.get(acc.name) ?? null, acc, now, credential));
    }
    return out;
  }

  async #credentialOrNull(name: string): Promise<ResolvedCredential | null> {
    try {
      return await this.resolveCredential(name);
    } catch {
      return null; // an unknown credential is reported elsewhere
    }
  }

  async #view(
    account: string,
    rec: TokenRecord | null,
    acc: AccountConfig | undefined,
    now: number,
    credential: (name: string) => Promise<ResolvedCredential | null>,
  ): Promise<TokenStatus> {
    const iso = (t: number | null | undefined) => (t == null ? null : new Date(t).toISOString());
    if (!rec) {
      const cred = acc ? this.credentialNameOf(acc) : null;
      const missing = { state: 'missing' as const, expiresAt: null, lastRefreshAt: null, refreshTokenIssuedAt: null, lastError: null };
      if (!cred) return missing;
      // client_credentials and service_account accounts have nothing to authorize: fetched on demand.
      const c = await credential(cred);
      if (c && c.grant !== 'authorization_code') return { ...missing, state: 'expiring', ...this.#failureView(account) };
      return missing;
    }
    let state: TokenStateView = rec.state === 'reauth_required' ? 'reauth_required' : rec.refreshToken || rec.accessToken ? 'ok' : 'missing';
    if (state === 'ok' && tokenTiming(rec, this.#deps.config().tokens.refreshBeforeMs, now) !== 'fresh') state = 'expiring';
    if (state !== 'reauth_required' && rec.refreshTokenIssuedAt !== null) {
      this.#deps.metrics.refreshTokenAge.set({ account }, Math.round((now - rec.refreshTokenIssuedAt) / 1000));
    }
    let warning: string | null = null;
    if (state === 'ok' || state === 'expiring') {
      const cred = await credential(rec.credential);
      if (cred) warning = cliffWarning(cred.provider, rec.refreshTokenIssuedAt, rec.lastRefreshAt, now, { testingApp: cred.testingApp });
    }
    return {
      state,
      expiresAt: iso(rec.accessExpiresAt),
      lastRefreshAt: iso(rec.lastRefreshAt),
      refreshTokenIssuedAt: iso(rec.refreshTokenIssuedAt),
      lastError: rec.lastError,
      warning,
      ...this.#failureView(account),
    };
  }

  #failureView(account: string): Pick<TokenStatus, 'explanation' | 'consecutiveFailures' | 'retryAt'> {
    const f = this.#failures.get(account);
    const hold = this.#holds.get(account);
    return {
      explanation: f?.explanation ?? null,
      consecutiveFailures: f?.count ?? 0,
      retryAt: hold && hold.until > Date.now() ? new Date(hold.until).toISOString() : null,
    };
  }
}

/** The same refusal, its message naming the account and led by the plain words. */
function withAccount(err: TokenEndpointError, account: string, words: string): TokenEndpointError {
  err.message = `token for ${account}: ${words} (${err.oauthError ? `${err.oauthError}${err.description ? `: ${err.description}` : ''}` : (err.description ?? 'refused')})`;
  return err;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
