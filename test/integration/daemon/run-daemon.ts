import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export const ROOT = resolve(import.meta.dirname, '../../..');
export const CLI = join(ROOT, 'dist/cli.js');

export function assertBuilt(): void {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` first (npm test does)`);
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs `node dist/cli.js ARGS` to completion. */
export async function runCli(args: string[], env: Record<string, string> = {}, timeoutMs = 30_000): Promise<RunResult> {
  assertBuilt();
  const child = spawn(process.execPath, [CLI, ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return collect(child, timeoutMs);
}

function collect(child: ChildProcess, timeoutMs: number): Promise<RunResult> {
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolveRun, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`timed out after ${timeoutMs} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, timeoutMs);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      // let the pipes drain
      setImmediate(() => resolveRun({ code, signal, stdout, stderr }));
    });
  });
}

export interface Daemon {
  child: ChildProcess;
  url: string;
  output: () => string;
  /** SIGTERM (or another signal) and wait for the exit. */
  stop(signal?: NodeJS.Signals): Promise<RunResult & { ms: number }>;
}

/**
 * Starts `serve` and waits until /readyz answers 200. `nodeArgs` go before
 * the script (e.g. `--cpu-prof`, which Node 20 refuses in NODE_OPTIONS).
 */
export async function startDaemon(
  configPath: string,
  port: number,
  env: Record<string, string> = {},
  nodeArgs: string[] = [],
  /** 'listening': any answer of /readyz will do (a daemon waiting for its database answers 503). */
  until: 'ready' | 'listening' = 'ready',
  /**
   * A hang guard, not a speed check: a daemon that exits fails at once; one
   * that starts slowly on a loaded machine (module loading alone took 14 s
   * at load 20) is waited for.
   */
  readyTimeoutMs = 60_000,
): Promise<Daemon> {
  assertBuilt();
  const child = spawn(process.execPath, [...nodeArgs, CLI, 'serve', '--config', configPath], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<RunResult>((r) =>
    child.once('exit', (code, signal) => r({ code, signal, stdout: out, stderr: '' })),
  );
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + readyTimeoutMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`daemon exited with ${child.exitCode}:\n${out}`);
    try {
      const r = await fetch(`${url}/readyz`);
      if (r.status === 200 || until === 'listening') break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`daemon not ready within ${readyTimeoutMs / 1000} s:\n${out}`);
    }
    await sleep(50);
  }
  return {
    child,
    url,
    output: () => out,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      const t0 = Date.now();
      if (child.exitCode === null) child.kill(signal);
      const res = await exited;
      return { ...res, ms: Date.now() - t0 };
    },
  };
}

export { freePort } from '../../harness/net.js';
