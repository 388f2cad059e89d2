import type { ImapFlow } from 'imapflow';
import { describeError, MailgateError } from '../../errors.js';
import { withAccessToken } from '../../oauth/token-provider.js';
import { ConnectorBase, IngestBatch, type ConnectorDeps, type SessionFailure } from '../connector-base.js';
import type { ImapOrigin } from '../../store/origin.js';
import type { IncomingConnector } from '../source.js';
import { delayToPhaseMs, nextPhaseAt } from '../phase.js';
import { classifyImapError, createImapClient, type ImapErrorKind } from './client.js';
import { NotifyRefusedError, watchMailboxes } from './notify.js';
import { DEFAULT_IDLE_CONNECTIONS, MailboxWatchers } from './watchers.js';

/** The header block kept of a message that is not downloaded (to report its Subject and From). */
const MAX_HEADER_BYTES = 256 * 1024;

/** `1:5,7,9:12` for a sorted list of UIDs (one FETCH for many, short even for thousands). */
export function compactUidSet(uids: number[]): string {
  const parts: string[] = [];
  for (let i = 0; i < uids.length; ) {
    const start = uids[i] as number;
    let end = start;
    while (i + 1 < uids.length && uids[i + 1] === end + 1) end = uids[++i] as number;
    parts.push(start === end ? String(start) : `${start}:${end}`);
    i++;
  }
  return parts.join(',');
}

export function formatBytes(n: number): string {
  if (n >= 1024 * 1024) return `${(n / (1024 * 1024)).toFixed(1).replace(/\.0$/, '')} MB`;
  if (n >= 1024) return `${Math.round(n / 1024)} KB`;
  return `${n} bytes`;
}

/** Messages handed to the ingest store per transaction. */
export const INGEST_BATCH_MESSAGES = 200;
/** ...or fewer, when they add up to this many bytes (keeps memory bounded). */
export const INGEST_BATCH_BYTES = 32 * 1024 * 1024;
const ACK_BATCH = 500;

/** What each reading of an imapflow error means for the next session. */
const IMAP_FAILURE: Record<ImapErrorKind, SessionFailure['kind']> = { auth: 'auth', 'auth-transient': 'transient', throttled: 'throttled', other: 'transient' };

export function createImapConnector(deps: ConnectorDeps): IncomingConnector {
  return new ImapConnector(deps);
}

/**
 * One IMAP account. `mode: idle` keeps one connection in IDLE on the first
 * mailbox (IMAP IDLE watches only the selected mailbox, RFC 2177). Other
 * mailboxes are watched with IMAP NOTIFY (RFC 5465) on the same connection
 * where the server offers it, else with one more connection in IDLE each
 * (up to `limits.idleConnectionsPerAccount` connections for the account),
 * else polled every `pollInterval`. Every mailbox is synced at least every
 * `idleResync`, at a phase of its own per account (src/incoming/phase.ts),
 * which also catches an IDLE that silently died. `mode: poll` syncs every
 * mailbox every `pollInterval`, at the account's phase. Either way
 * afterDelivery runs only for messages the ack queue reports due.
 */
export class ImapConnector extends ConnectorBase {
  #client: ImapFlow | null = null;
  /** Mailboxes NOTIFY or a watcher connection reported changed since they were last synced. */
  #dirty = new Set<string>();
  /** The idle wait ended at the poll time of the mailboxes nothing watches. */
  #pollDue = false;
  /** `mailbox\0uid` of messages whose literal exceeded the limit: never downloaded again. */
  readonly #tooLargeLiterals = new Set<string>();

  constructor(deps: ConnectorDeps) {
    super(deps, 'imap');
  }

  protected async probe(): Promise<void> {
    const client = await this.#connect();
    try {
      await client.logout();
    } catch (err) {
      client.close();
      throw err;
    }
  }

  protected closeActive(): void {
    this.#client?.close();
    this.#client = null;
  }

  protected classify(err: unknown): SessionFailure {
    const c = classifyImapError(err);
    return { kind: IMAP_FAILURE[c.kind], message: c.message, retryAfterMs: c.retryAfterMs, ...(c.code ? { code: c.code } : {}) };
  }

