import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import type { Config } from '../../../src/config/types.js';
import { registerAdminUi, type AdminUiDeps } from '../../../src/http/admin/index.js';
import { SESSION_TTL_MS, SessionStore } from '../../../src/http/admin/session.js';
import { createHttpServer } from '../../../src/http/server.js';
import { createLogger } from '../../../src/log.js';
import { SecretCipher } from '../../../src/secrets/cipher.js';
import { SqliteStore } from '../../../src/store/sqlite/sqlite-store.js';
import { parseCsp, parseSetCookie } from '../../harness/http-headers.js';

/**
 * Sign-in, cookies and headers over fastify's inject, with a public URL on
 * https (the browser test runs on plain http): no services are needed
 * before a session exists but the store, which keeps the sessions.
 */

const TOKEN = 'admin-token-for-session-test';
let http: FastifyInstance;
let store: SqliteStore;

beforeAll(async () => {
  store = SqliteStore.open(':memory:', new SecretCipher(randomBytes(32)));
  const server = { listen: { host: '127.0.0.1', port: 8025 }, publicUrl: 'https://mail.example.com', adminToken: TOKEN, metricsToken: undefined, allowedHosts: ['localhost'], trustProxy: [] };
  http = createHttpServer({ logger: createLogger({ level: 'silent' }), adminToken: TOKEN, server: () => server });
  const config = { server, credentials: [], accounts: [] } as unknown as Config;
  registerAdminUi(http, { config: () => config, adminToken: TOKEN, store, wake: () => undefined } as unknown as AdminUiDeps);
  await http.ready();
});
afterAll(async () => {
  await http.close();
  await store.close();
});

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
    const csp = parseCsp(r.headers['content-security-policy'] as string);
    expect(csp['default-src']).toEqual(["'none'"]);
    expect(csp['style-src']).toEqual([expect.stringMatching(/^'sha256-[^']+'$/)]);
    expect(csp['script-src']).toEqual([expect.stringMatching(/^'sha256-[^']+'$/)]);
    expect(csp['frame-ancestors']).toEqual(["'none'"]);
    expect(Object.values(csp).flat()).not.toContain("'unsafe-inline'");
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
    expect(parseSetCookie(session ?? '').attrs).toEqual({ path: '/admin', 'max-age': '43200', httponly: true, samesite: 'Strict', secure: true });
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

  it('keeps the flash of a form POST for exactly the next page, through the store', async () => {
    const { csrf, cookie } = await loginForm();
    const login = await postLogin({ _csrf: csrf, token: TOKEN }, cookie);
    const session = ([] as string[]).concat(login.headers['set-cookie'] ?? []).find((c) => c.startsWith('mailgate_session='))?.split(';')[0] ?? '';
    const get = () => http.inject({ method: 'GET', url: '/admin/deliveries', headers: { cookie: session } });
    const formToken = /name="_csrf" value="([^"]+)"/.exec((await get()).body)?.[1] ?? '';
    const post = await http.inject({
      method: 'POST',
      url: '/admin/deliveries/retry-failed',
      headers: { cookie: session, 'content-type': 'application/x-www-form-urlencoded' },
      payload: new URLSearchParams({ _csrf: formToken }).toString(),
    });
    expect(post.statusCode).toBe(303);
    const rows = store.db.prepare('SELECT flash_json FROM admin_sessions WHERE flash_json IS NOT NULL').all();
    expect(rows).toEqual([{ flash_json: JSON.stringify({ kind: 'ok', text: '0 failed deliveries are queued again.' }) }]);
    expect((await get()).body).toContain('0 failed deliveries are queued again.');
    expect((await get()).body).not.toContain('queued again');
  });
});

describe('SessionStore over the store', () => {
  it('finds a session from another instance (a restart, another replica) until it expires 12 hours after sign-in', async () => {
    const db = SqliteStore.open(':memory:', new SecretCipher(randomBytes(32)));
    let now = 1_000_000;
    const clock = () => now;
    const s = await new SessionStore(db.adminSessions, clock).create();
    expect(s.expiresAt).toBe(now + SESSION_TTL_MS);
    const other = new SessionStore(db.adminSessions, clock);
    expect(await other.get(s.id)).toMatchObject({ id: s.id, csrf: s.csrf, expiresAt: s.expiresAt, flash: null });
    now += SESSION_TTL_MS - 1;
    expect(await other.get(s.id)).not.toBeNull();
    now += 1;
    expect(await other.get(s.id)).toBeNull();
    expect(await other.get(undefined)).toBeNull();
    await db.close();
  });

  it('ends a session on sign-out, and drops expired ones at the next sign-in', async () => {
    const db = SqliteStore.open(':memory:', new SecretCipher(randomBytes(32)));
    let now = 0;
    const sessions = new SessionStore(db.adminSessions, () => now);
    const old = await sessions.create();
    const signedOut = await sessions.create();
    await sessions.delete(signedOut.id);
    expect(await sessions.get(signedOut.id)).toBeNull();
    now = SESSION_TTL_MS;
    await sessions.create();
    const count = db.db.prepare('SELECT count(*) AS n FROM admin_sessions').get() as { n: number };
    expect(count.n).toBe(1);
    expect(await sessions.get(old.id)).toBeNull();
    await db.close();
  });
});
