import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { startPostgres, type Postgres } from '../../harness/index.js';
import { canConnect } from '../../harness/net.js';
import { findPostgresBin } from '../../harness/postgres.js';
import { isRunning } from '../../harness/sweep.js';

const started: Postgres[] = [];
afterEach(async () => {
  await Promise.all(started.splice(0).map((p) => p.stop())); // a failed test must not leak its server
});

async function start(opts: Parameters<typeof startPostgres>[0] = {}): Promise<Postgres> {
  const p = await startPostgres(opts);
  started.push(p);
  return p;
}

async function query<T = Record<string, unknown>>(config: string | pg.ClientConfig, sql: string, params: unknown[] = []): Promise<T[]> {
  const client = new pg.Client(config);
  await client.connect();
  try {
    return (await client.query(sql, params)).rows as T[];
  } finally {
    await client.end();
  }
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

/** System V segments created by `pid` (PostgreSQL's interlock segment is one). */
function shmCreatedBy(pid: number): string[] {
  return readFileSync('/proc/sysvipc/shm', 'utf8')
    .split('\n')
    .slice(1)
    .filter((row) => row.trim().split(/\s+/)[4] === String(pid));
}

/** Asserts stop() left nothing: no postmaster, no child of it, no port, no segment, no dir. */
async function expectGone(p: Postgres, children: number[]): Promise<void> {
  expect(isRunning(p.pid)).toBe(false);
  for (const c of children) expect(isRunning(c)).toBe(false);
  expect(await canConnect(p.port)).toBe(false);
  expect(shmCreatedBy(p.pid)).toEqual([]);
  expect(existsSync(p.dataDir)).toBe(false);
  expect(existsSync(join(p.dataDir, '..'))).toBe(false);
}

describe('startPostgres', () => {
  it('serves databases of its own on loopback and a private socket, fast and durable-off, and stop() leaves nothing', async () => {
    const p = await start();

    expect(p.url).toBe(`postgres://postgres@127.0.0.1:${p.port}/postgres`);
    expect(p.socketDir.startsWith(join(p.dataDir, '..'))).toBe(true);
    expect(existsSync(join(p.socketDir, `.s.PGSQL.${p.port}`))).toBe(true);
    const settings = await query<{ name: string; setting: string }>(
      p.url,
      `SELECT name, setting FROM pg_settings WHERE name = ANY($1) ORDER BY name`,
      [['fsync', 'synchronous_commit', 'full_page_writes', 'max_connections', 'listen_addresses', 'unix_socket_directories']],
    );
    expect(Object.fromEntries(settings.map((s) => [s.name, s.setting]))).toEqual({
      fsync: 'off',
      full_page_writes: 'off',
      listen_addresses: '127.0.0.1',
      max_connections: '200',
      synchronous_commit: 'off',
      unix_socket_directories: p.socketDir,
    });
    // The private socket works as well as TCP.
    expect(await query({ host: p.socketDir, port: p.port, user: 'postgres', database: 'postgres' }, 'SELECT 1 AS one')).toEqual([{ one: 1 }]);
    if (process.getuid?.() === 0) {
      // PostgreSQL refuses root: under root it runs as Debian's postgres user.
      const postgresUid = execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim();
      const uidLine = readFileSync(`/proc/${p.pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('Uid:'));
      expect(uidLine?.split(/\s+/).slice(1)).toEqual([postgresUid, postgresUid, postgresUid, postgresUid]);
    }

    const [a, b] = await Promise.all([p.createDatabase('store_a'), p.createDatabase()]);
    expect(a).toBe(`postgres://postgres@127.0.0.1:${p.port}/store_a`);
    expect(b).toMatch(new RegExp(`^postgres://postgres@127\\.0\\.0\\.1:${p.port}/db_[0-9a-f]{12}$`));
    await query(a, 'CREATE TABLE t (v text); INSERT INTO t VALUES ($$in a$$)');
    await query(b, 'CREATE TABLE t (v text); INSERT INTO t VALUES ($$in b$$), ($$also b$$)');
    expect(await query(a, 'SELECT current_database() AS db, count(*)::int AS n FROM t')).toEqual([{ db: 'store_a', n: 1 }]);
    expect(await query(b, 'SELECT count(*)::int AS n FROM t')).toEqual([{ n: 2 }]);
    await expect(p.createDatabase('store_a')).rejects.toThrow(/already exists/);
    await expect(p.createDatabase('x"; DROP DATABASE store_a; --')).rejects.toThrow(/not a plain database name/);

    const open = new pg.Client(a); // a connection still open at stop(): the fast shutdown ends it
    open.on('error', () => {});
    await open.connect();
    const children = childrenOf(p.pid);
    expect(children.length).toBeGreaterThan(0);

    await p.stop();

    await expectGone(p, children);
    await p.stop(); // twice is harmless
    await open.end().catch(() => {});
  });

  it('runs a second instance in parallel on its own port, socket and data', async () => {
    const [p, q] = await Promise.all([start(), start()]);

    expect(p.port).not.toBe(q.port);
    expect(p.socketDir).not.toBe(q.socketDir);
    expect(p.dataDir).not.toBe(q.dataDir);
    const [dp, dq] = await Promise.all([p.createDatabase('same_name'), q.createDatabase('same_name')]);
    await query(dp, 'CREATE TABLE only_in_p (x int)');
    expect(await query(dq, `SELECT to_regclass('only_in_p') AS t`)).toEqual([{ t: null }]);

    const children = childrenOf(p.pid);
    await p.stop();
    await expectGone(p, children);
    expect(await query(q.url, 'SELECT 1 AS one')).toEqual([{ one: 1 }]);
  });

  it('stop() kills a postmaster that ignores its fast shutdown, its children too, and removes its shared memory', async () => {
    const p = await start({ stopGraceMs: 300 });
    const children = childrenOf(p.pid);
    expect(shmCreatedBy(p.pid)).toHaveLength(1);
    process.kill(p.pid, 'SIGSTOP'); // SIGINT stays pending; SIGKILL still works

    await p.stop();

    await expectGone(p, children);
  });

  it.runIf(process.getuid?.() === 0)('says which dir the postgres user cannot enter, before running initdb', async () => {
    const closed = mkdtempSync(join(tmpdir(), 'mgp')); // mkdtemp: mode 0700, owned by root
    try {
      await expect(startPostgres({ parentDir: closed })).rejects.toThrow(`which cannot enter ${closed} (mode 700)`);
      expect(readdirSync(closed)).toEqual([]);
    } finally {
      rmSync(closed, { recursive: true, force: true });
    }
  });
});

describe('findPostgresBin', () => {
  it('picks the newest installed version, numerically', () => {
    const lib = mkdtempSync(join(tmpdir(), 'mgp'));
    try {
      for (const v of ['9.6', '13', '15', '16']) {
        mkdirSync(join(lib, v, 'bin'), { recursive: true });
        // 16 is a client-only install: no server binaries.
        for (const b of v === '16' ? ['psql'] : ['initdb', 'postgres']) writeFileSync(join(lib, v, 'bin', b), '');
      }
      chmodSync(lib, 0o755);
      expect(findPostgresBin(lib)).toBe(join(lib, '15', 'bin'));
    } finally {
      rmSync(lib, { recursive: true, force: true });
    }
  });

  it('names the package to install when there is none', () => {
    expect(() => findPostgresBin(join(tmpdir(), 'mailgate-no-such-dir'))).toThrow('apt-get install -y postgresql');
  });
});
