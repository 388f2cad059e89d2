import { MailgateError } from '../../errors.js';
import type { Fence } from '../cluster.js';
import type { DueAck, ImapCursor, IngestRepo, IngestResult, NewMessage } from '../messages.js';
import { deliveryIdForMessage, messageIdFor } from '../origin.js';
import { originColumns, originOf, type OriginRow } from '../sqlite/message-repo.js';
import { assertFence, checkFenceAccount } from './cluster-repos.js';
import type { PgDb, Queryable } from './db.js';

/**
 * One statement per message (one round trip): the UIDVALIDITY-change
 * recognition (a stored message of the same account and mailbox with this
 * Message-ID and size, under another UIDVALIDITY or already moved to this
 * UID; it takes the new origin), else the message with its raw bytes and its
 * delivery, and the cursor (IMAP, never backwards) or the UIDL (POP3). The
 * CTEs share one snapshot; each writes rows the others do not touch.
 */
const INSERT_ONE = `
WITH same AS (
  SELECT id, uid, uid_validity FROM messages
  WHERE $15::boolean AND account = $2 AND message_id = $7 AND size = $8 AND mailbox = $3
    AND uid_validity IS NOT NULL AND (uid_validity <> $5 OR uid = $4)
  ORDER BY received_at, id LIMIT 1
), moved AS (
  UPDATE messages SET uid = $4, uid_validity = $5
  WHERE id = (SELECT id FROM same) AND (uid IS DISTINCT FROM $4 OR uid_validity IS DISTINCT FROM $5)
), ins AS (
  INSERT INTO messages (id, account, mailbox, uid, uid_validity, uidl, message_id, size, internal_date, received_at,
    auto_submitted, not_downloaded, server_ack, message_id_key, conversation_id)
  SELECT $1::text, $2::text, $3::text, $4::bigint, $5::bigint, $6::text, $7::text, $8::bigint, $9::bigint, $10::bigint,
    $11::boolean, $12::text, CASE WHEN $12::text IS NULL THEN 'pending' ELSE 'none' END, $17::text, $18::text
  WHERE NOT EXISTS (SELECT 1 FROM same)
  ON CONFLICT (id) DO NOTHING
  RETURNING id
), raw AS (
  INSERT INTO message_raw (id, raw) SELECT id, $13::bytea FROM ins
), dlv AS (
  INSERT INTO deliveries (id, account, webhook, event, message_ref, status, attempts, next_attempt_at, created_at, updated_at)
  SELECT $14::text, $2::text, $16::text, CASE WHEN $12::text IS NULL THEN 'message.received' ELSE 'message.failed' END, id, 'pending', 0, $10, $10, $10
  FROM ins
  ON CONFLICT DO NOTHING
), cur AS (
  INSERT INTO cursors (account, mailbox, uid_validity, last_uid, updated_at)
  SELECT $2::text, $3::text, $5::bigint, $4::bigint, $10::bigint WHERE $5::bigint IS NOT NULL
  ON CONFLICT (account, mailbox) DO UPDATE SET
    last_uid = CASE WHEN cursors.uid_validity = excluded.uid_validity THEN GREATEST(cursors.last_uid, excluded.last_uid) ELSE excluded.last_uid END,
    uid_validity = excluded.uid_validity, updated_at = excluded.updated_at
), uidl AS (
  INSERT INTO pop3_uidls (account, uidl, message_ref, seen_at)
  SELECT $2::text, $6::text, $1::text, $10::bigint WHERE $6::text IS NOT NULL
  ON CONFLICT DO NOTHING
)
SELECT (SELECT id FROM same) AS same_id, (SELECT id FROM ins) AS new_id`;

/** Ingest's writes (messages with their deliveries, cursors, UIDLs) and the afterDelivery queue. */
export class PgIngestRepo implements IngestRepo {
  constructor(private readonly db: PgDb) {}

  async insertMessages(msgs: NewMessage[], now: number, fence?: Fence): Promise<IngestResult[]> {
    if (fence) {
      const other = msgs.find((m) => m.account !== fence.account);
      if (other) throw new MailgateError('BAD_REQUEST', `a batch fenced for account ${fence.account} holds a message of account ${other.account}`);
    }
    if (msgs.length === 0 && !fence) return [];
    return this.db.tx(async (c) => {
      if (fence) await assertFence(c, fence);
      // One ingest per account at a time, across every store: the Message-ID
      // recognition reads before it writes, and two batches taking the same
      // messages in another order would otherwise deadlock.
      const accounts = [...new Set(msgs.map((m) => m.account))].sort();
      await c.query(`SELECT pg_advisory_xact_lock(hashtextextended('mailgate.ingest:' || a, 0)) FROM unnest($1::text[]) AS a`, [accounts]);
      const out: IngestResult[] = [];
      for (const m of msgs) out.push(await insertOne(c, m, now));
      return out;
    });
  }

  async getCursor(account: string, mailbox: string): Promise<ImapCursor | null> {
    const [row] = await this.db.rows<{ uid_validity: number; last_uid: number }>(
      'SELECT uid_validity, last_uid FROM cursors WHERE account = $1 AND mailbox = $2',
      [account, mailbox],
    );
    return row ? { uidValidity: row.uid_validity, lastUid: row.last_uid } : null;
  }

