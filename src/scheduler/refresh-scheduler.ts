import cron, { type ScheduledTask } from 'node-cron';
import type { Component } from '../runtime/component.js';
import type { Config } from '../config/types.js';
import type { Logger } from '../log.js';
import type { Store } from '../store/store.js';
import type { TokenService } from '../oauth/token-service.js';
import type { CredentialHealth } from '../oauth/credential-health.js';
import { isDue } from '../oauth/token-timing.js';
import { phaseOffsetMs } from '../incoming/phase.js';

/** How often the scheduler looks for tokens due (node-cron, 6-field with seconds). */
export const TICK_CRON = '*/15 * * * * *';
/**
 * Each refresh worker starts after a random delay up to this, so replicas
 * and ticks do not line up; the concurrency cap is what bounds the load on
 * the token endpoint (2,000 due accounts never mean 2,000 requests at once).
 */
export const START_JITTER_MS = 1_000;

/**
 * The refresh lead of one account: between half of `refreshBefore` and all
 * of it, at a phase of the account's own (src/incoming/phase.ts). Tokens
 * fetched together (a start, a lease takeover) expire together; with the
 * same lead they would all be refreshed on the same tick, every hour. So
 * each account refreshes somewhere in the last `refreshBefore`, never later
 * than `refreshBefore / 2` before expiry.
 */
export function phasedRefreshBefore(account: string, refreshBeforeMs: number): number {
  const half = Math.floor(refreshBeforeMs / 2);
  return half > 0 ? refreshBeforeMs - phaseOffsetMs(account, half) : refreshBeforeMs;
}

/**
 * Refreshes tokens before they expire (at each account's phased lead), at
 * most `refreshConcurrency` at a time.
 */
export class RefreshScheduler implements Component {
  readonly name = 'refresh-scheduler';
  #task: ScheduledTask | null = null;
  #running = new Set<string>();
  #pending: Promise<void> = Promise.resolve();
  #stopped = false;
  /** When each account was last looked at for a refresh-token cliff. */
  #cliffCheckedAt = new Map<string, number>();

  /**
   * `node`: several replicas; the passes run on the one node holding the
   * named lock `refresh-scheduler` (taken for SCHEDULER_LOCK_MS, extended at
   * each pass; another node takes over once its holder is gone).
   */
  constructor(
    private readonly deps: {
      store: Store;
      tokens: TokenService;
      config: () => Config;
      logger: Logger;
      random?: () => number;
      node?: string;
      health?: CredentialHealth;
    },
  ) {}

  async start(): Promise<void> {
    this.#stopped = false;
    this.#task = cron.schedule(TICK_CRON, () => this.#tickLogged());
    this.#tickLogged();
  }

  /**
   * A scheduled pass: one that fails (the database cannot be reached) is
   * logged and the next tick tries again; unheard, the rejection would end
   * the daemon.
   */
  #tickLogged(): void {
    this.tick().catch((err: unknown) =>
      this.deps.logger.warn({ err, component: 'refresh-scheduler' }, 'token refresh pass failed; the next one tries again'),
    );
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#task?.stop();
    this.#task = null;
    // In-flight refreshes finish (bounded by the token request timeout); none start.
    await Promise.race([this.#pending, new Promise((r) => setTimeout(r, 3_000).unref())]);
  }

  /** One pass: returns when every refresh it started has settled. */
  async tick(now = Date.now()): Promise<{ due: number; refreshed: number; failed: number }> {
    const node = this.deps.node;
    if (node && !(await this.deps.store.locks.tryLock(SCHEDULER_LOCK, node, now, SCHEDULER_LOCK_MS))) return { due: 0, refreshed: 0, failed: 0 };
    const cfg = this.deps.config();
    const accounts = new Set(cfg.accounts.map((a) => a.name));
    // Tokens without a refresh token are renewed ahead too when their grant needs none (app-only, service accounts).
    const renewable = new Map<string, boolean>();
    const renews = async (credential: string) => {
      let r = renewable.get(credential);
      if (r === undefined) {
        r = await this.deps.tokens.resolveCredential(credential).then((c) => c.grant !== 'authorization_code', () => false);
        renewable.set(credential, r);
      }
      return r;
    };
    const due = [];
    for (const t of await this.deps.store.tokens.list()) {
      if (!accounts.has(t.account) || this.#running.has(t.account)) continue;
      if (isDue(t, phasedRefreshBefore(t.account, cfg.tokens.refreshBeforeMs), now, !t.refreshToken && t.accessToken !== null && (await renews(t.credential)))) due.push(t);
    }
    let refreshed = 0;
    let failed = 0;
    const queue = due.map((t) => t.account);
    const random = this.deps.random ?? Math.random;
    const worker = async () => {
      const jitter = Math.floor(random() * START_JITTER_MS);
      if (jitter > 0) await new Promise((r) => setTimeout(r, jitter));
      for (let account = queue.shift(); account !== undefined && !this.#stopped; account = queue.shift()) {
        this.#running.add(account);
        try {
          await this.deps.tokens.refresh(account);
          refreshed++;
        } catch (err) {
          failed++;
          this.deps.logger.debug({ err, account, component: 'refresh-scheduler' }, 'scheduled refresh failed');
        } finally {
          this.#running.delete(account);
        }
      }
    };
    const run = Promise.all(Array.from({ length: Math.min(cfg.tokens.refreshConcurrency, queue.length) }, worker)).then(() => undefined);
    this.#pending = run;
    await run;
    if (due.length > 0) this.deps.logger.info({ due: due.length, refreshed, failed, component: 'refresh-scheduler' }, 'token refresh pass');
    await this.#warnCliffs(accounts, now);
    await this.#checkCredentials(now);
    return { due: due.length, refreshed, failed };
  }

  #credentialsCheckedAt: number | null = null;
  #credentialsConfig: Config | null = null;

  /** At start and then daily: credential expiry warnings, events and the gauge (CredentialHealth). */
  async #checkCredentials(now: number): Promise<void> {
    if (!this.deps.health) return;
    // Daily, and again after a reload (a new date or certificate is seen at once).
    const config = this.deps.config();
    if (this.#credentialsCheckedAt !== null && this.#credentialsConfig === config && now - this.#credentialsCheckedAt < WARN_EVERY_MS) return;
    this.#credentialsCheckedAt = now;
    this.#credentialsConfig = config;
    try {
      await this.deps.health.check(now);
    } catch (err) {
      this.deps.logger.warn({ err, component: 'refresh-scheduler' }, 'could not check credential expiry');
    }
  }

  /**
   * Once a day per account, whether it has a warning or not (the store is
   * not read on every tick): a log line when a refresh token nears a
   * provider cliff. The cliffs are days away when the warning starts.
   */
  async #warnCliffs(accounts: Set<string>, now: number): Promise<void> {
    for (const account of accounts) {
      const last = this.#cliffCheckedAt.get(account);
      if (last !== undefined && now - last < WARN_EVERY_MS) continue;
      this.#cliffCheckedAt.set(account, now);
      const status = await this.deps.tokens.status(account, now);
      if (status.warning) this.deps.logger.warn({ account, component: 'refresh-scheduler' }, status.warning);
    }
  }
}

const WARN_EVERY_MS = 86_400_000;
export const SCHEDULER_LOCK = 'refresh-scheduler';
/** Four ticks: a holder that died is replaced within a minute. */
export const SCHEDULER_LOCK_MS = 60_000;
