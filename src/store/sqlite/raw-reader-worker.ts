import Database from 'better-sqlite3';
import { parentPort, workerData } from 'node:worker_threads';

/**
 * The raw-message reader thread: its own read-only connection reads large
 * raw messages (a 100 MB blob took the main thread 1.6 s, stalling every
 * account and /healthz) and hands the bytes over without a copy.
 */
export interface RawReaderData {
  path: string;
}

export type RawReaderRequest = { seq: number; id: string } | 'stop';
export type RawReaderReply = { seq: number; raw: Uint8Array | null } | { seq: number; error: string };

const data = workerData as RawReaderData | undefined;
if (parentPort && data) {
  const port = parentPort;
  const db = new Database(data.path, { readonly: true, fileMustExist: true });
  db.pragma('busy_timeout = 5000');
  const select = db.prepare('SELECT raw FROM message_raw WHERE id = ?');
  port.on('message', (msg: RawReaderRequest) => {
    if (msg === 'stop') {
      db.close();
      port.close();
      return;
    }
    try {
      const row = select.get(msg.id) as { raw: Buffer } | undefined;
      if (!row) {
        port.postMessage({ seq: msg.seq, raw: null } satisfies RawReaderReply);
        return;
      }
      // Transfer only memory the Buffer owns whole; else copy once.
      let out: Uint8Array = row.raw;
      if (row.raw.byteOffset !== 0 || row.raw.byteLength !== row.raw.buffer.byteLength) {
        out = new Uint8Array(row.raw.byteLength);
        out.set(row.raw);
      }
      port.postMessage({ seq: msg.seq, raw: out } satisfies RawReaderReply, [out.buffer as ArrayBuffer]);
    } catch (err) {
      port.postMessage({ seq: msg.seq, error: (err as Error).message } satisfies RawReaderReply);
    }
  });
}
