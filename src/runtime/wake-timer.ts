/**
 * One re-armable timer that never keeps the process alive: `arm(ms)`
 * replaces a pending wake-up, `cancel()` drops it. The queue workers use it
 * to look again at their next due item.
 */
export class WakeTimer {
  #timer: NodeJS.Timeout | null = null;

  constructor(private readonly fire: () => void) {}

  arm(delayMs: number): void {
    this.cancel();
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.fire();
    }, delayMs);
    this.#timer.unref();
  }

  cancel(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
  }
}
