import type { Component } from '../runtime/component.js';
import type { Config } from '../config/types.js';
import type { Logger } from '../log.js';
import type { Store } from '../store/store.js';

/** How often finished work older than the retention periods is removed. */
export const RETENTION_INTERVAL_MS = 60 * 60_000;
export const RETENTION_LOCK = 'retention';
const RETENTION_LOCK_MS = RETENTION_INTERVAL_MS - 5 * 60_000;
/** The first pass waits this long after start, away from the start-up rush. */
const FIRST_RUN_DELAY_MS = 60_000;

export interface RetentionResult {
  rawMessages: number;
  deliveries: number;
  outbox: number;
  adminSessions: number;
}

/**
 * Keeps the database from growing without bound: the raw bodies of messages
 * that are fully handled (delivered, afterDelivery applied), delivered
 * deliveries, and sent or failed outgoing messages go once they are older
 * than `retention`. Nothing still pending or failed on the webhook side is
 * touched, so a replay stays possible. Expired admin UI sessions go too
 * (they are also removed when looked up and at each sign-in).
 */
export class RetentionJob implements Component {
  readonly name = 'retention';
  readonly #deps: { store: Store; config: () => Config; logger: Logger; node?: string };
  #timer: NodeJS.Timeout | null = null;
  #first: NodeJS.Timeout | null = null;

  /** `node`: several replicas; a pass runs on the node that takes the named lock `retention` for the hour, the others skip. */
  constructor(deps: { store: Store; config: () => Config; logger: Logger; node?: string }) {
    this.#deps = deps;
  }

  async start(): Promise<void> {
    const tick = () => void this.run().catch((err: unknown) => this.#deps.logger.error({ err, component: 'retention' }, 'retention pass failed'));
    this.#first = setTimeout(tick, FIRST_RUN_DELAY_MS);
    this.#first.unref();
    this.#timer = setInterval(tick, RETENTION_INTERVAL_MS);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    if (this.#first) clearTimeout(this.#first);
    if (this.#timer) clearInterval(this.#timer);
    this.#first = null;
    this.#timer = null;
  }

  /** One pass; `now` for tests. */
  async run(now = Date.now()): Promise<RetentionResult | null> {
    const { store, config, logger, node } = this.#deps;
    // Not unlocked after the pass: the other nodes' timers of this hour find it held.
    if (node && !(await store.locks.tryLock(RETENTION_LOCK, node, now, RETENTION_LOCK_MS))) return null;
    const { messagesMs, outboxMs } = config().retention;
    const result = {
      rawMessages: await store.messages.pruneRaw(now - messagesMs),
      deliveries: await store.deliveries.pruneDelivered(now - messagesMs),
      outbox: await store.outbox.prune(now - outboxMs),
      adminSessions: await store.adminSessions.pruneExpired(now),
    };
    // Expired sessions are routine, not worth a log line of their own.
    if (result.rawMessages + result.deliveries + result.outbox > 0) {
      logger.info({ component: 'retention', ...result }, 'removed finished work older than the retention periods');
    }
    return result;
  }
}
