import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { tmpDataDir } from '../../harness/tmp-dir.js';
import { CLI, freePort, ROOT, runCli, startDaemon } from './run-daemon.js';

/** Tests that run several CLI commands in a row (each starts a Node process; the machine is shared). */
const SEVERAL_COMMANDS_MS = 240_000;

const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

function writeConfig(port: number, extra = ''): { dir: string; path: string } {
  const dir = tmpDataDir('mg-op-');
  const path = join(dir, 'mailgate.yaml');
  writeFileSync(path, `server:\n  listen: 127.0.0.1:${port}\ndataDir: ./data\n${extra}`);
  return { dir, path };
}

const ACCOUNT_USING_DB_CRED = `accounts:
  - name: support
    email: support@example.com
    incoming: { protocol: imap, host: 127.0.0.1, port: 1, tls: false, auth: { method: xoauth2, credential: m365 } }
    webhook: hook
  - name: sales
    email: sales@example.com
    incoming: { protocol: imap, host: 127.0.0.1, port: 1, tls: false, auth: { method: password, password: p } }
    outgoing: { host: 127.0.0.1, port: 1, tls: false, auth: { method: xoauth2, credential: m365 } }
    webhook: hook
webhooks:
  - name: hook
    url: http://127.0.0.1:9/hook
    secret: s
`;

function runWithStdin(args: string[], stdin: string) {
  const child = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, env: { PATH: process.env.PATH ?? '' } });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdin.end(stdin);
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((r) => child.once('exit', (code) => setImmediate(() => r({ code, stdout, stderr }))));
}

describe('operator friction', () => {
  it('mailgate --version prints the version of package.json', async () => {
    const r = await runCli(['--version']);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(VERSION);
  });

  it('credentials remove refuses a credential accounts still use (naming them); --force removes it with a warning', async () => {
    const cfg = writeConfig(await freePort(), ACCOUNT_USING_DB_CRED);
    const add = await runWithStdin(['credentials', 'add', '--config', cfg.path, '--name', 'm365', '--provider', 'microsoft', '--client-id', 'abc', '--client-secret-stdin'], 's3cret\n');
    expect(add.code).toBe(0);
    const refused = await runCli(['credentials', 'remove', 'm365', '--config', cfg.path]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('credential m365 is used by accounts support, sales in');
    expect(refused.stderr).toContain('nothing was removed');
    expect((await runCli(['credentials', 'list', '--config', cfg.path])).stdout).toMatch(/m365\tmicrosoft/);
    expect((await runCli(['config', 'check', '--config', cfg.path])).code).toBe(0);
    const forced = await runCli(['credentials', 'remove', 'm365', '--force', '--config', cfg.path]);
    expect(forced.code).toBe(0);
    expect(forced.stderr).toMatch(/^warning: removing credential m365, which accounts support, sales still use: they cannot log in/);
    expect((await runCli(['config', 'check', '--config', cfg.path])).code).toBe(2);
  }, SEVERAL_COMMANDS_MS);

  it('credentials add refuses an empty secret, and a missing one where the grant needs it', async () => {
    const cfg = writeConfig(await freePort());
    const empty = await runWithStdin(['credentials', 'add', '--config', cfg.path, '--name', 'a', '--provider', 'microsoft', '--client-id', 'x', '--client-secret-stdin'], '\n');
    expect(empty.code).toBe(2);
    expect(empty.stderr).toContain('the client secret from standard input is empty; nothing was saved');
    const google = await runCli(['credentials', 'add', '--config', cfg.path, '--name', 'g', '--provider', 'google', '--client-id', 'x']);
    expect(google.code).toBe(2);
    expect(google.stderr).toContain("credential g needs a client secret: Google's token endpoint needs the client secret");
    const app = await runCli(['credentials', 'add', '--config', cfg.path, '--name', 'c', '--provider', 'microsoft', '--client-id', 'x', '--grant', 'client_credentials']);
    expect(app.code).toBe(2);
    expect(app.stderr).toContain('the client_credentials grant authenticates with the client secret');
    // A public Microsoft client (PKCE) needs none.
    const pub = await runCli(['credentials', 'add', '--config', cfg.path, '--name', 'p', '--provider', 'microsoft', '--client-id', 'x']);
    expect(pub.code).toBe(0);
    expect(pub.stdout).toContain('credential p saved (no secret)');
    const list = (await runCli(['credentials', 'list', '--config', cfg.path])).stdout;
    expect(list).not.toMatch(/^(a|g|c)\t/m);
  }, SEVERAL_COMMANDS_MS);

  it('on a terminal, credentials add asks for the secret and does not echo it', async () => {
    const cfg = writeConfig(await freePort());
    const cmd = `${process.execPath} ${CLI} credentials add --config ${cfg.path} --name g --provider google --client-id cid`;
    // script(1) gives the command a pseudo-terminal; what the terminal shows comes back on stdout.
    const child = spawn('script', ['-qec', cmd, '/dev/null'], { cwd: ROOT, env: { PATH: process.env.PATH ?? '', TERM: 'dumb' } });
    let screen = '';
    child.stdout.on('data', (d: Buffer) => (screen += d.toString()));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => setImmediate(() => r(code))));
    const deadline = Date.now() + 30_000;
    while (!screen.includes('Client secret for g (not shown): ') && Date.now() < deadline) await sleep(50);
    expect(screen).toContain('Client secret for g (not shown): ');
    child.stdin.write('typed-secret-value\r');
    expect(await exited).toBe(0);
    expect(screen).toContain('credential g saved (secret encrypted)');
    expect(screen).not.toContain('typed-secret-value');
    child.stdin.end();
  });

  it('GET / leads to the admin UI', async () => {
    const port = await freePort();
    const cfg = writeConfig(port);
    const daemon = await startDaemon(cfg.path, port);
    try {
      const r = await fetch(`${daemon.url}/`, { redirect: 'manual' });
      expect(r.status).toBe(302);
      expect(r.headers.get('location')).toBe('/admin');
    } finally {
      await daemon.stop();
    }
  });

  it('a SIGINT during start, or just as /readyz first answers, stops the daemon cleanly (never lost, never a kill)', async () => {
    for (const moment of ['starting', 'ready'] as const) {
      const port = await freePort();
      const cfg = writeConfig(port);
      const child = spawn(process.execPath, [CLI, 'serve', '--config', cfg.path], { cwd: ROOT, env: { PATH: process.env.PATH ?? '' }, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let sent = false;
      const send = () => {
        if (!sent) child.kill('SIGINT');
        sent = true;
      };
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        // The first line is logged while the config and store are opened, before anything listens.
        if (moment === 'starting') send();
      });
      const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.once('exit', (code, signal) => r({ code, signal })));
      if (moment === 'ready') {
        const deadline = Date.now() + 30_000;
        while (!sent && Date.now() < deadline) {
          const ok = await fetch(`http://127.0.0.1:${port}/readyz`).then((r) => r.status === 200, () => false);
          if (ok) send();
          else await sleep(5);
        }
      }
      const res = await exited;
      expect(sent, moment).toBe(true);
      expect(res, `${moment}\n${out}`).toEqual({ code: 0, signal: null });
      expect(out, moment).toContain('mailgate stopped');
    }
  });
});
