import type { FastifyInstance } from 'fastify';
import { SCHEMAS } from '../api-schemas.js';

export function registerReloadRoute(
  app: FastifyInstance,
  reload: () => Promise<{ ok: true } | { ok: false; errors: string[] }>,
): void {
  app.post('/reload', { schema: SCHEMAS.reload }, async (_req, reply) => {
    const result = await reload();
    if (!result.ok) return reply.code(400).send({ error: 'config is invalid; the running config was kept', errors: result.errors });
    return { status: 'reloaded' };
  });
}
