import type { DueAck, ImapCursor, IngestRepo, IngestResult, NewMessage } from '../messages.js';
import { deliveryIdForMessage, messageIdFor } from '../origin.js';
import type { Db } from './db.js';
import { originColumns, originOf, type OriginRow } from './message-repo.js';

/** SQLite limits bound parameters per statement; chunk IN lists below it. */
const IN_CHUNK = 500;

/** Ingest's writes (messages with their deliveries, cursors, UIDLs) and the afterDelivery queue. */
export class SqliteIngestRepo implements IngestRepo {
  readonly #insertMessage;
  readonly #insertRaw;
  readonly #insertDelivery;
  readonly #findSameMessage;
  readonly #moveMessage;
  readonly #advanceCursor;
  readonly #insertUidl;

  constructor(private readonly db: Db) {
    this.#insertMessage = db.prepare(
      `INSERT OR IGNORE INTO messages (id, account, mailbox, uid, uid_validity, uidl, message_id, size, internal_date,
         received_at, auto_submitted, not_downloaded, server_ack, message_id_key, conversation_id)
       VALUES (@id, @account, @mailbox, @uid, @uid_validity, @uidl, @messageId, @size, @internalDate, @now, @autoSubmitted,
         @notDownloaded, CASE WHEN @notDownloaded IS NULL THEN 'pending' ELSE 'none' END, @messageIdKey, @conversationId)`,
    );
    this.#insertRaw = db.prepare('INSERT INTO message_raw (id, raw) VALUES (?, ?)');
    this.#insertDelivery = db.prepare(
      `INSERT OR IGNORE INTO deliveries (id, account, webhook, event, message_ref, status, attempts, next_attempt_at,
         created_at, updated_at)
       VALUES (@id, @account, @webhook, @event, @messageRef, 'pending', 0, @now, @now, @now)`,
    );
    // After a UIDVALIDITY change the same message comes back under new UIDs:
    // recognise it by Message-ID and size within the mailbox, under another
    // UIDVALIDITY, or under this one at this UID (it was recognised before
    // and took this origin). Served by the messages_dedupe index.
    this.#findSameMessage = db.prepare(
      `SELECT id, uid, uid_validity FROM messages WHERE account = @account AND message_id = @messageId AND size = @size
         AND mailbox = @mailbox AND uid_validity IS NOT NULL AND (uid_validity <> @uid_validity OR uid = @uid)
       ORDER BY received_at, id LIMIT 1`,
    );
    // It is now at its new UID: afterDelivery (and the payload) must use that one.
    this.#moveMessage = db.prepare('UPDATE messages SET uid = ?, uid_validity = ? WHERE id = ?');
    this.#advanceCursor = db.prepare(
      `INSERT INTO cursors (account, mailbox, uid_validity, last_uid, updated_at) VALUES (@account, @mailbox, @uidValidity, @uid, @now)
       ON CONFLICT(account, mailbox) DO UPDATE SET
         last_uid = CASE WHEN cursors.uid_validity = excluded.uid_validity THEN MAX(cursors.last_uid, excluded.last_uid) ELSE excluded.last_uid END,
         uid_validity = excluded.uid_validity, updated_at = excluded.updated_at`,
    );
    this.#insertUidl = db.prepare(`INSERT OR IGNORE INTO pop3_uidls (account, uidl, message_ref, seen_at) VALUES (?, ?, ?, ?)`);
  }

  async insertMessages(msgs: NewMessage[], now: number): Promise<IngestResult[]> {
    return this.db.transaction((): IngestResult[] => msgs.map((m) => this.#insertOne(m, now))).immediate();
  }

  #insertOne(m: NewMessage, now: number): IngestResult {
    const origin = m.origin;
    const size = m.size ?? m.raw.length;
    if (origin.kind === 'imap' && m.messageId !== null) {
      const same = this.#findSameMessage.get({ account: m.account, messageId: m.messageId, size, ...originColumns(origin) }) as
        | { id: string; uid: number; uid_validity: number }
        | undefined;
      if (same) {
        if (same.uid !== origin.uid || same.uid_validity !== origin.uidValidity) this.#moveMessage.run(origin.uid, origin.uidValidity, same.id);
        this.#advance(m, now);
        return { id: same.id, duplicate: true };
      }
    }
    const id = messageIdFor(m);
    const inserted = this.#insertMessage.run({
      id,
      account: m.account,
      ...originColumns(origin),
      messageId: m.messageId,
      size,
      internalDate: m.internalDate,
      now,
      autoSubmitted: m.autoSubmitted ? 1 : 0,
      notDownloaded: m.notDownloaded ?? null,
      messageIdKey: m.messageIdKey ?? null,
      conversationId: m.conversationId ?? null,
    });
    const duplicate = inserted.changes === 0;
    if (!duplicate) {
      this.#insertRaw.run(id, m.raw);
      // A message not downloaded is announced as message.failed (reason too_large).
      const event = m.notDownloaded ? 'message.failed' : 'message.received';
      this.#insertDelivery.run({ id: deliveryIdForMessage(id), account: m.account, webhook: m.webhook, messageRef: id, event, now });
    }
    this.#advance(m, now, id);
    return { id, duplicate };
  }

  /** The IMAP cursor moves to the message's UID; a POP3 UIDL is recorded as taken. */
  #advance(m: NewMessage, now: number, id?: string): void {
    const origin = m.origin;
    switch (origin.kind) {
      case 'imap':
        this.#advanceCursor.run({ account: m.account, mailbox: origin.mailbox, uidValidity: origin.uidValidity, uid: origin.uid, now });
        break;
      case 'pop3':
        this.#insertUidl.run(m.account, origin.uidl, id ?? null, now);
        break;
    }
  }

  async getCursor(account: string, mailbox: string): Promise<ImapCursor | null> {
    const row = this.db
      .prepare('SELECT uid_validity, last_uid FROM cursors WHERE account = ? AND mailbox = ?')
      .get(account, mailbox) as { uid_validity: number; last_uid: number } | undefined;
    return row ? { uidValidity: row.uid_validity, lastUid: row.last_uid } : null;
  }

  async resetCursor(account: string, mailbox: string, uidValidity: number, now: number, lastUid = 0): Promise<void> {
    this.db
      .prepare(
        `INSERT INTO cursors (account, mailbox, uid_validity, last_uid, updated_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT(account, mailbox) DO UPDATE SET uid_validity = excluded.uid_validity, last_uid = excluded.last_uid, updated_at = excluded.updated_at`,
      )
      .run(account, mailbox, uidValidity, lastUid, now);
  }

  async skipUidls(account: string, uidls: string[], now: number): Promise<void> {
    this.db.transaction(() => {
      for (const u of uidls) this.#insertUidl.run(account, u, null, now);
    })();
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
    const rows = this.db
      .prepare(
        `SELECT id, mailbox, uid, uid_validity, uidl FROM messages
         WHERE account = ? AND server_ack = 'due' AND (ack_next_at IS NULL OR ack_next_at <= ?)
         ORDER BY received_at, id LIMIT ?`,
      )
      .all(account, now, limit) as (OriginRow & { id: string })[];
    return rows.map((r) => ({ id: r.id, origin: originOf(r) }));
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
}
