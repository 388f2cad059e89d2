import type { ImapFlow } from 'imapflow';
import type { AccountConfig } from '../../config/types.js';
import { computeBackoff } from '../../delivery/backoff.js';
import { describeError, MailgateError } from '../../errors.js';
import type { Logger } from '../../log.js';
import type { Metrics } from '../../metrics.js';
import type { TokenProvider } from '../../oauth/token-provider.js';
import type { AckQueue, ConnectorState, ConnectorStatus, DueAck, FetchedMessage, IncomingConnector, Ingestor } from '../source.js';
import { classifyImapError, createImapClient } from './client.js';

/** Messages handed to the ingest store per transaction. */
export const INGEST_BATCH_MESSAGES = 200;
/** ...or fewer, when they add up to this many bytes (keeps memory bounded). */
export const INGEST_BATCH_BYTES = 32 * 1024 * 1024;
const ACK_BATCH = 500;
/** Acks becoming due are gathered this long so one STORE covers many messages. */
export const ACK_COALESCE_MS = 250;
const RECONNECT_BACKOFF = { initialMs: 1_000, maxMs: 5 * 60_000 };
/** After a login the server refused even with a fresh token, try again this rarely: do not hammer. */
export const AUTH_FAILURE_RETRY_MS = 5 * 60_000;
/**
 * Missing or reauth_required token: checking again only reads the database
 * (nothing is sent to the provider), so look often enough to pick up tokens
 * stored by another process (`mailgate authorize --device`, `tokens import`).
 */
export const NEEDS_AUTHORIZATION_RETRY_MS = 30_000;
const STATES: ConnectorState[] = ['connecting', 'idle', 'polling', 'backoff', 'error', 'stopped'];

export interface ImapConnectorDeps {
  account: AccountConfig;
  ingestor: Ingestor;
  acks: AckQueue;
  tokens: TokenProvider;
  logger: Logger;
  metrics: Metrics;
  onStatus?: (status: ConnectorStatus) => void;
}

export function createImapConnector(deps: ImapConnectorDeps): IncomingConnector {
  return new ImapConnector(deps);
}

/**
 * One IMAP account. `mode: idle` keeps one connection in IDLE on the first
 * mailbox (IMAP IDLE watches only the selected mailbox, RFC 2177); the
 * other mailboxes are synced on every wake-up and at least every
 * `idleResync`, which also catches an IDLE that silently died. `mode: poll`
 * syncs every mailbox every `pollInterval`. Either way afterDelivery runs
 * only for messages the ack queue reports due.
 */
export class ImapConnector implements IncomingConnector {
  readonly account: string;
  readonly #deps: ImapConnectorDeps;
  readonly #log: Logger;
  #state: ConnectorState = 'stopped';
  #lastSuccessAt: Date | null = null;
  #lastError: string | null = null;
  #stopped = true;
  #loop: Promise<void> | null = null;
  #client: ImapFlow | null = null;
  #wake: (() => void) | null = null;
  #pendingWake = false;
  #unsubscribe: (() => void) | null = null;
  #ackTimer: NodeJS.Timeout | null = null;

  constructor(deps: ImapConnectorDeps) {
    this.#deps = deps;
    this.account = deps.account.name;
    this.#log = deps.logger.child({ component: 'imap', account: this.account });
  }

  status(): ConnectorStatus {
    return { state: this.#state, lastSuccessAt: this.#lastSuccessAt, lastError: this.#lastError };
  }

  async start(): Promise<void> {
    if (!this.#stopped) return;
    this.#stopped = false;
    this.#unsubscribe = this.#deps.acks.onDue(this.account, () => {
      if (this.#ackTimer) return;
      this.#ackTimer = setTimeout(() => {
        this.#ackTimer = null;
        this.#poke();
      }, ACK_COALESCE_MS);
    });
    this.#loop = this.#run();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#unsubscribe?.();
    this.#unsubscribe = null;
    if (this.#ackTimer) clearTimeout(this.#ackTimer);
    this.#ackTimer = null;
    this.#poke();
    this.#client?.close();
    await this.#loop;
    this.#loop = null;
    this.#setState('stopped');
  }

  async test(): Promise<{ ok: boolean; error: string | null }> {
    let client: ImapFlow | null = null;
    try {
      client = await this.#connect();
      await client.logout();
      return { ok: true, error: null };
    } catch (err) {
      client?.close();
      return { ok: false, error: classifyImapError(err).message };
    }
  }

