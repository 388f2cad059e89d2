import fastifyFormbody from '@fastify/formbody';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { MailgateError } from '../../errors.js';
import { SCHEMAS } from '../api-schemas.js';
import { hostGuard } from '../guards.js';
import { registerPageHeaders } from '../page-headers.js';
import { edgeOf } from '../server.js';
import { registerAccountPage } from './account-page.js';
import { registerAccountPages } from './accounts-page.js';
import { ADMIN_CSP } from './assets.js';
import { attachedSession, attachSession, formOf, isSecure, sendPage, type AdminUiDeps } from './context.js';
import { registerCredentialPages } from './credentials-page.js';
import { registerDeliveryPages } from './deliveries-page.js';
import { html } from './html.js';
import { page } from './layout.js';
import { registerLoginRoutes } from './login-page.js';
import { registerRelayPage } from './relay-page.js';
import { csrfMatches, readCookie, SESSION_COOKIE, SessionStore } from './session.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** An admin UI route that needs no session (the sign-in page). */
    public?: boolean;
  }
}

export type { AdminUiDeps } from './context.js';
export { returnToAccounts } from './accounts-page.js';

/** Admin forms are a few fields; anything larger is not from these pages. */
const FORM_BODY_LIMIT_BYTES = 64 * 1024;

/** A page for what went wrong; "Back" leads to the sign-in page if the session is gone. */
function problemPage(reply: FastifyReply, status: number, title: string, text: string): FastifyReply {
  const body = html`<p>${text}</p><p><a href="/admin/accounts">Back to the accounts</a></p>`;
  return sendPage(reply, page({ title, session: null, body }), status);
}

/**
 * The admin web UI under /admin: server-rendered pages over the same services
 * as the /v1 API. Signing in with the admin token opens a session kept in
 * the store (HttpOnly, SameSite=Strict cookie, Secure when publicUrl is
 * https); every POST carries the session's CSRF token.
 */
export function registerAdminUi(http: FastifyInstance, deps: AdminUiDeps): void {
  const sessions = new SessionStore(deps.store.adminSessions);

  const edge = edgeOf(http);
  // The root has nothing of its own: a browser pointed at the daemon lands on the admin UI.
  void http.register(async (scope) => {
    scope.get('/', { schema: SCHEMAS.root }, async (_req, reply) => reply.code(302).header('location', '/admin').send());
  });
  void http.register(
    async (admin) => {
      // A repeated field keeps its last value, as the pages expect one string per field.
      await admin.register(fastifyFormbody, { bodyLimit: FORM_BODY_LIMIT_BYTES, parser: (body) => Object.fromEntries(new URLSearchParams(body)) });
      await registerPageHeaders(admin, { csp: ADMIN_CSP, https: isSecure(deps) });
      admin.addHook('onRequest', hostGuard(edge.hostPolicy, admin.log));

      // Decided by the route that matched (its config), never by the URL's text.
      admin.addHook('preHandler', async (req: FastifyRequest, reply: FastifyReply) => {
        if (req.routeOptions.config.public === true) return;
        const session = await sessions.get(readCookie(req, SESSION_COOKIE));
        if (!session) {
          const next = req.method === 'GET' ? `?next=${encodeURIComponent(req.url)}` : '';
          return reply.code(303).header('location', `/admin/login${next}`).send();
        }
        if (req.method === 'POST' && !csrfMatches(formOf(req)._csrf, session.csrf)) {
          req.log.warn({ route: req.routeOptions.url }, 'admin UI form without a valid CSRF token refused');
          return problemPage(reply, 403, 'Form refused', 'This form expired or was sent from another site. Reload the page and try again; nothing was changed.');
        }
        attachSession(req, session);
      });

      // Pages set and take the flash on the session object (post/redirect/get);
      // it is written back before the response leaves, so the next request,
      // after a restart or on another replica, sees it.
      admin.addHook('onSend', async (req, _reply, payload) => {
        const session = attachedSession(req);
        if (session) {
          try {
            await sessions.saveFlash(session);
          } catch (err) {
            req.log.warn({ err }, 'admin UI message for the next page could not be stored');
          }
        }
        return payload;
      });

      admin.setNotFoundHandler((_req, reply) => problemPage(reply, 404, 'Not found', 'There is no such page.'));

      admin.setErrorHandler((err: unknown, req, reply) => {
        if (err instanceof MailgateError && err.status < 500) return problemPage(reply, err.status, 'Not possible', err.message);
        const status = (err as { statusCode?: number }).statusCode;
        if (typeof status === 'number' && status >= 400 && status < 500) {
          return problemPage(reply, status, 'Bad request', 'The request could not be read.');
        }
        req.log.error({ err }, 'admin UI request failed');
        return problemPage(reply, 500, 'Something went wrong', 'The request failed; the daemon log has the details.');
      });

      registerLoginRoutes(admin, deps, sessions, edge.gate);
      registerAccountPages(admin, deps);
      registerAccountPage(admin, deps);
      registerCredentialPages(admin, deps);
      registerDeliveryPages(admin, deps);
      registerRelayPage(admin, deps);
    },
    { prefix: '/admin' },
  );
}
