import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { App } from '../../../src/app.js';
import { buildDaemon } from '../../../src/daemon.js';
import { renderApiReference, type OpenApiDoc } from '../../../src/http/api-doc.js';
import { edgeOf, type RegisteredRoute } from '../../../src/http/server.js';
import { silentLogger } from '../../../src/log.js';
import { tmpDataDir } from '../../harness/tmp-dir.js';
import { freePort, ROOT } from './run-daemon.js';

let app: App;
let HOST = '';
let routes: RegisteredRoute[];
let doc: OpenApiDoc & { openapi: string; paths: Record<string, Record<string, { responses?: Record<string, unknown>; parameters?: { name: string; in: string }[]; security?: unknown[] }>> };

beforeAll(async () => {
  const dir = tmpDataDir('mg-openapi-');
  const path = join(dir, 'mailgate.yaml');
  const port = await freePort();
  HOST = `127.0.0.1:${port}`;
  writeFileSync(path, `server:\n  listen: ${HOST}\ndataDir: ./data\n`);
  app = await App.create({ configPath: path, env: {}, logger: silentLogger() });
  buildDaemon(app);
  await app.ctx.http.ready();
  routes = [...edgeOf(app.ctx.http).routes];
  const res = await app.ctx.http.inject({ method: 'GET', url: '/openapi.json' });
  expect(res.statusCode).toBe(200);
  doc = res.json();
});
afterAll(async () => {
  await app.stop();
});

/** fastify's `/v1/outbox/:id` is OpenAPI's `/v1/outbox/{id}`. */
const openApiPath = (url: string) => url.replace(/:([A-Za-z0-9_]+)/g, '{$1}');

describe('GET /openapi.json describes every route the daemon registered', () => {
  it('is an OpenAPI 3 document of this version', () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    expect(doc.openapi).toMatch(/^3\./);
    expect(doc.info.version).toBe(pkg.version);
  });

  it('every registered route (walked from the route table) is in it, with its method', () => {
    expect(routes.length).toBeGreaterThan(20);
    const described = (r: RegisteredRoute) => [openApiPath(r.url), `${openApiPath(r.url)}/`].some((p) => doc.paths[p]?.[r.method.toLowerCase()]);
    const missing = routes.filter((r) => !described(r)).map((r) => `${r.method} ${r.url}`);
    expect(missing).toEqual([]);
    for (const must of ['/healthz', '/readyz', '/metrics', '/openapi.json', '/', '/oauth2/callback', '/v1/accounts', '/v1/accounts/{name}/send']) expect(doc.paths).toHaveProperty([must]);
  });

  it('every /v1 route has its answers, its path parameters and the bearer token', () => {
    for (const r of routes.filter((x) => x.url.startsWith('/v1/'))) {
      const op = doc.paths[openApiPath(r.url)]?.[r.method.toLowerCase()];
      const where = `${r.method} ${r.url}`;
      expect(Object.keys(op?.responses ?? {}), where).toContain('401');
      expect(Object.keys(op?.responses ?? {}).some((s) => s.startsWith('2')), where).toBe(true);
      expect(op?.security, where).toEqual([{ adminToken: [] }]);
      const params = [...r.url.matchAll(/:([A-Za-z0-9_]+)/g)].map((m) => m[1]);
      expect((op?.parameters ?? []).filter((p) => p.in === 'path').map((p) => p.name).sort(), where).toEqual(params.sort());
    }
  });

  it('the route schemas validate: an over-long path parameter is a 400, and answers keep every field', async () => {
    const token = app.ctx.adminToken;
    const long = await app.ctx.http.inject({ method: 'GET', url: `/v1/outbox/${'x'.repeat(150)}a${'y'.repeat(60)}`, headers: { authorization: `Bearer ${token}`, host: HOST } });
    expect(long.statusCode).toBeGreaterThanOrEqual(400);
    expect(long.statusCode).toBeLessThan(500);
    const list = await app.ctx.http.inject({ method: 'GET', url: '/v1/deliveries?limit=5', headers: { authorization: `Bearer ${token}`, host: HOST } });
    expect(list.json(), list.body).toEqual({ deliveries: [] });
  });

  it('docs/api.md is the current rendering of this document (node scripts/api-doc.mjs)', () => {
    expect(readFileSync(join(ROOT, 'docs/api.md'), 'utf8')).toBe(renderApiReference(doc));
  });
});
