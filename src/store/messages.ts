import type { MessageOrigin } from './origin.js';

/** A message to store, with what its delivery and the send loop guard need to know. */
export interface NewMessage {
  account: string;
  origin: MessageOrigin;
  raw: Buffer;
  /** The server's date for the message (IMAP INTERNALDATE), epoch ms. */
  internalDate: number | null;
  /** The Message-ID header, with angle brackets. */
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
  /** Its Message-ID normalised (parse/conversation.ts messageIdKey), for MessageRepo.conversationOf; null when it has none. */
  messageIdKey?: string | null;
  /** The `conversationId` the caller resolved for it (kept with the message, the same on every delivery). */
  conversationId?: string | null;
}

export interface StoredMessageInfo {
  id: string;
  account: string;
  /**
   * Where the message is now. A message recognised again after a UIDVALIDITY
   * change (IngestRepo.insertMessages) carries its new IMAP origin here,
   * while its id stays the one derived from where it was first seen.
   */
  origin: MessageOrigin;
  messageId: string | null;
  size: number;
  receivedAt: number;
  autoSubmitted: boolean;
  /** Why the body was not downloaded (NewMessage.notDownloaded), or null. */
  notDownloaded: string | null;
  /** NewMessage.conversationId; null for a message stored without one. */
  conversationId: string | null;
}

export interface IngestResult {
  /** Stable mailgate id of the message (same id after any crash/re-fetch). */
  id: string;
  /** True when the message was already stored (re-fetch after a crash, UIDVALIDITY re-scan). */
  duplicate: boolean;
}

/** IMAP: how far a mailbox was read, under which UIDVALIDITY. */
export interface ImapCursor {
  uidValidity: number;
  lastUid: number;
}

/** A message whose webhook acknowledged it and whose afterDelivery is still to be done on the server. */
export interface DueAck {
  id: string;
  origin: MessageOrigin;
}

export interface MessageRepo {
  get(id: string): Promise<StoredMessageInfo | null>;
  getRaw(id: string): Promise<Buffer | null>;
  /** The row and its raw bytes in one read (the delivery worker's hot path). */
  getWithRaw(id: string): Promise<{ info: StoredMessageInfo; raw: Buffer } | null>;
  /** Loop guard: the latest stored message (by receivedAt) of this account with this Message-ID header. */
  findByMessageId(account: string, messageId: string): Promise<StoredMessageInfo | null>;
  /**
   * The conversationId of a stored message whose normalised Message-ID
   * (NewMessage.messageIdKey, NewOutboxItem.messageIdKey) is `messageIdKey`:
   * a received message of any account, else a message queued through the
   * send API or the SMTP relay; the earliest stored when several. Null when none is known
   * (or it was stored without a conversation).
   */
  conversationOf(messageIdKey: string): Promise<string | null>;
  /** Last message stored per account (for status). */
  lastReceivedAt(account: string): Promise<number | null>;
  /**
   * Retention: drops the raw bytes of messages received before `before`
   * whose every delivery was delivered and whose afterDelivery is applied
   * (or not needed); the rows stay, so deduplication and the loop guard keep
   * working. Returns how many bodies were dropped.
   */
  pruneRaw(before: number): Promise<number>;
}

/**
 * The write side of ingest, and the afterDelivery queue. Every method is
 * one transaction. What a message's server-side state goes through:
 * `pending` (stored, webhook not yet acknowledged) → `due`
 * (DeliveryRepo.markDelivered with serverAck 'due') → `done` (markAcks);
 * or `none` when nothing is to be done on the server (serverAck 'none', or
 * a message that was not downloaded).
 */
export interface IngestRepo {
  /**
   * Stores the messages, their raw bytes and one pending delivery each
   * (message.received; message.failed for one not downloaded, due at `now`),
   * records POP3 UIDLs and advances IMAP cursors (to the highest UID stored
   * per account and mailbox, never backwards), all in ONE unit: after a
   * failure nothing of the batch is stored. Results come in input order.
   *
   * A message already stored is a duplicate: its id, nothing changed, no
   * second delivery. That covers a re-fetch of the same origin (crash after
   * the commit, a repeat inside one batch, two stores at once) and, for IMAP,
   * the same message coming back under a new UIDVALIDITY: a stored message
   * of the same account and mailbox with the same Message-ID and size, under
   * another UIDVALIDITY, is that message. It then takes the new origin (so
   * its afterDelivery is applied where the message is now) and keeps its id.
   */
  insertMessages(msgs: NewMessage[], now: number): Promise<IngestResult[]>;
  getCursor(account: string, mailbox: string): Promise<ImapCursor | null>;
  /**
   * The mailbox's UIDVALIDITY changed: its cursor starts over at UID 0
   * (created when missing). With `lastUid`, it is set there instead: the
   * first sync of a mailbox (`initialSync: new | unseen`) records how far
   * the mail that is left alone goes.
   */
  resetCursor(account: string, mailbox: string, uidValidity: number, now: number, lastUid?: number): Promise<void>;
  /** POP3: which of these UIDLs were already taken (any length of list). */
  knownUidls(account: string, uidls: string[]): Promise<Set<string>>;
  /**
   * POP3 `initialSync: new`: records these UIDLs as taken without a message
   * (never delivered, never deleted); forgetUidlsExcept forgets them once
   * they are gone from the server. Any length of list; one unit.
   */
  skipUidls(account: string, uidls: string[], now: number): Promise<void>;
  /**
   * POP3: forgets the account's UIDLs that are not in `present` (gone from
   * the server), but only those whose message is fully handled (server
   * state `done` or `none`): a UIDL that vanished before its ack was applied
   * must not be taken again if it reappears. Returns how many were forgotten.
   */
  forgetUidlsExcept(account: string, present: string[]): Promise<number>;
  /** Due acks of one account whose retry time (markAcks) has come, oldest received first (then by id), at most `limit`. */
  dueAcks(account: string, limit: number, now: number): Promise<DueAck[]>;
  /**
   * 'done': applied on the server (or nothing left to do there); 'due': it
   * failed, stays due with `error`, and is listed again from `nextAt` (at
   * once when null). Unknown ids are ignored.
   */
  markAcks(ids: string[], state: 'done' | 'due', error: string | null, nextAt: number | null): Promise<void>;
}
