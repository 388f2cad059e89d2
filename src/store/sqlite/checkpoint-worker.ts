import Database from 'better-sqlite3';
import { statSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';

/**
 * The checkpoint thread: its own connection to the database copies pages
 * from the write-ahead log into the database file whenever the log has
 * grown past a threshold, so the main thread's commits never do that copy
 * (and its fsync) themselves. PASSIVE never blocks the main connection.
 */
export interface CheckpointWorkerData {
  path: string;
  intervalMs: number;
  walBytes: number;
}

export type CheckpointReply = { type: 'checkpoint'; frames: number; busy: boolean } | { type: 'error'; message: string };

const data = workerData as CheckpointWorkerData | undefined;
if (parentPort && data) {
  const port = parentPort;
  const db = new Database(data.path);
  db.pragma('busy_timeout = 0');
  const walPath = `${data.path}-wal`;
  const walSize = (): number => {
    try {
      return statSync(walPath).size;
    } catch {
      return 0; // no log yet, or between a reset and the next write
    }
  };
  const timer = setInterval(() => {
    if (walSize() < data.walBytes) return;
    try {
      const [r] = db.pragma('wal_checkpoint(PASSIVE)') as { busy: number; log: number; checkpointed: number }[];
      port.postMessage({ type: 'checkpoint', frames: r?.checkpointed ?? 0, busy: (r?.busy ?? 0) !== 0 } satisfies CheckpointReply);
    } catch (err) {
      port.postMessage({ type: 'error', message: (err as Error).message } satisfies CheckpointReply);
    }
  }, data.intervalMs);
  port.on('message', (msg: unknown) => {
    if (msg !== 'stop') return;
    clearInterval(timer);
    db.close();
    port.close();
  });
}
