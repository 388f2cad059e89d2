import type { MetaRepo } from './meta.js';

/** How often a full database is tried again with a small write. */
export const STORAGE_PROBE_INTERVAL_MS = 10_000;
const PROBE_KEY = 'storage_probe';

/** SQLite's answers for a disk (or a database size limit) that is full; PostgreSQL's disk_full (53100). */
const FULL_CODES = new Set(['SQLITE_FULL', 'SQLITE_IOERR_WRITE', 'SQLITE_IOERR_FSYNC', 'SQLITE_IOERR_SHMSIZE', '53100']);

export function isStorageFull(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown; cause?: unknown };
  if (typeof e?.code === 'string' && FULL_CODES.has(e.code)) return true;
  if (typeof e?.message === 'string' && /database or disk is full|no space left on device/i.test(e.message)) return true;
  return e?.cause !== undefined && e.cause !== err ? isStorageFull(e.cause) : false;
}

export interface StorageHealthEvents {
  /** The database became full (`full: true`, with the reason) or writable again. */
  changed: (full: boolean, reason: string | null) => void;
  /** A database on a server became unreachable (the reason) or answers again (null). */
  reachable?: (reason: string | null) => void;
}

/**
 * Whether the database takes writes. When a write fails because the disk
 * (or the database) is full, mailgate stops taking new mail: connectors do
 * not fetch and do nothing on the mail servers, the delivery worker does
 * not claim, /readyz answers 503 with the reason. A small write is tried
 * every STORAGE_PROBE_INTERVAL_MS; when it succeeds, everything resumes by
 * itself. Nothing is lost: mail stays on the servers meanwhile.
 */
export class StorageHealth {
  #full = false;
  #reason: string | null = null;
  #unreachable: string | null = null;
  #timer: NodeJS.Timeout | null = null;
  readonly #listeners = new Set<() => void>();

  constructor(
    private readonly meta: Pick<MetaRepo, 'set'>,
    private readonly events: StorageHealthEvents,
    private readonly probeIntervalMs = STORAGE_PROBE_INTERVAL_MS,
  ) {}

  /** False while the database is full or cannot be reached. */
  get accepting(): boolean {
    return !this.#full && this.#unreachable === null;
  }

  /** Why writes are refused, in an admin's words, or null. */
  get reason(): string | null {
    return this.#reason ?? this.#unreachable;
  }

  /**
   * The store (Store.watch) says its server cannot be reached (a reason) or
   * answers again (null). Meanwhile the same pause as a full disk: no fetch,
   * nothing done on the servers, no claims; the store itself probes.
   */
  setUnreachable(reason: string | null): void {
    const was = this.#unreachable;
    this.#unreachable = reason;
    if ((was === null) === (reason === null)) return;
    this.events.reachable?.(reason);
    if (reason === null && !this.#full) for (const l of [...this.#listeners]) l();
  }

  /**
   * Looks at a failed write: when it is a full disk, enters the full state
   * (once) and returns true. Any other error returns false.
   */
  report(err: unknown): boolean {
    if (!isStorageFull(err)) return false;
    if (!this.#full) {
      this.#full = true;
      this.#reason = `the database disk is full (${(err as Error).message}); mailgate takes no new mail until space is freed`;
      this.events.changed(true, this.#reason);
      this.#timer = setInterval(() => void this.probe(), this.probeIntervalMs);
      this.#timer.unref();
    }
    return true;
  }

  /** Tries a small write; on success leaves the full state and wakes whoever waits. */
  async probe(): Promise<boolean> {
    if (!this.#full) return true;
    try {
      await this.meta.set(PROBE_KEY, String(Date.now()));
    } catch (err) {
      if (isStorageFull(err)) return false;
      throw err;
    }
    this.#full = false;
    this.#reason = null;
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    this.events.changed(false, null);
    if (this.#unreachable === null) for (const l of [...this.#listeners]) l();
    return true;
  }

  /** Called when writes are accepted again. Returns an unsubscribe. */
  onResume(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
  }
}
