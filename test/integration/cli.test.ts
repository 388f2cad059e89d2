import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { getHarness, oauthAdmin, uniqueUser, WebhookSink } from '../harness/index.js';
import { CLI, ROOT, runCli, startDaemon } from './daemon/run-daemon.js';
import { writeE2EConfig } from './imap/e2e-helpers.js';

const h = getHarness();
const admin = oauthAdmin(h);
const CLIENT = 'e2e-cli';

beforeAll(async () => {
  await admin.registerClient(CLIENT, `secret-${CLIENT}`);
});

function runWithStdin(args: string[], stdin: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, env: { PATH: process.env.PATH ?? '' } });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdin.end(stdin);
  return new Promise((r) => child.once('exit', (code) => setImmediate(() => r({ code, stdout, stderr }))));
}

describe('mailgate CLI against the real servers', () => {
  it('manages credentials without ever printing the secret', async () => {
    const cfg = await writeE2EConfig(h, { user: uniqueUser('cli'), clientId: CLIENT, webhookUrl: 'http://127.0.0.1:9/x' });
    const add = await runWithStdin(
      ['credentials', 'add', '--config', cfg.path, '--name', 'm365', '--provider', 'microsoft', '--client-id', 'abc', '--tenant', 'contoso', '--client-secret-stdin'],
      'SUPER-SECRET-VALUE\n',
    );
    expect(add.stderr).toBe('');
    expect(add.code).toBe(0);
    const list = await runCli(['credentials', 'list', '--config', cfg.path]);
    expect(list.code).toBe(0);
    expect(list.stdout).toContain(`Redirect URL to register with the provider: http://127.0.0.1:${cfg.port}/oauth2/callback`);
    expect(list.stdout).toMatch(/m365\tmicrosoft\tabc\tauthorization_code\tdatabase/);
    expect(list.stdout).toMatch(/test-idp\tcustom\te2e-cli\tauthorization_code\tconfig/);
    expect(list.stdout + list.stderr).not.toContain('SUPER-SECRET-VALUE');
    const db = readFileSync(join(cfg.dir, 'data/mailgate.db'));
    expect(db.includes(Buffer.from('SUPER-SECRET-VALUE'))).toBe(false);
    const clash = await runCli(['credentials', 'add', '--config', cfg.path, '--name', 'test-idp', '--provider', 'google', '--client-id', 'x']);
    expect(clash.code).toBe(2);
    expect(clash.stderr).toContain('defined in the config file');
    expect((await runCli(['credentials', 'remove', 'm365', '--config', cfg.path])).code).toBe(0);
    expect((await runCli(['credentials', 'remove', 'm365', '--config', cfg.path])).code).toBe(2);
  });

  it('an account can use a credential kept in the database (added with credentials add)', async () => {
    const user = uniqueUser('cli');
    const cfg = await writeE2EConfig(h, { user, clientId: CLIENT, webhookUrl: 'http://127.0.0.1:9/x' });
    writeFileSync(cfg.path, readFileSync(cfg.path, 'utf8').replace('credential: test-idp }', 'credential: db-idp }'));
    const before = await runCli(['config', 'check', '--config', cfg.path]);
    expect(before.code).toBe(2);
    expect(before.stdout + before.stderr).toContain('credential "db-idp" is not defined in credentials, nor in the database');
    const add = await runWithStdin(
      ['credentials', 'add', '--config', cfg.path, '--name', 'db-idp', '--provider', 'custom', '--client-id', CLIENT,
        '--authorization-endpoint', `${h.oauthUrl}/authorize`, '--token-endpoint', `${h.oauthUrl}/token`, '--scopes', 'mail', '--client-secret-stdin'],
      `secret-${CLIENT}\n`,
    );
    expect(add.stderr).toBe('');
    expect((await runCli(['config', 'check', '--config', cfg.path])).code).toBe(0);
    const { refresh_token } = await admin.issue(CLIENT, user);
    writeFileSync(join(cfg.dir, 'rt.txt'), refresh_token);
    expect((await runCli(['tokens', 'import', 'support', '--refresh-token-file', join(cfg.dir, 'rt.txt'), '--config', cfg.path])).code).toBe(0);
    const tested = await runCli(['test', 'support', '--config', cfg.path]);
    expect(tested.stdout).toContain('incoming (imap');
    expect(tested.code).toBe(0);
  });

  it('imports a refresh token, reports status and tests the IMAP login', async () => {
    const user = uniqueUser('cli');
    const cfg = await writeE2EConfig(h, { user, clientId: CLIENT, webhookUrl: 'http://127.0.0.1:9/x' });
    const before = await runCli(['status', '--config', cfg.path, '--json']);
    expect(JSON.parse(before.stdout).accounts[0].token.state).toBe('missing');
    const untested = await runCli(['test', 'support', '--config', cfg.path]);
    expect(untested.code).toBe(1);
    expect(untested.stdout).toMatch(/incoming .*FAILED: .*authorize it first/);

    const { refresh_token } = await admin.issue(CLIENT, user);
    const file = join(cfg.dir, 'rt.txt');
    writeFileSync(file, refresh_token + '\n');
    const imp = await runCli(['tokens', 'import', 'support', '--refresh-token-file', file, '--config', cfg.path]);
    expect(imp.stderr).toBe('');
    expect(imp.code).toBe(0);
    const bad = join(cfg.dir, 'bad.txt');
    writeFileSync(bad, 'rt_not-a-real-token\n');
    const refused = await runCli(['tokens', 'import', 'support', '--refresh-token-file', bad, '--config', cfg.path]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('invalid_grant');

    const status = JSON.parse((await runCli(['status', '--config', cfg.path, '--json'])).stdout);
    expect(status.accounts[0].token.state).toBe('ok');
    expect(status.deliveries).toEqual({ pending: 0, delivered: 0, failed: 0 });
    expect(status.outbox).toEqual({ queued: 0, sending: 0, sent: 0, failed: 0 });
    const tested = await runCli(['test', 'support', '--config', cfg.path]);
    expect(tested.stdout).toContain(`incoming (imap 127.0.0.1:${h.imapPort}): ok`);
    expect(tested.code).toBe(0);
  });

  it('authorize prints the URL and returns once the daemon stored the tokens', async () => {
    const user = uniqueUser('cli');
    const sink = await WebhookSink.start();
    const cfg = await writeE2EConfig(h, { user, clientId: CLIENT, webhookUrl: sink.url });
    const daemon = await startDaemon(cfg.path, cfg.port);
    try {
      const child = spawn(process.execPath, [CLI, 'authorize', 'support', '--config', cfg.path], { cwd: ROOT, env: { PATH: process.env.PATH ?? '' } });
      let out = '';
      const url = await new Promise<string>((resolve, reject) => {
        child.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          const m = /(http:\/\/127\.0\.0\.1:\d+\/authorize\?\S+)/.exec(out);
          if (m?.[1]) resolve(m[1]);
        });
        child.once('exit', () => reject(new Error(`authorize exited early: ${out}`)));
      });
      const idp = await fetch(url, { redirect: 'manual' });
      const cb = await fetch(idp.headers.get('location') ?? '');
      expect(cb.status).toBe(200);
      expect(await cb.text()).toContain('is authorized');
      const code = await new Promise<number | null>((r) => child.once('exit', r));
      expect(out).toContain('support is authorized.');
      expect(code).toBe(0);
    } finally {
      await daemon.stop();
      await sink.close();
    }
  });
});
