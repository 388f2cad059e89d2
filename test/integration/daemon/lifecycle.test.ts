import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tmpDataDir } from '../../harness/tmp-dir.js';
import { freePort, runCli, startDaemon } from './run-daemon.js';

function tempDir(): string {
  return tmpDataDir('mg-life-');
}

function writeConfig(dir: string, port: number, extra = ''): string {
  const path = join(dir, 'mailgate.yaml');
  writeFileSync(path, `server:\n  listen: 127.0.0.1:${port}\ndataDir: ./data\n${extra}`);
  return path;
}

describe('mailgate serve (a real process)', () => {
  it('serves health, readiness and metrics, guards /v1 and stops cleanly on SIGTERM', async () => {
    const dir = tempDir();
    const port = await freePort();
    const daemon = await startDaemon(writeConfig(dir, port), port);
    try {
      expect(await (await fetch(`${daemon.url}/healthz`)).json()).toEqual({ status: 'ok' });
      expect((await fetch(`${daemon.url}/readyz`)).status).toBe(200);
      const metrics = await (await fetch(`${daemon.url}/metrics`)).text();
      expect(metrics).toContain('mailgate_process_resident_memory_bytes');
      expect(metrics).toContain('# TYPE mailgate_deliveries_total counter');

      const token = readFileSync(join(dir, 'data/admin.token'), 'utf8').trim();
      expect(statSync(join(dir, 'data/admin.token')).mode & 0o777).toBe(0o600);
      expect(statSync(join(dir, 'data/secret.key')).mode & 0o777).toBe(0o600);

      const noAuth = await fetch(`${daemon.url}/v1/deliveries`);
      expect(noAuth.status).toBe(401);
      expect(await noAuth.json()).toEqual({ error: 'missing or wrong admin token', code: 'UNAUTHORIZED' });
      const wrong = await fetch(`${daemon.url}/v1/deliveries`, { headers: { authorization: 'Bearer nope' } });
      expect(wrong.status).toBe(401);
      const right = await fetch(`${daemon.url}/v1/deliveries`, { headers: { authorization: `Bearer ${token}` } });
      expect(right.status).toBe(200);
      expect(await right.json()).toEqual({ deliveries: [] });
      expect(daemon.output()).toMatch(/mailgate listening on http:\/\/127\.0\.0\.1:\d+ with 0 account\(s\)/);
    } finally {
      const res = await daemon.stop('SIGTERM');
      expect(res.code).toBe(0);
      expect(res.ms).toBeLessThan(10_000);
    }
    expect(daemon.output()).toContain('mailgate stopped');
  });

  it('reloads on SIGHUP and POST /v1/reload, keeping the running config when the new one is invalid', async () => {
    const dir = tempDir();
    const port = await freePort();
    const cfg = writeConfig(dir, port, 'server:\n  adminToken: t0ken-for-tests-0123456789abcdef\n'.replace('server:\n', ''));
    writeFileSync(cfg, `server:\n  listen: 127.0.0.1:${port}\n  adminToken: t0ken-for-tests-0123456789abcdef\ndataDir: ./data\n`);
    const daemon = await startDaemon(cfg, port);
    const auth = { authorization: 'Bearer t0ken-for-tests-0123456789abcdef' };
    try {
      writeFileSync(cfg, `server:\n  listen: 127.0.0.1:${port}\n  adminToken: t0ken-for-tests-0123456789abcdef\ndataDir: ./data\nbogus: 1\n`);
      const bad = await fetch(`${daemon.url}/v1/reload`, { method: 'POST', headers: auth });
      expect(bad.status).toBe(400);
      const body = (await bad.json()) as { errors: string[] };
      expect(body.errors).toHaveLength(1);
      expect(body.errors[0]).toMatch(/mailgate\.yaml:5:1 .*bogus/);
      daemon.child.kill('SIGHUP');
      await new Promise((r) => setTimeout(r, 300));
      expect(daemon.output()).toContain('config reload rejected; keeping the running config');
      expect((await fetch(`${daemon.url}/readyz`)).status).toBe(200);

      writeFileSync(cfg, `server:\n  listen: 127.0.0.1:${port}\n  adminToken: t0ken-for-tests-0123456789abcdef\ndataDir: ./data\n`);
      const good = await fetch(`${daemon.url}/v1/reload`, { method: 'POST', headers: auth });
      expect(good.status).toBe(200);
      expect(await good.json()).toEqual({ status: 'reloaded' });
    } finally {
      expect((await daemon.stop('SIGINT')).code).toBe(0);
    }
  });

  it('refuses a bad config with every error positioned, and touches nothing in dataDir', async () => {
    const dir = tempDir();
    const path = join(dir, 'bad.yaml');
    writeFileSync(
      path,
      [
        'server:',
        '  listen: 127.0.0.1:8025',
        '  adminToken: ${MG_TEST_UNSET_VAR}',
        'dataDir: ./data',
        'webhooks:',
        '  - name: pipeline',
        '    url: http://127.0.0.1:9/hook',
        '    secret: s3cret',
        '    maxAttempts: many',
        '    timeoutt: 30s',
        '',
      ].join('\n'),
    );
    const check = await runCli(['config', 'check', '--config', path]);
    expect(check.code).toBe(2);
    const lines = check.stderr.trim().split('\n');
    expect(lines).toHaveLength(3);
    expect(lines.some((l) => l.startsWith(`${path}:3:`) && l.includes('MG_TEST_UNSET_VAR'))).toBe(true);
    expect(lines.some((l) => l.startsWith(`${path}:9:`) && /number/.test(l))).toBe(true);
    expect(lines.some((l) => l.startsWith(`${path}:10:`) && l.includes('timeoutt'))).toBe(true);

    const serve = await runCli(['serve', '--config', path]);
    expect(serve.code).toBe(2);
    expect(serve.stderr).toContain('MG_TEST_UNSET_VAR');
    expect(existsSync(join(dir, 'data'))).toBe(false);
    expect(readdirSync(dir)).toEqual(['bad.yaml']);
  });

  it('config check accepts the shipped default and exits 0', async () => {
    const res = await runCli(['config', 'check', '--config', 'config/mailgate.yaml']);
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
  });

  it('refuses to start with a secret key that does not match the database', async () => {
    const dir = tempDir();
    const port = await freePort();
    const cfg = writeConfig(dir, port);
    const key1 = randomBytes(32).toString('base64');
    const daemon = await startDaemon(cfg, port, { MAILGATE_SECRET_KEY: key1 });
    expect((await daemon.stop()).code).toBe(0);
    const res = await runCli(['serve', '--config', cfg], { MAILGATE_SECRET_KEY: randomBytes(32).toString('base64') });
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/secret key does not match this database/);
  });
});
