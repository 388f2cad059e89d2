import type { DeliveryRecord, DeliveryStatus, EventName } from './deliveries.js';

/** A deliveries row as both backends store it (the same column names in SQLite and PostgreSQL). */
export interface DeliveryRow {
  id: string;
  account: string;
  webhook: string;
  event: EventName;
  message_ref: string | null;
  payload_json: string | null;
  status: DeliveryStatus;
  attempts: number;
  next_attempt_at: number;
  last_status: number | null;
  last_error: string | null;
  response_excerpt: string | null;
  created_at: number;
  updated_at: number;
  delivered_at: number | null;
  render_failures: number;
}

export function deliveryFromRow(r: DeliveryRow): DeliveryRecord {
  return {
    id: r.id,
    account: r.account,
    webhook: r.webhook,
    event: r.event,
    messageRef: r.message_ref,
    payloadJson: r.payload_json,
    status: r.status,
    attempts: r.attempts,
    nextAttemptAt: r.next_attempt_at,
    lastStatus: r.last_status,
    lastError: r.last_error,
    responseExcerpt: r.response_excerpt,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    deliveredAt: r.delivered_at,
    renderFailures: r.render_failures,
  };
}

