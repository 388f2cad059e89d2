import type { Config } from '../config/types.js';
import type { Logger } from '../log.js';
import type { Store } from '../store/store.js';
import type { AccountEvent, EventSink } from './events.js';
import { accountNamed } from '../config/lookup.js';

/** Queues account events as deliveries to the account's webhook, then wakes the worker. */
export class DeliveryEventSink implements EventSink {
  constructor(
    private readonly deps: { store: Store; config: () => Config; logger: Logger; wake: () => void },
  ) {}

  async emit(
    account: string,
    event: AccountEvent,
    fields: Record<string, unknown>,
  ): Promise<string> {
    const acc = accountNamed(this.deps.config(), account);
    if (!acc) {
      this.deps.logger.warn({ account, event }, 'event for an account that is not configured; dropped');
      return '';
    }
    const id = await this.deps.store.deliveries.enqueueEvent(account, acc.webhook, event, fields, Date.now());
    this.deps.wake();
    return id;
  }
}