  #setState(state: ConnectorState, error?: string | null): void {
    this.#state = state;
    if (error !== undefined) this.#lastError = error;
    for (const s of STATES) this.#deps.metrics.connectorState.set({ account: this.account, state: s }, s === state ? 1 : 0);
    this.#deps.onStatus?.(this.status());
  }

  /** Wakes the loop (new mail, acks due, stop). */
  #poke(): void {
    this.#pendingWake = true;
    const w = this.#wake;
    this.#wake = null;
    w?.();
  }

  /** Sleeps until poked or `ms` passed. */
  #sleep(ms: number): Promise<void> {
    if (this.#pendingWake || this.#stopped) {
      this.#pendingWake = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.#wake = () => {
        this.#pendingWake = false;
        done();
      };
    });
  }

  async #run(): Promise<void> {
    let failures = 0;
    while (!this.#stopped) {
      try {
        await this.#session(() => {
          failures = 0;
        });
      } catch (err) {
        if (this.#stopped) break;
        failures++;
        const delay = this.#handleFailure(err, failures);
        // Acks that became due meanwhile are applied after the reconnect anyway.
        this.#pendingWake = false;
        await this.#sleep(delay);
      } finally {
        this.#client?.close();
        this.#client = null;
      }
    }
  }

  /** Records the failure in status and returns how long to wait. */
  #handleFailure(err: unknown, failures: number): number {
    if (err instanceof MailgateError && (err.code === 'OAUTH_REAUTH_REQUIRED' || err.code === 'OAUTH_MISSING_TOKEN')) {
      this.#setState('error', err.message);
      this.#log.warn({ error: err.message }, 'cannot log in: the account needs authorization');
      return NEEDS_AUTHORIZATION_RETRY_MS;
    }
    const c = classifyImapError(err);
    if (c.kind === 'auth') {
      this.#setState('error', c.message);
      this.#log.warn({ error: c.message }, 'login refused even with a fresh token; waiting before the next try');
      return AUTH_FAILURE_RETRY_MS;
    }
    const delay = Math.max(computeBackoff(failures, RECONNECT_BACKOFF), Math.min(c.retryAfterMs ?? 0, RECONNECT_BACKOFF.maxMs));
    this.#setState('backoff', c.message);
    this.#log.info({ error: c.message, retryInMs: delay }, 'connection failed; reconnecting later');
    return delay;
  }

  /** Connects and logs in; on a refused OAuth2 login, asks once for a fresh token. */
  async #connect(): Promise<ImapFlow> {
    const incoming = this.#deps.account.incoming;
    const auth = incoming.auth;
    if (auth.method === 'password') {
      const client = createImapClient(incoming, { password: auth.password });
      this.#attach(client);
      await client.connect();
      return client;
    }
    let token = await this.#deps.tokens.getAccessToken(this.account);
    for (let attempt = 1; ; attempt++) {
      const client = createImapClient(incoming, { accessToken: token.token });
      this.#attach(client);
      try {
        await client.connect();
        return client;
      } catch (err) {
        client.close();
        if (attempt > 1 || classifyImapError(err).kind !== 'auth') throw err;
        this.#log.info('login refused with the cached token; asking for a fresh one');
        token = await this.#deps.tokens.getAccessToken(this.account, { rejectedToken: token.token });
      }
    }
  }

  #attach(client: ImapFlow): void {
    // Without an error listener a socket error would crash the process.
    client.on('error', (err: unknown) => this.#log.debug({ error: describeError(err) }, 'imap connection error'));
    // Only the live session's client may wake the loop: the close of a refused
    // login must not cut the backoff short (that would hammer the server).
    client.on('exists', () => {
      if (this.#client === client) this.#poke();
    });
    client.on('close', () => {
      if (this.#client === client) this.#poke();
    });
  }

  async #session(onConnected: () => void): Promise<void> {
    this.#setState('connecting');
    const client = await this.#connect();
    this.#client = client;
    onConnected();
    const acc = this.#deps.account.incoming;
    const idleMailbox = acc.mailboxes[0] ?? 'INBOX';
    let lastFullSync = 0;
    while (!this.#stopped && client.usable) {
      this.#setState('polling', null);
      const now = Date.now();
      const full = acc.mode === 'poll' || now - lastFullSync >= acc.idleResyncMs;
      const mailboxes = full ? acc.mailboxes : [idleMailbox];
      for (const mailbox of mailboxes) await this.#syncMailbox(client, mailbox);
      if (full) lastFullSync = now;
      await this.#applyAcks(client);
      this.#lastSuccessAt = new Date();
      this.#deps.onStatus?.(this.status());
      if (this.#stopped) break;
      if (acc.mode === 'idle') {
        await client.mailboxOpen(idleMailbox);
        this.#setState('idle');
        // idle() resolves when IDLE is broken (by our next command or the server).
        client.idle().catch(() => undefined);
        await this.#sleep(Math.max(1_000, acc.idleResyncMs - (Date.now() - lastFullSync)));
      } else {
        await this.#sleep(acc.pollIntervalMs);
      }
    }
    if (!this.#stopped) throw new MailgateError('CONNECTION_FAILED', 'the IMAP connection closed');
  }

  async #syncMailbox(client: ImapFlow, mailbox: string): Promise<void> {
    const lock = await client.getMailboxLock(mailbox);
    try {
      const box = client.mailbox;
      if (!box) return;
      const uidValidity = Number(box.uidValidity);
      let cursor = await this.#deps.ingestor.getCursor(this.account, mailbox);
      if (cursor && cursor.uidValidity !== uidValidity) {
        this.#log.warn({ mailbox, from: cursor.uidValidity, to: uidValidity }, 'UIDVALIDITY changed; rescanning the mailbox (duplicates are recognised)');
        await this.#deps.ingestor.resetCursor(this.account, mailbox, uidValidity);
        cursor = { uidValidity, lastUid: 0 };
      }
      const from = (cursor?.lastUid ?? 0) + 1;
      if (box.exists === 0) return;
      // uidNext is not updated by EXISTS during a session, and "n:*" always
      // returns the highest message (RFC 3501 §6.4.8): ask for new UIDs first
      // so an idle wake-up never re-downloads the last message.
      const found = await client.search({ uid: `${from}:*` }, { uid: true });
      if (!found || !found.some((u) => u >= from)) return;
      let batch: FetchedMessage[] = [];
      let bytes = 0;
      const flush = async () => {
        if (batch.length === 0) return;
        await this.#deps.ingestor.ingestMany(batch);
        batch = [];
        bytes = 0;
      };
      for await (const msg of client.fetch(`${from}:*`, { uid: true, source: true, internalDate: true }, { uid: true })) {
        // "n:*" always returns the highest message, even below n (RFC 3501 §6.4.8).
        if (msg.uid < from || !msg.source) continue;
        const internal = msg.internalDate;
        batch.push({
          account: this.account,
          mailbox,
          uid: msg.uid,
          uidValidity,
          uidl: null,
          raw: msg.source,
          internalDate: internal instanceof Date ? internal : internal ? new Date(internal) : null,
        });
        bytes += msg.source.length;
        if (batch.length >= INGEST_BATCH_MESSAGES || bytes >= INGEST_BATCH_BYTES) await flush();
      }
      await flush();
    } finally {
      lock.release();
    }
  }

  /** afterDelivery for messages whose webhook acknowledged them. */
  async #applyAcks(client: ImapFlow): Promise<void> {
    const acc = this.#deps.account.incoming;
    for (;;) {
      const due = await this.#deps.acks.due(this.account, ACK_BATCH);
      if (due.length === 0) return;
      const byMailbox = new Map<string, DueAck[]>();
      for (const d of due) byMailbox.set(d.mailbox, [...(byMailbox.get(d.mailbox) ?? []), d]);
      for (const [mailbox, items] of byMailbox) {
        const lock = await client.getMailboxLock(mailbox);
        try {
          const uidValidity = Number(client.mailbox ? client.mailbox.uidValidity : 0);
          const stale = items.filter((i) => i.uidValidity !== uidValidity || i.uid === null);
          if (stale.length > 0) {
            this.#log.warn({ mailbox, count: stale.length }, 'UIDVALIDITY changed before afterDelivery; those UIDs no longer name the messages, skipping');
            await this.#deps.acks.markDone(stale.map((s) => s.id));
          }
          const live = items.filter((i) => !stale.includes(i));
          if (live.length === 0) continue;
          const uids = live.map((i) => i.uid as number).join(',');
          try {
            switch (acc.afterDelivery) {
              case 'seen':
                await client.messageFlagsAdd(uids, ['\\Seen'], { uid: true });
                break;
              case 'move':
                if (acc.moveTo) {
                  await client.mailboxCreate(acc.moveTo).catch(() => undefined);
                  await client.messageMove(uids, acc.moveTo, { uid: true });
                }
                break;
              case 'delete':
                await client.messageDelete(uids, { uid: true });
                break;
              case 'none':
                break;
            }
            await this.#deps.acks.markDone(live.map((i) => i.id));
          } catch (err) {
            await this.#deps.acks.markFailed(live.map((i) => i.id), describeError(err));
            throw err;
          }
        } finally {
          lock.release();
        }
      }
      if (due.length < ACK_BATCH) return;
    }
  }
}
