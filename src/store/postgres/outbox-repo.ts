import type { Fence } from '../cluster.js';
import { outboxFromRow, type OutboxRow } from '../outbox-row.js';
import type { ClaimRoom, NewOutboxItem, OutboxRecord, OutboxRepo, OutboxStatus } from '../outbox.js';
import { assertFence } from './cluster-repos.js';
import type { PgDb, Queryable } from './db.js';
import { RAW_CHUNK_BYTES, readRawChunked } from './message-repo.js';

function inDueOrder(rows: OutboxRow[]): OutboxRecord[] {
  return rows
    .sort((a, b) => a.next_attempt_at - b.next_attempt_at || a.created_at - b.created_at || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
    .map(outboxFromRow);
}

export class PgOutboxRepo implements OutboxRepo {
  constructor(private readonly db: PgDb) {}

  async enqueue(item: NewOutboxItem): Promise<{ record: OutboxRecord; created: boolean }> {
    return this.db.tx(async (c) => {
      // A second enqueue of the same key waits for the first's commit, inserts nothing and then reads the first's row.
      const ins = await c.query<OutboxRow>(
        `INSERT INTO outbox (id, account, idempotency_key, request_json, envelope_json, raw_bytes, status, attempts, next_attempt_at, message_id,
           created_at, updated_at, message_id_key, conversation_id)
         VALUES ($1, $2, $3, $4, $7, $8, 'queued', 0, $5, $6, $5, $5, $9, $10)
         ON CONFLICT (account, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
         RETURNING *`,
        [
          item.id,
          item.account,
          item.idempotencyKey,
          item.requestJson,
          item.now,
          item.messageId,
          item.raw ? JSON.stringify({ from: item.raw.envelope.from, to: item.raw.envelope.to }) : null,
          item.raw ? item.raw.message.length : null,
          item.messageIdKey ?? null,
          item.conversationId ?? null,
        ],
      );
      if (ins.rows[0]) {
        // The bytes in the same transaction as the row: once enqueue resolved, both are durable.
        if (item.raw) await c.query('INSERT INTO outbox_raw (id, raw) VALUES ($1, $2)', [item.id, item.raw.message]);
        return { record: outboxFromRow(ins.rows[0]), created: true };
      }
      const { rows } = await c.query<OutboxRow>('SELECT * FROM outbox WHERE account = $1 AND idempotency_key = $2', [item.account, item.idempotencyKey]);
      if (!rows[0]) throw new Error(`outbox row for idempotency key ${item.idempotencyKey} vanished`);
      return { record: outboxFromRow(rows[0]), created: false };
    });
  }

  async getRaw(id: string): Promise<Buffer | null> {
    const [row] = await this.db.rows<{ n: number; raw: Buffer | null }>(
      'SELECT octet_length(raw) AS n, CASE WHEN octet_length(raw) <= $2 THEN raw END AS raw FROM outbox_raw WHERE id = $1',
      [id, RAW_CHUNK_BYTES],
    );
    if (!row) return null;
    return row.raw ?? this.db.tx((c) => readRawChunked(c, id, row.n, 'outbox_raw'));
  }

  async get(id: string): Promise<OutboxRecord | null> {
    const [row] = await this.db.rows<OutboxRow>('SELECT * FROM outbox WHERE id = $1', [id]);
    return row ? outboxFromRow(row) : null;
  }

  async claimDue(now: number, limit: number, room?: ClaimRoom, fences?: readonly Fence[]): Promise<OutboxRecord[]> {
    if (limit <= 0 || fences?.length === 0) return [];
    // Rows another store is claiming at this moment are skipped, never waited
    // for nor taken twice (FOR UPDATE SKIP LOCKED); only rows taken are locked.
    if (!room && !fences) {
      const rows = await this.db.rows<OutboxRow>(
        `UPDATE outbox SET status = 'sending', attempts = attempts + 1, updated_at = $1
         WHERE id IN (SELECT id FROM outbox WHERE status = 'queued' AND next_attempt_at <= $1
                      ORDER BY next_attempt_at, created_at, id LIMIT $2 FOR UPDATE SKIP LOCKED)
         RETURNING *`,
        [now, limit],
      );
      return inDueOrder(rows);
    }
    return this.db.tx((c) => this.#claimWithin(c, now, limit, room, fences));
  }

  async #claimWithin(c: Queryable, now: number, limit: number, room: ClaimRoom | undefined, fences: readonly Fence[] | undefined): Promise<OutboxRecord[]> {
    const perAccount = room?.perAccount ?? limit;
    const used = new Map(room?.inFlight ?? []);
    const full = [...used].filter(([, n]) => n >= perAccount).map(([a]) => a);
    let owned: string[] | null = null;
    if (fences) {
      // The leases still held, locked FOR SHARE until the commit: a take-over waits for this claim.
      const { rows } = await c.query<{ account: string }>(
        `SELECT l.account FROM leases l JOIN unnest($1::text[], $2::text[], $3::bigint[]) AS f(account, owner, epoch)
           ON l.account = f.account AND l.owner = f.owner AND l.epoch = f.epoch
         ORDER BY l.account FOR SHARE OF l`,
        [fences.map((f) => f.account), fences.map((f) => f.owner), fences.map((f) => f.epoch)],
      );
      owned = rows.map((r) => r.account);
      if (owned.length === 0) return [];
    }
    // Accounts without a free slot are left out in SQL; the others are
    // capped here. Rows passed over (an account filling up mid-list, or a
    // row another store took meanwhile) are taken by a later claim.
    const { rows: candidates } = await c.query<{ id: string; account: string; raw_bytes: number | null }>(
      `SELECT id, account, raw_bytes FROM outbox WHERE status = 'queued' AND next_attempt_at <= $1 AND NOT (account = ANY($2::text[]))
         AND ($4::text[] IS NULL OR account = ANY($4::text[]))
       ORDER BY next_attempt_at, created_at, id LIMIT $3`,
      [now, full, limit * 2, owned],
    );
    const ids: string[] = [];
    // Messages given as bytes are read whole to be sent: their total stays within the budget (one alone may exceed it).
    const raw = room?.rawBytes;
    let rawUsed = raw?.inFlight ?? 0;
    for (const cand of candidates) {
      if (ids.length >= limit) break;
      const n = used.get(cand.account) ?? 0;
      if (n >= perAccount) continue;
      if (raw && cand.raw_bytes !== null) {
        if (rawUsed > 0 && rawUsed + cand.raw_bytes > raw.budget) continue;
        rawUsed += cand.raw_bytes;
      }
      used.set(cand.account, n + 1);
      ids.push(cand.id);
    }
    if (ids.length === 0) return [];
    const { rows } = await c.query<OutboxRow>(
      `UPDATE outbox SET status = 'sending', attempts = attempts + 1, updated_at = $2
       WHERE id IN (SELECT id FROM outbox WHERE id = ANY($1::text[]) AND status = 'queued' FOR UPDATE SKIP LOCKED)
       RETURNING *`,
      [ids, now],
    );
    return inDueOrder(rows);
  }

  async markSent(id: string, now: number): Promise<void> {
    await this.db.run("UPDATE outbox SET status = 'sent', last_error = NULL, sent_at = $2, updated_at = $2 WHERE id = $1", [id, now]);
  }

  async markRetry(id: string, error: string, nextAttemptAt: number, now: number): Promise<void> {
    await this.db.run("UPDATE outbox SET status = 'queued', last_error = $2, next_attempt_at = $3, updated_at = $4 WHERE id = $1", [
      id,
      error,
      nextAttemptAt,
      now,
    ]);
  }

  async markFailed(id: string, error: string, now: number): Promise<void> {
    await this.db.run("UPDATE outbox SET status = 'failed', last_error = $2, updated_at = $3 WHERE id = $1", [id, error, now]);
  }

  async failInterrupted(reason: string, now: number, fence?: Fence): Promise<string[]> {
    if (!fence) {
      const rows = await this.db.rows<{ id: string }>(
        "UPDATE outbox SET status = 'failed', last_error = $1, updated_at = $2 WHERE status = 'sending' RETURNING id",
        [reason, now],
      );
      return rows.map((r) => r.id).sort();
    }
    return this.db.tx(async (c) => {
      await assertFence(c, fence);
      const { rows } = await c.query<{ id: string }>(
        "UPDATE outbox SET status = 'failed', last_error = $1, updated_at = $2 WHERE status = 'sending' AND account = $3 RETURNING id",
        [reason, now, fence.account],
      );
      return rows.map((r) => r.id).sort();
    });
  }

  async requeue(id: string, now: number): Promise<boolean> {
    const r = await this.db.run("UPDATE outbox SET status = 'queued', next_attempt_at = $2, updated_at = $2 WHERE id = $1 AND status = 'failed'", [
      id,
      now,
    ]);
    return r.rowCount === 1;
  }

  async nextDueAt(): Promise<number | null> {
    const [row] = await this.db.rows<{ t: number | null }>("SELECT min(next_attempt_at) AS t FROM outbox WHERE status = 'queued'");
    return row?.t ?? null;
  }

  async counts(): Promise<Record<OutboxStatus, number>> {
    const out: Record<OutboxStatus, number> = { queued: 0, sending: 0, sent: 0, failed: 0 };
    const rows = await this.db.rows<{ status: OutboxStatus; n: number }>('SELECT status, count(*) AS n FROM outbox GROUP BY status');
    for (const r of rows) out[r.status] = r.n;
    return out;
  }

  async prune(before: number): Promise<number> {
    return (await this.db.run("DELETE FROM outbox WHERE status IN ('sent', 'failed') AND updated_at < $1", [before])).rowCount ?? 0;
  }
}
