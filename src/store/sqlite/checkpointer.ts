import { existsSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { Logger } from '../../log.js';
import type { CheckpointReply, CheckpointWorkerData } from './checkpoint-worker.js';
import type { Db } from './db.js';

const WORKER_FILE = fileURLToPath(new URL('./checkpoint-worker.js', import.meta.url));
/** SQLite's own default: checkpoint once the log holds about 1,000 pages. */
const AUTOCHECKPOINT_PAGES = 1_000;
const STOP_TIMEOUT_MS = 2_000;

export interface CheckpointerOptions {
  /** How often the thread looks at the log's size. */
  intervalMs?: number;
  /** How often, before the thread exists, the main thread looks whether the log ever reached walBytes. */
  watchMs?: number;
  /** Log size that starts a checkpoint (SQLite's default is ~4 MiB). */
  walBytes?: number;
}

/**
 * Moves WAL checkpoints off the main thread. In the ingest profile, the
 * checkpoints that SQLite runs inside commits (copying every raw message a
 * second time, then fsync) were about half of the main thread's database
 * time. The daemon's connection stops checkpointing and a thread with its
 * own connection does it instead; if that thread fails or stops, the
 * connection checkpoints for itself again. The thread (a second V8 isolate,
 * ~10 MiB) starts only once the log first reaches the threshold, so a daemon
 * that never sees a burst of mail never carries it. Without the compiled
 * worker file (tests running the TypeScript sources) nothing changes.
 */
export class Checkpointer {
  readonly #db: Db;
  readonly #log: Logger;
  #worker: Worker | null = null;
  #watch: NodeJS.Timeout | null = null;
  #checkpoints = 0;
  #frames = 0;

  constructor(db: Db, logger: Logger) {
    this.#db = db;
    this.#log = logger.child({ component: 'store' });
  }

  /** Whether checkpoints currently run on the thread. */
  get active(): boolean {
    return this.#worker !== null;
  }

  /** Checkpoints the thread has run, and the log frames they copied. */
  get stats(): { checkpoints: number; frames: number } {
    return { checkpoints: this.#checkpoints, frames: this.#frames };
  }

  /** Watches the log and starts the thread once it first reaches `walBytes`; false if it never can. */
  start(opts: CheckpointerOptions = {}): boolean {
    if (this.#worker || this.#watch) return true;
    if (this.#db.memory || !existsSync(WORKER_FILE)) return false;
    const workerData: CheckpointWorkerData = {
      path: this.#db.name,
      intervalMs: opts.intervalMs ?? 200,
      walBytes: opts.walBytes ?? 4 * 1024 * 1024,
    };
    this.#watch = setInterval(() => {
      let size: number;
      try {
        size = statSync(`${workerData.path}-wal`).size;
      } catch {
        return; // no log yet
      }
      if (size < workerData.walBytes) return;
      this.#stopWatching();
      this.#spawn(workerData);
    }, opts.watchMs ?? 1_000);
    this.#watch.unref();
    return true;
  }

  #stopWatching(): void {
    if (this.#watch) clearInterval(this.#watch);
    this.#watch = null;
  }

  #spawn(workerData: CheckpointWorkerData): void {
    const worker = new Worker(WORKER_FILE, { workerData });
    worker.on('message', (msg: CheckpointReply) => {
      if (msg.type === 'checkpoint') {
        this.#checkpoints++;
        this.#frames += msg.frames;
      } else {
        this.#log.warn({ error: msg.message }, 'background checkpoint failed; the next one retries');
      }
    });
    worker.on('error', (err) => this.#log.error({ err }, 'the checkpoint thread failed'));
    worker.on('exit', (exitCode) => {
      if (this.#worker !== worker) return; // stopped on purpose
      this.#log.warn({ exitCode }, 'the checkpoint thread exited; the database checkpoints on the main thread again');
      this.#fallBack();
    });
    worker.unref(); // never what keeps the process alive
    this.#db.pragma('wal_autocheckpoint = 0');
    this.#worker = worker;
    this.#log.debug('WAL checkpoints moved to a background thread');
  }

  /** Stops the thread and gives checkpoints back to the connection. */
  async stop(): Promise<void> {
    this.#stopWatching();
    const worker = this.#worker;
    if (!worker) return;
    this.#fallBack();
    const exited = new Promise<void>((r) => worker.once('exit', () => r()));
    worker.postMessage('stop');
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([exited, new Promise<void>((r) => (timer = setTimeout(r, STOP_TIMEOUT_MS)))]);
    clearTimeout(timer);
    await worker.terminate();
  }

  #fallBack(): void {
    this.#worker = null;
    if (this.#db.open) this.#db.pragma(`wal_autocheckpoint = ${AUTOCHECKPOINT_PAGES}`);
  }
}
