import type { ConnectionChange, ConnectionHistoryRepo } from '../store/activity.js';
import type { Side } from '../store/meta.js';

/**
 * What the connection history records of a connector state: idle and
 * polling are both "connected" (a POP3 account goes from one to the other
 * on every poll), `connecting` is a step, not a state worth a row.
 */
export function historyState(side: Side, state: string): string | null {
  if (side === 'outgoing') return state === 'ok' || state === 'error' ? state : null;
  if (state === 'idle' || state === 'polling') return 'connected';
  if (state === 'connecting') return null;
  return state;
}

/**
 * Turns the daemon's frequent status writes (every connector state change,
 * every successful sync, every sent message) into the rare rows of the
 * connection history: a row only when an account's side enters another
 * state, or fails in another way. Compared in memory first, so an unchanged
 * status costs no database round trip; the store compares again with its
 * newest row (a restart, another replica). Writes of one account and side
 * go one after the other, in the order the changes happened.
 */
export class ConnectionHistoryRecorder {
  readonly #last = new Map<string, string>();
  readonly #chains = new Map<string, Promise<unknown>>();

  constructor(
    private readonly repo: ConnectionHistoryRepo,
    private readonly onError: (err: unknown) => void = () => undefined,
  ) {}

  /** Notes the side's current state; resolves once a change (if any) was written. */
  note(account: string, side: Side, state: string, error: string | null, now = Date.now()): Promise<void> {
    const recorded = historyState(side, state);
    if (recorded === null) return Promise.resolve();
    const err = recorded === 'connected' || recorded === 'ok' || recorded === 'stopped' ? null : error;
    const key = `${side}\u0000${account}`;
    const sig = `${recorded}\u0000${err ?? ''}`;
    if (this.#last.get(key) === sig) return Promise.resolve();
    this.#last.set(key, sig);
    const change: ConnectionChange = { account, side, at: now, state: recorded, error: err };
    const prev = this.#chains.get(key) ?? Promise.resolve();
    const next = prev
      .then(() => this.repo.record(change))
      .catch((e: unknown) => {
        // Not written: the next change is compared with what the store has, not with this one.
        if (this.#last.get(key) === sig) this.#last.delete(key);
        this.onError(e);
      })
      .finally(() => {
        if (this.#chains.get(key) === next) this.#chains.delete(key);
      });
    this.#chains.set(key, next);
    return next.then(() => undefined);
  }
}
