import type { DueAck, ImapCursor, IngestResult, NewMessage } from '../store/messages.js';

/**
 * The boundary between mail-server connectors (IMAP, POP3) and the durable
 * ingest pipeline. A connector fetches, hands each raw message to the
 * Ingestor (which stores it and its delivery in one transaction), and later
 * applies `afterDelivery` on the server for messages the AckQueue reports as
 * due (their webhook answered 2xx). Nothing is flagged, moved or deleted on
 * the server before that.
 */

export type ConnectorState = 'connecting' | 'idle' | 'polling' | 'backoff' | 'error' | 'stopped';

/**
 * A message as a connector fetched it. Set `notDownloaded` when the body was
 * not downloaded (over maxMessageSize, or its download kept failing): why,
 * in an admin's words; `raw` is then the header block only and `size` the
 * size the server reported.
 */
export type FetchedMessage = Pick<NewMessage, 'account' | 'origin' | 'raw' | 'size'> & {
  internalDate: Date | null;
  notDownloaded?: string;
};

export interface Ingestor {
  /**
   * Durably stores the message and queues its webhook delivery; for IMAP the
   * mailbox cursor advances to `uid` in the same transaction. Resolves only
   * after the commit.
   */
  ingest(msg: FetchedMessage): Promise<IngestResult>;
  /** Several messages in one transaction (faster bulk sync); same guarantees. */
  ingestMany(msgs: FetchedMessage[]): Promise<IngestResult[]>;
  /** IMAP: where to resume in a mailbox, or null on first sync. */
  getCursor(account: string, mailbox: string): Promise<ImapCursor | null>;
  /**
   * IMAP: the mailbox's UIDVALIDITY changed; UIDs restart. Resets the cursor;
   * later ingests dedupe on Message-ID + size within the mailbox so nothing is
   * announced twice.
   */
  resetCursor(account: string, mailbox: string, uidValidity: number, lastUid?: number): Promise<void>;
  /** POP3: which of these UIDLs were already taken. */
  knownUidls(account: string, uidls: string[]): Promise<Set<string>>;
  /**
   * POP3 `initialSync`: true until the account's first session was recorded
   * (firstPop3SessionDone) and none of `present` was taken before (an
   * account that predates initialSync has a cursor already).
   */
  isFirstPop3Session(account: string, present: string[]): Promise<boolean>;
  /** POP3: the first session is over; with `skip`, those UIDLs are recorded as taken and never delivered (`new`). */
  firstPop3SessionDone(account: string, skip: string[]): Promise<void>;
  /** POP3: forget UIDLs no longer on the server (pruning the seen table). */
  forgetUidlsExcept(account: string, present: string[]): Promise<number>;
}

export interface AckQueue {
  /** Messages of this account whose webhook acknowledged them and whose afterDelivery is not yet applied. */
  due(account: string, limit: number): Promise<DueAck[]>;
  /**
   * Whether this node may act on the server for the account right now (it
   * holds the account's lease and it has not run out): checked just before
   * a command that flags, moves or deletes.
   */
  mayAct(account: string): boolean;
  /** Applied on the server; refused (LEASE_LOST) when this node no longer holds the account. */
  markDone(account: string, ids: string[]): Promise<void>;
  /** Applying failed (server unreachable…); it stays due and the account is woken again when the retry is due. */
  markFailed(account: string, ids: string[], error: string): Promise<void>;
  /** Called (synchronously, cheap) when an account has new due acks. Returns an unsubscribe. */
  onDue(account: string, listener: () => void): () => void;
}

export interface ConnectorStatus {
  state: ConnectorState;
  lastSuccessAt: Date | null;
  lastError: string | null;
}

export interface IncomingConnector {
  readonly account: string;
  start(): Promise<void>;
  /** Stops promptly (closes sockets; in-flight work ends at a safe point). */
  stop(): Promise<void>;
  status(): ConnectorStatus;
  /** Logs in once with the current token and logs out: `mailgate test`. */
  test(): Promise<{ ok: boolean; error: string | null; code: string | null }>;
}
