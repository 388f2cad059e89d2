import type { ImapFlow } from 'imapflow';
import { describeError } from '../../errors.js';
import type { Logger } from '../../log.js';

/** Default of `limits.idleConnectionsPerAccount`: the session's connection and two watchers. */
export const DEFAULT_IDLE_CONNECTIONS = 3;
/** A watcher whose connection failed or closed tries again after this long (and the session's resync covers the gap). */
const WATCHER_RETRY_MS = 30_000;

export interface WatcherDeps {
  /** Opens and logs in one more connection of the account (through the login pacer). */
  connect: () => Promise<ImapFlow>;
  /** New mail (EXISTS) in this mailbox: the session syncs it. */
  onChange: (mailbox: string) => void;
  log: Logger;
  stopped: () => boolean;
}

/**
 * For a server without NOTIFY: one connection per mailbox, each SELECTed and
 * in IDLE, that only listens. It never fetches, flags or moves anything (the
 * session's connection does all of that); an EXISTS tells the session to
 * sync that mailbox. A watcher whose connection fails or closes logs in
 * again after WATCHER_RETRY_MS, through the pacer like every login, until
 * close().
 */
export class MailboxWatchers {
  readonly #mailboxes: string[];
  readonly #deps: WatcherDeps;
  readonly #clients = new Map<string, ImapFlow>();
  readonly #retries = new Set<NodeJS.Timeout>();
  #closed = false;

  constructor(mailboxes: string[], deps: WatcherDeps) {
    this.#mailboxes = mailboxes;
    this.#deps = deps;
  }

  get watching(): string[] {
    return [...this.#clients.keys()];
  }

  start(): void {
    for (const m of this.#mailboxes) void this.#watch(m);
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const t of this.#retries) clearTimeout(t);
    this.#retries.clear();
    const clients = [...this.#clients.values()];
    this.#clients.clear();
    for (const c of clients) c.close();
  }

  async #watch(mailbox: string): Promise<void> {
    if (this.#closed || this.#deps.stopped()) return;
    let client: ImapFlow | null = null;
    try {
      client = await this.#deps.connect();
      if (this.#closed) {
        client.close();
        return;
      }
      const c = client;
      c.on('exists', () => this.#deps.onChange(mailbox));
      c.on('close', () => {
        if (this.#clients.get(mailbox) !== c) return;
        this.#clients.delete(mailbox);
        this.#retry(mailbox);
      });
      await c.mailboxOpen(mailbox, { readOnly: true });
      this.#clients.set(mailbox, c);
      // Mail that arrived between the session's sync and this SELECT.
      this.#deps.onChange(mailbox);
      c.idle().catch(() => undefined);
    } catch (err) {
      client?.close();
      if (this.#closed || this.#deps.stopped()) return;
      this.#deps.log.info({ mailbox, error: describeError(err) }, 'could not watch the mailbox with a connection of its own; trying again later (it is still synced at every idleResync)');
      this.#retry(mailbox);
    }
  }

  #retry(mailbox: string): void {
    if (this.#closed) return;
    const t = setTimeout(() => {
      this.#retries.delete(t);
      void this.#watch(mailbox);
    }, WATCHER_RETRY_MS);
    this.#retries.add(t);
  }
}
