import type { FastifyInstance, FastifyReply } from 'fastify';
import { bearerMatches } from '../admin-auth.js';
import type { TokenGate } from '../guards.js';
import { formOf, isSecure, redirectWith, sendPage, sessionOf, type AdminUiDeps } from './context.js';
import { html } from './html.js';
import { field, page } from './layout.js';
import { csrfMatches, LOGIN_CSRF_COOKIE, randomToken, readCookie, setCookie, SESSION_COOKIE, SESSION_TTL_MS, type SessionStore } from './session.js';

/** Sign-in attempts per address per minute, on top of the lockout after wrong tokens (guards.ts). */
const LOGIN_RATE_LIMIT = { max: 30, timeWindow: 60_000 };

/** Only paths of this UI are followed after signing in (no open redirect). */
function safeNext(next: string | undefined): string {
  return next && /^\/admin\/[A-Za-z0-9/_.?=&%-]*$/.test(next) && !next.includes('//') ? next : '/admin/accounts';
}

function loginPage(reply: FastifyReply, deps: AdminUiDeps, next: string, error: string | null, status = 200): FastifyReply {
  // A fresh double-submit token per rendering: the login form has no session to bind it to.
  const csrf = randomToken();
  setCookie(reply, LOGIN_CSRF_COOKIE, csrf, { path: '/admin/login', sameSite: 'strict', secure: isSecure(deps) });
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

export function registerLoginRoutes(admin: FastifyInstance, deps: AdminUiDeps, sessions: SessionStore, gate: TokenGate): void {
  admin.get('/login', { config: { public: true } }, async (req, reply) => {
    const { next } = req.query as { next?: unknown };
    return loginPage(reply, deps, safeNext(typeof next === 'string' ? next : undefined), null);
  });

  admin.post('/login', { config: { public: true, rateLimit: LOGIN_RATE_LIMIT } }, async (req, reply) => {
    const form = formOf(req);
    const next = safeNext(form.next);
    const expected = readCookie(req, LOGIN_CSRF_COOKIE);
    if (!expected || !csrfMatches(form._csrf, expected)) {
      return loginPage(reply, deps, next, 'The sign-in form expired. Please enter the token again.', 403);
    }
    // The same check as the /v1 API's bearer token, with the same lockout after repeated failures.
    const typed = typeof form.token === 'string' ? form.token : '';
    const outcome = gate.attempt(req, 'admin', typed !== '', () => bearerMatches(`Bearer ${typed}`, deps.adminToken));
    if (outcome === 'locked') {
      const wait = gate.retryAfterSeconds(req) ?? 1;
      void reply.header('retry-after', String(wait));
      return loginPage(reply, deps, next, `Too many wrong tokens from your address. Wait ${wait} seconds, then try again.`, 429);
    }
    if (outcome === 'denied') return loginPage(reply, deps, next, 'That is not the admin token.', 401);
    const s = await sessions.create();
    const secure = isSecure(deps);
    setCookie(reply, SESSION_COOKIE, s.id, { path: '/admin', maxAge: SESSION_TTL_MS / 1000, sameSite: 'strict', secure });
    setCookie(reply, LOGIN_CSRF_COOKIE, '', { path: '/admin/login', maxAge: 0, sameSite: 'strict', secure });
    return reply.code(303).header('location', next).send();
  });

  admin.post('/logout', async (req, reply) => {
    await sessions.delete(sessionOf(req).id);
    setCookie(reply, SESSION_COOKIE, '', { path: '/admin', maxAge: 0, sameSite: 'strict', secure: isSecure(deps) });
    return reply.code(303).header('location', '/admin/login').send();
  });

  admin.get('/', async (req, reply) => redirectWith(req, reply, '/admin/accounts'));
}
