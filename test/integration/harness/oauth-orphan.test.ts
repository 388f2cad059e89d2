import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { canConnect } from '../../harness/net.js';
import { isRunning } from '../../harness/sweep.js';

const PARENT_SCRIPT = join(import.meta.dirname, 'oauth-parent.mjs');
const START_TIMEOUT_MS = 20_000;
const EXIT_TIMEOUT_MS = 5_000;

function isOAuthServer(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('oauth-server.mjs');
  } catch {
    return false;
  }
}

describe('the OAuth2 server process', () => {
  it('exits by itself once the process that started it is SIGKILLed', async () => {
    const parent = spawn(process.execPath, [PARENT_SCRIPT], { stdio: ['pipe', 'pipe', 'inherit'] });
    let serverPid = 0;
    try {
      const line = await Promise.race([
        once(createInterface({ input: parent.stdout }), 'line').then(([l]) => String(l)),
        once(parent, 'exit').then(([code]) => Promise.reject(new Error(`oauth-parent.mjs exited with ${code}`))),
        sleep(START_TIMEOUT_MS).then(() => Promise.reject(new Error('oauth-parent.mjs did not start the server'))),
      ]);
      const started = JSON.parse(line) as { serverPid: number; port: number };
      serverPid = started.serverPid;
      expect(isRunning(serverPid)).toBe(true);
      expect(await canConnect(started.port)).toBe(true);

      parent.kill('SIGKILL'); // no handler, no teardown: as when CI kills a run
      await once(parent, 'exit');

      const deadline = Date.now() + EXIT_TIMEOUT_MS;
      while (isRunning(serverPid) && Date.now() < deadline) await sleep(50);
      expect(isRunning(serverPid)).toBe(false);
      expect(await canConnect(started.port)).toBe(false);
    } finally {
      if (parent.exitCode === null && parent.signalCode === null) parent.kill('SIGKILL');
      if (serverPid && isRunning(serverPid) && isOAuthServer(serverPid)) process.kill(serverPid, 'SIGKILL');
    }
  });
});
