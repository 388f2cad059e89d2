import type { EventName } from '../store/deliveries.js';

/** The account events (not about one message) that components raise. */
export type AccountEvent = Exclude<EventName, 'message.received' | 'message.failed'>;

/**
 * Events other than message.received (account.reauth_required, …) are queued
 * through this sink; the delivery worker posts them to the account's webhook
 * with the same signing, retries and parking as messages.
 */
export interface EventSink {
  /** Durably queues the event; resolves when it is stored. Returns the event id. */
  emit(account: string, event: AccountEvent, fields: Record<string, unknown>): Promise<string>;
}
