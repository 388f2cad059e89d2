import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import type { Config } from '../../../src/config/types.js';
import { registerAdminUi, type AdminUiDeps } from '../../../src/http/admin/index.js';
import { createHttpServer } from '../../../src/http/server.js';
import { createLogger } from '../../../src/log.js';

/**
 * Sign-in, cookies and headers over fastify's inject, with a public URL on
 * https (the browser test runs on plain http): no services are needed
 * before a session exists.
 */

const TOKEN = 'admin-token-for-session-test';
let http: FastifyInstance;

beforeAll(async () => {
  http = createHttpServer({ logger: createLogger({ level: 'silent' }), adminToken: TOKEN });
  const config = { server: { publicUrl: 'https://mail.example.com' }, credentials: [], accounts: [] } as unknown as Config;
  registerAdminUi(http, { config: () => config, adminToken: TOKEN } as AdminUiDeps);
  await http.ready();
});
afterAll(() => http.close());

async function loginForm(): Promise<{ csrf: string; cookie: string }> {
  const r = await http.inject({ method: 'GET', url: '/admin/login' });
  const csrf = /name="_csrf" value="([^"]+)"/.exec(r.body)?.[1] ?? '';
  const cookie = String(r.headers['set-cookie']).split(';')[0] ?? '';
  return { csrf, cookie };
}

function postLogin(form: Record<string, string>, cookie: string) {
  return http.inject({
    method: 'POST',
    url: '/admin/login',
    headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams(form).toString(),
  });
}

describe('admin UI sessions', () => {
  it('sends pages with a strict Content-Security-Policy and no caching', async () => {
    const r = await http.inject({ method: 'GET', url: '/admin/login' });
    expect(r.headers['content-security-policy']).toMatch(/^default-src 'none'; style-src 'sha256-[^']+'; script-src 'sha256-[^']+'/);
    expect(r.headers['cache-control']).toBe('no-store');
    expect(r.headers['x-frame-options']).toBe('DENY');
  });

  it('redirects to the sign-in page, and back after signing in (never to another site)', async () => {
    const r = await http.inject({ method: 'GET', url: '/admin/deliveries' });
    expect(r.statusCode).toBe(303);
    expect(r.headers.location).toBe('/admin/login?next=%2Fadmin%2Fdeliveries');
    const unknown = await http.inject({ method: 'GET', url: '/admin/no-such-page' });
    expect(unknown.headers.location).toBe('/admin/login?next=%2Fadmin%2Fno-such-page');

    const { csrf, cookie } = await loginForm();
    const ok = await postLogin({ _csrf: csrf, token: TOKEN, next: '/admin/deliveries' }, cookie);
    expect(ok.headers.location).toBe('/admin/deliveries');
    const evil = await postLogin({ _csrf: csrf, token: TOKEN, next: '//evil.example/admin/x' }, cookie);
    expect(evil.headers.location).toBe('/admin/accounts');
  });

  it('marks the session cookie Secure when publicUrl is https, and HttpOnly, SameSite=Strict', async () => {
    const { csrf, cookie } = await loginForm();
    expect(cookie).toMatch(/^mailgate_login_csrf=/);
    const r = await postLogin({ _csrf: csrf, token: TOKEN }, cookie);
    expect(r.statusCode).toBe(303);
    const session = ([] as string[]).concat(r.headers['set-cookie'] ?? []).find((c) => c.startsWith('mailgate_session='));
    expect(session).toMatch(/; Path=\/admin; Max-Age=43200; HttpOnly; SameSite=Strict; Secure$/);
  });

  it('refuses a sign-in without the form token, and a wrong admin token', async () => {
    const { csrf, cookie } = await loginForm();
    const forged = await postLogin({ _csrf: 'x', token: TOKEN }, cookie);
    expect(forged.statusCode).toBe(403);
    expect(forged.headers['set-cookie']).not.toMatch(/mailgate_session=/);
    const wrong = await postLogin({ _csrf: csrf, token: 'guess' }, cookie);
    expect(wrong.statusCode).toBe(401);
    expect(wrong.body).toContain('That is not the admin token.');
  });
});
