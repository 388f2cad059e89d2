import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import pg from 'pg';
import { freePort } from './net.js';
import { isPostmasterOf, POSTGRES_DIR_PREFIX, POSTMASTER_GRACE_MS, postgresDataDir, stopPostmaster } from './sweep.js';
import { removeTestTmp } from './tmp.js';

const run = promisify(execFile);

/** Where Debian's postgresql-<version> packages put the server binaries. */
export const POSTGRES_LIB_DIR = '/usr/lib/postgresql';
const INSTALL_HINT = 'apt-get install -y postgresql';
const INITDB_TIMEOUT_MS = 30_000;
const START_TIMEOUT_MS = 20_000;
/** A readiness probe gives up fast and tries again; createDatabase() waits longer on a busy machine. */
const CONNECT_TIMEOUT_MS = 1_000;
const ADMIN_CONNECT_TIMEOUT_MS = 5_000;
const POLL_MS = 25;
/** A free port can be taken by someone else before the postmaster binds it. */
const START_ATTEMPTS = 3;
/** Linux sun_path is 108 bytes with its NUL; PostgreSQL refuses a longer socket path. */
const MAX_SOCKET_PATH = 107;
const SUPERUSER = 'postgres';
const HOST = '127.0.0.1';

export interface PostgresOptions {
  /** Where to make the instance dir: the run's temporary root; default os.tmpdir(). */
  parentDir?: string;
  /** Default 200: replicas sharing one server each hold a pool. */
  maxConnections?: number;
  /** More server settings (`-c name=value`), after and over the defaults. */
  settings?: Record<string, string | number | boolean>;
  /** How long stop() lets a fast shutdown take before SIGKILL. */
  stopGraceMs?: number;
}

export interface Postgres {
  /** The `postgres` database as the superuser `postgres` over TCP (trust auth). */
  url: string;
  port: number;
  host: string;
  /** The unix socket's dir (pg: `host: socketDir`); never the system's /var/run/postgresql. */
  socketDir: string;
  dataDir: string;
  logPath: string;
  /** The postmaster's. */
  pid: number;
  /** Creates a database (default name: a fresh random one) and returns its url. */
  createDatabase(name?: string): Promise<string>;
  /** Stops the server (fast shutdown) and keeps its data: the database is gone until resume(). */
  halt(): Promise<void>;
  /** Starts a halted server again on the same port and socket, with the same data. */
  resume(): Promise<void>;
  /** Stops the server and removes its dir (kept with MAILGATE_KEEP_TEST_TMP=1): it cannot start again. */
  stop(): Promise<void>;
}

/** The newest Debian PostgreSQL's bin dir, e.g. /usr/lib/postgresql/15/bin. */
export function findPostgresBin(libDir: string = POSTGRES_LIB_DIR): string {
  const versions = existsSync(libDir)
    ? readdirSync(libDir)
        .filter((v) => /^\d+(\.\d+)?$/.test(v) && ['initdb', 'postgres'].every((b) => existsSync(join(libDir, v, 'bin', b))))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  const newest = versions[0];
  if (newest === undefined) {
    throw new Error(`PostgreSQL is not installed (no ${libDir}/<version>/bin/initdb); the integration tests need it: ${INSTALL_HINT}`);
  }
  return join(libDir, newest, 'bin');
}

/**
 * A private PostgreSQL on a free loopback port and a socket dir of its own,
 * in a fresh data dir under `parentDir`: trust auth for loopback only, and
 * durability off (fsync, synchronous_commit, full_page_writes) since a test
 * database never outlives its run. PostgreSQL refuses to run as root, so
 * under root (CI) initdb and the server run as the `postgres` user that
 * Debian's package creates.
 */
