import Database from 'better-sqlite3';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { App } from '../../../src/app.js';
import { buildDaemon } from '../../../src/daemon.js';
import { edgeOf, type RegisteredRoute } from '../../../src/http/server.js';
import { silentLogger } from '../../../src/log.js';
import { tmpDataDir } from '../../harness/tmp-dir.js';
import { rawRequest, type RawResponse } from './raw-http.js';
import { freePort, startDaemon, type Daemon } from './run-daemon.js';

/**
 * The /v1 API must refuse every request without the admin token however its
 * path is spelled: authentication belongs to the route scope that matched,
 * not to the URL text (`/%761/accounts` used to answer 200 with every
 * account). The routes come from the daemon's own route table, so a route
 * added later is probed without anyone remembering to list it.
 */

const TOKEN = 'route-probe-admin-token-0123456789';
const ACCOUNT = 'support';

function configYaml(port: number): string {
  return `server:
  listen: 127.0.0.1:${port}
  adminToken: ${TOKEN}
dataDir: ./data
credentials:
  - name: idp
    provider: custom
    clientId: c
    clientSecret: s
    authorizationEndpoint: http://127.0.0.1:9/authorize
    tokenEndpoint: http://127.0.0.1:9/token
    scopes: [mail]
accounts:
  - name: ${ACCOUNT}
    email: support@example.com
    incoming:
      protocol: imap
      host: 127.0.0.1
      port: 9
      tls: false
      auth: { method: password, password: p }
      mode: poll
      pollInterval: 1h
    outgoing:
      host: 127.0.0.1
      port: 9
      tls: false
      auth: { method: password, password: p }
    webhook: hook
webhooks:
  - name: hook
    url: http://127.0.0.1:9/hook
    secret: s
`;
}

/** Reads the route table of a daemon built in this process from the same code and config shape. */
async function routeTable(): Promise<RegisteredRoute[]> {
  const dir = tmpDataDir('mg-routes-');
  const path = join(dir, 'mailgate.yaml');
  writeFileSync(path, configYaml(await freePort()));
  const app = await App.create({ configPath: path, env: {}, logger: silentLogger() });
  buildDaemon(app);
  await app.ctx.http.ready();
  const routes = [...edgeOf(app.ctx.http).routes];
  await app.stop();
  return routes;
}

