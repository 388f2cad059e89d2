import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyRequest } from 'fastify';
import { MailgateError } from '../errors.js';
import type { Logger } from '../log.js';
import { bearerMatches } from './admin-auth.js';

export interface HttpServerOptions {
  logger: Logger;
  adminToken: string;
  /** Largest accepted request body (the send API carries base64 attachments). */
  bodyLimitBytes?: number;
}

const DEFAULT_BODY_LIMIT_BYTES = 50 * 1024 * 1024;
/** Fastify waits this long for in-flight requests on close before cutting them. */
export const HTTP_CLOSE_GRACE_MS = 5_000;

/**
 * The daemon's one HTTP server: health, metrics, the /v1 API (admin token),
 * the OAuth2 callback and the admin UI. Routes are registered by the caller.
 */
export function createHttpServer(opts: HttpServerOptions): FastifyInstance {
  const app = Fastify({
    loggerInstance: opts.logger.child({ component: 'http' }) as FastifyBaseLogger,
    // No line per request (health checks and metrics scrapes would drown the log).
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: opts.bodyLimitBytes ?? DEFAULT_BODY_LIMIT_BYTES,
    forceCloseConnections: 'idle',
    return503OnClosing: true,
  });

  app.addHook('onRequest', async (req, reply) => {
    if (!req.url.startsWith('/v1/')) return;
    if (!bearerMatches(req.headers.authorization, opts.adminToken)) {
      return reply.code(401).header('WWW-Authenticate', 'Bearer').send({ error: 'missing or wrong admin token' });
    }
  });

  app.setNotFoundHandler((req, reply) => {
    void reply.code(404).send({ error: `no route ${req.method} ${req.url.split('?')[0]}` });
  });

  app.setErrorHandler((err: unknown, req: FastifyRequest, reply) => {
    if (err instanceof MailgateError) {
      if (err.status >= 500) req.log.error({ err }, 'request failed');
      return reply.code(err.status).send({ error: err.message, code: err.code, ...(err.details ?? {}) });
    }
    const e = err as { statusCode?: number; message?: string; validation?: unknown };
    if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
      // Fastify's own 4xx: body too large, bad JSON, unsupported media type.
      return reply.code(e.statusCode).send({ error: e.message ?? 'bad request' });
    }
    req.log.error({ err }, 'unhandled error in request');
    return reply.code(500).send({ error: 'internal error' });
  });

  return app;
}