export async function startPostgres(opts: PostgresOptions = {}): Promise<Postgres> {
  const bin = findPostgresBin();
  const owner = await serverUser();
  // mkdtemp: instances started in the same millisecond (in parallel) get their own dir.
  const baseDir = mkdtempSync(join(resolve(opts.parentDir ?? tmpdir()), `${POSTGRES_DIR_PREFIX}${process.pid}-`));
  const dataDir = postgresDataDir(baseDir);
  // Short: the socket path must fit sun_path.
  const socketDir = join(baseDir, 's');
  const logPath = join(baseDir, 'postgres.log');
  try {
    chmodSync(baseDir, 0o755); // the server's user reads nothing here but must pass through
    if (owner) assertReachable(baseDir, owner);
    for (const dir of [dataDir, socketDir]) {
      mkdirSync(dir, { mode: 0o700 });
      if (owner) chownSync(dir, owner.uid, owner.gid);
    }
    const spawnOpts = { cwd: baseDir, env: serverEnv(), ...(owner ?? {}) };

    const initdb = await runLogged(
      join(bin, 'initdb'),
      ['-D', dataDir, '-U', SUPERUSER, '--auth=trust', '--encoding=UTF8', '--locale=C', '--no-sync', '--no-instructions'],
      spawnOpts,
      logPath,
      INITDB_TIMEOUT_MS,
    );
    if (initdb !== 0) throw new Error(`initdb exited with ${initdb}${tail(logPath)}`);
    // Replaces initdb's (which trusts ::1 and replication too); the file keeps its owner and mode.
    writeFileSync(join(dataDir, 'pg_hba.conf'), `# mailgate test harness: loopback only, no passwords\nlocal all all trust\nhost all all ${HOST}/32 trust\n`);

    let port = 0;
    let child: ChildProcess | null = null;
    let args: string[] = [];
    for (let attempt = 1; !child; attempt++) {
      port = await freePort();
      const socketPath = join(socketDir, `.s.PGSQL.${port}`);
      if (Buffer.byteLength(socketPath) > MAX_SOCKET_PATH) {
        throw new Error(`PostgreSQL's socket path ${socketPath} is longer than ${MAX_SOCKET_PATH} bytes: use a shorter parentDir or TMPDIR`);
      }
      const settings: Record<string, string | number | boolean> = {
        listen_addresses: HOST,
        port,
        unix_socket_directories: socketDir,
        fsync: false,
        synchronous_commit: false,
        full_page_writes: false,
        shared_buffers: '16MB',
        max_connections: opts.maxConnections ?? 200,
        // posix would put segments in /dev/shm, left there when a postmaster is SIGKILLed.
        dynamic_shared_memory_type: 'mmap',
        huge_pages: false,
        jit: false,
        timezone: 'UTC',
        ...opts.settings,
      };
      args = ['-D', dataDir, ...Object.entries(settings).flatMap(([k, v]) => ['-c', `${k}=${typeof v === 'boolean' ? (v ? 'on' : 'off') : v}`])];
      const logFrom = existsSync(logPath) ? statSync(logPath).size : 0;
      const started = await startPostmaster(join(bin, 'postgres'), args, spawnOpts, logPath, port, dataDir);
      if (started.ok) {
        child = started.child;
      } else if (attempt < START_ATTEMPTS && /could not bind|Address already in use/.test(readFileSync(logPath).subarray(logFrom).toString())) {
        continue; // the port was taken meanwhile: another one
      } else {
        throw new Error(`postgres ${started.why}${tail(logPath)}`);
      }
    }
    const startAgain = async (): Promise<ChildProcess> => {
      const again = await startPostmaster(join(bin, 'postgres'), args, spawnOpts, logPath, port, dataDir);
      if (!again.ok) throw new Error(`postgres ${again.why}${tail(logPath)}`);
      return again.child;
    };
    return handle({ port, socketDir, dataDir, baseDir, logPath, child, graceMs: opts.stopGraceMs ?? POSTMASTER_GRACE_MS, startAgain });
  } catch (err) {
    removeTestTmp(baseDir);
    throw err;
  }
}

function handle(s: {
  port: number;
  socketDir: string;
  dataDir: string;
  baseDir: string;
  logPath: string;
  child: ChildProcess;
  graceMs: number;
  startAgain: () => Promise<ChildProcess>;
}): Postgres {
  let child = s.child;
  let halted = false;
  const running = () => child.exitCode === null && child.signalCode === null && isPostmasterOf(child.pid ?? 0, s.dataDir);
  const urlOf = (db: string) => `postgres://${SUPERUSER}@${HOST}:${s.port}/${db}`;
  let stopping: Promise<void> | null = null;
  return {
    url: urlOf('postgres'),
    port: s.port,
    host: HOST,
    socketDir: s.socketDir,
    dataDir: s.dataDir,
    logPath: s.logPath,
    get pid() {
      return child.pid ?? 0;
    },
    halt: async () => {
      if (stopping) throw new Error('the server was stopped for good');
      halted = true;
      if (running()) await stopPostmaster(child.pid ?? 0, s.dataDir, s.graceMs);
    },
    resume: async () => {
      if (stopping) throw new Error('the server was stopped for good');
      if (!halted) return;
      child = await s.startAgain();
      halted = false;
    },
    createDatabase: async (name = `db_${randomBytes(6).toString('hex')}`) => {
      // Quoted below, so only a plain identifier: a test's typo must not become SQL.
      if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name)) throw new Error(`not a plain database name: ${JSON.stringify(name)}`);
      const client = new pg.Client({ connectionString: urlOf('postgres'), connectionTimeoutMillis: ADMIN_CONNECT_TIMEOUT_MS });
      await client.connect();
      try {
        // FILE_COPY (PostgreSQL 15+) copies the template's files instead of
        // writing them all to the WAL (WAL_LOG, the default): about twice as
        // fast for a test database, with fsync off.
        const { rows } = await client.query<{ v: string }>('SHOW server_version_num');
        const strategy = Number(rows[0]?.v) >= 150000 ? ' STRATEGY FILE_COPY' : '';
        await client.query(`CREATE DATABASE "${name}"${strategy}`);
      } finally {
        await client.end();
      }
      return urlOf(name);
    },
    stop: () =>
      (stopping ??= (async () => {
        // Until it is reaped its pid cannot be reused, so exitCode null means it is ours.
        if (running()) await stopPostmaster(child.pid ?? 0, s.dataDir, s.graceMs);
        // Only once it has exited: it writes its log until then.
        removeTestTmp(s.baseDir);
      })()),
  };
}

