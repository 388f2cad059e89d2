import type { OutboxEnvelope, OutboxRecord, OutboxStatus } from './outbox.js';

/** An outbox row as both backends store it (the same column names in SQLite and PostgreSQL). */
export interface OutboxRow {
  id: string;
  account: string;
  idempotency_key: string | null;
  request_json: string;
  envelope_json: string | null;
  raw_bytes: number | null;
  status: OutboxStatus;
  attempts: number;
  next_attempt_at: number;
  last_error: string | null;
  message_id: string;
  created_at: number;
  updated_at: number;
  sent_at: number | null;
}

export function outboxFromRow(r: OutboxRow): OutboxRecord {
  return {
    id: r.id,
    account: r.account,
    idempotencyKey: r.idempotency_key,
    requestJson: r.request_json,
    envelope: r.envelope_json === null ? null : (JSON.parse(r.envelope_json) as OutboxEnvelope),
    rawBytes: r.raw_bytes,
    status: r.status,
    attempts: r.attempts,
    nextAttemptAt: r.next_attempt_at,
    lastError: r.last_error,
    messageId: r.message_id,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    sentAt: r.sent_at,
  };
}
