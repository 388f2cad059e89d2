import type { FastifyInstance } from 'fastify';
import { MailgateError } from '../../errors.js';
import { SCHEMAS } from '../api-schemas.js';
import type { DeliveryRecord, DeliveryStatus } from '../../store/deliveries.js';
import type { Store } from '../../store/store.js';

const STATUSES: readonly DeliveryStatus[] = ['pending', 'delivered', 'failed'];

export function deliveryView(d: DeliveryRecord) {
  const iso = (t: number | null) => (t === null ? null : new Date(t).toISOString());
  return {
    id: d.id,
    account: d.account,
    webhook: d.webhook,
    event: d.event,
    messageId: d.messageRef,
    status: d.status,
    attempts: d.attempts,
    nextAttemptAt: d.status === 'pending' ? iso(d.nextAttemptAt) : null,
    lastStatus: d.lastStatus,
    lastError: d.lastError,
    responseExcerpt: d.responseExcerpt,
    createdAt: iso(d.createdAt),
    deliveredAt: iso(d.deliveredAt),
  };
}

export interface DeliveryRouteDeps {
  store: Store;
  /** Wakes the delivery worker after a retry was queued. */
  wake: () => void;
}

/** Webhook deliveries (inspect, replay) and the raw message endpoint. */
export function registerDeliveryRoutes(app: FastifyInstance, deps: DeliveryRouteDeps): void {
  app.get('/deliveries', { schema: SCHEMAS.deliveries }, async (req) => {
    const q = req.query as { status?: string; limit?: string };
    if (q.status !== undefined && !STATUSES.includes(q.status as DeliveryStatus)) {
      throw new MailgateError('BAD_REQUEST', `status must be one of ${STATUSES.join(', ')}`);
    }
    const limit = q.limit === undefined ? 100 : Number(q.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) {
      throw new MailgateError('BAD_REQUEST', 'limit must be an integer from 1 to 1000');
    }
    const filter: { status?: DeliveryStatus; limit: number } = { limit };
    if (q.status !== undefined) filter.status = q.status as DeliveryStatus;
    const list = await deps.store.deliveries.list(filter);
    return { deliveries: list.map(deliveryView) };
  });

  app.post('/deliveries/:id/retry', { schema: SCHEMAS.deliveryRetry }, async (req) => {
    const { id } = req.params as { id: string };
    const existing = await deps.store.deliveries.get(id);
    if (!existing) throw new MailgateError('NOT_FOUND', `no delivery ${id}`);
    if (existing.status === 'delivered') throw new MailgateError('CONFLICT', `delivery ${id} was already delivered`);
    await deps.store.deliveries.retry(id, Date.now());
    deps.wake();
    const now = await deps.store.deliveries.get(id);
    return now ? deliveryView(now) : { id };
  });

  app.post('/deliveries/retry-failed', { schema: SCHEMAS.retryFailed }, async () => {
    const n = await deps.store.deliveries.retryAllFailed(Date.now());
    deps.wake();
    return { retried: n };
  });

  app.get('/messages/:id/raw', { schema: SCHEMAS.raw }, async (req, reply) => {
    const { id } = req.params as { id: string };
    const info = await deps.store.messages.get(id);
    if (info?.notDownloaded) throw new MailgateError('NOT_FOUND', `message ${id} was not downloaded: ${info.notDownloaded}`);
    const raw = await deps.store.messages.getRaw(id);
    if (!raw) {
      if (await deps.store.messages.get(id)) throw new MailgateError('GONE', `message ${id} was delivered and its raw bytes were removed after retention.messages`);
      throw new MailgateError('NOT_FOUND', `no message ${id}`);
    }
    return reply.header('Content-Type', 'message/rfc822').send(raw);
  });
}
