import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { KEPT_MARKER, RUN_ROOT_PREFIX } from './tmp.js';

/** How long a stale Dovecot master gets to stop its children after SIGTERM. */
const TERM_GRACE_MS = 3_000;
/** How long a postmaster gets for a fast shutdown (SIGINT) before SIGKILL; it takes well under a second. */
export const POSTMASTER_GRACE_MS = 5_000;
/** How long to wait for it to be gone after SIGKILL. */
const KILL_WAIT_MS = 2_000;
const POLL_MS = 50;
/** Linux: zombies and a pid's program can be told apart; elsewhere kill(0) is all we know. */
const HAS_PROC = existsSync('/proc/self/stat');

/** A run's root: <tmp>/mailgate-test-<pid>-<random>, <pid> being the global setup's process. */
const RUN_ROOT = new RegExp(`^${RUN_ROOT_PREFIX}(\\d+)-`);
/** A Dovecot base dir (dovecot.ts): mailgate-dovecot-<pid>-<ms>, <pid> being the process that started it. */
const DOVECOT_DIR = /^mailgate-dovecot-(\d+)-\d+$/;
/** A PostgreSQL instance dir (postgres.ts): mailgate-postgres-<pid>-<mkdtemp suffix>, its data dir inside. */
export const POSTGRES_DIR_PREFIX = 'mailgate-postgres-';
const POSTGRES_DIR = new RegExp(`^${POSTGRES_DIR_PREFIX}(\\d+)-[A-Za-z0-9]+$`);

/** The data dir inside a PostgreSQL instance dir; postgres.ts starts `postgres -D <it>`. */
export function postgresDataDir(baseDir: string): string {
  return join(baseDir, 'data');
}

export interface SweptDir {
  path: string;
  /** The pid in the dir's name, whose process is gone. */
  ownerPid: number;
  /** Dovecot masters found running in it and stopped. */
  stoppedMasters: number[];
  /** PostgreSQL postmasters found running in it and stopped. */
  stoppedPostmasters: number[];
}

/**
 * Removes what test runs killed without their teardown (SIGKILL, a CI
 * timeout) left in `dir`: each run root whose pid is gone, after stopping
 * the Dovecot masters and PostgreSQL postmasters still running from it;
 * and, the same way, Dovecot and PostgreSQL dirs made directly in `dir`
 * (older harness, or a run without the global setup) whose starting
 * process is gone. Only a process provably started on that dir is
 * signalled (its /proc comm and command line), never a system server. A
 * dir whose pid is alive is never touched: another run (a benchmark, CI)
 * may be using it right now.
 * Dirs kept with MAILGATE_KEEP_TEST_TMP=1 stay. Leftover OAuth2 server
 * processes need no sweep: they exit with their parent (oauth-server.mjs).
 */
