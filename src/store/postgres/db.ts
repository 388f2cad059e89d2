import pg from 'pg';
import { MailgateError } from '../../errors.js';
import { computeBackoff } from '../../runtime/backoff.js';
import { whereOf } from './url.js';

/** What runs a query: the pool (one statement, its own transaction) or a client inside tx(). */
export interface Queryable {
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string | Named, values?: unknown[]): Promise<pg.QueryResult<R>>;
}

/**
 * A statement the server keeps prepared per connection (parsed and planned
 * once): for the hot paths, whose CTEs cost more to plan than to run.
 */
export interface Named {
  name: string;
  text: string;
}

function asConfig(text: string | Named, values: unknown[] | undefined): pg.QueryConfig {
  return typeof text === 'string' ? { text, values: values ?? [] } : { name: text.name, text: text.text, values: values ?? [] };
}

export interface PgDbOptions {
  url: string;
  /** Connections in the pool; each replica holds its own. */
  poolSize: number;
  /** How long to wait for a connection (from the pool or a new one) before the query fails. */
  connectTimeoutMs?: number;
  /** Client-side bound on one query: a silent network loss must not hang a caller forever. */
  queryTimeoutMs?: number;
}

const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;
const DEFAULT_QUERY_TIMEOUT_MS = 60_000;
/** While the database is unreachable, how often we look again: 500 ms doubling to 30 s, with jitter. */
const PROBE_BACKOFF = { initialMs: 500, maxMs: 30_000 };
/** Deadlock and serialization failures: the transaction changed nothing and is run again. */
const RETRY_CODES = new Set(['40P01', '40001']);
const TX_ATTEMPTS = 5;

/**
 * int8 (bigint) as a JS number: every bigint mailgate stores is a time in ms,
 * a UID or a count, all far below 2^53. COUNT(*) is int8 too.
 */
const TYPES = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === 20 && format !== 'binary' ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
};

/** Network and server states that mean "the database cannot be reached now", not "this query is wrong". */
const UNREACHABLE_ERRNO = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOENT']);
const UNREACHABLE_SQLSTATE = new Set(['57P01', '57P02', '57P03', '53300']);

export function isUnreachable(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown } | null;
  if (e === null || typeof e !== 'object') return false;
  if ((e as { storeUnavailable?: unknown }).storeUnavailable === true) return true;
  if (typeof e.code === 'string') {
    if (UNREACHABLE_ERRNO.has(e.code) || UNREACHABLE_SQLSTATE.has(e.code) || e.code.startsWith('08')) return true;
  }
  return typeof e.message === 'string' && /Connection terminated|timeout exceeded when trying to connect|Query read timeout|connection is not open|Client has encountered a connection error/i.test(e.message);
}

/** The store's own error for a database it cannot reach: transient, and recognised by StorageHealth. */
export class StoreUnavailableError extends MailgateError {
  readonly storeUnavailable = true;
  constructor(message: string, cause?: unknown) {
    super('CONNECTION_FAILED', message, { cause });
  }
}

export type AvailabilityListener = (reason: string | null) => void;

/**
 * The pool, with what every repository needs around it: one statement or
 * one transaction per contract method, the store's life cycle (closed means
 * rejected, never hung; close waits for what was accepted), and whether the
 * database is reachable (a failure to reach it is reported once to the
 * listeners, then a probe with backoff finds when it is back).
 */
export class PgDb {
  readonly pool: pg.Pool;
  readonly where: string;
  #closed = false;
  #ready: boolean;
  readonly #inflight = new Set<Promise<unknown>>();
  #down: string | null = null;
  #probe: NodeJS.Timeout | null = null;
  #probeAttempt = 0;
  readonly #listeners = new Set<AvailabilityListener>();
  /** Statements sent (each one round trip), for the benchmark. */
  roundTrips = 0;

  /** `ready: false`: a store being opened refuses calls until markReady(). */
  constructor(opts: PgDbOptions, ready = true) {
    this.#ready = ready;
    this.where = whereOf(opts.url);
    this.pool = new pg.Pool({
      connectionString: opts.url,
      max: opts.poolSize,
      connectionTimeoutMillis: opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
      query_timeout: opts.queryTimeoutMs ?? DEFAULT_QUERY_TIMEOUT_MS,
      idleTimeoutMillis: 30_000,
      keepAlive: true,
      application_name: 'mailgate',
      types: TYPES,
    });
    // An idle client whose server went away emits here; unhandled, it would end the process.
    this.pool.on('error', (err) => this.#markDown(err));
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Why the database cannot be reached, or null while it answers. */
  get unavailable(): string | null {
    return this.#down;
  }

  /** Called with the reason at once when the database is unreachable now. */
  onAvailability(listener: AvailabilityListener): () => void {
    this.#listeners.add(listener);
    if (this.#down !== null) listener(this.#down);
    return () => this.#listeners.delete(listener);
  }

  /** run() as a Queryable: code written for a transaction's client runs its statements one by one. */
  readonly direct: Queryable = { query: (text, values) => this.run(text, values) } as Queryable;

  /** One statement on the pool: its own transaction. */
  run<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string | Named, values: unknown[] = []): Promise<pg.QueryResult<R>> {
    return this.#guard(async () => {
      this.roundTrips++;
      return this.pool.query<R>(asConfig(text, values));
    });
  }

