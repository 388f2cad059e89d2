import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { KEPT_MARKER, RUN_ROOT_PREFIX } from './tmp.js';

/** How long a stale Dovecot master gets to stop its children after SIGTERM. */
const TERM_GRACE_MS = 3_000;
/** How long to wait for it to be gone after SIGKILL. */
const KILL_WAIT_MS = 2_000;
const POLL_MS = 50;
/** Linux: zombies and a pid's program can be told apart; elsewhere kill(0) is all we know. */
const HAS_PROC = existsSync('/proc/self/stat');

/** A run's root: <tmp>/mailgate-test-<pid>-<random>, <pid> being the global setup's process. */
const RUN_ROOT = new RegExp(`^${RUN_ROOT_PREFIX}(\\d+)-`);
/** A Dovecot base dir (dovecot.ts): mailgate-dovecot-<pid>-<ms>, <pid> being the process that started it. */
const DOVECOT_DIR = /^mailgate-dovecot-(\d+)-\d+$/;

export interface SweptDir {
  path: string;
  /** The pid in the dir's name, whose process is gone. */
  ownerPid: number;
  /** Dovecot masters found running in it and stopped. */
  stoppedMasters: number[];
}

/**
 * Removes what test runs killed without their teardown (SIGKILL, a CI
 * timeout) left in `dir`: each run root whose pid is gone, after stopping
 * the Dovecot masters still running from it; and, the same way, Dovecot
 * base dirs made directly in `dir` (older harness, or a run without the
 * global setup) whose starting process is gone. A dir whose pid is alive is
 * never touched: another run (a benchmark, CI) may be using it right now.
 * Dirs kept with MAILGATE_KEEP_TEST_TMP=1 stay. Leftover OAuth2 server
 * processes need no sweep: they exit with their parent (oauth-server.mjs).
 */
export async function sweepStaleTestTmp(dir: string = tmpdir(), log: (line: string) => void = console.error): Promise<SweptDir[]> {
  const swept: SweptDir[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (!entry.isDirectory()) continue; // never follow a symlink out of dir
    const path = join(dir, entry.name);
    const root = RUN_ROOT.exec(entry.name);
    const legacy = DOVECOT_DIR.exec(entry.name);
    const ownerPid = Number((root ?? legacy)?.[1]);
    if (!ownerPid || ownerPid === process.pid || isRunning(ownerPid)) continue;
    if (existsSync(join(path, KEPT_MARKER))) continue;
    try {
      const bases = root ? dovecotDirsIn(path) : [path];
      const stoppedMasters: number[] = [];
      for (const base of bases) {
        const pid = await stopDovecotMaster(base);
        if (pid) stoppedMasters.push(pid);
      }
      rmSync(path, { recursive: true, force: true, maxRetries: 3 });
      swept.push({ path, ownerPid, stoppedMasters });
      const stopped = stoppedMasters.length ? `, stopped Dovecot master ${stoppedMasters.join(', ')}` : '';
      log(`harness: removed ${path} left by test process ${ownerPid}, which is gone${stopped}`);
    } catch (err) {
      // Another run sweeping the same dir at once, or a file we may not remove: not worth failing this run.
      log(`harness: could not sweep ${path}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  return swept;
}

function dovecotDirsIn(root: string): string[] {
  return readdirSync(root, { withFileTypes: true })
    .filter((e) => e.isDirectory() && DOVECOT_DIR.test(e.name))
    .map((e) => join(root, e.name));
}

/**
 * Stops the master named in <baseDir>/run/master.pid if, and only if, it is
 * still that Dovecot: the pid may have been reused by any process since.
 * Returns its pid when it was running.
 */
async function stopDovecotMaster(baseDir: string): Promise<number | null> {
  let pid: number;
  try {
    pid = Number(readFileSync(join(baseDir, 'run', 'master.pid'), 'utf8').trim());
  } catch {
    return null; // never started, or stopped cleanly (Dovecot removes it)
  }
  if (!Number.isInteger(pid) || pid <= 1 || !isDovecotMasterOf(pid, baseDir)) return null;
  // SIGTERM lets the master stop its children (auth, login, imap) itself.
  signal(pid, 'SIGTERM');
  if (await exited(pid, TERM_GRACE_MS)) return pid;
  signal(pid, 'SIGKILL');
  await exited(pid, KILL_WAIT_MS);
  return pid;
}

/** A Dovecot master started on this base dir's config (dovecot.ts runs `dovecot -c <baseDir>/dovecot.conf`). */
export function isDovecotMasterOf(pid: number, baseDir: string): boolean {
  try {
    const comm = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    return comm === 'dovecot' && argv.includes(join(baseDir, 'dovecot.conf'));
  } catch {
    return false; // gone, or no /proc: not provably ours, so not ours to kill
  }
}

/**
 * Whether the process exists and has not exited. A zombie has: daemons like
 * the Dovecot master are reparented to pid 1, which in a container may reap
 * them late or never. But a multi-threaded process (node) shows a zombie
 * leader while its other threads are still exiting and hold its sockets
 * open, so every thread must be a zombie.
 */
export function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'; // exists, owned by another user
  }
  if (!HAS_PROC) return true;
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ENOENT'; // ENOENT: exited since kill(0)
  }
  return tids.some((tid) => {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      // "tid (comm) state ...": comm may hold spaces and parentheses.
      const state = stat.charAt(stat.lastIndexOf(')') + 2);
      return state !== 'Z' && state !== 'X';
    } catch (err) {
      return (err as NodeJS.ErrnoException).code !== 'ENOENT'; // ENOENT: this thread is gone
    }
  });
}

async function exited(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (isRunning(pid)) {
    if (Date.now() > deadline) return false;
    await sleep(POLL_MS);
  }
  return true;
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // exited meanwhile
  }
}
