/**
 * When a failure that repeats is worth a line in the log. A loop that keeps
 * failing the same way (a server that is down, an account without a token)
 * logs the change of state once, then a reminder after `firstReminderMs`,
 * and each further reminder after twice the previous wait, up to
 * `maxReminderMs`: an admin at `logLevel: warn` sees every change, and the
 * log does not fill with the same line every 30 s. A different failure is a
 * new state and is logged at once.
 */
export interface FailureLogOptions {
  firstReminderMs?: number;
  maxReminderMs?: number;
  now?: () => number;
}

export type FailureReport =
  | { log: 'changed'; previous: string | null }
  | { log: 'reminder'; since: number; attempts: number }
  | { log: 'quiet' };

export const FIRST_REMINDER_MS = 5 * 60_000;
export const MAX_REMINDER_MS = 6 * 3_600_000;

export class FailureLog {
  readonly #first: number;
  readonly #max: number;
  readonly #now: () => number;
  #key: string | null = null;
  #since = 0;
  #attempts = 0;
  #wait = 0;
  #nextAt = 0;

  constructor(opts: FailureLogOptions = {}) {
    this.#first = opts.firstReminderMs ?? FIRST_REMINDER_MS;
    this.#max = opts.maxReminderMs ?? MAX_REMINDER_MS;
    this.#now = opts.now ?? Date.now;
  }

  /** A failure happened; `key` names its kind (the same key is the same state). */
  failed(key: string): FailureReport {
    const now = this.#now();
    if (key !== this.#key) {
      const previous = this.#key;
      this.#key = key;
      this.#since = now;
      this.#attempts = 1;
      this.#wait = this.#first;
      this.#nextAt = now + this.#wait;
      return { log: 'changed', previous };
    }
    this.#attempts++;
    if (now < this.#nextAt) return { log: 'quiet' };
    this.#wait = Math.min(this.#max, this.#wait * 2);
    this.#nextAt = now + this.#wait;
    return { log: 'reminder', since: this.#since, attempts: this.#attempts };
  }

  /** It works again: returns what was failing (and since when), or null when nothing was. */
  recovered(): { key: string; since: number; attempts: number } | null {
    if (this.#key === null) return null;
    const was = { key: this.#key, since: this.#since, attempts: this.#attempts };
    this.#key = null;
    return was;
  }

  get failing(): boolean {
    return this.#key !== null;
  }
}
