import { chmodSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { parseCsp } from '../../harness/http-headers.js';
import { tmpDataDir } from '../../harness/tmp-dir.js';
import { until } from '../../harness/until.js';
import { rawRequest } from './raw-http.js';
import { freePort, runCli, startDaemon, type Daemon } from './run-daemon.js';

/** Each hardening item of the HTTP edge, against a real daemon process. */

const TOKEN = 'hardening-admin-token-0123456789ab';
const daemons: Daemon[] = [];
const servers: Server[] = [];
afterEach(async () => {
  for (const d of daemons.splice(0)) await d.stop('SIGKILL');
  for (const s of servers.splice(0)) await new Promise((r) => s.close(r));
});

async function daemonWith(extra: { server?: string; top?: string } = {}): Promise<{ d: Daemon; dir: string; port: number }> {
  const dir = tmpDataDir('mg-hard-');
  const port = await freePort();
  const path = join(dir, 'mailgate.yaml');
  writeFileSync(path, `server:\n  listen: 127.0.0.1:${port}\n  adminToken: ${TOKEN}\n${extra.server ?? ''}dataDir: ./data\n${extra.top ?? ''}`);
  const d = await startDaemon(path, port);
  daemons.push(d);
  return { d, dir, port };
}

const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

describe('HTTP edge hardening (real daemon)', () => {
  it('locks an address out after repeated wrong tokens, counts it, and lets the right token in once the lockout ends', async () => {
    const { d, port } = await daemonWith();
    // A request without any token guesses nothing: refused, never counted.
    for (let i = 0; i < 20; i++) expect((await rawRequest(port, { path: '/v1/accounts' })).status).toBe(401);
    for (let i = 0; i < 5; i++) expect((await rawRequest(port, { path: '/v1/accounts', headers: bearer(`wrong-${i}`) })).status).toBe(401);
    const sixth = await rawRequest(port, { path: '/v1/accounts', headers: bearer('wrong-6') });
    expect(sixth.status).toBe(401); // this failure starts the lockout
    const locked = await rawRequest(port, { path: '/v1/accounts', headers: bearer(TOKEN) });
    // While locked out, even the right token is not evaluated (else the answer would tell a guess was right).
    expect(locked.status).toBe(429);
    expect(Number(locked.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(JSON.parse(locked.body).code).toBe('TOO_MANY_ATTEMPTS');
    // The admin UI's sign-in shares the lockout.
    const login = await rawRequest(port, { path: '/admin/login' });
    expect(login.status).toBe(200);
    await sleep(Number(locked.headers['retry-after']) * 1000 + 100);
    expect((await rawRequest(port, { path: '/v1/accounts', headers: bearer(TOKEN) })).status).toBe(200);
    const metrics = await (await fetch(`${d.url}/metrics`)).text();
    expect(metrics).toMatch(/mailgate_auth_failures_total\{surface="api"\} 6/);
    expect(metrics).toMatch(/mailgate_auth_lockouts_total\{surface="api"\} 1/);
    await until(() => d.output().includes('repeated wrong tokens from this address; it is locked out for a while'), 5_000, 'the log line');
    expect(d.output()).not.toContain(TOKEN);
  });

  it('refuses requests for another Host on /v1, /admin and /oauth2, and answers its own names', async () => {
    const { port } = await daemonWith({ server: '  allowedHosts: [mailgate.internal]\n' });
    for (const path of ['/v1/accounts', '/admin/login', '/oauth2/callback?state=x']) {
      const evil = await rawRequest(port, { path, host: `evil.example:${port}`, headers: bearer(TOKEN) });
      expect(evil.status, path).toBe(421);
      expect(JSON.parse(evil.body).code).toBe('HOST_NOT_ALLOWED');
    }
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, 'mailgate.internal', `mailgate.internal:${port}`]) {
      expect((await rawRequest(port, { path: '/v1/accounts', host, headers: bearer(TOKEN) })).status, host).toBe(200);
    }
    // Probes and scrapes do not care about the name they were sent to.
    expect((await rawRequest(port, { path: '/healthz', host: 'anything.example' })).status).toBe(200);
    expect((await rawRequest(port, { path: '/v1/accounts', host: `localhost:${port + 1}`, headers: bearer(TOKEN) })).status).toBe(421);
  });

  it('keeps dataDir 0700 and every file in it 0600, tightening what it finds', async () => {
    const dir = tmpDataDir('mg-perm-');
    const data = join(dir, 'data');
    mkdirSync(data, { mode: 0o755 });
    chmodSync(data, 0o755);
    writeFileSync(join(data, 'old-backup.db'), 'x', { mode: 0o644 });
    chmodSync(join(data, 'old-backup.db'), 0o644);
    const port = await freePort();
    const path = join(dir, 'mailgate.yaml');
    writeFileSync(path, `server:\n  listen: 127.0.0.1:${port}\n  adminToken: ${TOKEN}\ndataDir: ./data\n`);
    const d = await startDaemon(path, port);
    daemons.push(d);
    // A write, so the -wal and -shm files exist.
    await rawRequest(port, { method: 'POST', path: '/v1/deliveries/retry-failed', headers: bearer(TOKEN) });
    expect(statSync(data).mode & 0o777).toBe(0o700);
    for (const f of ['mailgate.db', 'mailgate.db-wal', 'mailgate.db-shm', 'secret.key', 'old-backup.db']) {
      expect(statSync(join(data, f)).mode & 0o777, f).toBe(0o600);
    }
    await until(() => d.output().includes('made them private'), 5_000, 'the log line');
  });

  it('answers bad cookies and repeated query parameters with 4xx, never 500', async () => {
    const { d, port } = await daemonWith();
    const cookie = { cookie: 'mailgate_session=%E0%A4%A; mailgate_authorize_return=%ZZ' };
    const page = await rawRequest(port, { path: '/admin/accounts', headers: cookie });
    expect(page.status).toBe(303);
    expect(page.headers.location).toBe('/admin/login?next=%2Fadmin%2Faccounts');
    const cb = await rawRequest(port, { path: '/oauth2/callback?state=abc', headers: cookie });
    expect(cb.status).toBe(400);
    const twice = await rawRequest(port, { path: '/oauth2/callback?state=a&state=b&code=c' });
    expect(twice.status).toBe(400);
    expect(twice.body).toContain('Nothing was stored');
    const codes = await rawRequest(port, { path: '/oauth2/callback?state=a&code=c&code=d' });
    expect(codes.status).toBe(400);
    await until(() => d.output().includes('authorization callback refused: bad request'), 5_000, 'the log line');
    expect(d.output()).not.toMatch(/"statusCode":500|internal error/);
  });

  it('gives the callback page the admin UI security headers', async () => {
    const { port } = await daemonWith();
    const r = await rawRequest(port, { path: '/oauth2/callback?state=unknown' });
    expect(r.status).toBe(400);
    expect(r.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(r.headers['x-content-type-options']).toBe('nosniff');
    expect(r.headers['x-frame-options']).toBe('DENY');
    expect(r.headers['cache-control']).toBe('no-store');
    const csp = parseCsp(r.headers['content-security-policy'] as string);
    expect(csp['default-src']).toEqual(["'none'"]);
    expect(csp['frame-ancestors']).toEqual(["'none'"]);
    expect(csp['style-src']).toEqual([expect.stringMatching(/^'sha256-/)]);
  });

  it('closes /metrics with server.metricsToken', async () => {
    const metricsToken = 'metrics-scrape-token-0123456789ab';
    const { port } = await daemonWith({ server: `  metricsToken: ${metricsToken}\n` });
    expect((await rawRequest(port, { path: '/metrics' })).status).toBe(401);
    expect((await rawRequest(port, { path: '/metrics', headers: bearer(TOKEN) })).status).toBe(401);
    const ok = await rawRequest(port, { path: '/metrics', headers: bearer(metricsToken) });
    expect(ok.status).toBe(200);
    expect(ok.body).toContain('mailgate_auth_failures_total{surface="metrics"} 1');
  });
});

describe('config rules of the edge (real CLI)', () => {
  it('refuses an admin token shorter than 24 characters, written or read from a file, at file:line:col', async () => {
    const dir = tmpDataDir('mg-tok-');
    const path = join(dir, 'mailgate.yaml');
    writeFileSync(path, 'server:\n  adminToken: short\n');
    const r = await runCli(['config', 'check', '--config', path]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${path}:2:15 server.adminToken: must be at least 24 characters`);
    writeFileSync(join(dir, 'token'), 'also-short\n');
    writeFileSync(path, 'server:\n  adminTokenFile: ./token\n');
    const f = await runCli(['config', 'check', '--config', path]);
    expect(f.code).toBe(2);
    expect(f.stderr).toContain(`${path}:2:19 the adminToken in ./token must be at least 24 characters`);
  });

  it('warns, without refusing, about secrets that would cross the network in clear', async () => {
    const dir = tmpDataDir('mg-clear-');
    const path = join(dir, 'mailgate.yaml');
    writeFileSync(
      path,
      `credentials:
  - name: idp
    provider: custom
    clientId: c
    authorizationEndpoint: https://idp.example.com/auth
    tokenEndpoint: http://idp.example.com/token
    scopes: [mail]
accounts:
  - name: a
    email: a@example.com
    incoming:
      protocol: imap
      host: imap.example.com
      tls: false
      requireTLS: false
      auth: { method: password, password: p }
    webhook: w
  - name: b
    email: b@example.com
    incoming:
      protocol: imap
      host: 127.0.0.1
      tls: false
      auth: { method: password, password: p }
    webhook: w
webhooks:
  - name: w
    url: http://pipeline.example.com/hook
    secret: s
`,
    );
    const r = await runCli(['config', 'check', '--config', path]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('ok (3 warnings)');
    expect(r.stderr.trim().split('\n')).toEqual([
      `${path}:6:20 warning: tokenEndpoint is http:// to another host: the client secret and tokens would cross the network unencrypted; use https`,
      `${path}:14:12 warning: tls: false with requireTLS: false: if imap.example.com does not offer STARTTLS, the password is sent unencrypted`,
      `${path}:28:10 warning: webhook url is http:// to another host: mail content would cross the network unencrypted; use https`,
    ]);
  });

  it('never follows a token endpoint redirect with the client secret and refresh token', async () => {
    const seen: { path: string; body: string }[] = [];
    const record = (req: IncomingMessage, body: string) => seen.push({ path: req.url ?? '', body });
    const target = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        record(req, body);
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"access_token":"stolen","expires_in":3600}');
      });
    });
    const redirector = createServer((_req, res) => {
      res.writeHead(307, { location: `http://127.0.0.1:${(target.address() as { port: number }).port}/collect` }).end();
    });
    servers.push(target, redirector);
    await new Promise<void>((r) => target.listen(0, '127.0.0.1', r));
    await new Promise<void>((r) => redirector.listen(0, '127.0.0.1', r));
    const redirectPort = (redirector.address() as { port: number }).port;

    const dir = tmpDataDir('mg-redir-');
    const path = join(dir, 'mailgate.yaml');
    writeFileSync(
      path,
      `dataDir: ./data
credentials:
  - name: idp
    provider: custom
    clientId: c
    clientSecret: very-secret-client-secret
    authorizationEndpoint: http://127.0.0.1:${redirectPort}/authorize
    tokenEndpoint: http://127.0.0.1:${redirectPort}/token
    scopes: [mail]
accounts:
  - name: a
    email: a@example.com
    incoming: { protocol: imap, host: 127.0.0.1, port: 9, tls: false, auth: { method: xoauth2, credential: idp } }
    webhook: w
webhooks:
  - { name: w, url: 'http://127.0.0.1:9/hook', secret: s }
`,
    );
    writeFileSync(join(dir, 'rt'), 'the-refresh-token\n');
    const r = await runCli(['tokens', 'import', 'a', '--refresh-token-file', join(dir, 'rt'), '--config', path]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('answered HTTP 307 with a redirect');
    expect(r.stderr).toContain('does not send the client secret or tokens on to another address');
    expect(seen).toEqual([]);
  });
});
