import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { MailgateError } from '../../errors.js';
import type { OAuthFlows } from '../../oauth/flows.js';

function page(title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)} · mailgate</title>
<style>body{font:16px system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem}</style></head>
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

export function registerOAuthRoutes(app: FastifyInstance, flows: OAuthFlows, returns: readonly CallbackReturn[] = []): void {
  const returnTo = (req: FastifyRequest, reply: FastifyReply, account: string | null) => returns.some((r) => r(req, reply, account));
  app.post('/v1/accounts/:name/authorize', async (req) => {
    const { name } = req.params as { name: string };
    const { authorizationUrl, expiresAt } = await flows.startAuthorization(name);
    return { authorizationUrl, expiresAt: new Date(expiresAt).toISOString() };
  });

  // Not under /v1: the provider's redirect carries no admin token; the
  // single-use state (and PKCE) is the guard.
  app.get('/oauth2/callback', async (req, reply) => {
    const query = req.query as Record<string, string | undefined>;
    try {
      const { account } = await flows.completeAuthorization(query);
      req.log.info({ account }, 'account authorized; tokens stored');
      if (returnTo(req, reply, account)) return reply;
      return reply
        .type('text/html')
        .send(page('Authorized', `<p>Account <strong>${escapeHtml(account)}</strong> is authorized. You can close this window.</p>`));
    } catch (err) {
      const message = err instanceof MailgateError ? err.message : 'internal error';
      const account = err instanceof MailgateError ? (err.details?.account as string | undefined) : undefined;
      req.log.warn({ account, error: message }, 'authorization callback failed; nothing stored');
      returnTo(req, reply, null);
      return reply
        .code(err instanceof MailgateError && err.status < 500 ? 400 : 500)
        .type('text/html')
        .send(page('Authorization failed', `<p>${escapeHtml(message)}</p><p>Nothing was stored.</p>`));
    }
  });
}
