import type { AccountConfig } from '../config/types.js';
import { computeBackoff } from '../runtime/backoff.js';
import { explainSystemError, MailgateError, type FailureClass } from '../errors.js';
import { FailureLog } from '../runtime/failure-log.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { TokenProvider } from '../oauth/token-provider.js';
import { SLOW_HOST_DEFAULT_MS, throttlingAnswer, type LoginPacer } from './login-pacer.js';
import type { AckQueue, ConnectorState, ConnectorStatus, FetchedMessage, IncomingConnector, Ingestor } from './source.js';

/** Syncs of at least this many new messages log their progress. */
const PROGRESS_MIN_MESSAGES = 200;
/** Acks becoming due are gathered this long so one server round covers many messages. */
export const ACK_COALESCE_MS = 250;
const RECONNECT_BACKOFF = { initialMs: 1_000, maxMs: 5 * 60_000 };
/** After a login the server refused even with a fresh token, try again this rarely: do not hammer. */
export const AUTH_FAILURE_RETRY_MS = 5 * 60_000;
/**
 * Missing or reauth_required token: checking again only reads the database
 * (nothing is sent to the provider), so look often enough to pick up tokens
 * stored by another process (`mailgate authorize --device`, `tokens import`).
 */
export const NEEDS_AUTHORIZATION_RETRY_MS = 30_000;
/** After LEASE_LOST the coordinator stops the connector; this long it waits meanwhile. */
const LEASE_LOST_WAIT_MS = 60_000;
/** While the database is full, look again this often (a resume also wakes the loop at once). */
const STORAGE_RECHECK_MS = 5_000;
const STATES: ConnectorState[] = ['connecting', 'idle', 'polling', 'backoff', 'error', 'stopped'];

export interface ConnectorDeps {
  account: AccountConfig;
  ingestor: Ingestor;
  acks: AckQueue;
  tokens: TokenProvider;
  logger: Logger;
  metrics: Metrics;
  onStatus?: (status: ConnectorStatus) => void;
  /** Whether the database takes writes: while it is full, nothing is fetched or acted on on the server. */
  storage?: StorageState;
  /**
   * The instance's login pacer (ConnectorManager's): every login of a
   * session waits for a slot, the first one after start() spread over the
   * pacing window. Without it (tests, `mailgate test`) logins are not paced.
   */
  pacer?: LoginPacer;
  /** IMAP idle mode without NOTIFY: connections the account may keep in IDLE (`limits.idleConnectionsPerAccount`). */
  idleConnectionsPerAccount?: number;
}

export interface StorageState {
  readonly accepting: boolean;
  readonly reason: string | null;
  onResume(listener: () => void): () => void;
}

/**
 * Gathers fetched messages and hands them to the ingest store in batches
 * (one transaction each): at `maxMessages`, or sooner when they add up to
 * `maxBytes`, so memory stays bounded while a large mailbox syncs.
 */
export class IngestBatch {
  #batch: FetchedMessage[] = [];
  #bytes = 0;
  #stored = 0;
  #progress: { log: Logger; total: number; mailbox: string } | null = null;

  constructor(
    private readonly ingestor: Ingestor,
    private readonly maxMessages: number,
    private readonly maxBytes = 32 * 1024 * 1024,
  ) {}

  /** A large sync (an initial one, a backlog) reports its progress in the log at every commit. */
  reportProgress(log: Logger, mailbox: string, total: number): this {
    if (total >= PROGRESS_MIN_MESSAGES) {
      this.#progress = { log, total, mailbox };
      log.info({ mailbox, messages: total }, 'fetching new messages');
    }
    return this;
  }

