import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Worker, type ResourceLimits } from 'node:worker_threads';
import type { Component } from '../runtime/component.js';
import { MailgateError } from '../errors.js';
import type { Logger } from '../log.js';
import { renderMessageReceived, summarizeHeaders, type HeaderSummary, type MessageEnvelope, type RenderNote, type RenderOptions } from './parse-message.js';
import type { RenderJob, RenderReply, RenderTask } from './parse-worker.js';

/**
 * Raw message → UTF-8 `message.received` body. PARSE_FAILED: never
 * parseable; RENDER_FAILED: try again later. With `transfer`, a raw Buffer
 * that owns its whole memory is moved to the thread instead of copied (the
 * caller must not use it afterwards): a 50 MB message costs no 50 MB copy.
 */
export type RenderFn = (raw: Buffer, env: MessageEnvelope, limits: RenderOptions, opts?: { transfer?: boolean }) => Promise<Buffer>;

const WORKER_FILE = fileURLToPath(new URL('./parse-worker.js', import.meta.url));

/**
 * A message's parse and render may take this long on its thread; then the
 * thread is terminated (hostile MIME, HTML amplifiers) and the attempt
 * fails. `MAILGATE_PARSE_DEADLINE_MS` overrides it. A wall-clock deadline:
 * Node 20 cannot read one thread's CPU time, and a thread runs one message
 * at a time, so wall time bounds its CPU time.
 */
export const PARSE_DEADLINE_MS = 30_000;
/**
 * The heap a parse thread may use. Beyond it the thread dies with
 * ERR_WORKER_OUT_OF_MEMORY and only its message fails, instead of the
 * daemon running out of memory.
 */
export const PARSE_THREAD_LIMITS: ResourceLimits = { maxOldGenerationSizeMb: 1024, maxYoungGenerationSizeMb: 32 };

/**
 * Parse threads: `MAILGATE_PARSE_THREADS` (0 = on the main thread, for
 * tools and tests only: a hostile message then blocks the daemon). By
 * default one per core beyond the first, at least one, at most 4: even on
 * two cores a thread, so that parsing never stalls the main thread's
 * fetching, posting and HTTP answers.
 */
export function parseThreadCount(env: Record<string, string | undefined> = process.env, cores = availableParallelism()): number {
  const fromEnv = env.MAILGATE_PARSE_THREADS;
  if (fromEnv !== undefined && /^\d+$/.test(fromEnv)) return Math.min(Number(fromEnv), 16);
  return Math.max(1, Math.min(4, cores - 1));
}

export function parseDeadline(env: Record<string, string | undefined> = process.env): number {
  const v = env.MAILGATE_PARSE_DEADLINE_MS;
  return v !== undefined && /^\d+$/.test(v) && Number(v) > 0 ? Number(v) : PARSE_DEADLINE_MS;
}

interface Job {
  task: RenderTask;
  resolve: (result: Buffer | HeaderSummary) => void;
  reject: (err: Error) => void;
}

interface Slot {
  worker: Worker;
  busy: (Job & { timer: NodeJS.Timeout }) | null;
  /** Set when the slot was given up (deadline, crash): its late events are ignored. */
  retired: boolean;
  /** The thread has loaded its modules: a deadline counts parsing only, not a thread's start. */
  ready: boolean;
}

/** The message a task renders, for the log (a summary has none yet). */
function messageOf(task: RenderTask): string | null {
  return task.mode === 'render' ? task.envelope.id : null;
}

function renderFailed(message: string, reason: 'malformed' | 'too_large'): MailgateError {
  return new MailgateError('RENDER_FAILED', message, { details: { reason } });
}

/**
 * Renders webhook bodies on worker threads, one message per thread at a
 * time, with a queue in front. Threads are started with the first message
 * and reused; the raw bytes go to the thread in a transferred buffer and the
 * body comes back the same way. A thread that overruns the deadline is
 * terminated, one that dies (out of memory) replaced; either fails only its
 * own message, as RENDER_FAILED (the delivery worker counts the attempt).
 * Without the compiled worker file (tests running the TypeScript sources)
 * it renders on the main thread.
 */
