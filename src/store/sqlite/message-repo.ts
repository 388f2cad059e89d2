import type { MessageRepo, StoredMessageInfo } from '../messages.js';
import { originFields, type MessageOrigin } from '../origin.js';
import type { Db } from './db.js';
import { RAW_THREAD_THRESHOLD_BYTES, type RawReader } from './raw-reader.js';

/** The columns that hold a message's origin (one schema for every kind: see originColumns). */
export interface OriginRow {
  mailbox: string;
  uid: number | null;
  uid_validity: number | null;
  uidl: string | null;
}

/** IMAP rows have uid and uid_validity, POP3 rows a uidl (and the maildrop's mailbox name): the payload's flat fields. */
export function originColumns(origin: MessageOrigin): OriginRow {
  const { mailbox, uid, uidValidity, uidl } = originFields(origin);
  return { mailbox, uid, uid_validity: uidValidity, uidl };
}

/**
 * A row with a UIDL came over POP3; any other over IMAP. Nothing writes a
 * row with neither UIDL nor UID any more; one left by an old version reads
 * as UID 0 under UIDVALIDITY 0, as its id was derived, which names no
 * message on a server (its afterDelivery is skipped as stale).
 */
export function originOf(r: OriginRow): MessageOrigin {
  if (r.uidl !== null) return { kind: 'pop3', uidl: r.uidl };
  return { kind: 'imap', mailbox: r.mailbox, uid: r.uid ?? 0, uidValidity: r.uid_validity ?? 0 };
}

interface MessageRow extends OriginRow {
  id: string;
  account: string;
  message_id: string | null;
  size: number;
  received_at: number;
  auto_submitted: number;
  not_downloaded: string | null;
  conversation_id: string | null;
}

const INFO_COLUMNS = 'id, account, mailbox, uid, uid_validity, uidl, message_id, size, received_at, auto_submitted, not_downloaded, conversation_id';
const INFO_COLUMNS_OF_M = INFO_COLUMNS.split(', ').map((c) => `m.${c}`).join(', ');

function toInfo(r: MessageRow): StoredMessageInfo {
  return {
    id: r.id,
    account: r.account,
    origin: originOf(r),
    messageId: r.message_id,
    size: r.size,
    receivedAt: r.received_at,
    autoSubmitted: r.auto_submitted === 1,
    notDownloaded: r.not_downloaded,
    conversationId: r.conversation_id,
  };
}

/** Reads of stored messages, and retention of their raw bytes. */
export class SqliteMessageRepo implements MessageRepo {
  constructor(
    private readonly db: Db,
    private readonly rawReader: RawReader | null = null,
  ) {}

  async get(id: string): Promise<StoredMessageInfo | null> {
    const row = this.db.prepare(`SELECT ${INFO_COLUMNS} FROM messages WHERE id = ?`).get(id) as MessageRow | undefined;
    return row ? toInfo(row) : null;
  }

  async getRaw(id: string): Promise<Buffer | null> {
    const len = this.db.prepare('SELECT length(raw) AS n FROM message_raw WHERE id = ?').get(id) as { n: number } | undefined;
    if (!len) return null;
    return this.#readRaw(id, len.n);
  }

  async getWithRaw(id: string): Promise<{ info: StoredMessageInfo; raw: Buffer } | null> {
    // length() of a blob column is read from the record header, without loading the blob.
    const row = this.db
      .prepare(`SELECT ${INFO_COLUMNS_OF_M}, length(r.raw) AS raw_length FROM messages m JOIN message_raw r ON r.id = m.id WHERE m.id = ?`)
      .get(id) as (MessageRow & { raw_length: number }) | undefined;
    if (!row) return null;
    const raw = await this.#readRaw(id, row.raw_length);
    return raw ? { info: toInfo(row), raw } : null;
  }

  /** Large raw messages are read on the reader thread, so the event loop keeps running meanwhile. */
  async #readRaw(id: string, length: number): Promise<Buffer | null> {
    if (this.rawReader?.available && length >= RAW_THREAD_THRESHOLD_BYTES) return this.rawReader.read(id);
    const row = this.db.prepare('SELECT raw FROM message_raw WHERE id = ?').get(id) as { raw: Buffer } | undefined;
    return row?.raw ?? null;
  }

  async findByMessageId(account: string, messageId: string): Promise<StoredMessageInfo | null> {
    const row = this.db
      .prepare(`SELECT ${INFO_COLUMNS} FROM messages WHERE account = ? AND message_id = ? ORDER BY received_at DESC LIMIT 1`)
      .get(account, messageId) as MessageRow | undefined;
    return row ? toInfo(row) : null;
  }

  async conversationOf(messageIdKey: string): Promise<string | null> {
    // Both served by partial indexes on message_id_key (migration 0006).
    const received = this.db
      .prepare('SELECT conversation_id FROM messages WHERE message_id_key = ? AND conversation_id IS NOT NULL ORDER BY received_at, id LIMIT 1')
      .get(messageIdKey) as { conversation_id: string } | undefined;
    if (received) return received.conversation_id;
    const sent = this.db
      .prepare('SELECT conversation_id FROM outbox WHERE message_id_key = ? AND conversation_id IS NOT NULL ORDER BY created_at, id LIMIT 1')
      .get(messageIdKey) as { conversation_id: string } | undefined;
    return sent?.conversation_id ?? null;
  }

  async pruneRaw(before: number): Promise<number> {
    return this.db
      .prepare(
        `DELETE FROM message_raw WHERE id IN (
           SELECT m.id FROM messages m
           WHERE m.received_at < ? AND m.server_ack IN ('done', 'none')
             AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.message_ref = m.id AND d.status <> 'delivered'))`,
      )
      .run(before).changes;
  }

  async lastReceivedAt(account: string): Promise<number | null> {
    const row = this.db.prepare('SELECT MAX(received_at) AS t FROM messages WHERE account = ?').get(account) as {
      t: number | null;
    };
    return row.t;
  }
}
