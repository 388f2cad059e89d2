import { randomUUID } from 'node:crypto';
import type { DeliveryClaim } from '../cluster.js';
import type { AttemptOutcome, DeliveryRecord, DeliveryRepo, DeliveryStatus, EventName } from '../deliveries.js';
import { deliveryFromRow as toRecord, type DeliveryRow } from '../delivery-row.js';
import type { PgDb } from './db.js';

const MAX_LIST = 1_000;

/** The webhook queue; every method is one statement (its own transaction). */
export class PgDeliveryRepo implements DeliveryRepo {
  constructor(private readonly db: PgDb) {}

  async pruneDelivered(before: number): Promise<number> {
    return (await this.db.run("DELETE FROM deliveries WHERE status = 'delivered' AND delivered_at < $1", [before])).rowCount ?? 0;
  }

  async claimDue(webhook: string, now: number, limit: number, exclude: ReadonlySet<string>, claim?: DeliveryClaim): Promise<DeliveryRecord[]> {
    if (limit <= 0) return [];
    if (claim) {
      // Several nodes: rows another node claims right now are skipped (SKIP LOCKED), and so are rows it claimed until after now.
      const rows = await this.db.rows<DeliveryRow>(
        `UPDATE deliveries SET claim_owner = $5, claim_until = $6
         WHERE id IN (
           SELECT id FROM deliveries WHERE webhook = $1 AND status = 'pending' AND next_attempt_at <= $2 AND NOT (id = ANY($3::text[]))
             AND (claim_until IS NULL OR claim_until <= $2 OR claim_owner = $5)
           ORDER BY next_attempt_at, created_at, id LIMIT $4 FOR UPDATE SKIP LOCKED)
         RETURNING *`,
        [webhook, now, [...exclude], limit, claim.owner, claim.until],
      );
      return rows
        .sort((a, b) => a.next_attempt_at - b.next_attempt_at || a.created_at - b.created_at || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
        .map(toRecord);
    }
    const rows = await this.db.rows<DeliveryRow>(
      `SELECT * FROM deliveries WHERE webhook = $1 AND status = 'pending' AND next_attempt_at <= $2 AND NOT (id = ANY($3::text[]))
       ORDER BY next_attempt_at, created_at, id LIMIT $4`,
      [webhook, now, [...exclude], limit],
    );
    return rows.map(toRecord);
  }

  async nextDueAt(): Promise<number | null> {
    const [row] = await this.db.rows<{ t: number | null }>(`SELECT min(next_attempt_at) AS t FROM deliveries WHERE status = 'pending'`);
    return row?.t ?? null;
  }

  async markDelivered(id: string, o: AttemptOutcome, serverAck: 'due' | 'none'): Promise<void> {
    // One statement: the delivery and its message's server state commit together.
    await this.db.run(
      {
        name: 'mailgate_mark_delivered',
        text: `WITH d AS (
         UPDATE deliveries SET status = 'delivered', attempts = $2, last_status = $3, last_error = NULL,
           response_excerpt = $4, updated_at = $5, delivered_at = $5, claim_owner = NULL, claim_until = NULL WHERE id = $1 RETURNING message_ref)
       UPDATE messages SET server_ack = $6 WHERE id = (SELECT message_ref FROM d) AND server_ack = 'pending'`,
      },
      [id, o.attempts, o.status, o.responseExcerpt, o.now, serverAck],
    );
  }

  async markRetry(id: string, o: AttemptOutcome, nextAttemptAt: number): Promise<void> {
    await this.db.run(
      `UPDATE deliveries SET attempts = $2, last_status = $3, last_error = $4, response_excerpt = $5, next_attempt_at = $6, updated_at = $7,
         claim_owner = NULL, claim_until = NULL WHERE id = $1`,
      [id, o.attempts, o.status, o.error, o.responseExcerpt, nextAttemptAt, o.now],
    );
  }

  async markFailed(id: string, o: AttemptOutcome): Promise<void> {
    await this.db.run(
      `UPDATE deliveries SET status = 'failed', attempts = $2, last_status = $3, last_error = $4, response_excerpt = $5, updated_at = $6,
         claim_owner = NULL, claim_until = NULL WHERE id = $1`,
      [id, o.attempts, o.status, o.error, o.responseExcerpt, o.now],
    );
  }

  async setEvent(id: string, event: EventName, payloadJson: string | null = null): Promise<void> {
    await this.db.run('UPDATE deliveries SET event = $2, payload_json = COALESCE($3, payload_json) WHERE id = $1', [id, event, payloadJson]);
  }

  async markRenderFailed(id: string, o: AttemptOutcome, nextAttemptAt: number): Promise<number> {
    const [row] = await this.db.rows<{ render_failures: number }>(
      `UPDATE deliveries SET attempts = $2, render_failures = render_failures + 1, last_status = NULL, last_error = $3,
         response_excerpt = NULL, next_attempt_at = $4, updated_at = $5, claim_owner = NULL, claim_until = NULL
       WHERE id = $1 RETURNING render_failures`,
      [id, o.attempts, o.error, nextAttemptAt, o.now],
    );
    return row?.render_failures ?? 0;
  }

  async enqueueEvent(account: string, webhook: string, event: EventName, fields: Record<string, unknown>, now: number): Promise<string> {
    const id = 'evt_' + randomUUID().replace(/-/g, '');
    // The envelope comes first and is written again last: a field named event, id or account cannot replace it.
    const envelope = { event, id, account };
    await this.db.run(
      `INSERT INTO deliveries (id, account, webhook, event, payload_json, status, attempts, next_attempt_at, created_at, updated_at)
       VALUES ($1, $2, $3, $4, $5, 'pending', 0, $6, $6, $6)`,
      [id, account, webhook, event, JSON.stringify({ ...envelope, ...fields, ...envelope }), now],
    );
    return id;
  }

  async get(id: string): Promise<DeliveryRecord | null> {
    const [row] = await this.db.rows<DeliveryRow>('SELECT * FROM deliveries WHERE id = $1', [id]);
    return row ? toRecord(row) : null;
  }

  async forMessage(messageRef: string): Promise<DeliveryRecord | null> {
    const [row] = await this.db.rows<DeliveryRow>('SELECT * FROM deliveries WHERE message_ref = $1', [messageRef]);
    return row ? toRecord(row) : null;
  }

  async list(filter: { status?: DeliveryStatus; limit?: number }): Promise<DeliveryRecord[]> {
    const limit = Math.min(filter.limit ?? 100, MAX_LIST);
    const rows = filter.status
      ? await this.db.rows<DeliveryRow>('SELECT * FROM deliveries WHERE status = $1 ORDER BY updated_at DESC, id DESC LIMIT $2', [filter.status, limit])
      : await this.db.rows<DeliveryRow>('SELECT * FROM deliveries ORDER BY updated_at DESC, id DESC LIMIT $1', [limit]);
    return rows.map(toRecord);
  }

  async retry(id: string, now: number): Promise<boolean> {
    const r = await this.db.run(
      `UPDATE deliveries SET status = 'pending', attempts = 0, next_attempt_at = $2, updated_at = $2, claim_owner = NULL, claim_until = NULL
       WHERE id = $1 AND status <> 'delivered'`,
      [id, now],
    );
    return (r.rowCount ?? 0) > 0;
  }

  async retryAllFailed(now: number): Promise<number> {
    const r = await this.db.run(`UPDATE deliveries SET status = 'pending', attempts = 0, next_attempt_at = $1, updated_at = $1 WHERE status = 'failed'`, [
      now,
    ]);
    return r.rowCount ?? 0;
  }

  async countByStatus(): Promise<Record<DeliveryStatus, number>> {
    const counts: Record<DeliveryStatus, number> = { pending: 0, delivered: 0, failed: 0 };
    const rows = await this.db.rows<{ status: DeliveryStatus; n: number }>('SELECT status, count(*) AS n FROM deliveries GROUP BY status');
    for (const r of rows) counts[r.status] = r.n;
    return counts;
  }
}
