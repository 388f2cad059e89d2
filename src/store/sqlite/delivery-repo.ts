import { randomUUID } from 'node:crypto';
import type { DeliveryClaim } from '../cluster.js';
import type { AttemptOutcome, DeliveryRecord, DeliveryRepo, DeliveryStatus, EventName } from '../deliveries.js';
import { deliveryFromRow as toRecord, type DeliveryRow } from '../delivery-row.js';
import type { Db } from './db.js';

const MAX_LIST = 1_000;

interface PendingDelivered {
  id: string;
  o: AttemptOutcome;
  serverAck: 'due' | 'none';
  resolve: () => void;
  reject: (err: Error) => void;
}

export class SqliteDeliveryRepo implements DeliveryRepo {
  readonly #delivered: PendingDelivered[] = [];

  constructor(private readonly db: Db) {}

  async pruneDelivered(before: number): Promise<number> {
    return this.db.prepare("DELETE FROM deliveries WHERE status = 'delivered' AND delivered_at < ?").run(before).changes;
  }

  async claimDue(webhook: string, now: number, limit: number, exclude: ReadonlySet<string>, claim?: DeliveryClaim): Promise<DeliveryRecord[]> {
    if (limit <= 0) return [];
    if (claim) return this.#claimFor(webhook, now, limit, exclude, claim);
    // Fetch a few more than needed so in-flight ids can be skipped without a NOT IN list.
    const rows = this.db
      .prepare(
        `SELECT * FROM deliveries WHERE webhook = ? AND status = 'pending' AND next_attempt_at <= ?
         ORDER BY next_attempt_at, created_at, id LIMIT ?`,
      )
      .all(webhook, now, limit + exclude.size) as DeliveryRow[];
    return rows.filter((r) => !exclude.has(r.id)).slice(0, limit).map(toRecord);
  }

