import { parentPort } from 'node:worker_threads';
import { MailgateError } from '../errors.js';
import { renderMessageReceived, summarizeHeaders, type HeaderSummary, type MessageEnvelope, type RenderNote, type RenderOptions } from './parse-message.js';

/**
 * A parse thread: turns a raw message into its `message.received` body.
 * Parsing (mailparser), base64 of attachments and JSON serialisation are the
 * CPU-heavy part of a delivery; here they run beside the main thread, which
 * keeps fetching, storing, posting and answering HTTP. The pool
 * (parse-pool.ts) terminates a thread that overruns its deadline.
 */
/** What a thread is asked to do with a message's bytes: render its body, or (`summary`) only read Message-ID, Subject and From of a header block. */
export type RenderJob = { mode: 'render'; envelope: MessageEnvelope; limits: RenderOptions } | { mode: 'summary' };

export type RenderTask = { id: number; raw: Uint8Array } & RenderJob;

export type RenderReply =
  | { id: number; ok: true; body: Uint8Array; notes: RenderNote[] }
  | { id: number; ok: true; summary: HeaderSummary }
  | { id: number; ok: false; code: 'PARSE_FAILED' | 'RENDER_FAILED'; reason: 'malformed' | 'too_large'; message: string };

/** A Buffer that owns its whole ArrayBuffer can be transferred; a pooled slice (small bodies) must be copied first. */
function transferable(body: Buffer): Uint8Array {
  if (body.byteOffset === 0 && body.byteLength === body.buffer.byteLength) return body;
  const own = new Uint8Array(body.byteLength);
  own.set(body);
  return own;
}

parentPort?.on('message', (task: RenderTask) => {
  const raw = Buffer.from(task.raw.buffer, task.raw.byteOffset, task.raw.byteLength);
  if (task.mode === 'summary') {
    void summarizeHeaders(raw).then((summary) => parentPort?.postMessage({ id: task.id, ok: true, summary } satisfies RenderReply));
    return;
  }
  const notes: RenderNote[] = [];
  renderMessageReceived(raw, task.envelope, task.limits, notes).then(
    (body) => {
      const out = transferable(body);
      parentPort?.postMessage({ id: task.id, ok: true, body: out, notes } satisfies RenderReply, [out.buffer as ArrayBuffer]);
    },
    (err: unknown) => {
      const known = err instanceof MailgateError && err.code === 'PARSE_FAILED';
      const reason = known && err.details?.reason === 'too_large' ? 'too_large' : err instanceof RangeError ? 'too_large' : 'malformed';
      parentPort?.postMessage({
        id: task.id,
        ok: false,
        // A RangeError (a string or buffer too long) or anything unexpected may not recur with more memory or another build: try again later.
        code: known ? 'PARSE_FAILED' : 'RENDER_FAILED',
        reason,
        message: (err as Error).message ?? String(err),
      } satisfies RenderReply);
    },
  );
});

// Modules are loaded: from now on the pool's deadline measures parsing alone.
parentPort?.postMessage({ ready: true });
