import { parentPort } from 'node:worker_threads';
import { MailgateError } from '../errors.js';
import { renderMessageReceived, type MessageEnvelope } from './parse-message.js';

/**
 * A parse thread: turns a raw message into its `message.received` body.
 * Parsing (mailparser), base64 of attachments and JSON serialisation are the
 * CPU-heavy part of a delivery; here they run beside the main thread, which
 * keeps fetching, storing and posting.
 */
export interface RenderTask {
  id: number;
  raw: Uint8Array;
  envelope: MessageEnvelope;
  maxInlineAttachmentBytes: number;
}

export type RenderReply =
  | { id: number; ok: true; body: string }
  | { id: number; ok: false; parseFailed: boolean; message: string };

parentPort?.on('message', (task: RenderTask) => {
  const raw = Buffer.from(task.raw.buffer, task.raw.byteOffset, task.raw.byteLength);
  renderMessageReceived(raw, task.envelope, { maxInlineAttachmentBytes: task.maxInlineAttachmentBytes }).then(
    (body) => parentPort?.postMessage({ id: task.id, ok: true, body } satisfies RenderReply),
    (err: unknown) => {
      const parseFailed = err instanceof MailgateError && err.code === 'PARSE_FAILED';
      parentPort?.postMessage({ id: task.id, ok: false, parseFailed, message: (err as Error).message ?? String(err) } satisfies RenderReply);
    },
  );
});
