import { createHash } from 'node:crypto';
import type { DueAck, ImapCursor, IngestResult } from '../../incoming/source.js';
import type { IngestRepo, NewMessage, MessageRepo, StoredMessageInfo } from '../ingest.js';
import type { Db } from './db.js';
import { RAW_THREAD_THRESHOLD_BYTES, type RawReader } from './raw-reader.js';

/**
 * The id of a message is derived from where it came from, so that a crash
 * after the commit and a re-fetch find the same row (and receivers get the
 * same `id`, as the contract promises).
 */
export function messageIdFor(m: Pick<NewMessage, 'account' | 'mailbox' | 'uid' | 'uidValidity' | 'uidl'>): string {
  const origin =
    m.uidl !== null
      ? `pop3\0${m.account}\0${m.uidl}`
      : `imap\0${m.account}\0${m.mailbox}\0${m.uidValidity ?? 0}\0${m.uid ?? 0}`;
  return 'msg_' + createHash('sha256').update(origin).digest('hex').slice(0, 32);
}

export function deliveryIdForMessage(messageId: string): string {
  return 'dlv_' + messageId.slice(4);
}

interface MessageRow {
  id: string;
  account: string;
  mailbox: string;
  uid: number | null;
  uid_validity: number | null;
  uidl: string | null;
  message_id: string | null;
  size: number;
  received_at: number;
  auto_submitted: number;
  not_downloaded: string | null;
}

const INFO_COLUMNS = 'id, account, mailbox, uid, uid_validity, uidl, message_id, size, received_at, auto_submitted, not_downloaded';
const INFO_COLUMNS_OF_M = INFO_COLUMNS.split(', ').map((c) => `m.${c}`).join(', ');

function toInfo(r: MessageRow): StoredMessageInfo {
  return {
    id: r.id,
    account: r.account,
    mailbox: r.mailbox,
    uid: r.uid,
    uidValidity: r.uid_validity,
    uidl: r.uidl,
    messageId: r.message_id,
    size: r.size,
    receivedAt: r.received_at,
    autoSubmitted: r.auto_submitted === 1,
    notDownloaded: r.not_downloaded,
  };
}

/** SQLite limits bound parameters per statement; chunk IN lists below it. */
const IN_CHUNK = 500;

export class SqliteIngestRepo implements MessageRepo, IngestRepo {
  readonly #insertMessage;
  readonly #insertRaw;
  readonly #insertDelivery;
  readonly #findDuplicate;
  readonly #advanceCursor;
  readonly #insertUidl;

