/** The events mailgate posts to webhooks (contract: "Webhook message.received" and "Other events"). */
export type EventName = 'message.received' | 'message.failed' | 'account.reauth_required' | 'account.recovered' | 'credential.expiring';

export type DeliveryStatus = 'pending' | 'delivered' | 'failed';

export interface DeliveryRecord {
  id: string;
  account: string;
  webhook: string;
  event: EventName;
  /** The message this delivery announces, or null for an account event. */
  messageRef: string | null;
  /** The body of an account event, or of a message reported as failed (see setEvent); null: built from the message. */
  payloadJson: string | null;
  status: DeliveryStatus;
  attempts: number;
  nextAttemptAt: number;
  lastStatus: number | null;
  lastError: string | null;
  responseExcerpt: string | null;
  createdAt: number;
  updatedAt: number;
  deliveredAt: number | null;
  /** Failed attempts to build the body (parse thread died or overran); see DeliveryRepo.markRenderFailed. */
  renderFailures: number;
}

export interface AttemptOutcome {
  attempts: number;
  status: number | null;
  error: string | null;
  responseExcerpt: string | null;
  now: number;
}

/**
 * Deliveries of webhook events: the durable queue the delivery worker
 * drains. A message's delivery is written with the message
 * (IngestRepo.insertMessages); account events are queued with enqueueEvent.
 */
export interface DeliveryRepo {
  /** Retention: removes deliveries delivered before `before`; returns how many. */
  pruneDelivered(before: number): Promise<number>;
  /**
   * Due pending deliveries of one webhook (next attempt at or before `now`),
   * ordered by next attempt, then creation, then id, at most `limit`,
   * skipping the ids in `exclude` (the caller's in-flight ones). A read: the
   * rows stay pending with their attempts.
   */
  claimDue(webhook: string, now: number, limit: number, exclude: ReadonlySet<string>): Promise<DeliveryRecord[]>;
  /** Earliest next attempt among pending deliveries of any webhook, or null. */
  nextDueAt(): Promise<number | null>;
  /**
   * Marks a delivery acknowledged (2xx) and, for a message still waiting for
   * it, makes its afterDelivery due on the server (`serverAck: 'due'`) or
   * not needed ('none'), in one transaction. Resolves once committed.
   */
  markDelivered(id: string, outcome: AttemptOutcome, serverAck: 'due' | 'none'): Promise<void>;
  /** Stays pending with the attempt recorded; due again at `nextAttemptAt`. */
  markRetry(id: string, outcome: AttemptOutcome, nextAttemptAt: number): Promise<void>;
  /** Parks the delivery as failed (replayable). */
  markFailed(id: string, outcome: AttemptOutcome): Promise<void>;
  /**
   * message.received → message.failed when the raw could not be parsed; with
   * `payloadJson`, that body is stored and posted from then on (no re-parse);
   * without, a stored body stays.
   */
  setEvent(id: string, event: EventName, payloadJson?: string | null): Promise<void>;
  /**
   * An attempt that failed before anything was posted (the body could not be
   * built): counts the attempt and a render failure, due again at
   * `nextAttemptAt`. Returns the render failures so far.
   */
  markRenderFailed(id: string, outcome: AttemptOutcome, nextAttemptAt: number): Promise<number>;
  /**
   * Queues an account event as an `evt_` delivery, due at `now`. Its body is
   * the contract's envelope `{ event, id, account }` followed by `fields`;
   * a field of one of those names never replaces the envelope's.
   * Returns the delivery id.
   */
  enqueueEvent(account: string, webhook: string, event: EventName, fields: Record<string, unknown>, now: number): Promise<string>;
  get(id: string): Promise<DeliveryRecord | null>;
  /** The delivery of a stored message, or null (none, or removed by retention). */
  forMessage(messageRef: string): Promise<DeliveryRecord | null>;
  /** Most recently changed first (updatedAt, then id, both descending); limit defaults to 100, at most 1,000. */
  list(filter: { status?: DeliveryStatus; limit?: number }): Promise<DeliveryRecord[]>;
  /**
   * Puts a pending or failed delivery back in the queue, due at `now`, with
   * a fresh attempt budget. False for a delivered one (never posted twice by
   * a replay) and for an unknown id.
   */
  retry(id: string, now: number): Promise<boolean>;
  /** retry for every failed delivery; returns how many. */
  retryAllFailed(now: number): Promise<number>;
  /** Every status, counted (0 when none). */
  countByStatus(): Promise<Record<DeliveryStatus, number>>;
}