  /** Several nodes: skip what another node claimed and claim what is returned, in one transaction. */
  #claimFor(webhook: string, now: number, limit: number, exclude: ReadonlySet<string>, claim: DeliveryClaim): DeliveryRecord[] {
    return this.db
      .transaction((): DeliveryRecord[] => {
        const rows = this.db
          .prepare(
            `SELECT * FROM deliveries WHERE webhook = ? AND status = 'pending' AND next_attempt_at <= ?
               AND (claim_until IS NULL OR claim_until <= ? OR claim_owner = ?)
             ORDER BY next_attempt_at, created_at, id LIMIT ?`,
          )
          .all(webhook, now, now, claim.owner, limit + exclude.size) as DeliveryRow[];
        const taken = rows.filter((r) => !exclude.has(r.id)).slice(0, limit);
        const mark = this.db.prepare('UPDATE deliveries SET claim_owner = ?, claim_until = ? WHERE id = ?');
        for (const r of taken) mark.run(claim.owner, claim.until, r.id);
        return taken.map(toRecord);
      })
      .immediate();
  }

  async nextDueAt(): Promise<number | null> {
    const row = this.db.prepare(`SELECT MIN(next_attempt_at) AS t FROM deliveries WHERE status = 'pending'`).get() as {
      t: number | null;
    };
    return row.t;
  }

  /**
   * Deliveries finishing in the same tick are recorded in one transaction (a
   * commit per delivery was the largest write cost while a backlog drains).
   * Resolves once the batch is committed.
   */
  markDelivered(id: string, o: AttemptOutcome, serverAck: 'due' | 'none'): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#delivered.push({ id, o, serverAck, resolve, reject });
      if (this.#delivered.length === 1) setImmediate(() => this.flushPending());
    });
  }

  /** Commits outcomes waiting for the next tick (also called before the database closes). */
  flushPending(): void {
    const batch = this.#delivered.splice(0);
    if (batch.length === 0) return;
    try {
      this.db
        .transaction(() => {
          const update = this.db.prepare(
            `UPDATE deliveries SET status = 'delivered', attempts = ?, last_status = ?, last_error = NULL,
               response_excerpt = ?, updated_at = ?, delivered_at = ?, claim_owner = NULL, claim_until = NULL WHERE id = ?`,
          );
          const ack = this.db.prepare(
            `UPDATE messages SET server_ack = ? WHERE id = (SELECT message_ref FROM deliveries WHERE id = ?) AND server_ack = 'pending'`,
          );
          for (const { id, o, serverAck } of batch) {
            update.run(o.attempts, o.status, o.responseExcerpt, o.now, o.now, id);
            ack.run(serverAck, id);
          }
        })
        .immediate();
    } catch (err) {
      for (const b of batch) b.reject(err as Error);
      return;
    }
    for (const b of batch) b.resolve();
  }

  async markRetry(id: string, o: AttemptOutcome, nextAttemptAt: number): Promise<void> {
    this.db
      .prepare(
        `UPDATE deliveries SET attempts = ?, last_status = ?, last_error = ?, response_excerpt = ?, next_attempt_at = ?,
           updated_at = ?, claim_owner = NULL, claim_until = NULL WHERE id = ?`,
      )
      .run(o.attempts, o.status, o.error, o.responseExcerpt, nextAttemptAt, o.now, id);
  }

  async markFailed(id: string, o: AttemptOutcome): Promise<void> {
    this.db
      .prepare(
        `UPDATE deliveries SET status = 'failed', attempts = ?, last_status = ?, last_error = ?, response_excerpt = ?,
           updated_at = ?, claim_owner = NULL, claim_until = NULL WHERE id = ?`,
      )
      .run(o.attempts, o.status, o.error, o.responseExcerpt, o.now, id);
  }

  async setEvent(id: string, event: EventName, payloadJson: string | null = null): Promise<void> {
    this.db.prepare('UPDATE deliveries SET event = ?, payload_json = COALESCE(?, payload_json) WHERE id = ?').run(event, payloadJson, id);
  }

  async markRenderFailed(id: string, o: AttemptOutcome, nextAttemptAt: number): Promise<number> {
    const row = this.db
      .prepare(
        `UPDATE deliveries SET attempts = ?, render_failures = render_failures + 1, last_status = NULL, last_error = ?,
           response_excerpt = NULL, next_attempt_at = ?, updated_at = ?, claim_owner = NULL, claim_until = NULL
         WHERE id = ? RETURNING render_failures`,
      )
      .get(o.attempts, o.error, nextAttemptAt, o.now, id) as { render_failures: number } | undefined;
    return row?.render_failures ?? 0;
  }

  async enqueueEvent(account: string, webhook: string, event: EventName, fields: Record<string, unknown>, now: number): Promise<string> {
    const id = 'evt_' + randomUUID().replace(/-/g, '');
    // The envelope comes first and is written again last: a field named event, id or account cannot replace it.
    const envelope = { event, id, account };
    this.db
      .prepare(
        `INSERT INTO deliveries (id, account, webhook, event, payload_json, status, attempts, next_attempt_at, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, 'pending', 0, ?, ?, ?)`,
      )
      .run(id, account, webhook, event, JSON.stringify({ ...envelope, ...fields, ...envelope }), now, now, now);
    return id;
  }

  async get(id: string): Promise<DeliveryRecord | null> {
    const row = this.db.prepare('SELECT * FROM deliveries WHERE id = ?').get(id) as DeliveryRow | undefined;
    return row ? toRecord(row) : null;
  }

  async forMessage(messageRef: string): Promise<DeliveryRecord | null> {
    const row = this.db.prepare('SELECT * FROM deliveries WHERE message_ref = ?').get(messageRef) as DeliveryRow | undefined;
    return row ? toRecord(row) : null;
  }

  async list(filter: { status?: DeliveryStatus; limit?: number }): Promise<DeliveryRecord[]> {
    const limit = Math.min(filter.limit ?? 100, MAX_LIST);
    const rows = (
      filter.status
        ? this.db.prepare('SELECT * FROM deliveries WHERE status = ? ORDER BY updated_at DESC, id DESC LIMIT ?').all(filter.status, limit)
        : this.db.prepare('SELECT * FROM deliveries ORDER BY updated_at DESC, id DESC LIMIT ?').all(limit)
    ) as DeliveryRow[];
    return rows.map(toRecord);
  }

  async retry(id: string, now: number): Promise<boolean> {
    return (
      this.db
        .prepare(
          `UPDATE deliveries SET status = 'pending', attempts = 0, next_attempt_at = ?, updated_at = ?, claim_owner = NULL, claim_until = NULL
           WHERE id = ? AND status <> 'delivered'`,
        )
        .run(now, now, id).changes > 0
    );
  }

  async retryAllFailed(now: number): Promise<number> {
    return this.db
      .prepare(`UPDATE deliveries SET status = 'pending', attempts = 0, next_attempt_at = ?, updated_at = ? WHERE status = 'failed'`)
      .run(now, now).changes;
  }

  async countByStatus(): Promise<Record<DeliveryStatus, number>> {
    const counts: Record<DeliveryStatus, number> = { pending: 0, delivered: 0, failed: 0 };
    const rows = this.db.prepare('SELECT status, COUNT(*) AS n FROM deliveries GROUP BY status').all() as {
      status: DeliveryStatus;
      n: number;
    }[];
    for (const r of rows) counts[r.status] = r.n;
    return counts;
  }
}
