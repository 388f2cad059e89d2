import cron, { type ScheduledTask } from 'node-cron';
import type { Component } from '../app.js';
import type { Config } from '../config/types.js';
import type { Logger } from '../log.js';
import type { Store } from '../store/types.js';
import type { TokenService } from '../oauth/token-service.js';

/** How often the scheduler looks for tokens due (node-cron, 6-field with seconds). */
export const TICK_CRON = '*/15 * * * * *';
/** Refreshes due in one tick are spread over this window so 2,000 accounts never stampede. */
export const SPREAD_MS = 10_000;
/** Short-lived tokens: refresh when this fraction of the lifetime is left, if that is earlier. */
const LIFETIME_FRACTION = 0.5;

/** Which tokens to refresh now: due within refreshBefore, or past half their lifetime. */
export function isDue(
  t: { accessExpiresAt: number | null; lastRefreshAt: number | null; state: string; refreshToken: string | null },
  refreshBeforeMs: number,
  now: number,
): boolean {
  if (t.state !== 'ok' || !t.refreshToken || t.accessExpiresAt === null) return false;
  const lifetime = t.lastRefreshAt !== null ? t.accessExpiresAt - t.lastRefreshAt : Infinity;
  const lead = Math.max(refreshBeforeMs >= lifetime ? lifetime * LIFETIME_FRACTION : refreshBeforeMs, 0);
  return t.accessExpiresAt - now <= lead;
}

/**
 * Refreshes tokens before they expire, at most `refreshConcurrency` at a time,
 * each started after a random delay within SPREAD_MS.
 */
export class RefreshScheduler implements Component {
  readonly name = 'refresh-scheduler';
  #task: ScheduledTask | null = null;
  #running = new Set<string>();
  #pending: Promise<void> = Promise.resolve();
  #stopped = false;

  constructor(
    private readonly deps: { store: Store; tokens: TokenService; config: () => Config; logger: Logger; random?: () => number },
  ) {}

  async start(): Promise<void> {
    this.#stopped = false;
    this.#task = cron.schedule(TICK_CRON, () => {
      void this.tick();
    });
    void this.tick();
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
    const cfg = this.deps.config();
    const accounts = new Set(cfg.accounts.map((a) => a.name));
    const due = (await this.deps.store.tokens.list()).filter(
      (t) => accounts.has(t.account) && !this.#running.has(t.account) && isDue(t, cfg.tokens.refreshBeforeMs, now),
    );
    let refreshed = 0;
    let failed = 0;
    const queue = due.map((t) => t.account);
    const random = this.deps.random ?? Math.random;
    const spread = queue.length > 1 ? SPREAD_MS : 0;
    const worker = async () => {
      for (let account = queue.shift(); account !== undefined && !this.#stopped; account = queue.shift()) {
        this.#running.add(account);
        try {
          if (spread) await new Promise((r) => setTimeout(r, Math.floor((random() * spread) / cfg.tokens.refreshConcurrency)));
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
    return { due: due.length, refreshed, failed };
  }
}