export class ParsePool implements Component {
  readonly name = 'parse';
  readonly #threads: number;
  readonly #deadlineMs: number;
  readonly #limits: ResourceLimits;
  readonly #log: Logger;
  readonly #slots: Slot[] = [];
  readonly #queue: Job[] = [];
  #nextId = 1;
  #stopped = false;

  constructor(opts: { threads: number; logger: Logger; deadlineMs?: number; resourceLimits?: ResourceLimits }) {
    this.#threads = existsSync(WORKER_FILE) ? opts.threads : 0;
    this.#deadlineMs = opts.deadlineMs ?? PARSE_DEADLINE_MS;
    this.#limits = opts.resourceLimits ?? PARSE_THREAD_LIMITS;
    this.#log = opts.logger.child({ component: 'parse' });
  }

  get threads(): number {
    return this.#threads;
  }

  /** Threads start with the first message: an idle daemon does not carry their memory. */
  async start(): Promise<void> {
    this.#stopped = false;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    const err = new MailgateError('INTERNAL', 'mailgate is stopping');
    for (const q of this.#queue.splice(0)) q.reject(err);
    await Promise.all(
      this.#slots.splice(0).map((s) => {
        s.retired = true;
        if (s.busy) {
          clearTimeout(s.busy.timer);
          s.busy.reject(err);
          s.busy = null;
        }
        return s.worker.terminate();
      }),
    );
  }

  readonly render: RenderFn = (raw, envelope, limits, opts) => {
    if (this.#threads === 0) {
      const notes: RenderNote[] = [];
      return renderMessageReceived(raw, envelope, limits, notes).then((body) => {
        this.#logNotes(envelope.id, notes);
        return body;
      });
    }
    return this.#submit(raw, { mode: 'render', envelope, limits }, opts?.transfer === true) as Promise<Buffer>;
  };

  /** What a parse noticed: reply extraction that gave up (the message is delivered with replyText = text). */
  #logNotes(message: string, notes: readonly RenderNote[]): void {
    for (const n of notes) {
      this.#log.warn(
        { message, reason: n.reason, ...(n.error ? { error: n.error } : {}) },
        n.kind === 'reply_text_failed'
          ? `reply text extraction gave up (${n.reason}); the message is delivered with replyText equal to its text`
          : 'could not tell whether the message is automatic; it is delivered with autoType null',
      );
    }
  }

  /** Message-ID, Subject and From of a header block (a message that was not downloaded), on a thread. */
  readonly summarize = (headers: Buffer): Promise<HeaderSummary> => {
    if (this.#threads === 0) return summarizeHeaders(headers);
    return this.#submit(headers, { mode: 'summary' }, false) as Promise<HeaderSummary>;
  };

  #submit(raw: Buffer, job: RenderJob, transfer: boolean): Promise<Buffer | HeaderSummary> {
    if (this.#stopped) return Promise.reject(new MailgateError('INTERNAL', 'mailgate is stopping'));
    return new Promise((resolve, reject) => {
      // The thread gets memory of its own, transferred: moved when the caller
      // gives up a Buffer that owns its whole ArrayBuffer, else copied (a
      // Buffer may be a slice of Node's shared pool or of a larger read).
      const owned = transfer && raw.byteOffset === 0 && raw.byteLength === raw.buffer.byteLength && raw.buffer instanceof ArrayBuffer;
      let bytes: Uint8Array;
      if (owned) {
        bytes = new Uint8Array(raw.buffer, 0, raw.byteLength);
      } else {
        bytes = new Uint8Array(raw.length);
        bytes.set(raw);
      }
      const task: RenderTask = { id: this.#nextId++, raw: bytes, ...job };
      this.#queue.push({ task, resolve, reject });
      if (this.#slots.length === 0) {
        for (let i = 0; i < this.#threads; i++) this.#slots.push(this.#spawn());
        this.#log.debug({ threads: this.#threads }, 'parse threads started');
      }
      this.#dispatch();
    });
  }

  #dispatch(): void {
    for (const slot of this.#slots) {
      if (slot.busy || slot.retired || !slot.ready) continue;
      const next = this.#queue.shift();
      if (!next) return;
      const timer = setTimeout(() => this.#overrun(slot), this.#deadlineMs);
      slot.busy = { ...next, timer };
      slot.worker.postMessage(next.task, [next.task.raw.buffer as ArrayBuffer]);
    }
  }

  /** The deadline passed: the thread is stopped mid-parse and replaced. */
  #overrun(slot: Slot): void {
    const job = slot.busy;
    if (!job) return;
    this.#log.warn({ deadlineMs: this.#deadlineMs, message: messageOf(job.task) }, 'parsing a message took too long; its thread was stopped');
    this.#replace(slot, () =>
      job.reject(renderFailed(`parsing took longer than the ${this.#deadlineMs / 1000} s deadline; the parse thread was stopped`, 'malformed')),
    );
  }

  /** Retires the slot (its events are ignored from now on), fails its job, starts a fresh thread in its place. */
  #replace(slot: Slot, failJob: () => void): void {
    if (slot.retired) return;
    slot.retired = true;
    if (slot.busy) clearTimeout(slot.busy.timer);
    slot.busy = null;
    failJob();
    void slot.worker.terminate();
    const i = this.#slots.indexOf(slot);
    if (i >= 0 && !this.#stopped) {
      this.#slots[i] = this.#spawn();
      this.#dispatch();
    }
  }

  #spawn(): Slot {
    const slot: Slot = { worker: new Worker(WORKER_FILE, { resourceLimits: this.#limits }), busy: null, retired: false, ready: false };
    slot.worker.on('message', (reply: RenderReply | { ready: true }) => {
      if (slot.retired) return;
      if ('ready' in reply) {
        slot.ready = true;
        this.#dispatch();
        return;
      }
      const job = slot.busy;
      slot.busy = null;
      if (job && job.task.id === reply.id) {
        clearTimeout(job.timer);
        if (reply.ok && 'summary' in reply) job.resolve(reply.summary);
        else if (reply.ok) {
          this.#logNotes(messageOf(job.task) ?? '?', reply.notes);
          job.resolve(Buffer.from(reply.body.buffer, reply.body.byteOffset, reply.body.byteLength));
        }
        else job.reject(new MailgateError(reply.code, reply.message, { details: { reason: reply.reason } }));
      }
      this.#dispatch();
    });
    slot.worker.on('error', (err: Error & { code?: string }) => {
      const outOfMemory = err.code === 'ERR_WORKER_OUT_OF_MEMORY';
      this.#log.error({ err, message: slot.busy ? messageOf(slot.busy.task) : null }, outOfMemory ? 'a parse thread ran out of memory' : 'a parse thread failed');
      const job = slot.busy;
      this.#replace(slot, () =>
        job?.reject(
          outOfMemory
            ? renderFailed(`parsing needed more than the parse thread's ${this.#limits.maxOldGenerationSizeMb ?? '?'} MB of memory`, 'too_large')
            : renderFailed(`the parse thread failed: ${err.message}`, 'malformed'),
        ),
      );
    });
    slot.worker.on('exit', (exitCode) => {
      if (slot.retired || this.#stopped) return;
      const job = slot.busy;
      this.#log.warn({ exitCode }, 'a parse thread exited; starting a new one');
      this.#replace(slot, () => job?.reject(renderFailed(`the parse thread exited (exit code ${exitCode}) while parsing this message`, 'malformed')));
    });
    return slot;
  }
}
