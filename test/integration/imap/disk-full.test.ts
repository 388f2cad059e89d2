import { execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { appendMessages, getHarness, listMessages, makeMessage, uniqueUser } from '../../harness/index.js';
import { until } from '../../harness/until.js';
import { ADMIN, authorizeThroughDaemon, e2eLifecycle, writeE2EConfig } from './e2e-helpers.js';

/**
 * A full disk: mailgate stops taking new mail (nothing is flagged on the
 * server), /readyz says why, the metric and a log event fire, and it resumes
 * by itself once space returns, losing nothing. The data dir lives on a
 * small tmpfs filled with a ballast file; mounting needs root, as CI is.
 */

const h = getHarness();
const CLIENT = 'e2e-disk-full';
const e2e = e2eLifecycle(CLIENT);
const mounts: string[] = [];
afterAll(() => {
  for (const m of mounts.splice(0)) {
    try {
      execFileSync('umount', ['-l', m]);
    } catch {
      // already gone
    }
  }
});

function mountSmallTmpfs(dir: string, size: string): void {
  if (process.getuid?.() !== 0) {
    throw new Error('this test mounts a small tmpfs to fill the disk, which needs root: run the tests as root (.ci/run does)');
  }
  mkdirSync(dir, { recursive: true });
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0755`, 'tmpfs', dir]);
  mounts.push(dir);
}

/** Fills what is left of the file system with one file; returns its path. */
function fill(dir: string): string {
  const path = join(dir, 'ballast');
  const fd = openSync(path, 'w');
  const chunk = Buffer.alloc(64 * 1024, 1);
  try {
    for (;;) writeSync(fd, chunk);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  } finally {
    closeSync(fd);
  }
  return path;
}

describe('a full disk (real Dovecot, real daemon, dataDir on a small tmpfs)', () => {
  it('stops taking mail, says why in /readyz and the metric, flags nothing, and resumes by itself when space returns', async () => {
    const user = uniqueUser('full');
    const sink = await e2e.sink();
    const cfg = await writeE2EConfig(h, { user, clientId: CLIENT, webhookUrl: sink.url, mode: 'poll', pollInterval: '1s' });
    const dataDir = join(cfg.dir, 'data');
    mountSmallTmpfs(dataDir, '24m');
    const d = await e2e.daemon(cfg.path, cfg.port);
    await authorizeThroughDaemon(d);
    await appendMessages(h, user, [makeMessage(1, { messageId: '<full-1@example.com>' })]);
    await sink.waitFor((s) => s.acknowledged.length >= 1, 20_000);

    const ballast = fill(dataDir);
    const big = 'x'.repeat(300 * 1024);
    const later = Array.from({ length: 4 }, (_, i) => `<full-later-${i}@example.com>`);
    await appendMessages(h, user, later.map((id, i) => makeMessage(10 + i, { messageId: id, body: big })));

    const readyz = async () => {
      const r = await fetch(`${d.url}/readyz`);
      return { status: r.status, body: (await r.json()) as { status: string; reason?: string } };
    };
    await until(async () => (await readyz()).status === 503, 30_000, '/readyz to say the disk is full');
    expect((await readyz()).body.reason).toMatch(/database disk is full/);
    const metrics = await (await fetch(`${d.url}/metrics`)).text();
    expect(metrics).toMatch(/^mailgate_storage_full 1$/m);
    expect(d.output()).toContain('"event":"storage.full"');
    const accounts = await (await fetch(`${d.url}/v1/accounts`, { headers: { authorization: `Bearer ${ADMIN}` } })).json();
    expect((accounts as { accounts: { incoming: { lastError: string } }[] }).accounts[0]?.incoming.lastError).toMatch(/disk is full/);
    // Nothing of the new mail was announced or flagged while the disk was full.
    expect(sink.acknowledged).toHaveLength(1);
    for (const m of await listMessages(h, user)) if (later.includes(m.messageId ?? '')) expect(m.flags).not.toContain('\\Seen');

    rmSync(ballast);
    await until(async () => (await readyz()).status === 200, 30_000, '/readyz to be ready again');
    await sink.waitFor((s) => s.acknowledged.length >= 5, 30_000);
    const ids = sink.acknowledged.map((r) => (r.json as { messageId: string }).messageId).sort();
    expect(ids).toEqual(['<full-1@example.com>', ...later].sort());
    await until(async () => (await listMessages(h, user)).every((m) => m.flags.includes('\\Seen')), 20_000, 'every message flagged after its ack');
    expect(await (await fetch(`${d.url}/metrics`)).text()).toMatch(/^mailgate_storage_full 0$/m);
    expect(d.output()).toContain('"event":"storage.resumed"');
    await d.stop();
  }, 120_000);
});


