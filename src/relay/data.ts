import type { Readable } from 'node:stream';

/**
 * Reading DATA into memory with a bound. A message is kept only while it is
 * within the limit; past it, what came so far is dropped and the rest is read
 * and discarded (SMTP has no way to stop a client mid-DATA except closing the
 * connection, RFC 5321 §4.2.5: the reply comes after the final dot), so an
 * oversize message costs at most `limit` bytes of memory, then nothing.
 */

/** Room kept in front of a received message for the header lines the relay may add, so adding them copies nothing. */
export const HEADROOM_BYTES = 1024;
const NO_BYTES = Buffer.alloc(0);

/** A message received whole, with HEADROOM_BYTES reserved in front of it. */
export class ReceivedMessage {
  readonly #whole: Buffer;

  constructor(whole: Buffer) {
    this.#whole = whole;
  }

  /** The client's bytes. */
  get body(): Buffer {
    return this.#whole.subarray(HEADROOM_BYTES);
  }

  /** The client's bytes with `prefix` in front; written into the headroom when it fits (no copy of the message). */
  withPrefix(prefix: Buffer): Buffer {
    if (prefix.length === 0) return this.body;
    if (prefix.length > HEADROOM_BYTES) return Buffer.concat([prefix, this.body]);
    const start = HEADROOM_BYTES - prefix.length;
    prefix.copy(this.#whole, start);
    return this.#whole.subarray(start);
  }
}

export type ReadOutcome =
  | { kind: 'complete'; message: ReceivedMessage }
  /** Over the limit; `bytes` is how much the client sent in all. */
  | { kind: 'oversize'; bytes: number }
  /** The stream ended early: the client went away, or the relay closed the session. */
  | { kind: 'aborted'; error: Error | null };

/** smtp-server's DATA stream sets `sizeExceeded` from its own count; plain streams (tests) do not. */
type DataStream = Readable & { sizeExceeded?: boolean };

/** Reads `stream` to its end, keeping at most `limit` bytes. */
export function readBounded(stream: DataStream, limit: number): Promise<ReadOutcome> {
  return new Promise((resolve) => {
    let chunks: Buffer[] | null = [];
    let bytes = 0;
    let settled = false;
    const finish = (outcome: ReadOutcome) => {
      if (settled) return;
      settled = true;
      stream.off('data', onData);
      resolve(outcome);
    };
    const onData = (chunk: Buffer) => {
      bytes += chunk.length;
      if (chunks && bytes <= limit) chunks.push(chunk);
      else chunks = null;
    };
    stream.on('data', onData);
    stream.once('end', () => {
      if (!chunks || stream.sizeExceeded === true) return finish({ kind: 'oversize', bytes });
      const whole = Buffer.allocUnsafe(HEADROOM_BYTES + bytes);
      let at = HEADROOM_BYTES;
      for (let i = 0; i < chunks.length; i++) {
        at += (chunks[i] ?? NO_BYTES).copy(whole, at);
        chunks[i] = NO_BYTES; // let the chunk go while the rest is copied
      }
      chunks = null;
      finish({ kind: 'complete', message: new ReceivedMessage(whole) });
    });
    // Stays attached: an 'error' without a listener would crash the process.
    stream.on('error', (err: Error) => finish({ kind: 'aborted', error: err }));
    stream.once('close', () => finish({ kind: 'aborted', error: null }));
  });
}

/**
 * Transactions that may stream at once. A slot is taken at MAIL FROM (so a
 * client refused for lack of one has sent no data yet) and given back when
 * the DATA reply is sent or the session ends; memory for messages then stays
 * within `max × maxMessageSize`.
 */
export class DataSlots {
  #used = 0;

  constructor(readonly max: number) {}

  tryTake(): boolean {
    if (this.#used >= this.max) return false;
    this.#used++;
    return true;
  }

  release(): void {
    if (this.#used > 0) this.#used--;
  }

  get used(): number {
    return this.#used;
  }
}
