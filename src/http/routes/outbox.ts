import type { FastifyInstance } from 'fastify';
import { MAX_REQUEST_BYTES } from '../../outgoing/send-request.js';
import { outboxView, type OutboxService } from '../../outgoing/outbox.js';
import { DOCUMENTED_ONLY, SCHEMAS } from '../api-schemas.js';

/** The send API: queue a message, look at it, send a failed one again. */
export function registerOutboxRoutes(app: FastifyInstance, outbox: OutboxService): void {
  app.post('/accounts/:name/send', { bodyLimit: MAX_REQUEST_BYTES, schema: SCHEMAS.send, ...DOCUMENTED_ONLY }, async (req, reply) => {
    const { name } = req.params as { name: string };
    const header = req.headers['idempotency-key'];
    const key = typeof header === 'string' ? header : null;
    const { record, created } = await outbox.enqueue(name, req.body, key);
    const view = outboxView(record);
    return reply.code(created ? 202 : 200).send({ id: view.id, status: view.status, messageId: view.messageId });
  });

  app.get('/outbox/:id', { schema: SCHEMAS.outboxGet }, async (req) => {
    const { id } = req.params as { id: string };
    return outboxView(await outbox.get(id));
  });

  app.post('/outbox/:id/retry', { schema: SCHEMAS.outboxRetry }, async (req) => {
    const { id } = req.params as { id: string };
    return outboxView(await outbox.retry(id));
  });
}
