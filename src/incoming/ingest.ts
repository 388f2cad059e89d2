import type { Config } from '../config/types.js';
import { MailgateError } from '../errors.js';
import type { RawHandoff } from '../delivery/handoff.js';
import type { Metrics } from '../metrics.js';
import { messageIdKey, resolveConversation } from '../parse/conversation.js';
import { PIPELINE_FIELDS } from '../parse/parse-message.js';
import type { Fence, FenceSource } from '../store/cluster.js';
import { messageIdFor } from '../store/origin.js';
import type { Store } from '../store/store.js';
import type { DueAck, ImapCursor, IngestResult, NewMessage } from '../store/messages.js';
import type { AckQueue, FetchedMessage, Ingestor } from './source.js';
import { accountNamed } from '../config/lookup.js';

/** Headers the ingest step needs before parsing: cheap, never throws. */
export interface MessageInspection {
  messageId: string | null;
  autoSubmitted: boolean;
  /** Threading headers, for the conversation (absent: the message starts its own). */
  inReplyTo?: string | null;
  references?: string[];
}

export interface IngestDeps {
  store: Store;
  config: () => Config;
  metrics: Metrics;
  inspect: (raw: Buffer) => MessageInspection;
  /** Told after every commit that queued new deliveries (wakes the delivery worker). */
  onQueued: () => void;
  /** Where committed messages are offered to the delivery worker in memory. */
  handoff?: RawHandoff;
  /** Told about a failed commit; true when it was a full disk (then STORAGE_FULL is thrown). */
  storageFull?: (err: unknown) => boolean;
  /**
   * The accounts this node holds (the cluster coordinator): every write for
   * an account carries its fence, and nothing is done for an account not
   * held. Without, writes are unfenced (tools, tests).
   */
  fences?: FenceSource;
}

/** The meta key that records a POP3 account's first session (its "cursor" for initialSync). */
export function pop3FirstSessionKey(account: string): string {
  return `pop3.firstSession:${account}`;
}

/** How long an afterDelivery that failed on the server waits before the next try. */
export const ACK_RETRY_DELAY_MS = 30_000;

/**
 * The durable ingest step shared by IMAP and POP3, and the queue of
 * afterDelivery actions that become due once a webhook acknowledged.
 */
export class IngestService implements Ingestor, AckQueue {
  readonly #deps: IngestDeps;
  readonly #listeners = new Map<string, Set<() => void>>();
  /** One pending wake-up per account whose afterDelivery failed and waits ACK_RETRY_DELAY_MS. */
  readonly #retryTimers = new Map<string, NodeJS.Timeout>();

  constructor(deps: IngestDeps) {
    this.#deps = deps;
  }

  #webhookOf(account: string): string {
    const acc = accountNamed(this.#deps.config(), account);
    if (!acc) throw new MailgateError('NOT_FOUND', `account ${account} is not configured`);
    return acc.webhook;
  }

