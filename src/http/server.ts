import { readFileSync } from 'node:fs';
import fastifyCookie from '@fastify/cookie';
import fastifyRateLimit from '@fastify/rate-limit';
import fastifySwagger from '@fastify/swagger';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { ServerConfig } from '../config/types.js';
import { MailgateError } from '../errors.js';
import { SCHEMAS } from './api-schemas.js';
import type { Logger } from '../log.js';
import { AuthThrottle } from '../runtime/auth-throttle.js';
import { hostGuard, hostPolicyFor, TokenGate, type AuthEvents, type HostPolicy } from './guards.js';

export interface HttpServerOptions {
  logger: Logger;
  adminToken: string;
  /** The server section of the running config (reloads change allowedHosts and publicUrl). */
  server: () => ServerConfig;
  /** Counted in metrics (mailgate_auth_failures_total, mailgate_auth_lockouts_total). */
  authEvents?: AuthEvents;
  /** Largest accepted request body (the send API carries base64 attachments). */
  bodyLimitBytes?: number;
}

const DEFAULT_BODY_LIMIT_BYTES = 50 * 1024 * 1024;
/** The version of the API description: mailgate's own (package.json). */
const API_VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
/** Fastify waits this long for in-flight requests on close before cutting them. */
export const HTTP_CLOSE_GRACE_MS = 5_000;
/** Path parameters longer than this are no name or id of ours (fastify's default is 100). */
const MAX_PARAM_LENGTH = 200;

/** A route as registered, for the security regression suite and the API description. */
export interface RegisteredRoute {
  method: string;
  url: string;
}

/** What the route scopes share: the admin token check, the Host check, the route table. */
export interface HttpEdge {
  readonly app: FastifyInstance;
  readonly gate: TokenGate;
  readonly adminToken: string;
  readonly routes: readonly RegisteredRoute[];
  /** The current Host policy (recomputed when the config's server section changes). */
  hostPolicy(): HostPolicy;
}

const edges = new WeakMap<FastifyInstance, HttpEdge>();

/** The edge of a server made by createHttpServer. */
export function edgeOf(app: FastifyInstance): HttpEdge {
  const e = edges.get(app);
  if (!e) throw new Error('not a mailgate HTTP server (createHttpServer)');
  return e;
}

/**
 * The daemon's one HTTP server: health, metrics, the /v1 API (admin token),
 * the OAuth2 callback and the admin UI. Each guarded part is its own fastify
 * scope (registerApi, registerPublicPages, the admin UI's plugin) whose hooks
 * run for every route registered in it, however the URL was spelled.
 */
export function createHttpServer(opts: HttpServerOptions): FastifyInstance {
  const trustProxy = opts.server().trustProxy;
  const app = Fastify({
    loggerInstance: opts.logger.child({ component: 'http' }) as FastifyBaseLogger,
    // No line per request (health checks and metrics scrapes would drown the log).
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: opts.bodyLimitBytes ?? DEFAULT_BODY_LIMIT_BYTES,
    forceCloseConnections: 'idle',
    return503OnClosing: true,
    // Only the configured proxies may set the client address (lockouts and logs are keyed by it).
    ...(trustProxy.length > 0 ? { trustProxy } : {}),
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
  });
  const routes: RegisteredRoute[] = [];
  app.addHook('onRoute', (r) => {
    for (const method of [r.method].flat()) if (method !== 'HEAD') routes.push({ method, url: r.url });
    // The admin UI's pages are in the API description too, as HTML under their own tag.
    if (r.url.startsWith('/admin') && !r.schema?.tags) r.schema = { ...r.schema, tags: ['admin UI'], summary: 'admin web UI (HTML; session cookie, CSRF token on forms)' };
  });
  // GET /openapi.json: the OpenAPI 3 document of every route, from the route schemas (api-schemas.ts).
  void app.register(fastifySwagger, {
    openapi: {
      openapi: '3.0.3',
      info: { title: 'mailgate', version: API_VERSION, description: 'The HTTP API of mailgate. /v1 needs Authorization: Bearer <adminToken>.' },
      components: { securitySchemes: { adminToken: { type: 'http', scheme: 'bearer' } } },
    },
    transform: ({ schema, url }) => ({ schema: url.startsWith('/v1/') ? { ...schema, security: [{ adminToken: [] }] } : schema, url }) as never,
  });
  void app.register(async (scope) => {
    scope.get('/openapi.json', { schema: SCHEMAS.openapi }, async () => app.swagger());
  });
  let cached: { server: ServerConfig; policy: HostPolicy } | null = null;
  const hostPolicy = () => {
    const server = opts.server();
    if (cached?.server !== server) cached = { server, policy: hostPolicyFor(server) };
    return cached.policy;
  };
  const gate = new TokenGate({ throttle: new AuthThrottle(), logger: opts.logger.child({ component: 'http' }), ...(opts.authEvents ? { events: opts.authEvents } : {}) });
  edges.set(app, { app, gate, adminToken: opts.adminToken, routes, hostPolicy });

  // Cookies: parsed by @fastify/cookie (an undecodable value is kept raw, never a 500).
  void app.register(fastifyCookie);
  // Per-address request caps, only on the routes that opt in (config.rateLimit).
  void app.register(fastifyRateLimit, { global: false });

  app.setNotFoundHandler((_req, reply) => {
    // Never echo the path: the answer must not differ between unknown routes.
    void reply.code(404).send({ error: 'not found', code: 'NOT_FOUND' });
  });

  app.setErrorHandler((err: unknown, req: FastifyRequest, reply) => sendError(err, req, reply));
  return app;
}

/** The JSON error answer of every scope but the admin UI's (which renders a page). */
export function sendError(err: unknown, req: FastifyRequest, reply: FastifyReply): FastifyReply {
  if (err instanceof MailgateError) {
    if (err.status >= 500) req.log.error({ err }, 'request failed');
    // details may carry systemCode (ECONNREFUSED, …) next to the catalogue code, for scripts.
    return reply.code(err.status).send({ ...(err.details ?? {}), error: err.message, code: err.code });
  }
  const e = err as { statusCode?: number; message?: string; code?: string };
  if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    // Fastify's own 4xx: body too large, bad JSON, failed schema validation, rate limit.
    return reply.code(e.statusCode).send({ error: e.message ?? 'bad request', code: e.code ?? 'BAD_REQUEST' });
  }
  req.log.error({ err }, 'unhandled error in request');
  return reply.code(500).send({ error: 'internal error', code: 'INTERNAL' });
}

/**
 * The /v1 API: every route registered by `routes` lives in this scope, whose
 * onRequest hooks check the Host and the admin bearer token before anything
 * else. Unknown paths under /v1 answer 401 without a token too, so the
 * answer never tells which routes exist.
 */
export function registerApi(app: FastifyInstance, routes: (api: FastifyInstance) => void): void {
  const edge = edgeOf(app);
  void app.register(
    async (api) => {
      api.addHook('onRequest', hostGuard(edge.hostPolicy, api.log));
      api.addHook('onRequest', edge.gate.bearer('api', () => edge.adminToken));
      api.addHook('onSend', async (_req, reply, payload) => {
        void reply.header('cache-control', 'no-store').header('x-content-type-options', 'nosniff');
        return payload;
      });
      api.setNotFoundHandler((_req, reply) => {
        void reply.code(404).send({ error: 'not found', code: 'NOT_FOUND' });
      });
      routes(api);
    },
    { prefix: '/v1' },
  );
}
