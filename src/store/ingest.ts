import type { EventName } from '../delivery/events.js';
import type { DueAck, ImapCursor, IngestResult } from '../incoming/source.js';

/** A message to store, with what the delivery and loop guard need to know. */
export interface NewMessage {
  account: string;
  mailbox: string;
  uid: number | null;
  uidValidity: number | null;
  uidl: string | null;
  raw: Buffer;
  internalDate: number | null;
  messageId: string | null;
  autoSubmitted: boolean;
  /** The account's webhook at ingest time. */
  webhook: string;
  /**
   * Set when the body was not downloaded (over maxMessageSize, or its
   * download kept failing): why, in an admin's words. `raw` then holds only
   * the header block, `size` is the size the server gave; the message is
   * announced as message.failed (reason too_large) and never acted on on the server.
   */
  notDownloaded?: string | null;
  /** The message's size when `raw` is not all of it (notDownloaded); else raw.length. */
  size?: number;
}

export interface StoredMessageInfo {
  id: string;
  account: string;
  mailbox: string;
  uid: number | null;
  uidValidity: number | null;
  uidl: string | null;
  messageId: string | null;
  size: number;
  receivedAt: number;
  autoSubmitted: boolean;
  /** Why the body was not downloaded (NewMessage.notDownloaded), or null. */
  notDownloaded: string | null;
}

export type DeliveryStatus = 'pending' | 'delivered' | 'failed';

export interface DeliveryRecord {
  id: string;
  account: string;
  webhook: string;
  event: EventName;
  messageRef: string | null;
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

/** Deliveries of webhook events: the durable queue the worker drains. */
export interface DeliveryRepo {
  /** Retention: removes deliveries delivered before `before`; returns how many. */
  pruneDelivered(before: number): Promise<number>;
  /** Due pending deliveries of one webhook, oldest first, skipping ids already in flight. */
  claimDue(webhook: string, now: number, limit: number, exclude: ReadonlySet<string>): Promise<DeliveryRecord[]>;
  /** Earliest next_attempt_at among pending deliveries, or null. */
  nextDueAt(): Promise<number | null>;
  /**
   * Marks a delivery acknowledged (2xx) and, for a message, makes its
   * afterDelivery due on the server (`serverAck: 'due'`) or not needed ('none'),
   * in one transaction.
   */
  markDelivered(id: string, outcome: AttemptOutcome, serverAck: 'due' | 'none'): Promise<void>;
  markRetry(id: string, outcome: AttemptOutcome, nextAttemptAt: number): Promise<void>;
  /** Parks the delivery as failed (replayable). */
  markFailed(id: string, outcome: AttemptOutcome): Promise<void>;
  /**
   * message.received → message.failed when the raw could not be parsed; with
   * `payloadJson`, that body is stored and posted from then on (no re-parse).
   */
  setEvent(id: string, event: EventName, payloadJson?: string | null): Promise<void>;
  /**
   * An attempt that failed before anything was posted (the body could not be
   * built): counts the attempt and a render failure, due again at
   * `nextAttemptAt`. Returns the render failures so far.
   */
  markRenderFailed(id: string, outcome: AttemptOutcome, nextAttemptAt: number): Promise<number>;
  enqueueEvent(account: string, webhook: string, event: EventName, payload: Record<string, unknown>): Promise<string>;
  get(id: string): Promise<DeliveryRecord | null>;
  list(filter: { status?: DeliveryStatus; limit?: number }): Promise<DeliveryRecord[]>;
  /** Puts a failed (or any) delivery back in the queue, due now, with a fresh attempt budget. */
  retry(id: string, now: number): Promise<boolean>;
  retryAllFailed(now: number): Promise<number>;
  countByStatus(): Promise<Record<DeliveryStatus, number>>;
}

export interface MessageRepo {
  get(id: string): Promise<StoredMessageInfo | null>;
  getRaw(id: string): Promise<Buffer | null>;
  /** The row and its raw bytes in one read (the delivery worker's hot path). */
  getWithRaw(id: string): Promise<{ info: StoredMessageInfo; raw: Buffer } | null>;
  /** Loop guard: a stored message of this account by its Message-ID header. */
  findByMessageId(account: string, messageId: string): Promise<StoredMessageInfo | null>;
  /** Last message stored per account (for status). */
  lastReceivedAt(account: string): Promise<number | null>;
  /**
   * Retention: drops the raw bytes of messages received before `before`
   * whose every delivery was delivered and whose afterDelivery is applied;
   * the rows stay. Returns how many bodies were dropped.
   */
  pruneRaw(before: number): Promise<number>;
}

/** The write side of ingest: every method is one transaction. */
export interface IngestRepo {
  /** Stores messages and their deliveries (advancing IMAP cursors / POP3 UIDLs) in ONE transaction. */
  insertMessages(msgs: NewMessage[], now?: number): Promise<IngestResult[]>;
  getCursor(account: string, mailbox: string): Promise<ImapCursor | null>;
  resetCursor(account: string, mailbox: string, uidValidity: number): Promise<void>;
  knownUidls(account: string, uidls: string[]): Promise<Set<string>>;
  forgetUidlsExcept(account: string, present: string[]): Promise<number>;
  dueAcks(account: string, limit: number, now: number): Promise<DueAck[]>;
  /** 'done': applied on the server; 'due': failed, stays due and is retried at nextAt. */
  markAcks(ids: string[], state: 'done' | 'due', error: string | null, nextAt: number | null): Promise<void>;
}
