import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { RawReaderReply, RawReaderRequest } from './raw-reader-worker.js';

const WORKER_FILE = fileURLToPath(new URL('./raw-reader-worker.js', import.meta.url));
/** Raw messages at least this large are read on the thread; smaller ones cost the main thread less than the hop. */
export const RAW_THREAD_THRESHOLD_BYTES = 4 * 1024 * 1024;

/**
 * Reads large raw messages on a thread of its own (raw-reader-worker.ts),
 * started with the first large read; the main connection stays free and the
 * event loop keeps running while SQLite walks a blob's overflow pages.
 * Without the compiled worker file (tests running the TypeScript sources)
 * `available` is false and the caller reads on its own connection.
 */
export class RawReader {
  #worker: Worker | null = null;
  #seq = 0;
  #reads = 0;
  readonly #waiting = new Map<number, { resolve: (raw: Buffer | null) => void; reject: (err: Error) => void }>();

  constructor(private readonly path: string) {}

  /** Raw messages read on the thread so far (for tests and status). */
  get reads(): number {
    return this.#reads;
  }

  get available(): boolean {
    return this.path !== ':memory:' && existsSync(WORKER_FILE);
  }

  read(id: string): Promise<Buffer | null> {
    const worker = this.#ensure();
    const seq = ++this.#seq;
    return new Promise((resolve, reject) => {
      this.#waiting.set(seq, { resolve, reject });
      worker.postMessage({ seq, id } satisfies RawReaderRequest);
    });
  }

  async close(): Promise<void> {
    const w = this.#worker;
    this.#worker = null;
    if (!w) return;
    w.postMessage('stop' satisfies RawReaderRequest);
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => void w.terminate().then(() => resolve()), 2_000);
      w.once('exit', () => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  #ensure(): Worker {
    if (this.#worker) return this.#worker;
    const w = new Worker(WORKER_FILE, { workerData: { path: this.path } });
    w.unref();
    w.on('message', (reply: RawReaderReply) => {
      const waiting = this.#waiting.get(reply.seq);
      if (!waiting) return;
      this.#waiting.delete(reply.seq);
      this.#reads++;
      if ('error' in reply) waiting.reject(new Error(`reading a raw message failed: ${reply.error}`));
      else waiting.resolve(reply.raw === null ? null : Buffer.from(reply.raw.buffer, reply.raw.byteOffset, reply.raw.byteLength));
    });
    const failAll = (err: Error) => {
      for (const w2 of this.#waiting.values()) w2.reject(err);
      this.#waiting.clear();
      this.#worker = null;
    };
    w.on('error', (err) => failAll(err));
    w.on('exit', (exitCode) => failAll(new Error(`the raw-message reader thread exited (exit code ${exitCode})`)));
    this.#worker = w;
    return w;
  }
}
