import type { FastifyInstance, FastifyReply } from 'fastify';
import { bearerMatches } from '../admin-auth.js';
import { formOf, isSecure, redirectWith, sendPage, sessionOf, type AdminUiDeps } from './context.js';
import { html } from './html.js';
import { field, page } from './layout.js';
import { csrfMatches, LOGIN_CSRF_COOKIE, randomToken, readCookie, serializeCookie, SESSION_COOKIE, SESSION_TTL_MS, type SessionStore } from './session.js';

/** Only paths of this UI are followed after signing in (no open redirect). */
function safeNext(next: string | undefined): string {
  return next && /^\/admin\/[A-Za-z0-9/_.?=&%-]*$/.test(next) && !next.includes('//') ? next : '/admin/accounts';
}

function loginPage(reply: FastifyReply, deps: AdminUiDeps, next: string, error: string | null, status = 200): FastifyReply {
  // A fresh double-submit token per rendering: the login form has no session to bind it to.
  const csrf = randomToken();
  void reply.header('set-cookie', serializeCookie(LOGIN_CSRF_COOKIE, csrf, { path: '/admin/login', sameSite: 'Strict', secure: isSecure(deps) }));
  const body = html`<form method="post" action="/admin/login">
<input type="hidden" name="_csrf" value="${csrf}">
<input type="hidden" name="next" value="${next}">
${field({
  name: 'token',
  label: 'Admin token',
  type: 'password',
  autocomplete: 'current-password',
  hint: 'server.adminToken from the config, or the content of dataDir/admin.token',
  error: error ?? undefined,
})}
<div class="actions"><button type="submit" class="primary">Sign in</button></div>
</form>`;
  return sendPage(reply, page({ title: 'Sign in to mailgate', session: null, body }), status);
}

export function registerLoginRoutes(admin: FastifyInstance, deps: AdminUiDeps, sessions: SessionStore): void {
  admin.get('/login', async (req, reply) => loginPage(reply, deps, safeNext((req.query as { next?: string }).next), null));

  admin.post('/login', async (req, reply) => {
    const form = formOf(req);
    const next = safeNext(form.next);
    const expected = readCookie(req, LOGIN_CSRF_COOKIE);
    if (!expected || !csrfMatches(form._csrf, expected)) {
      return loginPage(reply, deps, next, 'The sign-in form expired. Please enter the token again.', 403);
    }
    // The same check as the /v1 API's bearer token.
    if (!bearerMatches(`Bearer ${form.token ?? ''}`, deps.adminToken)) {
      req.log.warn({ ip: req.ip }, 'admin UI sign-in with a wrong token');
      return loginPage(reply, deps, next, 'That is not the admin token.', 401);
    }
    const s = await sessions.create();
    const secure = isSecure(deps);
    void reply.header('set-cookie', [
      serializeCookie(SESSION_COOKIE, s.id, { path: '/admin', maxAge: SESSION_TTL_MS / 1000, sameSite: 'Strict', secure }),
      serializeCookie(LOGIN_CSRF_COOKIE, '', { path: '/admin/login', maxAge: 0, sameSite: 'Strict', secure }),
    ]);
    return reply.code(303).header('location', next).send();
  });

  admin.post('/logout', async (req, reply) => {
    await sessions.delete(sessionOf(req).id);
    void reply.header('set-cookie', serializeCookie(SESSION_COOKIE, '', { path: '/admin', maxAge: 0, sameSite: 'Strict', secure: isSecure(deps) }));
    return reply.code(303).header('location', '/admin/login').send();
  });

  admin.get('/', async (req, reply) => redirectWith(req, reply, '/admin/accounts'));
}
