import { existsSync, readdirSync, readlinkSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { ConfigError, loadConfig } from '../config/load.js';
import { MailgateError } from '../errors.js';
import { silentLogger } from '../log.js';
import { loadSecretKey, SECRET_KEY_ENV, SECRET_KEY_FILE } from '../secrets/keyring.js';
import { openStore, storedCredentialNames } from '../store/open.js';
import { PG_TABLES } from '../store/postgres/migrations.js';
import { redactUrl } from '../store/postgres/url.js';
import { DB_FILE } from '../store/sqlite/db.js';

/** Rows per INSERT, and at most this many bytes of row data in one (raw messages are large). */
const BATCH_ROWS = 500;
const BATCH_BYTES = 8 * 1024 * 1024;
/** A progress line at least every this many rows of a table. */
const PROGRESS_EVERY = 1_000;

/** Columns whose SQLite integer 0/1 is a boolean on PostgreSQL. */
const BOOLEAN_COLUMNS: Record<string, readonly string[]> = { messages: ['auto_submitted'] };

export interface CopyOptions {
  configPath: string;
  to: string;
  env?: Record<string, string | undefined>;
  /** Where progress lines go (stdout by default). */
  print?: (line: string) => void;
}

/**
 * `mailgate store copy --to postgres://…`: every table of a stopped SQLite
 * dataDir into an empty PostgreSQL database, rows as they are (secrets stay
 * sealed with the same key, cursors, UIDLs, pending deliveries and the
 * outbox come along), in one transaction: the target ends up with all of it
 * or none. Refuses a target that holds any mailgate data, and a dataDir
 * whose database another process (a running daemon) has open.
 */
export async function storeCopy(opts: CopyOptions): Promise<{ tables: Record<string, number> }> {
  const env = opts.env ?? process.env;
  const print = opts.print ?? ((line: string) => console.log(line));
  if (!/^postgres(ql)?:\/\//i.test(opts.to)) throw new MailgateError('BAD_REQUEST', '--to must be a postgres:// (or postgresql://) URL');
  const result = await loadConfig(opts.configPath, { env, databaseCredentials: (dir) => storedCredentialNames(dir) });
  if (!result.ok) throw new ConfigError(result.errors);
  const config = result.config;
  const dbPath = join(config.dataDir, DB_FILE);
  if (!existsSync(dbPath)) throw new MailgateError('NOT_FOUND', `there is no SQLite database to copy at ${dbPath} (dataDir ${config.dataDir})`);
  const holders = processesHolding(dbPath);
  if (holders.length > 0) {
    throw new MailgateError('CONFLICT', `${dbPath} is open in process ${holders.join(', ')} (a running mailgate?): stop the daemon first, then copy`);
  }
  const target = redactUrl(opts.to);
  // The same key as the SQLite data: the rows are copied sealed, and the target's key check must open with it.
  if (!env[SECRET_KEY_ENV] && config.secretKeyFile === undefined && !existsSync(join(config.dataDir, SECRET_KEY_FILE))) {
    throw new MailgateError('NOT_FOUND', `no secret key for ${config.dataDir}: set ${SECRET_KEY_ENV} or secretKeyFile to the key its secrets are sealed with`);
  }
  const key = loadSecretKey(config.dataDir, env, { secretKeyFile: config.secretKeyFile });
  await refuseNonEmpty(opts.to, target);

  // Source: migrated to this mailgate's schema and its key checked, then read as plain rows.
  const source = await openStore({ dataDir: config.dataDir, store: { kind: 'sqlite', url: undefined, poolSize: 1 } }, { cipher: key.cipher, logger: silentLogger() });
  await source.close();
  // Target: migrated and its key check recorded (the copy then puts the source's own in its place).
  const dest = await openStore({ dataDir: config.dataDir, store: { kind: 'postgres', url: opts.to, poolSize: 1 } }, { cipher: key.cipher, logger: silentLogger() });
  await dest.close();

  print(`copying ${dbPath} to ${target}`);
  const sqlite = new Database(dbPath, { readonly: true, fileMustExist: true });
  const client = new pg.Client({ connectionString: opts.to, application_name: 'mailgate-store-copy' });
  // The server ending the connection between statements fails the next one; unheard, it would end the process.
  client.on('error', () => undefined);
  const tables: Record<string, number> = {};
  try {
    await client.connect();
    await client.query('BEGIN');
    for (const table of PG_TABLES) tables[table] = await copyTable(sqlite, client, table, print);
    await advanceIdentities(client);
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    sqlite.close();
    await client.end().catch(() => undefined);
  }
  const total = Object.values(tables).reduce((a, b) => a + b, 0);
  print(`done: ${total} rows in ${PG_TABLES.length} tables; start the replicas with store.kind: postgres and the same secret key`);
  return { tables };
}

/** Refuses a target with any mailgate row, beyond the key check a replica records when it first opens a database. */
async function refuseNonEmpty(url: string, shown: string): Promise<void> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (err) {
    throw new MailgateError('CONNECTION_FAILED', `cannot reach ${shown}: ${(err as Error).message}`, { cause: err });
  }
  try {
    const { rows } = await client.query<{ t: string | null }>(`SELECT to_regclass('mailgate_schema')::text AS t`);
    if (!rows[0]?.t) return;
    const busy: string[] = [];
    for (const t of PG_TABLES) {
      const exists = (await client.query<{ t: string | null }>('SELECT to_regclass($1)::text AS t', [t])).rows[0]?.t;
      if (!exists) continue;
      const filter = t === 'meta' ? ` WHERE key <> 'secret_key_check'` : '';
      const n = Number((await client.query<{ n: string }>(`SELECT count(*) AS n FROM ${t}${filter}`)).rows[0]?.n ?? 0);
      if (n > 0) busy.push(`${t} (${n})`);
    }
    if (busy.length > 0) {
      throw new MailgateError('CONFLICT', `${shown} is not empty: it holds mailgate data in ${busy.join(', ')}; copy into a new, empty database`);
    }
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * Rows were copied with their ids: an identity column (connection_history.id)
 * must go on after the largest one, or the first new row would collide.
 */
async function advanceIdentities(client: pg.Client): Promise<void> {
  const { rows } = await client.query<{ table_name: string; column_name: string }>(
    `SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = current_schema() AND is_identity = 'YES' AND table_name = ANY($1)`,
    [[...PG_TABLES]],
  );
  for (const { table_name: t, column_name: c } of rows) {
    await client.query(`SELECT setval(pg_get_serial_sequence($1, $2), coalesce(max("${c}"), 0) + 1, false) FROM ${t}`, [t, c]);
  }
}

async function copyTable(sqlite: Database.Database, client: pg.Client, table: string, print: (line: string) => void): Promise<number> {
  const srcCols = (sqlite.prepare(`SELECT name FROM pragma_table_info(?)`).all(table) as { name: string }[]).map((r) => r.name);
  const { rows: dst } = await client.query<{ column_name: string }>(
    'SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1',
    [table],
  );
  const dstCols = new Set(dst.map((r) => r.column_name));
  const missing = srcCols.filter((c) => !dstCols.has(c));
  const extra = [...dstCols].filter((c) => !srcCols.includes(c));
  if (srcCols.length === 0 || missing.length > 0 || extra.length > 0) {
    throw new MailgateError(
      'INTERNAL',
      `table ${table} differs between SQLite (${srcCols.join(', ') || 'missing'}) and PostgreSQL (${[...dstCols].join(', ') || 'missing'}); nothing was copied`,
    );
  }
  const total = (sqlite.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n;
  const booleans = new Set(BOOLEAN_COLUMNS[table] ?? []);
  const cols = srcCols.map((c) => `"${c}"`).join(', ');
  // The key check the target's first open recorded gives way to the source's (both open with the key).
  const onConflict = table === 'meta' ? ' ON CONFLICT (key) DO UPDATE SET value = excluded.value' : '';
  let batch: unknown[][] = [];
  let bytes = 0;
  let done = 0;
  let lastPrinted = 0;
  const flush = async () => {
    if (batch.length === 0) return;
    const values: unknown[] = [];
    const tuples = batch.map((row) => `(${row.map((v) => `$${values.push(v)}`).join(', ')})`);
    await client.query(`INSERT INTO ${table} (${cols}) VALUES ${tuples.join(', ')}${onConflict}`, values);
    done += batch.length;
    batch = [];
    bytes = 0;
    if (done - lastPrinted >= PROGRESS_EVERY || done === total) {
      lastPrinted = done;
      print(`  ${table}: ${done}/${total}`);
    }
  };
  // One row at a time from SQLite (iterate), so a dataDir of large messages never sits in memory whole.
  for (const row of sqlite.prepare(`SELECT ${cols} FROM ${table}`).raw().iterate() as IterableIterator<unknown[]>) {
    const values = row.map((v, i) => (booleans.has(srcCols[i] ?? '') ? v === 1 || v === 1n : typeof v === 'bigint' ? Number(v) : v));
    for (const v of values) bytes += Buffer.isBuffer(v) ? v.length : typeof v === 'string' ? v.length : 8;
    batch.push(values);
    if (batch.length >= BATCH_ROWS || bytes >= BATCH_BYTES || (batch.length + 1) * srcCols.length > 60_000) await flush();
  }
  await flush();
  if (total === 0) print(`  ${table}: 0/0`);
  return done;
}

/** Pids of other processes with `path` open (Linux /proc); empty where /proc cannot tell. */
export function processesHolding(path: string): number[] {
  let real: string;
  try {
    real = realpathSync(path);
  } catch {
    return [];
  }
  const holders: number[] = [];
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((n) => /^\d+$/.test(n));
  } catch {
    return [];
  }
  for (const pid of pids) {
    if (Number(pid) === process.pid) continue;
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue; // gone, or not ours to look at
    }
    for (const fd of fds) {
      try {
        if (readlinkSync(`/proc/${pid}/fd/${fd}`) === real) {
          holders.push(Number(pid));
          break;
        }
      } catch {
        // closed meanwhile
      }
    }
  }
  return holders;
}