  async resetCursor(account: string, mailbox: string, uidValidity: number, now: number, lastUid = 0, fence?: Fence): Promise<void> {
    checkFenceAccount(fence, account);
    await this.#fenced(fence, (c) =>
      c.query(
        `INSERT INTO cursors (account, mailbox, uid_validity, last_uid, updated_at) VALUES ($1, $2, $3, $5, $4)
         ON CONFLICT (account, mailbox) DO UPDATE SET uid_validity = excluded.uid_validity, last_uid = excluded.last_uid, updated_at = excluded.updated_at`,
        [account, mailbox, uidValidity, now, lastUid],
      ),
    );
  }

  async skipUidls(account: string, uidls: string[], now: number): Promise<void> {
    if (uidls.length === 0) return;
    await this.db.run(
      `INSERT INTO pop3_uidls (account, uidl, message_ref, seen_at) SELECT $1, u, NULL, $3 FROM unnest($2::text[]) AS u ON CONFLICT DO NOTHING`,
      [account, uidls, now],
    );
  }

  /** `write` alone (one statement, its own transaction), or after the fence check in one transaction. */
  async #fenced<T>(fence: Fence | undefined, write: (c: Queryable) => Promise<T>): Promise<T> {
    if (!fence) return write(this.db.direct);
    return this.db.tx(async (c) => {
      await assertFence(c, fence);
      return write(c);
    });
  }

  async knownUidls(account: string, uidls: string[]): Promise<Set<string>> {
    if (uidls.length === 0) return new Set();
    const rows = await this.db.rows<{ uidl: string }>('SELECT uidl FROM pop3_uidls WHERE account = $1 AND uidl = ANY($2::text[])', [account, uidls]);
    return new Set(rows.map((r) => r.uidl));
  }

  async forgetUidlsExcept(account: string, present: string[], fence?: Fence): Promise<number> {
    checkFenceAccount(fence, account);
    // Only UIDLs whose message is fully handled: one that vanished before its ack was applied must not be taken again.
    const r = await this.#fenced(fence, (c) =>
      c.query(
        `DELETE FROM pop3_uidls WHERE account = $1 AND NOT (uidl = ANY($2::text[]))
           AND (message_ref IS NULL OR message_ref IN (SELECT id FROM messages WHERE server_ack IN ('done', 'none')))`,
        [account, present],
      ),
    );
    return r.rowCount ?? 0;
  }

  async dueAcks(account: string, limit: number, now: number): Promise<DueAck[]> {
    const rows = await this.db.rows<OriginRow & { id: string }>(
      `SELECT id, mailbox, uid, uid_validity, uidl FROM messages
       WHERE account = $1 AND server_ack = 'due' AND (ack_next_at IS NULL OR ack_next_at <= $2)
       ORDER BY received_at, id LIMIT $3`,
      [account, now, limit],
    );
    return rows.map((r) => ({ id: r.id, origin: originOf(r) }));
  }

  async markAcks(ids: string[], state: 'done' | 'due', error: string | null, nextAt: number | null, fence?: Fence): Promise<void> {
    if (ids.length === 0 && !fence) return;
    // Fenced: only the fence's account's messages, and nothing when the lease is lost.
    const scope = fence ? ' AND account = $4' : '';
    const extra = fence ? [fence.account] : [];
    await this.#fenced(fence, (c) =>
      state === 'done'
        ? c.query(`UPDATE messages SET server_ack = 'done', ack_error = NULL, ack_next_at = NULL WHERE id = ANY($1::text[])${scope.replace('$4', '$2')}`, [
            ids,
            ...extra,
          ])
        : c.query(`UPDATE messages SET ack_attempts = ack_attempts + 1, ack_error = $2, ack_next_at = $3 WHERE id = ANY($1::text[])${scope}`, [
            ids,
            error,
            nextAt,
            ...extra,
          ]),
    );
  }
}

async function insertOne(c: Queryable, m: NewMessage, now: number): Promise<IngestResult> {
  const id = messageIdFor(m);
  const o = originColumns(m.origin);
  const size = m.size ?? m.raw.length;
  const recognise = m.origin.kind === 'imap' && m.messageId !== null;
  const { rows } = await c.query<{ same_id: string | null; new_id: string | null }>({ name: 'mailgate_ingest_one', text: INSERT_ONE }, [
    id,
    m.account,
    o.mailbox,
    o.uid,
    o.uid_validity,
    o.uidl,
    m.messageId,
    size,
    m.internalDate,
    now,
    m.autoSubmitted,
    m.notDownloaded ?? null,
    m.raw,
    deliveryIdForMessage(id),
    recognise,
    m.webhook,
    m.messageIdKey ?? null,
    m.conversationId ?? null,
  ]);
  const r = rows[0];
  if (r?.same_id) return { id: r.same_id, duplicate: true };
  if (r?.new_id) return { id: r.new_id, duplicate: false };
  return { id, duplicate: true };
}
