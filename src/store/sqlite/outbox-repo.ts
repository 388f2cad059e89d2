import type { Fence } from '../cluster.js';
import { outboxFromRow, type OutboxRow } from '../outbox-row.js';
import { assertFence } from './cluster-repo.js';
import type { ClaimRoom, NewOutboxItem, OutboxRecord, OutboxRepo, OutboxStatus } from '../outbox.js';
import type { Db } from './db.js';

export class SqliteOutboxRepo implements OutboxRepo {
  constructor(private readonly db: Db) {}

  async enqueue(item: NewOutboxItem): Promise<{ record: OutboxRecord; created: boolean }> {
    const run = this.db.transaction(() => {
      if (item.idempotencyKey !== null) {
        const existing = this.db
          .prepare('SELECT * FROM outbox WHERE account = ? AND idempotency_key = ?')
          .get(item.account, item.idempotencyKey) as OutboxRow | undefined;
        if (existing) return { record: outboxFromRow(existing), created: false };
      }
      this.db
        .prepare(
          `INSERT INTO outbox (id, account, idempotency_key, request_json, envelope_json, raw_bytes, status, attempts, next_attempt_at, message_id, created_at, updated_at,
             message_id_key, conversation_id)
           VALUES (@id, @account, @idempotencyKey, @requestJson, @envelopeJson, @rawBytes, 'queued', 0, @now, @messageId, @now, @now, @messageIdKey, @conversationId)`,
        )
        .run({
          id: item.id,
          account: item.account,
          idempotencyKey: item.idempotencyKey,
          requestJson: item.requestJson,
          envelopeJson: item.raw ? JSON.stringify({ from: item.raw.envelope.from, to: item.raw.envelope.to }) : null,
          rawBytes: item.raw ? item.raw.message.length : null,
          messageId: item.messageId,
          now: item.now,
          messageIdKey: item.messageIdKey ?? null,
          conversationId: item.conversationId ?? null,
        });
      if (item.raw) this.db.prepare('INSERT INTO outbox_raw (id, raw) VALUES (?, ?)').run(item.id, item.raw.message);
      const row = this.db.prepare('SELECT * FROM outbox WHERE id = ?').get(item.id) as OutboxRow;
      return { record: outboxFromRow(row), created: true };
    });
    return run.immediate();
  }

  async get(id: string): Promise<OutboxRecord | null> {
    const row = this.db.prepare('SELECT * FROM outbox WHERE id = ?').get(id) as OutboxRow | undefined;
    return row ? outboxFromRow(row) : null;
  }

  async getRaw(id: string): Promise<Buffer | null> {
    const row = this.db.prepare('SELECT raw FROM outbox_raw WHERE id = ?').get(id) as { raw: Buffer } | undefined;
    return row?.raw ?? null;
  }

  async claimDue(now: number, limit: number, room?: ClaimRoom, fences?: readonly Fence[]): Promise<OutboxRecord[]> {
    if (fences?.length === 0) return [];
    return this.#claim(now, limit, room, fences ?? null);
  }

