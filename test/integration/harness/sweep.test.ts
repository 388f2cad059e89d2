import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Dovecot } from '../../harness/dovecot.js';
import { getHarness, startDovecot, startPostgres, type Postgres } from '../../harness/index.js';
import { canConnect } from '../../harness/net.js';
import { isRunning, sweepStaleTestTmp } from '../../harness/sweep.js';
import { KEPT_MARKER } from '../../harness/tmp.js';
import { until } from '../../harness/until.js';

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

/** A PostgreSQL dir whose data/postmaster.pid names `pid`, as postgres.ts (and PostgreSQL) lay it out. */
function fakePostgresDir(parent: string, name: string, pid: number): string {
  const base = join(parent, name);
  mkdirSync(join(base, 'data'), { recursive: true });
  writeFileSync(join(base, 'data', 'postmaster.pid'), `${pid}\n${join(base, 'data')}\n`);
  return base;
}

function childrenOf(pid: number): number[] {
  return readdirSync('/proc')
    .filter((n) => /^\d+$/.test(n))
    .filter((n) => {
      try {
        const stat = readFileSync(`/proc/${n}/stat`, 'utf8');
        return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid;
      } catch {
        return false;
      }
    })
    .map(Number);
}

/** System V segments created by `pid` (a postmaster's interlock segment is one). */
function shmCreatedBy(pid: number): string[] {
  return readFileSync('/proc/sysvipc/shm', 'utf8')
    .split('\n')
    .slice(1)
    .filter((row) => row.trim().split(/\s+/)[4] === String(pid));
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

  it('stops the PostgreSQL of a run that is gone and removes its root, and leaves every other postmaster alone', async () => {
    const livePid = live.pid ?? 0;
    const staleRoot = runRoot(await deadPid());
    const stale = await startPostgres({ parentDir: staleRoot });
    let alive: Postgres | undefined;
    let killed: Postgres | undefined;
    try {
      alive = await startPostgres({ parentDir: runRoot(livePid) });
      // A gone run whose postmaster died by SIGKILL long ago: no process, but its interlock segment is left.
      const killedRoot = runRoot(await deadPid());
      killed = await startPostgres({ parentDir: killedRoot });
      const killedChildren = childrenOf(killed.pid);
      process.kill(killed.pid, 'SIGKILL');
      await until(() => [killed!.pid, ...killedChildren].every((p) => !isRunning(p)), 10_000, 'the killed postmaster and its children to exit');
      expect(shmCreatedBy(killed.pid)).toHaveLength(1);
      // A gone run whose postmaster.pid now names a running postmaster of
      // another data dir (as after pid reuse): a system PostgreSQL looks just
      // like it, and must not be stopped.
      const reusedRoot = runRoot(await deadPid());
      fakePostgresDir(reusedRoot, 'mailgate-postgres-1-x', alive.pid);
      const staleChildren = childrenOf(stale.pid);
      expect(staleChildren.length).toBeGreaterThan(0);
      const lines: string[] = [];

      const swept = await sweepStaleTestTmp(fakeTmp, (l) => lines.push(l));

      expect(swept.map((s) => s.path).sort()).toEqual([killedRoot, reusedRoot, staleRoot].sort());
      expect(swept.find((s) => s.path === staleRoot)?.stoppedPostmasters).toEqual([stale.pid]);
      expect(swept.find((s) => s.path === killedRoot)?.stoppedPostmasters).toEqual([]);
      expect(swept.find((s) => s.path === reusedRoot)?.stoppedPostmasters).toEqual([]);
      expect(lines.find((l) => l.includes(staleRoot))).toContain(`stopped PostgreSQL postmaster ${stale.pid}`);
      for (const root of [staleRoot, killedRoot, reusedRoot]) expect(existsSync(root)).toBe(false);
      for (const p of [stale.pid, ...staleChildren]) expect(isRunning(p)).toBe(false);
      expect(await canConnect(stale.port)).toBe(false);
      expect(shmCreatedBy(stale.pid)).toEqual([]);
      expect(shmCreatedBy(killed.pid)).toEqual([]);

      expect(isRunning(alive.pid)).toBe(true);
      const client = new pg.Client(alive.url);
      await client.connect();
      expect((await client.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
      await client.end();
    } finally {
      await alive?.stop();
      await killed?.stop();
      await stale.stop(); // a no-op unless the sweep failed: do not leak it
    }
  });

  it('kills only a process that is provably the dir’s Dovecot or postmaster, and keeps live, own and kept dirs', async () => {
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
    // The same for PostgreSQL: a gone run whose postmaster.pid names a live non-postgres process, and legacy dirs.
    const reusedPg = runRoot(await deadPid());
    fakePostgresDir(reusedPg, `mailgate-postgres-${livePid}-a`, livePid);
    const legacyPgGone = fakePostgresDir(fakeTmp, `mailgate-postgres-${await deadPid()}-b`, await deadPid());
    const legacyPgLive = fakePostgresDir(fakeTmp, `mailgate-postgres-${livePid}-c`, livePid);
    // Not ours: a plain file with a run root's name, another name.
    const notADir = join(fakeTmp, `mailgate-test-${await deadPid()}-file`);
    writeFileSync(notADir, '');
    const other = join(fakeTmp, 'mailgate-testing-x');
    mkdirSync(other);

    const swept = await sweepStaleTestTmp(fakeTmp, () => {});

    expect(swept.map((s) => s.path).sort()).toEqual([legacyGone, legacyPgGone, reused, reusedPg].sort());
    expect(swept.every((s) => s.stoppedMasters.length === 0 && s.stoppedPostmasters.length === 0)).toBe(true);
    expect(isRunning(livePid)).toBe(true);
    for (const path of [kept, liveRoot, ownRoot, legacyLive, legacyPgLive, notADir, other]) expect(existsSync(path)).toBe(true);
    for (const path of [reused, legacyGone, reusedPg, legacyPgGone]) expect(existsSync(path)).toBe(false);
  });
});
