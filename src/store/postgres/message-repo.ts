import type { MessageRepo, StoredMessageInfo } from '../messages.js';
import { originOf, type OriginRow } from '../sqlite/message-repo.js';
import type { PgDb, Queryable } from './db.js';

interface MessageRow extends OriginRow {
  id: string;
  account: string;
  message_id: string | null;
  size: number;
  received_at: number;
  auto_submitted: boolean;
  not_downloaded: string | null;
  conversation_id: string | null;
}

export const INFO_COLUMNS = 'id, account, mailbox, uid, uid_validity, uidl, message_id, size, received_at, auto_submitted, not_downloaded, conversation_id';
const INFO_COLUMNS_OF_M = INFO_COLUMNS.split(', ').map((c) => `m.${c}`).join(', ');

/**
 * Raw bytes come over the wire as hex text (twice their size, then decoded):
 * a body up to this size is read in the row's own query; a larger one in
 * slices of this size into one buffer, so a 100 MB message never becomes a
 * 200 MB string.
 */
export const RAW_CHUNK_BYTES = 1024 * 1024;

function toInfo(r: MessageRow): StoredMessageInfo {
  return {
    id: r.id,
    account: r.account,
    origin: originOf(r),
    messageId: r.message_id,
    size: r.size,
    receivedAt: r.received_at,
    autoSubmitted: r.auto_submitted,
    notDownloaded: r.not_downloaded,
    conversationId: r.conversation_id,
  };
}

/** Raw bytes of `length` from `table` (message_raw, outbox_raw), read in slices into one buffer. */
export async function readRawChunked(c: Queryable, id: string, length: number, table: 'message_raw' | 'outbox_raw' = 'message_raw'): Promise<Buffer | null> {
  const out = Buffer.allocUnsafe(length);
  for (let at = 0; at < length; at += RAW_CHUNK_BYTES) {
    // substring on bytea counts from 1.
    const { rows } = await c.query<{ part: Buffer | null }>(`SELECT substring(raw FROM $2 FOR $3) AS part FROM ${table} WHERE id = $1`, [
      id,
      at + 1,
      RAW_CHUNK_BYTES,
    ]);
    const part = rows[0]?.part;
    if (!part) return null; // removed by retention meanwhile
    part.copy(out, at);
  }
  return out;
}

/** Reads of stored messages, and retention of their raw bytes. */
export class PgMessageRepo implements MessageRepo {
  constructor(private readonly db: PgDb) {}

  async get(id: string): Promise<StoredMessageInfo | null> {
    const [row] = await this.db.rows<MessageRow>(`SELECT ${INFO_COLUMNS} FROM messages WHERE id = $1`, [id]);
    return row ? toInfo(row) : null;
  }

  async getRaw(id: string): Promise<Buffer | null> {
    const [row] = await this.db.rows<{ n: number; raw: Buffer | null }>(
      `SELECT octet_length(raw) AS n, CASE WHEN octet_length(raw) <= $2 THEN raw END AS raw FROM message_raw WHERE id = $1`,
      [id, RAW_CHUNK_BYTES],
    );
    if (!row) return null;
    if (row.raw) return row.raw;
    return this.db.tx((c) => readRawChunked(c, id, row.n));
  }

  async getWithRaw(id: string): Promise<{ info: StoredMessageInfo; raw: Buffer } | null> {
    const [row] = await this.db.rows<MessageRow & { raw_length: number; raw: Buffer | null }>(
      {
        name: 'mailgate_get_with_raw',
        text: `SELECT ${INFO_COLUMNS_OF_M}, octet_length(r.raw) AS raw_length, CASE WHEN octet_length(r.raw) <= $2 THEN r.raw END AS raw
               FROM messages m JOIN message_raw r ON r.id = m.id WHERE m.id = $1`,
      },
      [id, RAW_CHUNK_BYTES],
    );
    if (!row) return null;
    const raw = row.raw ?? (await this.db.tx((c) => readRawChunked(c, id, row.raw_length)));
    return raw ? { info: toInfo(row), raw } : null;
  }

  async findByMessageId(account: string, messageId: string): Promise<StoredMessageInfo | null> {
    const [row] = await this.db.rows<MessageRow>(
      `SELECT ${INFO_COLUMNS} FROM messages WHERE account = $1 AND message_id = $2 ORDER BY received_at DESC LIMIT 1`,
      [account, messageId],
    );
    return row ? toInfo(row) : null;
  }

  async pruneRaw(before: number): Promise<number> {
    const r = await this.db.run(
      `DELETE FROM message_raw WHERE id IN (
         SELECT m.id FROM messages m
         WHERE m.received_at < $1 AND m.server_ack IN ('done', 'none')
           AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.message_ref = m.id AND d.status <> 'delivered'))`,
      [before],
    );
    return r.rowCount ?? 0;
  }

  async conversationOf(messageIdKey: string): Promise<string | null> {
    // Received first, then sent; both served by partial indexes on message_id_key.
    const [row] = await this.db.rows<{ c: string | null }>(
      `SELECT COALESCE(
         (SELECT conversation_id FROM messages WHERE message_id_key = $1 AND conversation_id IS NOT NULL ORDER BY received_at, id LIMIT 1),
         (SELECT conversation_id FROM outbox WHERE message_id_key = $1 AND conversation_id IS NOT NULL ORDER BY created_at, id LIMIT 1)) AS c`,
      [messageIdKey],
    );
    return row?.c ?? null;
  }

  async lastReceivedAt(account: string): Promise<number | null> {
    const [row] = await this.db.rows<{ t: number | null }>('SELECT max(received_at) AS t FROM messages WHERE account = $1', [account]);
    return row?.t ?? null;
  }
}