export async function sweepStaleTestTmp(dir: string = tmpdir(), log: (line: string) => void = console.error): Promise<SweptDir[]> {
  const swept: SweptDir[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (!entry.isDirectory()) continue; // never follow a symlink out of dir
    const path = join(dir, entry.name);
    const root = RUN_ROOT.exec(entry.name);
    const legacy = DOVECOT_DIR.exec(entry.name) ?? POSTGRES_DIR.exec(entry.name);
    const ownerPid = Number((root ?? legacy)?.[1]);
    if (!ownerPid || ownerPid === process.pid || isRunning(ownerPid)) continue;
    if (existsSync(join(path, KEPT_MARKER))) continue;
    try {
      const bases = root ? serverDirsIn(path) : [path];
      const stoppedMasters: number[] = [];
      const stoppedPostmasters: number[] = [];
      for (const base of bases) {
        if (DOVECOT_DIR.test(basename(base))) {
          const pid = await stopDovecotMaster(base);
          if (pid) stoppedMasters.push(pid);
        } else {
          const pid = await stopStalePostmaster(base);
          if (pid) stoppedPostmasters.push(pid);
        }
      }
      rmSync(path, { recursive: true, force: true, maxRetries: 3 });
      swept.push({ path, ownerPid, stoppedMasters, stoppedPostmasters });
      const stopped = [
        stoppedMasters.length ? `, stopped Dovecot master ${stoppedMasters.join(', ')}` : '',
        stoppedPostmasters.length ? `, stopped PostgreSQL postmaster ${stoppedPostmasters.join(', ')}` : '',
      ].join('');
      log(`harness: removed ${path} left by test process ${ownerPid}, which is gone${stopped}`);
    } catch (err) {
      // Another run sweeping the same dir at once, or a file we may not remove: not worth failing this run.
      log(`harness: could not sweep ${path}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  return swept;
}

/** The Dovecot and PostgreSQL dirs in a run root. */
function serverDirsIn(root: string): string[] {
  return readdirSync(root, { withFileTypes: true })
    .filter((e) => e.isDirectory() && (DOVECOT_DIR.test(e.name) || POSTGRES_DIR.test(e.name)))
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
 * Stops the postmaster named in the instance's data/postmaster.pid if, and
 * only if, it is still the one started on that data dir (the pid may have
 * been reused since, by anything, a system PostgreSQL included). Returns
 * its pid when it was running. A postmaster that died by SIGKILL earlier
 * left its System V interlock segment: that goes too.
 */
async function stopStalePostmaster(baseDir: string): Promise<number | null> {
  const dataDir = postgresDataDir(baseDir);
  const pid = postmasterPidFile(dataDir)?.pid;
  if (pid === undefined) return null; // never started, or stopped cleanly (PostgreSQL removes it)
  if (!isPostmasterOf(pid, dataDir)) {
    await removeOrphanInterlock(dataDir);
    return null;
  }
  await stopPostmaster(pid, dataDir);
  return pid;
}

/** A postmaster started on this data dir: comm `postgres` and `-D <dataDir>` in its argv (postgres.ts starts it so). */
export function isPostmasterOf(pid: number, dataDir: string): boolean {
  try {
    const comm = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    // Its children rewrite their argv ("postgres: checkpointer"), so only the postmaster matches.
    return comm === 'postgres' && argv.some((arg, i) => arg === '-D' && argv[i + 1] === dataDir);
  } catch {
    return false; // gone, or no /proc: not provably ours, so not ours to kill
  }
}

/**
 * Stops a postmaster the caller has proved ours (isPostmasterOf): SIGINT is
 * PostgreSQL's fast shutdown (clients disconnected, a shutdown checkpoint,
 * its shared memory removed). One that has not exited after `graceMs`
 * (stopped, wedged) gets SIGKILL, and so do its children: they are their own
 * process groups and would otherwise linger until they notice. Then the
 * interlock segment it could not remove is removed.
 */
export async function stopPostmaster(pid: number, dataDir: string, graceMs: number = POSTMASTER_GRACE_MS): Promise<void> {
  signal(pid, 'SIGINT');
  if (await exited(pid, graceMs)) return;
  const children = childrenOf(pid).filter((child) => comm(child) === 'postgres');
  for (const p of [pid, ...children]) signal(p, 'SIGKILL');
  for (const p of [pid, ...children]) await exited(p, KILL_WAIT_MS);
  await removeOrphanInterlock(dataDir);
}

/**
 * postmaster.pid, as PostgreSQL writes it (src/include/miscadmin.h,
 * LOCK_FILE_LINE_*): line 1 the pid, line 7 the System V key and id of the
 * small segment it keeps as an interlock against two postmasters on one
 * data dir. Unlike the main shared memory, that segment outlives a
 * SIGKILLed postmaster.
 */
function postmasterPidFile(dataDir: string): { pid: number; shmKey?: number; shmId?: number } | null {
  let lines: string[];
  try {
    lines = readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n');
  } catch {
    return null;
  }
  const pid = Number(lines[0]);
  if (!Number.isInteger(pid) || pid <= 1) return null;
  const [shmKey, shmId] = (lines[6] ?? '').trim().split(/\s+/).map(Number);
  return Number.isInteger(shmKey) && Number.isInteger(shmId) ? { pid, shmKey, shmId } : { pid };
}

const runFile = promisify(execFile);

/**
 * Removes the interlock segment named in postmaster.pid once nothing is
 * attached, and only if /proc/sysvipc/shm shows that very segment (key, id)
 * created by that very postmaster (cpid): an id reused by anyone else fails
 * the test.
 */
async function removeOrphanInterlock(dataDir: string): Promise<void> {
  const file = postmasterPidFile(dataDir);
  if (file?.shmId === undefined || isRunning(file.pid)) return;
  let table: string[];
  try {
    table = readFileSync('/proc/sysvipc/shm', 'utf8').split('\n').slice(1);
  } catch {
    return;
  }
  // Columns: key shmid perms size cpid lpid nattch ...
  const orphan = table
    .map((row) => row.trim().split(/\s+/).map(Number))
    .some(([key, id, , , cpid, , nattch]) => key === file.shmKey && id === file.shmId && cpid === file.pid && nattch === 0);
  if (!orphan) return;
  try {
    await runFile('ipcrm', ['-m', String(file.shmId)]);
  } catch {
    // removed meanwhile, or no ipcrm: a 56-byte segment is not worth failing a run
  }
}

function childrenOf(pid: number): number[] {
  if (!HAS_PROC) return [];
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .map(Number)
    .filter((p) => {
      try {
        const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
        // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
        return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid;
      } catch {
        return false; // exited meanwhile
      }
    });
}

function comm(pid: number): string | null {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return null;
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
