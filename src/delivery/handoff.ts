import type { StoredMessageInfo } from '../store/messages.js';

export interface HandoffOptions {
  /** Raw bytes kept at most; a message that does not fit is read back from the store. */
  maxBytes?: number;
  /** A message not taken within this time is dropped (its delivery may never come, e.g. a removed webhook). */
  maxAgeMs?: number;
}

interface Entry {
  info: StoredMessageInfo;
  raw: Buffer;
  at: number;
}

/**
 * Hands freshly stored messages to the delivery worker in memory, so a
 * delivery does not read back from the database the raw bytes the ingest
 * step wrote a moment ago. Only a shortcut: the database stays the record,
 * and anything not found here is read from it. Bounded by bytes and age;
 * when full it refuses newcomers, keeping the oldest, which are delivered first.
 */
export class RawHandoff {
  readonly #entries = new Map<string, Entry>();
  readonly #maxBytes: number;
  readonly #maxAgeMs: number;
  #bytes = 0;

  constructor(opts: HandoffOptions = {}) {
    this.#maxBytes = opts.maxBytes ?? 32 * 1024 * 1024;
    this.#maxAgeMs = opts.maxAgeMs ?? 60_000;
  }

  get size(): number {
    return this.#entries.size;
  }

  get bytes(): number {
    return this.#bytes;
  }

  /** Offers a committed message; returns whether it was kept. */
  put(info: StoredMessageInfo, raw: Buffer, now = Date.now()): boolean {
    this.#expire(now);
    if (this.#entries.has(info.id) || this.#bytes + raw.length > this.#maxBytes) return false;
    this.#entries.set(info.id, { info, raw, at: now });
    this.#bytes += raw.length;
    return true;
  }

  /** Removes and returns a message, if it is still here. */
  take(id: string): { info: StoredMessageInfo; raw: Buffer } | null {
    const e = this.#entries.get(id);
    if (!e) return null;
    this.#entries.delete(id);
    this.#bytes -= e.raw.length;
    return { info: e.info, raw: e.raw };
  }

  clear(): void {
    this.#entries.clear();
    this.#bytes = 0;
  }

  #expire(now: number): void {
    // Insertion order is age order: stop at the first young entry.
    for (const [id, e] of this.#entries) {
      if (now - e.at < this.#maxAgeMs) return;
      this.#entries.delete(id);
      this.#bytes -= e.raw.length;
    }
  }
}
