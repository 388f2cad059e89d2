import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { MailgateError } from '../../errors.js';
import type { OAuthFlows } from '../../oauth/flows.js';
import { SCHEMAS } from '../api-schemas.js';
import { hostGuard } from '../guards.js';
import { registerPageHeaders, sha256Source } from '../page-headers.js';
import { edgeOf } from '../server.js';

const CALLBACK_STYLE = 'body{font:16px system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem}';

function page(title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)} · mailgate</title>
<style>${CALLBACK_STYLE}</style></head>
<body><main><h1>${escapeHtml(title)}</h1>${body}</main></body></html>`;
}

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c);
}

/**
 * Where the browser goes after the callback: a redirect (true when it sent
 * one), or nothing and the plain result page. `account` is null when the
 * callback failed. The admin UI uses it to bring the admin back to its
 * Accounts page.
 */
export type CallbackReturn = (req: FastifyRequest, reply: FastifyReply, account: string | null) => boolean;

/** `POST /v1/accounts/{name}/authorize`; registered inside the /v1 scope (registerApi). */
export function registerAuthorizeRoute(api: FastifyInstance, flows: OAuthFlows): void {
  api.post('/accounts/:name/authorize', { schema: SCHEMAS.authorize }, async (req) => {
    const { name } = req.params as { name: string };
    const { authorizationUrl, expiresAt } = await flows.startAuthorization(name);
    return { authorizationUrl, expiresAt: new Date(expiresAt).toISOString() };
  });
}

/** The provider's redirect carries only these, each once; a repeated one is a 400, never a 500. */
const CALLBACK_QUERY = {
  type: 'object',
  properties: {
    state: { type: 'string', maxLength: 512 },
    code: { type: 'string', maxLength: 4096 },
    error: { type: 'string', maxLength: 256 },
    error_description: { type: 'string', maxLength: 2048 },
  },
} as const;
/** Callback hits per address per minute: each one looks up a state in the database. */
const CALLBACK_RATE_LIMIT = { max: 60, timeWindow: 60_000 };

/**
 * `GET /oauth2/callback`, in a scope of its own: not under /v1 (the
 * provider's redirect carries no admin token; the single-use state and PKCE
 * are the guard), with the Host check and the pages' security headers.
 */
export function registerOAuthCallback(app: FastifyInstance, flows: OAuthFlows, opts: { https: boolean; returns?: readonly CallbackReturn[] }): void {
  const edge = edgeOf(app);
  const returns = opts.returns ?? [];
  const returnTo = (req: FastifyRequest, reply: FastifyReply, account: string | null) => returns.some((r) => r(req, reply, account));
  void app.register(async (scope) => {
    await registerPageHeaders(scope, { csp: { styleSrc: [sha256Source(CALLBACK_STYLE)] }, https: opts.https });
    scope.addHook('onRequest', hostGuard(edge.hostPolicy, scope.log));
    scope.setErrorHandler((err: unknown, req, reply) => {
      const status = (err as { statusCode?: number }).statusCode;
      if (typeof status === 'number' && status >= 400 && status < 500) {
        req.log.warn({ error: (err as Error).message }, 'authorization callback refused: bad request; nothing stored');
        return reply.code(status).type('text/html; charset=utf-8').send(page('Authorization failed', '<p>The request could not be read.</p><p>Nothing was stored.</p>'));
      }
      req.log.error({ err }, 'authorization callback failed');
      return reply.code(500).type('text/html; charset=utf-8').send(page('Authorization failed', '<p>Internal error; the daemon log has the details.</p><p>Nothing was stored.</p>'));
    });

    scope.get('/oauth2/callback', { schema: { tags: ['oauth2'], summary: "the provider's redirect target: checks state and PKCE, stores the tokens (an HTML page)", querystring: CALLBACK_QUERY }, config: { rateLimit: CALLBACK_RATE_LIMIT } }, async (req, reply) => {
      const query = req.query as Record<string, string | undefined>;
      try {
        const { account } = await flows.completeAuthorization(query);
        req.log.info({ account }, 'account authorized; tokens stored');
        if (returnTo(req, reply, account)) return reply;
        return reply
          .type('text/html; charset=utf-8')
          .send(page('Authorized', `<p>Account <strong>${escapeHtml(account)}</strong> is authorized. You can close this window.</p>`));
      } catch (err) {
        const known = err instanceof MailgateError && err.status < 500;
        const message = known ? err.message : 'internal error; the daemon log has the details';
        const account = err instanceof MailgateError ? (err.details?.account as string | undefined) : undefined;
        if (known) req.log.warn({ account, error: message }, 'authorization callback failed; nothing stored');
        else req.log.error({ err, account }, 'authorization callback failed; nothing stored');
        returnTo(req, reply, null);
        return reply
          .code(known ? 400 : 500)
          .type('text/html; charset=utf-8')
          .send(page('Authorization failed', `<p>${escapeHtml(message)}</p><p>Nothing was stored.</p>`));
      }
    });
  });
}