  /** Rows of one statement. */
  async rows<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string | Named, values: unknown[] = []): Promise<R[]> {
    return (await this.run<R>(text, values)).rows;
  }

  /**
   * `fn` inside BEGIN … COMMIT on one client; a deadlock or serialization
   * failure rolls back and runs it again (it must only touch the database).
   */
  tx<T>(fn: (c: Queryable) => Promise<T>): Promise<T> {
    return this.#guard(async () => {
      for (let attempt = 1; ; attempt++) {
        const client = await this.pool.connect();
        const counted: Queryable = {
          query: (text: string | Named, values?: unknown[]) => {
            this.roundTrips++;
            return client.query(asConfig(text, values));
          },
        } as Queryable;
        let broken = false;
        // A checked-out client is not the pool's to watch: a connection the
        // server ends between two statements (no query active) emits 'error'
        // here, which unheard would end the process. Its next statement fails.
        const onError = (err: Error): void => {
          broken = true;
          this.#markDown(err);
        };
        client.on('error', onError);
        try {
          await counted.query('BEGIN');
          const out = await fn(counted);
          await counted.query('COMMIT');
          return out;
        } catch (err) {
          try {
            await client.query('ROLLBACK');
          } catch {
            broken = true; // the connection is gone: do not give it back
          }
          const code = (err as { code?: unknown }).code;
          if (attempt < TX_ATTEMPTS && typeof code === 'string' && RETRY_CODES.has(code)) continue;
          throw err;
        } finally {
          client.removeListener('error', onError);
          client.release(broken || undefined);
        }
      }
    });
  }

  /** Resolves when every accepted call has settled, then ends the pool. Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#probe) clearTimeout(this.#probe);
    this.#probe = null;
    while (this.#inflight.size > 0) await Promise.allSettled([...this.#inflight]);
    if (!this.pool.ended) await this.pool.end().catch(() => undefined);
  }

  /** Opening is done (migrated, key checked): calls go through from now on. */
  markReady(): void {
    this.#ready = true;
    if (this.#down !== null) this.#markUp();
  }

  /** Not reached at start: every call is refused with `reason` until markReady(); the opener retries. */
  markUnreachable(reason: string): void {
    const first = this.#down === null;
    this.#down = reason;
    if (first) for (const l of [...this.#listeners]) l(reason);
  }

  #guard<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#closed) return Promise.reject(new MailgateError('INTERNAL', 'the store is closed'));
    if (!this.#ready) {
      return Promise.reject(new StoreUnavailableError(this.#down ?? `the PostgreSQL database at ${this.where} is not open yet`));
    }
    const p = (async () => {
      try {
        const out = await fn();
        if (this.#down !== null) this.#markUp();
        return out;
      } catch (err) {
        if (isUnreachable(err)) {
          this.#markDown(err);
          throw new StoreUnavailableError(`the PostgreSQL database at ${this.where} cannot be reached: ${(err as Error).message}`, err);
        }
        throw err;
      }
    })();
    this.#inflight.add(p);
    void p.then(
      () => this.#inflight.delete(p),
      () => this.#inflight.delete(p),
    );
    return p;
  }

  #markDown(err: unknown): void {
    if (this.#closed || !this.#ready) return;
    const first = this.#down === null;
    this.#down = `the PostgreSQL database at ${this.where} cannot be reached (${(err as Error).message}); retrying`;
    if (first) {
      this.#probeAttempt = 0;
      for (const l of [...this.#listeners]) l(this.#down);
      this.#scheduleProbe();
    }
  }

  #markUp(): void {
    this.#down = null;
    if (this.#probe) clearTimeout(this.#probe);
    this.#probe = null;
    for (const l of [...this.#listeners]) l(null);
  }

  #scheduleProbe(): void {
    if (this.#probe || this.#closed) return;
    const delay = computeBackoff(++this.#probeAttempt, PROBE_BACKOFF);
    this.#probe = setTimeout(() => {
      this.#probe = null;
      if (this.#closed || this.#down === null) return;
      this.pool.query('SELECT 1').then(
        () => this.#markUp(),
        () => this.#scheduleProbe(),
      );
    }, delay);
    this.#probe.unref();
  }
}
