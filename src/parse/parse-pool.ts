import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { Component } from '../app.js';
import { MailgateError } from '../errors.js';
import type { Logger } from '../log.js';
import { renderMessageReceived, type MessageEnvelope } from './parse-message.js';
import type { RenderReply, RenderTask } from './parse-worker.js';

export type RenderFn = (raw: Buffer, env: MessageEnvelope, opts: { maxInlineAttachmentBytes: number }) => Promise<string>;

const WORKER_FILE = fileURLToPath(new URL('./parse-worker.js', import.meta.url));

/**
 * Parse threads: `MAILGATE_PARSE_THREADS` (0 = parse on the main thread).
 * By default none on one or two cores, where bench:ingest measured the main
 * thread faster (the thread's copies and the cores shared with the mail
 * server cost more than the overlap gains); else one per core beyond the
 * first, at most 4.
 */
export function parseThreadCount(env: Record<string, string | undefined> = process.env, cores = availableParallelism()): number {
  const fromEnv = env.MAILGATE_PARSE_THREADS;
  if (fromEnv !== undefined && /^\d+$/.test(fromEnv)) return Math.min(Number(fromEnv), 16);
  return cores <= 2 ? 0 : Math.min(4, cores - 1);
}

interface Slot {
  worker: Worker;
  busy: { task: RenderTask; resolve: (body: string) => void; reject: (err: Error) => void } | null;
}

/**
 * Renders webhook bodies on worker threads, one message per thread at a
 * time, with a queue in front. A thread that dies fails only its own message
 * (the delivery is retried) and is replaced. Without the compiled worker
 * file (tests running the TypeScript sources) it renders on the main thread.
 */
export class ParsePool implements Component {
  readonly name = 'parse';
  readonly #threads: number;
  readonly #log: Logger;
  readonly #slots: Slot[] = [];
  readonly #queue: { task: RenderTask; resolve: (body: string) => void; reject: (err: Error) => void }[] = [];
  #nextId = 1;
  #stopped = false;

  constructor(opts: { threads: number; logger: Logger }) {
    this.#threads = existsSync(WORKER_FILE) ? opts.threads : 0;
    this.#log = opts.logger.child({ component: 'parse' });
  }

  get threads(): number {
    return this.#threads;
  }

  /** Threads start with the first message: an idle daemon does not carry their memory (~30 MiB each). */
  async start(): Promise<void> {
    this.#stopped = false;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    const err = new MailgateError('INTERNAL', 'mailgate is stopping');
    for (const q of this.#queue.splice(0)) q.reject(err);
    await Promise.all(this.#slots.splice(0).map((s) => s.worker.terminate()));
  }

  readonly render: RenderFn = (raw, envelope, opts) => {
    if (this.#threads === 0) return renderMessageReceived(raw, envelope, opts);
    if (this.#stopped) return Promise.reject(new MailgateError('INTERNAL', 'mailgate is stopping'));
    return new Promise((resolve, reject) => {
      // The worker reads its own copy; the stored Buffer may share memory with others.
      const task: RenderTask = { id: this.#nextId++, raw: new Uint8Array(raw), envelope, maxInlineAttachmentBytes: opts.maxInlineAttachmentBytes };
      this.#queue.push({ task, resolve, reject });
      if (this.#slots.length === 0) {
        for (let i = 0; i < this.#threads; i++) this.#slots.push(this.#spawn());
        this.#log.debug({ threads: this.#threads }, 'parse threads started');
      }
      this.#dispatch();
    });
  };

  #dispatch(): void {
    for (const slot of this.#slots) {
      if (slot.busy) continue;
      const next = this.#queue.shift();
      if (!next) return;
      slot.busy = next;
      slot.worker.postMessage(next.task, [next.task.raw.buffer as ArrayBuffer]);
    }
  }

  #spawn(): Slot {
    const slot: Slot = { worker: new Worker(WORKER_FILE), busy: null };
    slot.worker.on('message', (reply: RenderReply) => {
      const job = slot.busy;
      slot.busy = null;
      if (job && job.task.id === reply.id) {
        if (reply.ok) job.resolve(reply.body);
        else job.reject(new MailgateError(reply.parseFailed ? 'PARSE_FAILED' : 'INTERNAL', reply.message));
      }
      this.#dispatch();
    });
    slot.worker.on('error', (err) => this.#log.error({ err }, 'a parse thread failed'));
    slot.worker.on('exit', (code) => {
      const job = slot.busy;
      slot.busy = null;
      job?.reject(new MailgateError('INTERNAL', `the parse thread exited (code ${code}) while parsing this message`));
      const i = this.#slots.indexOf(slot);
      if (i >= 0 && !this.#stopped) {
        this.#log.warn({ code }, 'a parse thread exited; starting a new one');
        this.#slots[i] = this.#spawn();
        this.#dispatch();
      }
    });
    return slot;
  }
}