  constructor(
    private readonly db: Db,
    private readonly rawReader: RawReader | null = null,
  ) {
    this.#insertMessage = db.prepare(
      `INSERT OR IGNORE INTO messages (id, account, mailbox, uid, uid_validity, uidl, message_id, size, internal_date,
         received_at, auto_submitted, not_downloaded, server_ack)
       VALUES (@id, @account, @mailbox, @uid, @uidValidity, @uidl, @messageId, @size, @internalDate, @now, @autoSubmitted,
         @notDownloaded, CASE WHEN @notDownloaded IS NULL THEN 'pending' ELSE 'none' END)`,
    );
    this.#insertRaw = db.prepare('INSERT INTO message_raw (id, raw) VALUES (?, ?)');
    this.#insertDelivery = db.prepare(
      `INSERT OR IGNORE INTO deliveries (id, account, webhook, event, message_ref, status, attempts, next_attempt_at,
         created_at, updated_at)
       VALUES (@id, @account, @webhook, @event, @messageRef, 'pending', 0, @now, @now, @now)`,
    );
    // After a UIDVALIDITY change the same message comes back under new UIDs:
    // recognise it by Message-ID and size within the mailbox.
    this.#findDuplicate = db.prepare(
      `SELECT id FROM messages WHERE account = ? AND mailbox = ? AND message_id = ? AND size = ?
         AND uid_validity IS NOT NULL AND uid_validity <> ? LIMIT 1`,
    );
    this.#advanceCursor = db.prepare(
      `INSERT INTO cursors (account, mailbox, uid_validity, last_uid, updated_at) VALUES (@account, @mailbox, @uidValidity, @uid, @now)
       ON CONFLICT(account, mailbox) DO UPDATE SET
         last_uid = CASE WHEN cursors.uid_validity = excluded.uid_validity THEN MAX(cursors.last_uid, excluded.last_uid) ELSE excluded.last_uid END,
         uid_validity = excluded.uid_validity, updated_at = excluded.updated_at`,
    );
    this.#insertUidl = db.prepare(
      `INSERT OR IGNORE INTO pop3_uidls (account, uidl, message_ref, seen_at) VALUES (?, ?, ?, ?)`,
    );
  }

  /** Stores messages and their deliveries (and advances cursors) in ONE transaction. */
  async insertMessages(msgs: NewMessage[], now = Date.now()): Promise<IngestResult[]> {
    return this.db
      .transaction((): IngestResult[] => {
        const results: IngestResult[] = [];
        for (const m of msgs) {
          let id = messageIdFor(m);
          let duplicate = false;
          if (m.uid !== null && m.uidValidity !== null && m.messageId !== null) {
            const dup = this.#findDuplicate.get(m.account, m.mailbox, m.messageId, m.size ?? m.raw.length, m.uidValidity) as
              | { id: string }
              | undefined;
            if (dup) {
              id = dup.id;
              duplicate = true;
            }
          }
          if (!duplicate) {
            const inserted = this.#insertMessage.run({
              id,
              account: m.account,
              mailbox: m.mailbox,
              uid: m.uid,
              uidValidity: m.uidValidity,
              uidl: m.uidl,
              messageId: m.messageId,
              size: m.size ?? m.raw.length,
              internalDate: m.internalDate,
              now,
              autoSubmitted: m.autoSubmitted ? 1 : 0,
              notDownloaded: m.notDownloaded ?? null,
            });
            duplicate = inserted.changes === 0;
            if (!duplicate) {
              this.#insertRaw.run(id, m.raw);
              // A message not downloaded is announced as message.failed (reason too_large).
              const event = m.notDownloaded ? 'message.failed' : 'message.received';
              this.#insertDelivery.run({ id: deliveryIdForMessage(id), account: m.account, webhook: m.webhook, messageRef: id, event, now });
            }
          }
          if (m.uid !== null && m.uidValidity !== null) {
            this.#advanceCursor.run({ account: m.account, mailbox: m.mailbox, uidValidity: m.uidValidity, uid: m.uid, now });
          }
          if (m.uidl !== null) this.#insertUidl.run(m.account, m.uidl, id, now);
          results.push({ id, duplicate });
        }
        return results;
      })
      .immediate();
  }

  async getCursor(account: string, mailbox: string): Promise<ImapCursor | null> {
    const row = this.db
      .prepare('SELECT uid_validity, last_uid FROM cursors WHERE account = ? AND mailbox = ?')
      .get(account, mailbox) as { uid_validity: number; last_uid: number } | undefined;
    return row ? { uidValidity: row.uid_validity, lastUid: row.last_uid } : null;
  }

  async resetCursor(account: string, mailbox: string, uidValidity: number): Promise<void> {
    this.db
      .prepare(
        `INSERT INTO cursors (account, mailbox, uid_validity, last_uid, updated_at) VALUES (?, ?, ?, 0, ?)
         ON CONFLICT(account, mailbox) DO UPDATE SET uid_validity = excluded.uid_validity, last_uid = 0, updated_at = excluded.updated_at`,
      )
      .run(account, mailbox, uidValidity, Date.now());
  }

  async knownUidls(account: string, uidls: string[]): Promise<Set<string>> {
    const known = new Set<string>();
    for (let i = 0; i < uidls.length; i += IN_CHUNK) {
      const chunk = uidls.slice(i, i + IN_CHUNK);
      const rows = this.db
        .prepare(`SELECT uidl FROM pop3_uidls WHERE account = ? AND uidl IN (${chunk.map(() => '?').join(',')})`)
        .all(account, ...chunk) as { uidl: string }[];
      for (const r of rows) known.add(r.uidl);
    }
    return known;
  }

  async forgetUidlsExcept(account: string, present: string[]): Promise<number> {
    return this.db
      .transaction(() => {
        this.db.exec('CREATE TEMP TABLE IF NOT EXISTS present_uidls (uidl TEXT PRIMARY KEY)');
        this.db.exec('DELETE FROM present_uidls');
        const ins = this.db.prepare('INSERT OR IGNORE INTO present_uidls (uidl) VALUES (?)');
        for (const u of present) ins.run(u);
        // Only forget UIDLs whose message is fully handled: a UIDL that vanished
        // before its ack was applied must not be re-taken if it reappears.
        return this.db
          .prepare(
            `DELETE FROM pop3_uidls WHERE account = ? AND uidl NOT IN (SELECT uidl FROM present_uidls)
               AND (message_ref IS NULL OR message_ref IN (SELECT id FROM messages WHERE server_ack IN ('done', 'none')))`,
          )
          .run(account).changes;
      })
      .immediate();
  }

  // ---- acks (afterDelivery on the server) ----

  async dueAcks(account: string, limit: number, now: number): Promise<DueAck[]> {
    return this.db
      .prepare(
        `SELECT id, mailbox, uid, uid_validity, uidl FROM messages
         WHERE account = ? AND server_ack = 'due' AND (ack_next_at IS NULL OR ack_next_at <= ?)
         ORDER BY received_at, id LIMIT ?`,
      )
      .all(account, now, limit)
      .map((r) => {
        const row = r as { id: string; mailbox: string; uid: number | null; uid_validity: number | null; uidl: string | null };
        return { id: row.id, mailbox: row.mailbox, uid: row.uid, uidValidity: row.uid_validity, uidl: row.uidl };
      });
  }

  async markAcks(ids: string[], state: 'done' | 'due', error: string | null, nextAt: number | null): Promise<void> {
    this.db
      .transaction(() => {
        const stmt = this.db.prepare(
          state === 'done'
            ? `UPDATE messages SET server_ack = 'done', ack_error = NULL, ack_next_at = NULL WHERE id = ?`
            : `UPDATE messages SET ack_attempts = ack_attempts + 1, ack_error = ?, ack_next_at = ? WHERE id = ?`,
        );
        for (const id of ids) {
          if (state === 'done') stmt.run(id);
          else stmt.run(error, nextAt, id);
        }
      })
      .immediate();
  }

  // ---- MessageRepo ----

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