  /** Connects and logs in; on a refused OAuth2 login, asks once for a fresh token. */
  async #connect(): Promise<ImapFlow> {
    const incoming = this.deps.account.incoming;
    const auth = incoming.auth;
    const open = async (secret: { accessToken: string } | { password: string }) => {
      const client = createImapClient(incoming, secret);
      this.#attach(client);
      try {
        await client.connect();
        return client;
      } catch (err) {
        client.close();
        throw err;
      }
    };
    if (auth.method === 'password') return open({ password: auth.password });
    return withAccessToken(
      this.deps.tokens,
      this.account,
      (accessToken) => open({ accessToken }),
      (err) => classifyImapError(err).kind === 'auth',
      () => this.log.info('login refused with the cached token; asking for a fresh one'),
    );
  }

  #attach(client: ImapFlow): void {
    // Without an error listener a socket error would crash the process.
    client.on('error', (err: unknown) => this.log.debug({ error: describeError(err) }, 'imap connection error'));
    // Only the live session's client may wake the loop: the close of a refused
    // login must not cut the backoff short (that would hammer the server).
    client.on('exists', () => {
      if (this.#client === client) this.poke();
    });
    client.on('close', () => {
      if (this.#client === client) this.poke();
    });
  }

  protected async session(onConnected: () => void): Promise<void> {
    this.setState('connecting');
    // The connection opens only once the pacer gives it a slot: imapflow's
    // connect and greeting timeouts run from then, not from the queue.
    const client = await this.paced(() => this.#connect());
    this.#client = client;
    onConnected();
    const acc = this.deps.account.incoming;
    const idleMailbox = acc.mailboxes[0] ?? 'INBOX';
    // Every mailbox at the start of a session; after that, the IDLE mailbox on
    // every wake-up, mailboxes reported changed, and all at the account's phase.
    this.#dirty = new Set(acc.mailboxes);
    let nextFullAt = Infinity;
    let unwatched: string[] = [];
    let watchers: MailboxWatchers | null = null;
    try {
      if (acc.mode === 'idle' && acc.mailboxes.length > 1) {
        const w = await this.#watchOthers(client, acc.mailboxes, idleMailbox);
        watchers = w.watchers;
        unwatched = w.unwatched;
      }
      while (!this.stopped && client.usable) {
        this.setState('polling', null);
        const now = Date.now();
        const full = acc.mode === 'poll' || now >= nextFullAt;
        const wanted = full ? acc.mailboxes : acc.mailboxes.filter((m) => m === idleMailbox || this.#dirty.has(m) || (this.#pollDue && unwatched.includes(m)));
        if (full || this.#pollDue) this.#pollDue = false;
        for (const m of wanted) this.#dirty.delete(m);
        for (const mailbox of wanted) await this.#syncMailbox(client, mailbox);
        // The next full resync at this account's phase of idleResync, not on a beat every account shares.
        if (full || nextFullAt === Infinity) nextFullAt = nextPhaseAt(this.account, acc.idleResyncMs, Date.now());
        await this.#applyAcks(client);
        this.markSuccess();
        if (this.stopped) break;
        if (this.#dirty.size > 0) continue; // changed while we synced
        if (acc.mode === 'idle') {
          await client.mailboxOpen(idleMailbox);
          this.setState('idle');
          // idle() resolves when IDLE is broken (by our next command or the server).
          client.idle().catch(() => undefined);
          let wait = Math.max(1_000, nextFullAt - Date.now());
          // Mailboxes neither NOTIFY nor a connection of their own watch are polled.
          if (unwatched.length > 0) {
            const poll = delayToPhaseMs(this.account, acc.pollIntervalMs, Date.now());
            if (poll < wait) {
              wait = poll;
              this.#pollDue = true;
            }
          }
          await this.sleep(wait);
        } else {
          await this.sleep(delayToPhaseMs(this.account, acc.pollIntervalMs, Date.now()));
        }
      }
    } finally {
      this.#dirty.clear();
      this.#pollDue = false;
      await watchers?.close();
    }
    if (!this.stopped) throw new MailgateError('CONNECTION_FAILED', 'the IMAP server closed the connection (a restart or a network cut); reconnecting');
  }

  /**
   * How the other mailboxes of an idle account are watched: IMAP NOTIFY on
   * the session's own connection where the server offers it; else one more
   * connection in IDLE per mailbox, up to `idleConnectionsPerAccount`
   * connections in all; what is left is polled every pollInterval.
   */
  async #watchOthers(client: ImapFlow, mailboxes: string[], idleMailbox: string): Promise<{ watchers: MailboxWatchers | null; unwatched: string[] }> {
    const onChange = (mailbox: string) => {
      this.#dirty.add(mailbox);
      this.poke();
    };
    try {
      const watch = await watchMailboxes(client, mailboxes, (change) => onChange(change.path));
      if (watch) {
        this.log.debug({ mailboxes }, 'watching the mailboxes with IMAP NOTIFY');
        // NOTIFY lives and dies with the connection: nothing to close.
        return { watchers: null, unwatched: [] };
      }
    } catch (err) {
      if (!(err instanceof NotifyRefusedError)) throw err;
      this.log.info({ error: err.message }, 'the server offers NOTIFY but refused it; watching the other mailboxes with connections of their own');
    }
    const others = mailboxes.filter((m) => m !== idleMailbox);
    const extra = Math.max(0, (this.deps.idleConnectionsPerAccount ?? DEFAULT_IDLE_CONNECTIONS) - 1);
    const watched = others.slice(0, extra);
    const unwatched = others.slice(extra);
    if (unwatched.length > 0) {
      this.log.info({ polled: unwatched, pollInterval: this.deps.account.incoming.pollIntervalMs }, 'more mailboxes than idleConnectionsPerAccount allows and no NOTIFY: polling the rest');
    }
    const watchers = new MailboxWatchers(watched, {
      connect: () => this.pacedExtra(() => this.#connect()),
      onChange,
      log: this.log,
      stopped: () => this.stopped,
    });
    watchers.start();
    return { watchers, unwatched };
  }

  async #syncMailbox(client: ImapFlow, mailbox: string): Promise<void> {
    const lock = await client.getMailboxLock(mailbox);
    try {
      const box = client.mailbox;
      if (!box) return;
      const uidValidity = Number(box.uidValidity);
      let cursor = await this.deps.ingestor.getCursor(this.account, mailbox);
      if (cursor && cursor.uidValidity !== uidValidity) {
        this.log.warn({ mailbox, from: cursor.uidValidity, to: uidValidity }, 'UIDVALIDITY changed; rescanning the mailbox (duplicates are recognised)');
        await this.deps.ingestor.resetCursor(this.account, mailbox, uidValidity);
        cursor = { uidValidity, lastUid: 0 };
      }
      const from = (cursor?.lastUid ?? 0) + 1;
      // initialSync (product.md, "Which mail the first sync takes"), only while there is no cursor:
      // `new` records the cursor at what is there now; `unseen` takes the messages without \Seen,
      // then records the cursor there (after they are stored: a crash in between takes more, never less).
      const first = cursor === null ? this.deps.account.incoming.initialSync : 'all';
      const there = Math.max(0, Number(box.uidNext ?? 1) - 1);
      const settle = async (taken: number) => {
        if (first === 'all') return;
        await this.deps.ingestor.resetCursor(this.account, mailbox, uidValidity, Math.max(there, taken));
        this.log.info({ mailbox, initialSync: first, lastUid: Math.max(there, taken) }, 'first sync of the mailbox; from now on only new messages are taken');
      };
      if (first === 'new') return settle(0);
      // An already selected mailbox learns of new mail only from a command's
      // untagged EXISTS: without one, a poll of a mailbox that was empty at
      // SELECT would see it empty forever.
      if (box.exists === 0) await client.noop();
      if (box.exists === 0) return settle(0);
      // uidNext is not updated by EXISTS during a session, and "n:*" always
      // returns the highest message (RFC 3501 §6.4.8): ask for new UIDs first
      // so an idle wake-up never re-downloads the last message.
      const found = first === 'unseen' ? await client.search({ seen: false }, { uid: true }) : await client.search({ uid: `${from}:*` }, { uid: true });
      if (!found || !found.some((u) => u >= from)) return settle(0);
      const newUids = found.filter((u) => u >= from).sort((a, b) => a - b);
      // RFC822.SIZE first: a message over maxMessageSize is never downloaded whole.
      const oversize = await this.#oversize(client, newUids, mailbox);
      const batch = new IngestBatch(this.deps.ingestor, INGEST_BATCH_MESSAGES, INGEST_BATCH_BYTES).reportProgress(this.log, mailbox, newUids.length);
      const pending = [...oversize.entries()].sort((a, b) => a[0] - b[0]);
      const addOversizeBelow = async (uid: number) => {
        while (pending.length > 0 && (pending[0]?.[0] ?? Infinity) < uid) {
          const [u, o] = pending.shift() as [number, { size: number; headers: Buffer; why: string }];
          await batch.add({ account: this.account, origin: { kind: 'imap', mailbox, uid: u, uidValidity }, raw: o.headers, internalDate: null, size: o.size, notDownloaded: o.why });
        }
      };
      const wanted = newUids.filter((u) => !oversize.has(u));
      if (wanted.length > 0) {
        let lastReceived = 0;
        try {
          for await (const msg of client.fetch(compactUidSet(wanted), { uid: true, source: true, internalDate: true }, { uid: true })) {
            // "n:*" always returns the highest message, even below n (RFC 3501 §6.4.8).
            if (msg.uid < from || !msg.source || oversize.has(msg.uid)) continue;
            lastReceived = msg.uid;
            await addOversizeBelow(msg.uid);
            const internal = msg.internalDate;
            await batch.add({
              account: this.account,
              origin: { kind: 'imap', mailbox, uid: msg.uid, uidValidity },
              raw: msg.source,
              internalDate: internal instanceof Date ? internal : internal ? new Date(internal) : null,
            });
          }
        } catch (err) {
          if ((err as { code?: string }).code === 'LiteralTooLarge') {
            // The literal after the last message received broke the limit: that message is too large, whatever its size said.
            const culprit = wanted.find((u) => u > lastReceived);
            if (culprit !== undefined) this.#tooLargeLiterals.add(`${mailbox}\0${culprit}`);
            this.log.warn({ mailbox, uid: culprit }, 'the server sent more than maxMessageSize for a message; it will be reported, not downloaded');
          }
          throw err;
        }
      }
      await addOversizeBelow(Number.POSITIVE_INFINITY);
      await batch.flush();
      await settle(newUids[newUids.length - 1] ?? 0);
    } finally {
      lock.release();
    }
  }

  /**
   * The new UIDs that must not be downloaded: over maxMessageSize by their
   * RFC822.SIZE, or whose literal broke the limit in an earlier session
   * (a server's size that lied). Their header block is fetched instead
   * (capped), to report them as message.failed (reason too_large).
   */
  async #oversize(client: ImapFlow, uids: number[], mailbox: string): Promise<Map<number, { size: number; headers: Buffer; why: string }>> {
    const max = this.deps.account.incoming.maxMessageSizeBytes;
    const out = new Map<number, { size: number; headers: Buffer; why: string }>();
    const sizes = new Map<number, number>();
    for await (const msg of client.fetch(compactUidSet(uids), { uid: true, size: true }, { uid: true })) {
      if (typeof msg.size === 'number') sizes.set(msg.uid, msg.size);
    }
    const big = uids.filter((u) => (sizes.get(u) ?? 0) > max || this.#tooLargeLiterals.has(`${mailbox}\0${u}`));
    if (big.length === 0) return out;
    for await (const msg of client.fetch(compactUidSet(big), { uid: true, headers: true }, { uid: true })) {
      const size = sizes.get(msg.uid) ?? 0;
      const why = this.#tooLargeLiterals.has(`${mailbox}\0${msg.uid}`)
        ? `the server sent more than maxMessageSize (${formatBytes(max)}) for this message although it gave its size as ${formatBytes(size)}; it was not downloaded and stays on the server`
        : `the message is ${formatBytes(size)}, more than maxMessageSize (${formatBytes(max)}); it was not downloaded and stays on the server`;
      out.set(msg.uid, { size, headers: (msg.headers ?? Buffer.alloc(0)).subarray(0, MAX_HEADER_BYTES), why });
    }
    // A message gone between the two FETCHes is simply not there any more.
    for (const u of big) if (!out.has(u)) this.log.debug({ mailbox, uid: u }, 'an oversize message vanished before its headers were read');
    this.log.warn({ mailbox, uids: [...out.keys()], maxMessageSize: max }, 'messages over maxMessageSize are not downloaded; reporting them as message.failed');
    return out;
  }

  /** afterDelivery for messages whose webhook acknowledged them. */
  async #applyAcks(client: ImapFlow): Promise<void> {
    const acc = this.deps.account.incoming;
    for (;;) {
      // Nothing is done on the server while it could not be recorded.
      if (this.storagePaused) return;
      const due = await this.deps.acks.due(this.account, ACK_BATCH);
      if (due.length === 0) return;
      // An ack of a message fetched over POP3 (the account changed protocol) names nothing here: done.
      const foreign = due.filter((d) => d.origin.kind !== 'imap');
      if (foreign.length > 0) await this.deps.acks.markDone(this.account, foreign.map((d) => d.id));
      const byMailbox = new Map<string, { id: string; origin: ImapOrigin }[]>();
      for (const d of due) {
        if (d.origin.kind !== 'imap') continue;
        const mailbox = d.origin.mailbox;
        byMailbox.set(mailbox, [...(byMailbox.get(mailbox) ?? []), { id: d.id, origin: d.origin }]);
      }
      for (const [mailbox, items] of byMailbox) {
        const lock = await client.getMailboxLock(mailbox);
        try {
          const uidValidity = Number(client.mailbox ? client.mailbox.uidValidity : 0);
          const stale = items.filter((i) => i.origin.uidValidity !== uidValidity);
          if (stale.length > 0) {
            this.log.warn({ mailbox, count: stale.length }, 'UIDVALIDITY changed before afterDelivery; those UIDs no longer name the messages, skipping');
            await this.deps.acks.markDone(this.account, stale.map((s) => s.id));
          }
          const live = items.filter((i) => !stale.includes(i));
          if (live.length === 0) continue;
          const uids = live.map((i) => i.origin.uid).join(',');
          // The lease may have run out while this connection waited (a paused node): never act then.
          if (!this.deps.acks.mayAct(this.account)) throw leaseGone(this.account);
          try {
            // imapflow answers a failed STORE, MOVE or EXPUNGE with false, not an exception.
            let applied: unknown = true;
            switch (acc.afterDelivery) {
              case 'seen':
                applied = await client.messageFlagsAdd(uids, ['\\Seen'], { uid: true });
                break;
              case 'move':
                if (acc.moveTo) {
                  await client.mailboxCreate(acc.moveTo).catch(() => undefined);
                  applied = await client.messageMove(uids, acc.moveTo, { uid: true });
                }
                break;
              case 'delete':
                applied = await client.messageDelete(uids, { uid: true });
                break;
              case 'none':
                break;
            }
            if (applied === false) {
              // The connection broke under the command: not applied, try again after the reconnect.
              if (!client.usable) throw new MailgateError('CONNECTION_FAILED', `the connection closed during afterDelivery (${acc.afterDelivery})`);
              // The server refused it (read-only mailbox, flag not accepted): retrying will not help.
              this.log.warn({ mailbox, count: live.length, afterDelivery: acc.afterDelivery }, 'the server did not apply afterDelivery to these messages; not retrying');
            }
            await this.deps.acks.markDone(this.account, live.map((i) => i.id));
          } catch (err) {
            await this.deps.acks.markFailed(this.account, live.map((i) => i.id), describeError(err));
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

function leaseGone(account: string): MailgateError {
  return new MailgateError('LEASE_LOST', `this node no longer holds account ${account}; afterDelivery left to its new owner`);
}
