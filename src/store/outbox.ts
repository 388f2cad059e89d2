/**
 * The durable send queue. A row is written before the API answers 202, moves
 * queued → sending (recorded before the SMTP transaction starts) → sent or
 * failed. A row still `sending` when the daemon starts means it stopped in
 * the middle of an SMTP transaction: the server may or may not have taken
 * the message, so it is not sent again on its own (see docs/outgoing.md).
 */
export type OutboxStatus = 'queued' | 'sending' | 'sent' | 'failed';

/**
 * The SMTP envelope of a message given as bytes (the SMTP relay): who it is
 * from (MAIL FROM) and every recipient (RCPT TO, Bcc included: a Bcc is
 * only ever here, never in the bytes).
 */
export interface OutboxEnvelope {
  from: string;
  to: string[];
}

export interface OutboxRecord {
  id: string;
  account: string;
  idempotencyKey: string | null;
  /**
   * The validated send request, as JSON; for a message given as bytes, what
   * it came from (e.g. `{"relay":{"client":"scanner"}}`).
   */
  requestJson: string;
  /** A message given as bytes: its envelope (the bytes are read with getRaw). Null for a send request. */
  envelope: OutboxEnvelope | null;
  /** A message given as bytes: how many there are. Null for a send request. */
  rawBytes: number | null;
  status: OutboxStatus;
  attempts: number;
  nextAttemptAt: number;
  lastError: string | null;
  /** The Message-ID header we generated (or, for bytes, the one they carry), with angle brackets. */
  messageId: string;
  createdAt: number;
  updatedAt: number;
  sentAt: number | null;
}

export interface NewOutboxItem {
  id: string;
  account: string;
  idempotencyKey: string | null;
  requestJson: string;
  messageId: string;
  /** messageId normalised, and the message's conversation (MessageRepo.conversationOf finds it by the key). */
  messageIdKey?: string | null;
  conversationId?: string | null;
  now: number;
  /**
   * A message given as bytes, sent exactly as stored with this envelope
   * (no send request is built). Stored in the same transaction as the row:
   * once enqueue resolved, both are durable.
   */
  raw?: { envelope: OutboxEnvelope; message: Buffer } | undefined;
}

/** Per-account send slots for claimDue: what each account may still take. */
export interface ClaimRoom {
  perAccount: number;
  inFlight: ReadonlyMap<string, number>;
  /**
   * Memory for messages given as bytes (each is read whole to be sent): a
   * row whose rawBytes would take the claimed and in-flight total past
   * `budget` is left for a later claim, unless none is in flight or claimed
   * yet (a message larger than the budget goes alone). Send requests do not
   * count.
   */
  rawBytes?: { budget: number; inFlight: number };
}

export interface OutboxRepo {
  /**
   * Queues the item, or returns the existing row when (account,
   * idempotencyKey) was used before; `created` tells which.
   */
  enqueue(item: NewOutboxItem): Promise<{ record: OutboxRecord; created: boolean }>;
  get(id: string): Promise<OutboxRecord | null>;
  /** The stored bytes of a message given as bytes; null for a send request or an unknown (or pruned) id. */
  getRaw(id: string): Promise<Buffer | null>;
  /**
   * Moves up to `limit` due queued rows to `sending` (attempts + 1) and
   * returns them, in due order. With `room`, an account gets at most
   * `perAccount` minus its `inFlight` count of them (its send slots), and
   * messages given as bytes stay within `room.rawBytes`.
   */
  claimDue(now: number, limit: number, room?: ClaimRoom): Promise<OutboxRecord[]>;
  markSent(id: string, now: number): Promise<void>;
  /** Back to queued, to be tried again at `nextAttemptAt`. */
  markRetry(id: string, error: string, nextAttemptAt: number, now: number): Promise<void>;
  markFailed(id: string, error: string, now: number): Promise<void>;
  /** Rows left `sending` by a stopped daemon become failed with `reason`; returns their ids. */
  failInterrupted(reason: string, now: number): Promise<string[]>;
  /** A failed row goes back to the queue (admin retry); false when it is not failed. */
  requeue(id: string, now: number): Promise<boolean>;
  /** Earliest next_attempt_at among queued rows, or null. */
  nextDueAt(): Promise<number | null>;
  counts(): Promise<Record<OutboxStatus, number>>;
  /** Retention: removes sent and failed messages last changed before `before`, with their bytes (their idempotency keys expire with them). */
  prune(before: number): Promise<number>;
}