  /** With fences: only accounts whose lease is still exactly that fence, checked in the claim's transaction. */
  #claim(now: number, limit: number, room: ClaimRoom | undefined, fences: readonly Fence[] | null): OutboxRecord[] {
    const perAccount = room?.perAccount ?? limit;
    const used = new Map(room?.inFlight ?? []);
    const full = [...used].filter(([, n]) => n >= perAccount).map(([a]) => a);
    const run = this.db.transaction(() => {
      let owned: Set<string> | null = null;
      if (fences) {
        const held = this.db.prepare('SELECT 1 AS ok FROM leases WHERE account = ? AND owner = ? AND epoch = ?');
        owned = new Set(fences.filter((f) => held.get(f.account, f.owner, f.epoch) !== undefined).map((f) => f.account));
        if (owned.size === 0) return [];
      }
      // Accounts without a free slot are left out in SQL; the others are
      // capped here. Rows passed over (an account filling up mid-list) are
      // taken by the next claim, which leaves that account out.
      // Only ids here: a row's request body is read only if it is taken.
      const candidates = this.db
        .prepare(
          `SELECT id, account, raw_bytes FROM outbox WHERE status = 'queued' AND next_attempt_at <= ?
             AND account NOT IN (SELECT value FROM json_each(?))${owned ? ' AND account IN (SELECT value FROM json_each(?))' : ''}
           ORDER BY next_attempt_at, created_at LIMIT ?`,
        )
        .all(...(owned ? [now, JSON.stringify(full), JSON.stringify([...owned]), limit * 2] : [now, JSON.stringify(full), limit * 2])) as {
        id: string;
        account: string;
        raw_bytes: number | null;
      }[];
      const byId = this.db.prepare('SELECT * FROM outbox WHERE id = ?');
      const rows: OutboxRow[] = [];
      const raw = room?.rawBytes;
      let rawUsed = raw?.inFlight ?? 0;
      for (const c of candidates) {
        if (rows.length >= limit) break;
        const n = used.get(c.account) ?? 0;
        if (n >= perAccount) continue;
        if (raw && c.raw_bytes !== null) {
          if (rawUsed > 0 && rawUsed + c.raw_bytes > raw.budget) continue;
          rawUsed += c.raw_bytes;
        }
        used.set(c.account, n + 1);
        rows.push(byId.get(c.id) as OutboxRow);
      }
      const claim = this.db.prepare("UPDATE outbox SET status = 'sending', attempts = attempts + 1, updated_at = ? WHERE id = ?");
      for (const r of rows) claim.run(now, r.id);
      return rows.map((r) => ({ ...outboxFromRow(r), status: 'sending' as const, attempts: r.attempts + 1, updatedAt: now }));
    });
    return run.immediate();
  }

  async markSent(id: string, now: number): Promise<void> {
    this.db.prepare("UPDATE outbox SET status = 'sent', last_error = NULL, sent_at = ?, updated_at = ? WHERE id = ?").run(now, now, id);
  }

  async markRetry(id: string, error: string, nextAttemptAt: number, now: number): Promise<void> {
    this.db
      .prepare("UPDATE outbox SET status = 'queued', last_error = ?, next_attempt_at = ?, updated_at = ? WHERE id = ?")
      .run(error, nextAttemptAt, now, id);
  }

  async markFailed(id: string, error: string, now: number): Promise<void> {
    this.db.prepare("UPDATE outbox SET status = 'failed', last_error = ?, updated_at = ? WHERE id = ?").run(error, now, id);
  }

  async failInterrupted(reason: string, now: number, fence?: Fence): Promise<string[]> {
    const run = this.db.transaction(() => {
      if (fence) assertFence(this.db, fence);
      const scope = fence ? ' AND account = ?' : '';
      const args = fence ? [fence.account] : [];
      const ids = (this.db.prepare(`SELECT id FROM outbox WHERE status = 'sending'${scope}`).all(...args) as { id: string }[]).map((r) => r.id);
      this.db.prepare(`UPDATE outbox SET status = 'failed', last_error = ?, updated_at = ? WHERE status = 'sending'${scope}`).run(reason, now, ...args);
      return ids;
    });
    return run.immediate();
  }

  async requeue(id: string, now: number): Promise<boolean> {
    const r = this.db
      .prepare("UPDATE outbox SET status = 'queued', next_attempt_at = ?, updated_at = ? WHERE id = ? AND status = 'failed'")
      .run(now, now, id);
    return r.changes === 1;
  }

  async nextDueAt(): Promise<number | null> {
    const row = this.db.prepare("SELECT MIN(next_attempt_at) AS t FROM outbox WHERE status = 'queued'").get() as { t: number | null };
    return row.t;
  }

  async counts(): Promise<Record<OutboxStatus, number>> {
    const out: Record<OutboxStatus, number> = { queued: 0, sending: 0, sent: 0, failed: 0 };
    const rows = this.db.prepare('SELECT status, COUNT(*) AS n FROM outbox GROUP BY status').all() as { status: OutboxStatus; n: number }[];
    for (const r of rows) out[r.status] = r.n;
    return out;
  }

  async prune(before: number): Promise<number> {
    // outbox_raw rows go with theirs (ON DELETE CASCADE).
    return this.db.prepare("DELETE FROM outbox WHERE status IN ('sent', 'failed') AND updated_at < ?").run(before).changes;
  }
}
