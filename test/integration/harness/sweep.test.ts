import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Dovecot } from '../../harness/dovecot.js';
import { getHarness, startDovecot } from '../../harness/index.js';
import { canConnect } from '../../harness/net.js';
import { isRunning, sweepStaleTestTmp } from '../../harness/sweep.js';
import { KEPT_MARKER } from '../../harness/tmp.js';

const h = getHarness();

// A stand-in for os.tmpdir(), fresh for each test: the sweep under test
// sees only our fake leftovers, and no other run's sweep sees them (the name
// is no run root's). Directly in /tmp and with short names: Dovecot's
// deepest socket, <tmp>/mailgate-test-<pid>-<s>/mailgate-dovecot-<pid>-<ms>
// /run/token-login/imap-urlauth, must fit sun_path (107 bytes) even with
// 7-digit pids.
let fakeTmp: string;
let rootCount = 0;
/** A process that lives until the test file ends: it stands for a live test run. */
let live: ChildProcess;

beforeAll(() => {
  // It exits with us even if we are killed: its stdin pipe closes.
  live = spawn(process.execPath, ['-e', "process.stdin.once('end', () => process.exit(0)).resume()"], { stdio: ['pipe', 'ignore', 'inherit'] });
});

afterAll(() => {
  live.kill();
});

beforeEach(() => {
  fakeTmp = mkdtempSync(join(tmpdir(), 'mgs'));
  chmodSync(fakeTmp, 0o755); // Dovecot's processes (uid dovecot) must reach its base dir
});

afterEach(() => {
  rmSync(fakeTmp, { recursive: true, force: true, maxRetries: 3 });
});

/** The pid of a process that has come and gone (reaped, so not a zombie). */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
  await once(child, 'exit');
  return child.pid ?? 0;
}

function runRoot(pid: number): string {
  const root = join(fakeTmp, `mailgate-test-${pid}-${(rootCount++).toString(36)}`);
  mkdirSync(root);
  chmodSync(root, 0o755);
  return root;
}

/** A Dovecot base dir whose run/master.pid names `pid`, as dovecot.ts lays it out. */
function fakeDovecotDir(parent: string, name: string, pid: number): string {
  const base = join(parent, name);
  mkdirSync(join(base, 'run'), { recursive: true });
  writeFileSync(join(base, 'run', 'master.pid'), `${pid}\n`);
  return base;
}

function masterPid(d: Dovecot): number {
  return Number(readFileSync(join(d.baseDir, 'run', 'master.pid'), 'utf8').trim());
}

describe('sweepStaleTestTmp', () => {
  it('stops the Dovecot of a run that is gone and removes its root, and leaves a live run alone', async () => {
    const livePid = live.pid ?? 0;
    const staleRoot = runRoot(await deadPid());
    const liveRoot = runRoot(livePid);
    const dovecotOpts = { introspectionUrl: `${h.oauthUrl}/introspect`, relayPort: h.relaySinkPort };
    const stale = await startDovecot({ ...dovecotOpts, parentDir: staleRoot });
    let alive: Dovecot | undefined;
    try {
      alive = await startDovecot({ ...dovecotOpts, parentDir: liveRoot });
      const staleMaster = masterPid(stale);
      const liveMaster = masterPid(alive);
      // A gone run whose master.pid now names a running Dovecot of another
      // dir (as after pid reuse): that one must not be stopped.
      const reusedRoot = runRoot(await deadPid());
      fakeDovecotDir(reusedRoot, 'mailgate-dovecot-1-1', liveMaster);
      const lines: string[] = [];

      const swept = await sweepStaleTestTmp(fakeTmp, (l) => lines.push(l));

      expect(swept.map((s) => s.path).sort()).toEqual([reusedRoot, staleRoot].sort());
      expect(swept.find((s) => s.path === staleRoot)?.stoppedMasters).toEqual([staleMaster]);
      expect(swept.find((s) => s.path === reusedRoot)?.stoppedMasters).toEqual([]);
      expect(lines).toHaveLength(2);
      expect(lines.find((l) => l.includes(staleRoot))).toContain(`stopped Dovecot master ${staleMaster}`);
      expect(existsSync(staleRoot)).toBe(false);
      expect(existsSync(reusedRoot)).toBe(false);
      expect(isRunning(staleMaster)).toBe(false);
      for (const port of [stale.imapPort, stale.pop3Port, stale.submissionPort]) expect(await canConnect(port)).toBe(false);

      expect(existsSync(alive.configPath)).toBe(true);
      expect(isRunning(liveMaster)).toBe(true);
      expect(await canConnect(alive.imapPort)).toBe(true);
    } finally {
      await alive?.stop();
      if (existsSync(stale.baseDir)) await stale.stop(); // the sweep failed: do not leak it
    }
  });

  it('kills only a process that is provably the dir’s Dovecot, and keeps live, own and kept dirs', async () => {
    const livePid = live.pid ?? 0;
    // Gone run; its master.pid names a live process that is no Dovecot.
    const reused = runRoot(await deadPid());
    fakeDovecotDir(reused, `mailgate-dovecot-${livePid}-1`, livePid);
    // Gone run kept on purpose (MAILGATE_KEEP_TEST_TMP=1).
    const kept = runRoot(await deadPid());
    writeFileSync(join(kept, KEPT_MARKER), '');
    // Live runs: another process's, and this process's own.
    const liveRoot = runRoot(livePid);
    const ownRoot = runRoot(process.pid);
    // Base dirs made directly in tmp (older harness): the starter gone, or alive.
    const legacyGone = fakeDovecotDir(fakeTmp, `mailgate-dovecot-${await deadPid()}-1`, await deadPid());
    const legacyLive = fakeDovecotDir(fakeTmp, `mailgate-dovecot-${livePid}-2`, await deadPid());
    // Not ours: a plain file with a run root's name, another name.
    const notADir = join(fakeTmp, `mailgate-test-${await deadPid()}-file`);
    writeFileSync(notADir, '');
    const other = join(fakeTmp, 'mailgate-testing-x');
    mkdirSync(other);

    const swept = await sweepStaleTestTmp(fakeTmp, () => {});

    expect(swept.map((s) => s.path).sort()).toEqual([legacyGone, reused].sort());
    expect(swept.every((s) => s.stoppedMasters.length === 0)).toBe(true);
    expect(isRunning(livePid)).toBe(true);
    for (const path of [kept, liveRoot, ownRoot, legacyLive, notADir, other]) expect(existsSync(path)).toBe(true);
    for (const path of [reused, legacyGone]) expect(existsSync(path)).toBe(false);
  });
});