const pct = (c: string) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`;

/** The ways an attacker may write one path so that a lax router still maps it to the route. */
export function spellings(path: string): string[] {
  const segments = path.split('/').slice(1);
  const out = new Set<string>();
  const join = (segs: string[]) => `/${segs.join('/')}`;
  segments.forEach((seg, i) => {
    // Each letter and digit percent-encoded on its own, upper and lower hex.
    for (let j = 0; j < seg.length; j++) {
      const c = seg.charAt(j);
      if (!/[A-Za-z0-9]/.test(c)) continue;
      for (const enc of [pct(c), pct(c).toLowerCase()]) {
        const s = [...segments];
        s[i] = seg.slice(0, j) + enc + seg.slice(j + 1);
        out.add(join(s));
      }
    }
    // The whole segment encoded, and in upper case.
    const all = [...segments];
    all[i] = [...seg].map(pct).join('');
    out.add(join(all));
    const upper = [...segments];
    upper[i] = seg.toUpperCase();
    out.add(join(upper));
    // A doubled slash before it, a dot segment, a ; parameter.
    out.add(join([...segments.slice(0, i), '', ...segments.slice(i)]));
    out.add(join([...segments.slice(0, i), '.', ...segments.slice(i)]));
    out.add(join([...segments.slice(0, i), '%2e', ...segments.slice(i)]));
    out.add(join([...segments.slice(0, i), 'x', '..', ...segments.slice(i)]));
    out.add(join([...segments.slice(0, i), 'x', '%2e%2e', ...segments.slice(i)]));
    const param = [...segments];
    param[i] = `${seg};x=1`;
    out.add(join(param));
  });
  out.add(path);
  out.add(`${path}/`);
  out.add(`${path}%2F`);
  out.add(`${path}%2f`);
  out.add(`${path}?x=1`);
  out.add(`${path}#frag`);
  out.add(path.replace('/', '%2F'));
  out.add(path.replaceAll('/', '%2F').replace('%2F', '/'));
  out.add(`//${path.slice(1)}`);
  out.add(path.replace(/\//g, '\\').replace('\\', '/'));
  out.add(`${path}/${'a'.repeat(5_000)}`);
  out.add(`${path}${'/x'.repeat(20_000)}`);
  return [...out];
}

function concrete(url: string): string {
  return url.replace(':name', ACCOUNT).replace(':id', 'dlv_0000000000000000');
}

describe('the /v1 API under every spelling of every route (real daemon)', () => {
  let daemon: Daemon;
  let dir: string;
  let routes: RegisteredRoute[];

  beforeAll(async () => {
    routes = await routeTable();
    dir = tmpDataDir('mg-probe-');
    const port = await freePort();
    const path = join(dir, 'mailgate.yaml');
    writeFileSync(path, configYaml(port));
    daemon = await startDaemon(path, port);
  });
  afterAll(async () => {
    await daemon?.stop();
  });

  const port = () => Number(new URL(daemon.url).port);

  it('has every /v1 route of the table behind the token, and the table is not empty', async () => {
    const api = routes.filter((r) => r.url.startsWith('/v1/'));
    expect(api.length).toBeGreaterThanOrEqual(11);
    expect(api.map((r) => `${r.method} ${r.url}`)).toEqual(
      expect.arrayContaining(['GET /v1/accounts', 'POST /v1/accounts/:name/send', 'POST /v1/reload', 'POST /v1/accounts/:name/authorize', 'POST /v1/deliveries/retry-failed']),
    );
    // The canonical path with the token reaches the handler (so a refusal below means the guard, not a broken route).
    const ok = await rawRequest(port(), { path: '/v1/accounts', headers: { authorization: `Bearer ${TOKEN}` } });
    expect(ok.status).toBe(200);
    expect(JSON.parse(ok.body).accounts[0].name).toBe(ACCOUNT);
  });

  it('refuses every spelling without a token, with nothing done', async () => {
    let probes = 0;
    const leaks: string[] = [];
    for (const r of routes.filter((x) => x.url.startsWith('/v1/'))) {
      for (const path of spellings(concrete(r.url))) {
        let res: RawResponse;
        try {
          res = await rawRequest(port(), { method: r.method, path });
        } catch (err) {
          // The server may drop a request line it will not read (too long): refused, not answered.
          if ((err as NodeJS.ErrnoException).code === 'ECONNRESET') continue;
          throw err;
        }
        probes++;
        // 401 (the guard), 404 (not a route), 400/414/431 (not even HTTP we read): never an answer from a handler.
        if (![400, 401, 404, 414, 431].includes(res.status)) leaks.push(`${r.method} ${path} -> ${res.status} ${res.body.slice(0, 80)}`);
        if (res.body.includes(ACCOUNT) || res.body.includes('authorizationUrl')) leaks.push(`${r.method} ${path} leaked: ${res.body.slice(0, 80)}`);
      }
    }
    expect(leaks).toEqual([]);
    expect(probes).toBeGreaterThan(500);
    // Nothing was queued, reloaded or authorized by any of them.
    const db = new Database(join(dir, 'data/mailgate.db'), { readonly: true });
    try {
      expect(db.prepare('SELECT COUNT(*) AS n FROM outbox').get()).toEqual({ n: 0 });
      expect(db.prepare('SELECT COUNT(*) AS n FROM oauth_states').get()).toEqual({ n: 0 });
    } finally {
      db.close();
    }
    expect(daemon.output()).not.toContain('config reloaded');
  });

  it('answers unknown routes alike, without telling which exist under /v1', async () => {
    const notFound = (res: RawResponse) => ({ status: res.status, body: res.body });
    const outside = await rawRequest(port(), { path: '/no-such-route' });
    expect(notFound(outside)).toEqual({ status: 404, body: JSON.stringify({ error: 'not found', code: 'NOT_FOUND' }) });
    for (const path of ['/v2/accounts', '/%762/accounts', '/nope/v1/accounts', '/v1x/accounts']) {
      expect(notFound(await rawRequest(port(), { path })), path).toEqual(notFound(outside));
    }
    // Under /v1 an unknown route is refused exactly like a known one without a token...
    const known = await rawRequest(port(), { path: '/v1/accounts' });
    for (const path of ['/v1/no-such-route', '/v1/accounts/x/y/z', '/v1/']) {
      const res = await rawRequest(port(), { path });
      expect({ status: res.status, body: res.body }, path).toEqual({ status: known.status, body: known.body });
    }
    // ...and with the token it is a plain 404 that does not echo the path.
    const withToken = await rawRequest(port(), { path: '/v1/no-such-route', headers: { authorization: `Bearer ${TOKEN}` } });
    expect(notFound(withToken)).toEqual(notFound(outside));
  });
});
