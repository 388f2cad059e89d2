import type { FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';
import { SCHEMAS } from '../api-schemas.js';
import { edgeOf } from '../server.js';

export interface HealthDeps {
  registry: Registry;
  /** Ready when the database answers and takes writes and a config is loaded; else why not. */
  ready: () => Promise<{ ready: boolean; reason: string | null }>;
  /** When set, /metrics needs `Authorization: Bearer <token>` (it names every account and webhook). */
  metricsToken: () => string | undefined;
}

/** Liveness, readiness and metrics: outside /v1, for probes and Prometheus. */
export function registerHealthRoutes(app: FastifyInstance, deps: HealthDeps): void {
  const gate = edgeOf(app).gate;
  const bearer = gate.bearer('metrics', () => deps.metricsToken() ?? '');

  // In a scope (registered after the API description plugin), so /openapi.json lists them.
  void app.register(async (scope) => {
    scope.get('/healthz', { schema: SCHEMAS.healthz }, async () => ({ status: 'ok' }));

    scope.get('/readyz', { schema: SCHEMAS.readyz }, async (_req, reply) => {
      const { ready, reason } = await deps.ready();
      return reply.code(ready ? 200 : 503).send(ready ? { status: 'ready' } : { status: 'not ready', reason });
    });

    scope.get(
      '/metrics',
      {
        schema: SCHEMAS.metrics,
        // Open by default (the Prometheus convention); server.metricsToken closes it.
        onRequest: async (req, reply) => {
          if (deps.metricsToken() === undefined) return;
          return bearer.call(scope, req, reply);
        },
      },
      async (_req, reply) => {
        const body = await deps.registry.metrics();
        return reply.header('Content-Type', deps.registry.contentType).send(body);
      },
    );
  });
}
