import { createServer } from 'node:net';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { tmpDataDir } from '../../harness/tmp-dir.js';
import { freePort, runCli, startDaemon } from './run-daemon.js';

const ADMIN = 't0ken-plain-0123456789abcdef';

/** A loopback port nothing listens on (bound, then closed). */
async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

/** An account whose mail servers and token endpoints are all a closed port. */
async function writeUnreachable(logLevel = 'info') {
  const dir = tmpDataDir('mg-plain-');
  const port = await freePort();
  const dead = await closedPort();
  const path = join(dir, 'mailgate.yaml');
  writeFileSync(
    path,
    `server:
  listen: 127.0.0.1:${port}
  adminToken: ${ADMIN}
dataDir: ./data
logLevel: ${logLevel}
credentials:
  - name: idp
    provider: custom
    clientId: c
    clientSecret: s
    authorizationEndpoint: http://127.0.0.1:${dead}/authorize
    tokenEndpoint: http://127.0.0.1:${dead}/token
    deviceAuthorizationEndpoint: http://127.0.0.1:${dead}/device
    scopes: [mail]
accounts:
  - name: oauth
    email: oauth@example.com
    incoming: { protocol: imap, host: 127.0.0.1, port: ${dead}, tls: false, auth: { method: xoauth2, credential: idp } }
    webhook: pipeline
  - name: plain
    email: plain@example.com
    incoming: { protocol: imap, host: 127.0.0.1, port: ${dead}, tls: false, requireTLS: false, auth: { method: password, password: pw } }
    outgoing: { host: 127.0.0.1, port: ${dead}, tls: false, requireTLS: false, auth: { method: password, password: pw } }
    webhook: pipeline
webhooks:
  - name: pipeline
    url: http://127.0.0.1:${dead}/hook
    secret: s
`,
  );
  writeFileSync(join(dir, 'rt.txt'), 'some-refresh-token');
  return { dir, path, port, dead };
}

describe('errors an admin sees are in plain words, with the code apart', () => {
  it('tokens import against an unreachable provider says it could not be reached, never that it refused the token', async () => {
    const cfg = await writeUnreachable();
    const r = await runCli(['tokens', 'import', 'oauth', '--refresh-token-file', join(cfg.dir, 'rt.txt'), '--config', cfg.path]);
    expect(r.code).toBe(1);
    expect(r.stderr).not.toContain('refused the refresh token');
    expect(r.stderr).toContain(`The token endpoint at 127.0.0.1:${cfg.dead} refused the connection (nothing accepts connections on that port). Check the host and port`);
    expect(r.stderr).toContain('Nothing was stored.');
    expect(r.stderr).toMatch(/\[OAUTH_TRANSIENT ECONNREFUSED\]\n$/);
    const missing = await runCli(['tokens', 'import', 'oauth', '--refresh-token-file', join(cfg.dir, 'nope.txt'), '--config', cfg.path]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toBe(`mailgate: The file ${join(cfg.dir, 'nope.txt')} does not exist. Check the path for typos (a relative path in the config file is relative to the folder of that file). [ENOENT]\n`);
  });

  it('authorize --device says which endpoint could not be reached, not "fetch failed"', async () => {
    const cfg = await writeUnreachable();
    const r = await runCli(['authorize', 'oauth', '--device', '--config', cfg.path]);
    expect(r.code).toBe(1);
    expect(r.stderr).not.toContain('fetch failed');
    expect(r.stderr).toContain(`The device authorization endpoint at 127.0.0.1:${cfg.dead} refused the connection`);
    expect(r.stderr).toMatch(/\[OAUTH_TRANSIENT ECONNREFUSED\]/);
  });

  it('mailgate test names the server, says what to check and prints the code apart', async () => {
    const cfg = await writeUnreachable();
    const r = await runCli(['test', 'plain', '--config', cfg.path]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(`incoming (imap 127.0.0.1:${cfg.dead}): FAILED: The IMAP server 127.0.0.1:${cfg.dead} refused the connection (nothing accepts connections on that port). Check the host and port in the config, and that the server is running. [ECONNREFUSED]`);
    expect(r.stdout).toContain(`outgoing (smtp 127.0.0.1:${cfg.dead}): FAILED: The SMTP server 127.0.0.1:${cfg.dead} refused the connection`);
  });

  it('the API test route and the log: plain words, the code in its own field, one warn line for a state that repeats', async () => {
    const cfg = await writeUnreachable('debug');
    const daemon = await startDaemon(cfg.path, cfg.port);
    try {
      const res = await fetch(`${daemon.url}/v1/accounts/plain/test`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN}` } });
      expect(res.status).toBe(200);
      const body = (await res.json()) as { incoming: { ok: boolean; error: string; code: string }; outgoing: { ok: boolean; error: string; code: string } };
      expect(body.incoming).toEqual({
        ok: false,
        code: 'ECONNREFUSED',
        error: `The IMAP server 127.0.0.1:${cfg.dead} refused the connection (nothing accepts connections on that port). Check the host and port in the config, and that the server is running.`,
      });
      expect(body.outgoing).toMatchObject({ ok: false, code: 'ECONNREFUSED' });
      expect(body.outgoing.error).toMatch(/^The SMTP server 127\.0\.0\.1:\d+ refused the connection/);

      // Reconnects after 1 s, 2 s, …: wait for at least two more failures of the "plain" account.
      const lines = () =>
        daemon
          .output()
          .split('\n')
          .filter((l) => l.startsWith('{'))
          .map((l) => JSON.parse(l) as { level: number; account?: string; msg: string; code?: string; error?: string });
      const failures = () => lines().filter((l) => l.account === 'plain' && l.msg.includes('connection failed'));
      const deadline = Date.now() + 30_000;
      while (failures().length < 3 && Date.now() < deadline) await sleep(200);
      const f = failures();
      expect(f.length).toBeGreaterThanOrEqual(3);
      // pino levels: 40 warn, 20 debug. The first is the change of state, the repeats are quiet.
      expect(f[0]).toMatchObject({ level: 40, code: 'ECONNREFUSED' });
      expect(f[0]?.error).toMatch(/^The IMAP server 127\.0\.0\.1:\d+ refused the connection/);
      expect(f.slice(1).every((l) => l.level === 20)).toBe(true);
      // The account without a token: one warn line, not one every 30 s.
      const auth = lines().filter((l) => l.account === 'oauth' && l.msg.includes('needs authorization'));
      expect(auth.filter((l) => l.level === 40)).toHaveLength(1);
    } finally {
      await daemon.stop();
    }
  });
});