  /** The account's fence, or LEASE_LOST when this node does not hold it (undefined: unfenced). */
  #fence(account: string): Fence | undefined {
    const source = this.#deps.fences;
    if (!source) return undefined;
    const f = source.fence(account);
    if (!f) throw new MailgateError('LEASE_LOST', `this node does not hold the lease of account ${account}; nothing was written`);
    return f;
  }

  /** Runs a fenced write; a refusal tells the fence source at once. */
  async #fenced<T>(account: string, write: (fence: Fence | undefined) => Promise<T>): Promise<T> {
    try {
      return await write(this.#fence(account));
    } catch (err) {
      if (err instanceof MailgateError && err.code === 'LEASE_LOST') this.#deps.fences?.lost(account);
      throw err;
    }
  }

  async ingest(msg: FetchedMessage): Promise<IngestResult> {
    const [r] = await this.ingestMany([msg]);
    if (!r) throw new MailgateError('INTERNAL', 'ingest returned no result');
    return r;
  }

  async ingestMany(msgs: FetchedMessage[]): Promise<IngestResult[]> {
    if (msgs.length === 0) return [];
    // A reply joins the conversation of a message mailgate stored (or one earlier in this batch).
    const inBatch = new Map<string, string>();
    const lookup = async (key: string) => inBatch.get(key) ?? (await this.#deps.store.messages.conversationOf(key));
    const rows: NewMessage[] = [];
    for (const m of msgs) {
      const info = this.#deps.inspect(m.raw);
      const key = messageIdKey(info.messageId);
      const { conversationId } = await resolveConversation(
        { messageId: info.messageId, inReplyTo: info.inReplyTo ?? null, references: info.references ?? [], id: messageIdFor(m) },
        PIPELINE_FIELDS ? lookup : null,
      );
      if (key !== null && !inBatch.has(key)) inBatch.set(key, conversationId);
      rows.push({
        account: m.account,
        origin: m.origin,
        raw: m.raw,
        internalDate: m.internalDate ? m.internalDate.getTime() : null,
        messageId: info.messageId,
        autoSubmitted: info.autoSubmitted,
        webhook: this.#webhookOf(m.account),
        notDownloaded: m.notDownloaded ?? null,
        size: m.size ?? m.raw.length,
        messageIdKey: key,
        conversationId,
      });
    }
    const now = Date.now();
    const account = msgs[0]?.account ?? '';
    let results: IngestResult[];
    try {
      results = await this.#fenced(account, (fence) => this.#deps.store.ingest.insertMessages(rows, now, fence));
    } catch (err) {
      if (this.#deps.storageFull?.(err)) throw new MailgateError('STORAGE_FULL', undefined, { cause: err });
      throw err;
    }
    let fresh = 0;
    for (let i = 0; i < results.length; i++) {
      const r = results[i];
      const row = rows[i];
      if (!r || r.duplicate || !row) continue;
      if (row.notDownloaded) continue; // reported from its headers; nothing to hand over
      fresh++;
      const { account, origin, raw, messageId, autoSubmitted } = row;
      this.#deps.metrics.messagesIngested.inc({ account, protocol: origin.kind });
      const info = { id: r.id, account, origin, messageId, size: raw.length, receivedAt: now, autoSubmitted, notDownloaded: null, conversationId: row.conversationId ?? null };
      this.#deps.handoff?.put(info, raw, now);
    }
    if (fresh > 0) this.#deps.onQueued();
    return results;
  }

  getCursor(account: string, mailbox: string): Promise<ImapCursor | null> {
    return this.#deps.store.ingest.getCursor(account, mailbox);
  }

  resetCursor(account: string, mailbox: string, uidValidity: number, lastUid?: number): Promise<void> {
    return this.#fenced(account, (fence) => this.#deps.store.ingest.resetCursor(account, mailbox, uidValidity, Date.now(), lastUid, fence));
  }

  async isFirstPop3Session(account: string, present: string[]): Promise<boolean> {
    if ((await this.#deps.store.meta.get(pop3FirstSessionKey(account))) !== null) return false;
    return (await this.#deps.store.ingest.knownUidls(account, present)).size === 0;
  }

  async firstPop3SessionDone(account: string, skip: string[]): Promise<void> {
    const now = Date.now();
    // UIDLs first: a crash in between leaves them known, and the next session is not a first one either.
    if (skip.length > 0) await this.#deps.store.ingest.skipUidls(account, skip, now);
    await this.#deps.store.meta.set(pop3FirstSessionKey(account), new Date(now).toISOString());
  }

  knownUidls(account: string, uidls: string[]): Promise<Set<string>> {
    return this.#deps.store.ingest.knownUidls(account, uidls);
  }

  forgetUidlsExcept(account: string, present: string[]): Promise<number> {
    return this.#fenced(account, (fence) => this.#deps.store.ingest.forgetUidlsExcept(account, present, fence));
  }

  // ---- AckQueue ----

  /** Nothing is due on the server for an account this node does not hold: it must not flag, move or delete there. */
  due(account: string, limit: number): Promise<DueAck[]> {
    if (this.#deps.fences && !this.#deps.fences.fence(account)) return Promise.resolve([]);
    return this.#deps.store.ingest.dueAcks(account, limit, Date.now());
  }

  mayAct(account: string): boolean {
    return !this.#deps.fences || this.#deps.fences.fence(account) !== null;
  }

  markDone(account: string, ids: string[]): Promise<void> {
    return this.#fenced(account, (fence) => this.#deps.store.ingest.markAcks(ids, 'done', null, null, fence));
  }

  async markFailed(account: string, ids: string[], error: string): Promise<void> {
    await this.#fenced(account, (fence) => this.#deps.store.ingest.markAcks(ids, 'due', error, Date.now() + ACK_RETRY_DELAY_MS, fence));
    // Nothing else would wake an idle connection when the retry is due (it would wait for idleResync).
    if (this.#retryTimers.has(account)) return;
    const timer = setTimeout(() => {
      this.#retryTimers.delete(account);
      this.notifyDue(account);
    }, ACK_RETRY_DELAY_MS + 50);
    timer.unref();
    this.#retryTimers.set(account, timer);
  }

  onDue(account: string, listener: () => void): () => void {
    let set = this.#listeners.get(account);
    if (!set) {
      set = new Set();
      this.#listeners.set(account, set);
    }
    set.add(listener);
    return () => {
      set.delete(listener);
    };
  }

  /** The delivery worker calls this when an account's message became due for afterDelivery. */
  notifyDue(account: string): void {
    for (const l of this.#listeners.get(account) ?? []) l();
  }
}
