/**
 * Events other than message.received (account.reauth_required, …) are queued
 * through this sink; the delivery worker posts them to the account's webhook
 * with the same signing, retries and parking as messages.
 */
export type EventName = 'message.received' | 'message.failed' | 'account.reauth_required';

export interface EventSink {
  /** Durably queues the event; resolves when it is stored. Returns the event id. */
  emit(account: string, event: Exclude<EventName, 'message.received' | 'message.failed'>, fields: Record<string, unknown>): Promise<string>;
}