  async add(msg: FetchedMessage): Promise<void> {
    this.#batch.push(msg);
    this.#bytes += msg.raw.length;
    if (this.#batch.length >= this.maxMessages || this.#bytes >= this.maxBytes) await this.flush();
  }

  async flush(): Promise<void> {
    if (this.#batch.length === 0) return;
    const batch = this.#batch;
    this.#batch = [];
    this.#bytes = 0;
    await this.ingestor.ingestMany(batch);
    this.#stored += batch.length;
    const p = this.#progress;
    if (p) p.log.info({ mailbox: p.mailbox, stored: this.#stored, of: p.total }, 'stored new messages');
  }
}

/**
 * How a protocol reads a failed session, in the shared vocabulary
 * (src/errors.ts). A session is always worth another try; only the wait
 * differs: long after `auth` (refused even with a fresh token), at least
 * the server's hint after `throttled`, backoff after `transient`.
 */
export interface SessionFailure {
  kind: Exclude<FailureClass, 'permanent'>;
  message: string;
  /** The server asked to wait at least this long (throttling). */
  retryAfterMs: number | null;
  /** The system code behind it (ECONNREFUSED, CERT_HAS_EXPIRED, …), for scripts; the message is in plain words. */
  code?: string | null;
}

/**
 * How long to wait before reconnecting after `failures` failed sessions:
 * capped exponential backoff with jitter, but never sooner than the server
 * asked (Microsoft's throttling "Suggested Backoff Time"), within the cap.
 */
export function reconnectDelay(failures: number, f: SessionFailure, random: () => number = Math.random): number {
  return Math.max(computeBackoff(failures, RECONNECT_BACKOFF, random), Math.min(f.retryAfterMs ?? 0, RECONNECT_BACKOFF.maxMs));
}

/**
 * The loop every incoming connector shares: run a session until it ends or
 * fails, then wait (capped exponential backoff with jitter; long waits for
 * refused logins and unauthorized accounts), and start again until stopped.
 * Acks that become due, new mail and stop() wake the loop early.
 */
export abstract class ConnectorBase implements IncomingConnector {
  readonly account: string;
  protected readonly deps: ConnectorDeps;
  protected readonly log: Logger;
  #state: ConnectorState = 'stopped';
  #lastSuccessAt: Date | null = null;
  #lastError: string | null = null;
  #stopped = true;
  #loop: Promise<void> | null = null;
  #wake: (() => void) | null = null;
  #pendingWake = false;
  #unsubscribe: (() => void) | null = null;
  #ackTimer: NodeJS.Timeout | null = null;
  /** Aborts a wait for a login slot when stop() is called. */
  #abort: AbortController | null = null;
  #firstLogin = true;
  /** Logs a failing state once at warn, then reminders at a growing interval. */
  readonly #failures = new FailureLog();

  constructor(deps: ConnectorDeps, component: string) {
    this.deps = deps;
    this.account = deps.account.name;
    this.log = deps.logger.child({ component, account: this.account });
  }

  /** One connected session; returns or throws when it ends. `onConnected` resets the backoff. */
  protected abstract session(onConnected: () => void): Promise<void>;
  /** Closes the live connection, if any (stop, or after a session ended). */
  protected abstract closeActive(): void;
  protected abstract classify(err: unknown): SessionFailure;
  /** Connects, logs in and logs out once; closes what it opened when that fails. */
  protected abstract probe(): Promise<void>;

  /** What the admin reads this connector talks to: "the IMAP server imap.example.com:993". */
  get target(): string {
    const inc = this.deps.account.incoming;
    return `the ${inc.protocol.toUpperCase()} server ${inc.host}:${inc.port}`;
  }

  /**
   * A failed session in an admin's words: the protocol's reading, with a
   * socket, DNS or TLS failure said plainly (src/errors.ts) and its system
   * code kept apart.
   */
  protected describe(err: unknown): SessionFailure {
    const c = this.classify(err);
    if (c.kind === 'auth') return { ...c, code: c.code ?? null };
    // A token failure already names its endpoint in plain words; the socket code under it is not this server's.
    if (err instanceof MailgateError && err.code.startsWith('OAUTH_')) return { ...c, message: err.message, code: c.code ?? err.code };
    const plain = explainSystemError(err, this.target);
    return plain ? { ...c, message: plain.message, code: plain.code } : { ...c, code: c.code ?? null };
  }

  /** Logs in once with the current token and out again (`mailgate test`): ok, or the failure in an admin's words. */
  async test(): Promise<{ ok: boolean; error: string | null; code: string | null }> {
    try {
      await this.probe();
      return { ok: true, error: null, code: null };
    } catch (err) {
      const d = this.describe(err);
      return { ok: false, error: d.message, code: d.code ?? (err instanceof MailgateError ? err.code : null) };
    }
  }

  status(): ConnectorStatus {
    return { state: this.#state, lastSuccessAt: this.#lastSuccessAt, lastError: this.#lastError };
  }

  async start(): Promise<void> {
    if (!this.#stopped) return;
    this.#stopped = false;
    this.#abort = new AbortController();
    this.#firstLogin = true;
    this.#unsubscribe = this.deps.acks.onDue(this.account, () => {
      if (this.#ackTimer) return;
      this.#ackTimer = setTimeout(() => {
        this.#ackTimer = null;
        this.poke();
      }, ACK_COALESCE_MS);
    });
    this.#loop = this.#run();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#abort?.abort(new MailgateError('CONNECTION_FAILED', 'the connector was stopped while waiting for its turn to log in'));
    this.#unsubscribe?.();
    this.#unsubscribe = null;
    if (this.#ackTimer) clearTimeout(this.#ackTimer);
    this.#ackTimer = null;
    this.poke();
    this.closeActive();
    await this.#loop;
    this.#loop = null;
    this.setState('stopped');
  }

  /**
   * Runs `login` (connect, greeting, authentication) once the pacer gives it
   * a slot, and gives the slot back when it resolves or fails. The
   * connection is opened inside `login`, so its connect and greeting
   * timeouts run from then, never while it waited here.
   */
  protected async paced<T>(login: () => Promise<T>): Promise<T> {
    const pacer = this.deps.pacer;
    const first = this.#firstLogin;
    this.#firstLogin = false;
    if (!pacer) return login();
    const request = { host: this.deps.account.incoming.host, account: this.account, first };
    return pacer.run(this.#abort ? { ...request, signal: this.#abort.signal } : request, login);
  }

  /** Another connection of this account that logs in through the pacer too (IDLE on a second mailbox). */
  protected pacedExtra<T>(login: () => Promise<T>): Promise<T> {
    const pacer = this.deps.pacer;
    if (!pacer) return login();
    const request = { host: this.deps.account.incoming.host, account: this.account };
    return pacer.run(this.#abort ? { ...request, signal: this.#abort.signal } : request, login);
  }

  /** The server throttles: slow its host down for every account on it, not just this one. */
  protected slowHost(ms: number | null): void {
    this.deps.pacer?.slowHost(this.deps.account.incoming.host, ms ?? SLOW_HOST_DEFAULT_MS);
  }

  protected get stopped(): boolean {
    return this.#stopped;
  }

  protected setState(state: ConnectorState, error?: string | null): void {
    this.#state = state;
    if (error !== undefined) this.#lastError = error;
    for (const s of STATES) this.deps.metrics.connectorState.set({ account: this.account, state: s }, s === state ? 1 : 0);
    this.deps.onStatus?.(this.status());
  }

  /** A sync round finished: the account is healthy as of now. */
  protected markSuccess(): void {
    this.#lastSuccessAt = new Date();
    this.deps.onStatus?.(this.status());
  }

  /** Wakes the loop (new mail, acks due, stop). */
  protected poke(): void {
    this.#pendingWake = true;
    const w = this.#wake;
    this.#wake = null;
    w?.();
  }

  /** Sleeps until poked or `ms` passed. */
  protected sleep(ms: number): Promise<void> {
    if (this.#pendingWake || this.#stopped) {
      this.#pendingWake = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.#wake = () => {
        this.#pendingWake = false;
        done();
      };
    });
  }

  /** True while the database is full: no new mail, nothing done on the server. */
  protected get storagePaused(): boolean {
    return this.deps.storage !== undefined && !this.deps.storage.accepting;
  }

  /** Waits (visibly) until the database takes writes again, or stop(). */
  async #waitForStorage(): Promise<void> {
    const storage = this.deps.storage;
    if (!storage) return;
    this.setState('backoff', storage.reason ?? 'the database disk is full');
    this.log.warn({ reason: storage.reason }, 'the database takes no writes (disk full or unreachable): not fetching until it does');
    const unsubscribe = storage.onResume(() => this.poke());
    try {
      while (!this.#stopped && !storage.accepting) await this.sleep(STORAGE_RECHECK_MS);
    } finally {
      unsubscribe();
    }
  }

  async #run(): Promise<void> {
    let failures = 0;
    while (!this.#stopped) {
      if (this.storagePaused) {
        await this.#waitForStorage();
        continue;
      }
      try {
        await this.session(() => {
          failures = 0;
          this.#recovered();
          // The login went through: the token service clears its counters and may announce account.recovered.
          void this.deps.tokens.reportLogin?.(this.account, { ok: true }).catch((err: unknown) => this.log.warn({ err }, 'could not record the login'));
        });
      } catch (err) {
        if (this.#stopped) break;
        failures++;
        let delay: number;
        try {
          delay = this.#handleFailure(err, failures);
        } catch (inner) {
          // A bug in recording the failure must not end this account's loop for good (nothing would ever try again).
          delay = reconnectDelay(failures, { kind: 'transient', message: '', retryAfterMs: null });
          this.log.error({ err: inner, error: err instanceof Error ? err.message : String(err), retryInMs: delay }, 'could not record a connection failure; trying again later');
        }
        // Acks that became due meanwhile are applied after the reconnect anyway.
        this.#pendingWake = false;
        await this.sleep(delay);
      } finally {
        this.closeActive();
      }
    }
  }

  /** Records the failure in status, logs it when it is news (or a reminder is due), and returns how long to wait. */
  #handleFailure(err: unknown, failures: number): number {
    if (err instanceof MailgateError && err.code === 'STORAGE_FULL') {
      this.setState('backoff', err.message);
      return 0; // the loop waits for the disk, not for a backoff
    }
    if (err instanceof MailgateError && err.code === 'LEASE_LOST') {
      // The coordinator stops this connector; until then it does nothing.
      this.setState('backoff', err.message);
      this.log.warn({ error: err.message }, 'this node no longer holds the account; stopping its work');
      return LEASE_LOST_WAIT_MS;
    }
    if (err instanceof MailgateError && (err.code === 'OAUTH_REAUTH_REQUIRED' || err.code === 'OAUTH_MISSING_TOKEN')) {
      this.setState('error', err.message);
      this.#report(`needs-authorization:${err.code}`, { error: err.message, code: err.code }, 'cannot log in: the account needs authorization');
      return NEEDS_AUTHORIZATION_RETRY_MS;
    }
    // The token service holds a refused grant (delegation missing, an expired secret, a tenant policy):
    // its message has the plain words; the next try is when it will ask the token endpoint again.
    const held = err instanceof MailgateError && (err.code === 'OAUTH_GRANT_REJECTED' || err.code === 'OAUTH_TRANSIENT') ? (err as { retryAfterMs?: unknown }).retryAfterMs : null;
    if (err instanceof MailgateError && err.code === 'OAUTH_GRANT_REJECTED') {
      this.setState('error', err.message);
      this.#report(`grant:${err.message}`, { error: err.message, code: err.code }, 'cannot log in: the token endpoint refused the grant');
      return Math.min(typeof held === 'number' ? Math.max(held, NEEDS_AUTHORIZATION_RETRY_MS) : AUTH_FAILURE_RETRY_MS, AUTH_FAILURE_RETRY_MS);
    }
    if (typeof held === 'number' && held > 0) {
      this.setState('backoff', err instanceof Error ? err.message : String(err));
      this.#report('token-wait', { error: err instanceof Error ? err.message : String(err), retryInMs: held }, 'cannot log in yet: the token endpoint asked to wait');
      return Math.min(Math.max(held, reconnectDelay(failures, { kind: 'throttled', message: '', retryAfterMs: held })), AUTH_FAILURE_RETRY_MS);
    }
    const c = this.describe(err);
    const code = c.code ?? (err instanceof MailgateError ? err.code : null);
    if (c.kind === 'auth') {
      void this.deps.tokens.reportLogin?.(this.account, { ok: false, error: c.message }).catch(() => undefined);
      this.setState('error', c.message);
      this.#report(`auth:${c.message}`, { error: c.message, code }, 'login refused even with a fresh token; trying again every 5 minutes');
      return AUTH_FAILURE_RETRY_MS;
    }
    if (c.kind === 'throttled' || throttlingAnswer(c.message).throttled) {
      this.slowHost(c.retryAfterMs);
      this.log.warn({ error: c.message, host: this.deps.account.incoming.host }, 'the server throttles: slowing down logins to this host for every account on it');
    }
    const delay = reconnectDelay(failures, c);
    this.setState('backoff', c.message);
    this.#report(`${c.kind}:${code ?? c.message}`, { error: c.message, code, retryInMs: delay }, 'connection failed; reconnecting later');
    return delay;
  }

  /** A failure is logged at warn when the state changed, as a reminder at a growing interval, else at debug. */
  #report(key: string, fields: Record<string, unknown>, text: string): void {
    const r = this.#failures.failed(key);
    if (r.log === 'changed') this.log.warn(fields, text);
    else if (r.log === 'reminder') {
      this.log.warn({ ...fields, failingSince: new Date(r.since).toISOString(), attempts: r.attempts }, `still failing: ${text}`);
    } else this.log.debug(fields, text);
  }

  /** A session connected: a failing state that was logged ends with one line. */
  #recovered(): void {
    const was = this.#failures.recovered();
    if (was) this.log.warn({ failingSince: new Date(was.since).toISOString(), attempts: was.attempts }, 'connected again');
  }
}