/** Who runs initdb and postgres: the `postgres` user under root, else whoever we are (null). */
async function serverUser(): Promise<{ uid: number; gid: number } | null> {
  if (process.getuid?.() !== 0) return null;
  let entry: string;
  try {
    entry = (await run('getent', ['passwd', SUPERUSER])).stdout;
  } catch {
    throw new Error(`PostgreSQL refuses to run as root and there is no '${SUPERUSER}' user to run it as (Debian's package creates it): ${INSTALL_HINT}`);
  }
  const [, , uid, gid] = entry.trim().split(':');
  return { uid: Number(uid), gid: Number(gid) };
}

/**
 * Fails early, naming the dir, when the server's user cannot pass through
 * every dir above `dir` (a mkdtemp parent is 0700): initdb would only say
 * "Permission denied". Spawned children get the user's primary group only
 * (libuv drops the supplementary ones), so that is all that counts here.
 */
function assertReachable(dir: string, owner: { uid: number; gid: number }): void {
  for (let d = dirname(dir); ; d = dirname(d)) {
    const st = statSync(d);
    const bit = st.uid === owner.uid ? 0o100 : st.gid === owner.gid ? 0o010 : 0o001;
    if (!(st.mode & bit)) {
      const mode = (st.mode & 0o7777).toString(8);
      throw new Error(`PostgreSQL runs as uid ${owner.uid} here, which cannot enter ${d} (mode ${mode}): make it 0755 or use another parentDir`);
    }
    if (d === dirname(d)) return;
  }
}

/** Only what the server needs: the test's PG* variables must not steer it. */
function serverEnv(): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C', LANG: 'C', TZ: 'UTC' };
}

interface SpawnOpts {
  cwd: string;
  env: NodeJS.ProcessEnv;
  uid?: number;
  gid?: number;
}

/** Runs a program to its end with stdout and stderr appended to `logPath`; its exit code. */
async function runLogged(cmd: string, args: string[], opts: SpawnOpts, logPath: string, timeoutMs: number): Promise<number | null> {
  const out = openSync(logPath, 'a');
  try {
    const child = spawn(cmd, args, { ...opts, stdio: ['ignore', out, out], timeout: timeoutMs });
    return await new Promise<number | null>((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (code) => resolve(code));
    });
  } finally {
    closeSync(out);
  }
}

/**
 * Starts the postmaster (not detached: a Ctrl-C in the terminal is its fast
 * shutdown too) and waits until it answers a query, or exits.
 */
async function startPostmaster(
  cmd: string,
  args: string[],
  opts: SpawnOpts,
  logPath: string,
  port: number,
  dataDir: string,
): Promise<{ ok: true; child: ChildProcess } | { ok: false; why: string }> {
  const out = openSync(logPath, 'a');
  let child: ChildProcess;
  try {
    child = spawn(cmd, args, { ...opts, stdio: ['ignore', out, out] });
  } finally {
    closeSync(out); // the child has its own copy
  }
  let failure: string | null = null;
  child.once('error', (err) => (failure = `could not start: ${err.message}`));
  child.once('exit', (code, sig) => (failure ??= `exited with ${sig ?? code} while starting`));
  child.unref(); // a test that forgets stop() must not keep its worker alive; the sweep has it then
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    if (failure) return { ok: false, why: failure };
    if (await accepts(port)) return { ok: true, child };
    if (Date.now() > deadline) {
      if (child.pid !== undefined) await stopPostmaster(child.pid, dataDir, 0);
      return { ok: false, why: `did not accept connections within ${START_TIMEOUT_MS} ms` };
    }
    await sleep(POLL_MS);
  }
}

/** Whether the server runs queries yet: it refuses them ("starting up", 57P03) before it is ready. */
async function accepts(port: number): Promise<boolean> {
  const client = new pg.Client({ host: HOST, port, user: SUPERUSER, database: 'postgres', connectionTimeoutMillis: CONNECT_TIMEOUT_MS });
  client.on('error', () => {}); // a failed probe is an answer, not a crash
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => {});
  }
}

function tail(path: string): string {
  try {
    return '\n' + readFileSync(path, 'utf8').split('\n').slice(-20).join('\n');
  } catch {
    return '';
  }
}
