import { WakeTimer } from './wake-timer.js';

export interface SerialPumpOptions {
  /** One pass over the queue; `true` asks for another pass at once. */
  pass: () => Promise<boolean | void>;
  /** After the last pass of a run: look at what comes due later (call `armAt`). */
  settle: () => Promise<void>;
  /** A pass or settle threw; the pump looks again after `idleRecheckMs`. */
  onError: (err: unknown) => void;
  /** While idle, look again at least this often (timers may be coarse, rows may come from elsewhere). */
  idleRecheckMs: number;
}

/**
 * The run loop of a queue worker (deliveries, outbox). `wake()` asks for a
 * run on the next tick, and wakes before it are merged into one. Runs never
 * overlap: a wake during a run makes it pass once more. A re-armable timer
 * wakes the pump when the next row comes due.
 */
export class SerialPump {
  readonly #opts: SerialPumpOptions;
  readonly #timer = new WakeTimer(() => this.wake());
  #scheduled = false;
  #running = false;
  #again = false;
  #stopped = true;

  constructor(opts: SerialPumpOptions) {
    this.#opts = opts;
  }

  get stopped(): boolean {
    return this.#stopped;
  }

  start(): void {
    this.#stopped = false;
    this.wake();
  }

  stop(): void {
    this.#stopped = true;
    this.#timer.cancel();
  }

  wake(): void {
    if (this.#stopped || this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      void this.#run();
    });
  }

  /** Wakes at `next` (epoch ms; now if past), or after idleRecheckMs if sooner or if nothing is due. */
  armAt(next: number | null): void {
    const { idleRecheckMs } = this.#opts;
    this.#arm(next === null ? idleRecheckMs : Math.max(0, Math.min(next - Date.now(), idleRecheckMs)));
  }

  #arm(delayMs: number): void {
    if (!this.#stopped) this.#timer.arm(delayMs);
  }

  async #run(): Promise<void> {
    if (this.#stopped) return;
    if (this.#running) {
      this.#again = true;
      return;
    }
    this.#running = true;
    try {
      do {
        this.#again = false;
        if ((await this.#opts.pass()) === true) this.#again = true;
      } while (this.#again && !this.#stopped);
      await this.#opts.settle();
    } catch (err) {
      this.#opts.onError(err);
      this.#arm(this.#opts.idleRecheckMs);
    } finally {
      this.#running = false;
    }
  }
}
