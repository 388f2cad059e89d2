import type { IncomingConfig } from '../../config/types.js';
import { describeError, MailgateError } from '../../errors.js';
import { withAccessToken } from '../../oauth/token-provider.js';
import { ConnectorBase, IngestBatch, type ConnectorDeps, type SessionFailure } from '../connector-base.js';
import type { DueAck } from '../../store/messages.js';
import { POP3_MAILBOX } from '../../store/origin.js';
import type { IncomingConnector } from '../source.js';
import { formatBytes } from '../imap/imap-connector.js';
import { literalLimit } from '../imap/client.js';
import { Pop3Client, Pop3Error, transferDeadlineMs, type Pop3Auth } from './client.js';

/** Messages per ingest transaction. */
const INGEST_BATCH_MESSAGES = 100;
const ACK_BATCH = 1000;
/** POP3 sessions start at least this far apart (or pollInterval, if shorter). */
const MIN_SESSION_GAP_MS = 5_000;
/** A message whose download broke the session this many times is reported instead of retried forever. */
export const POP3_SKIP_AFTER_FAILURES = 3;
const SAME_MESSAGE_BACKOFF_MS = 10_000;
const SAME_MESSAGE_BACKOFF_MAX_MS = 10 * 60_000;

export function createPop3Connector(deps: ConnectorDeps): IncomingConnector {
  return new Pop3Connector(deps);
}

/**
 * A failed POP3 session in an admin's words. A refused login is `auth`
 * (AUTH_FAILED); one the server called temporary (RFC 2449 SYS/TEMP,
 * IN-USE, LOGIN-DELAY: AUTH_UNAVAILABLE) and everything else is worth a
 * reconnect with backoff.
 */
export function classifyPop3Error(err: unknown): SessionFailure {
  if (err instanceof Pop3Error && err.failure === 'auth') {
    const oauth = err.oauth?.status ? ` (OAuth2 status ${err.oauth.status}${err.oauth.scope ? `, scope ${err.oauth.scope}` : ''})` : '';
    return { kind: 'auth', message: `the server refused the login: ${err.serverText ?? err.message}${oauth}`, retryAfterMs: null };
  }
  if (err instanceof MailgateError) return { kind: err.failure === 'auth' ? 'auth' : 'transient', message: err.message, retryAfterMs: null };
  return { kind: 'transient', message: describeError(err), retryAfterMs: null };
}

function pop3Options(incoming: IncomingConfig, auth: Pop3Auth) {
  return {
    host: incoming.host,
    port: incoming.port,
    // tls: true = implicit TLS (995); false = STLS when the server offers it (as IMAP and SMTP do).
    security: incoming.tls ? ('tls' as const) : ('starttls' as const),
    tls: { servername: incoming.host },
    auth,
  };
}

/**
 * One POP3 account, polled every `pollInterval` with one session at a time
 * (servers lock the maildrop). Each session: UIDL; forget UIDLs no longer on
 * the server; DELE messages whose webhook acknowledged them (afterDelivery:
 * delete); RETR and ingest the UIDLs not seen before; QUIT. Deletions count
 * only once QUIT is answered (RFC 1939 §6), so acks are marked done after
 * that, and a session cut short leaves them due for the next one.
 */
export class Pop3Connector extends ConnectorBase {
  /** The first session's initialSync was settled (once per connector; the store remembers it across restarts). */
  #firstSessionSeen = false;
  #client: Pop3Client | null = null;
  /** UIDLs whose RETR broke the size limit although LIST said less: never downloaded again. */
  readonly #tooLarge = new Set<string>();
  /** Failed RETRs per UIDL (this process): a message that keeps breaking the session is skipped. */
  readonly #retrFailures = new Map<string, { count: number; error: string }>();
  #lastFailedUidl: string | null = null;
  /** STLS when offered: a server without it gets a plain session (tls: false says the admin accepts that). */
  #plainFallback = false;

  constructor(deps: ConnectorDeps) {
    super(deps, 'pop3');
  }

  protected async probe(): Promise<void> {
    const client = await this.#connect();
    await client.quit(); // closes the socket whatever the answer
  }

  protected closeActive(): void {
    this.#client?.close();
    this.#client = null;
  }

  protected classify(err: unknown): SessionFailure {
    const c = classifyPop3Error(err);
    // Sessions that keep dying on the same message: wait longer each time (the base backoff restarts at every login).
    const failed = this.#lastFailedUidl === null ? undefined : this.#retrFailures.get(this.#lastFailedUidl);
    this.#lastFailedUidl = null;
    if (failed) return { ...c, retryAfterMs: Math.max(c.retryAfterMs ?? 0, Math.min(SAME_MESSAGE_BACKOFF_MAX_MS, SAME_MESSAGE_BACKOFF_MS * 2 ** (failed.count - 1))) };
    return c;
  }

  async #login(auth: Pop3Auth): Promise<Pop3Client> {
    const incoming = this.deps.account.incoming;
    const opts = pop3Options(incoming, auth);
    if (this.#plainFallback && !incoming.tls) return Pop3Client.connect({ ...opts, security: 'none' });
    try {
      return await Pop3Client.connect(opts);
    } catch (err) {
      // Only a server that does not offer STLS: an -ERR to STLS, or plaintext injected after its +OK (CVE-2011-0411), stays an error.
      if (incoming.tls || !(err instanceof Pop3Error) || err.kind !== 'tls' || !err.message.includes('does not offer STLS')) throw err;
      if (incoming.requireTLS) {
        throw new MailgateError('AUTH_FAILED', `refused to log in without TLS (requireTLS): ${err.message}`, { cause: err });
      }
      this.log.warn('the server does not offer STLS; using a plain connection (tls: false)');
      this.#plainFallback = true;
      return Pop3Client.connect({ ...opts, security: 'none' });
    }
  }

  /** Connects and logs in; on a refused OAuth2 login, asks the token service once for a fresh token. */
  async #connect(): Promise<Pop3Client> {
    const incoming = this.deps.account.incoming;
    const auth = incoming.auth;
    if (auth.method === 'password') {
      return this.#login({ mechanism: 'USER', user: incoming.user, password: auth.password });
    }
    const mechanism = auth.method === 'xoauth2' ? 'XOAUTH2' : 'OAUTHBEARER';
    return withAccessToken(
      this.deps.tokens,
      this.account,
      (accessToken) => this.#login({ mechanism, user: incoming.user, accessToken }),
      (err) => classifyPop3Error(err).kind === 'auth',
      () => this.log.info('login refused with the cached token; asking for a fresh one'),
    );
  }

  protected async session(onConnected: () => void): Promise<void> {
    while (!this.stopped) {
      const startedAt = Date.now();
      this.setState('connecting');
      const client = await this.#connect();
      this.#client = client;
      onConnected();
      this.setState('polling', null);
      const deleted = await this.#sync(client);
      // QUIT commits the DELEs; only its +OK makes them final.
      await client.quit();
      this.#client = null;
      if (deleted.length > 0) await this.deps.acks.markDone(deleted);
      this.markSuccess();
      if (this.stopped) return;
      this.setState('idle');
      const poll = this.deps.account.incoming.pollIntervalMs;
      await this.sleep(poll);
      // Acks wake the loop early (to DELE); still, log in at most every few
      // seconds: providers throttle accounts that log in too often.
      const gap = Math.min(poll, MIN_SESSION_GAP_MS);
      for (let left = gap - (Date.now() - startedAt); left > 0 && !this.stopped; left = gap - (Date.now() - startedAt)) {
        await this.sleep(left);
      }
    }
  }

  /** One round in TRANSACTION state; returns the ids whose DELE awaits QUIT. */
  async #sync(client: Pop3Client): Promise<string[]> {
    const listing = await client.uidl();
    const present = listing.map((l) => l.uidl);
    const pruned = await this.deps.ingestor.forgetUidlsExcept(this.account, present);
    if (pruned > 0) this.log.debug({ pruned }, 'forgot UIDLs no longer on the server');
    const deleted = await this.#deleteAcknowledged(client, listing);
    if (!this.#firstSessionSeen) {
      // initialSync (product.md, "Which mail the first sync takes"): with `new`, what the first session finds is left alone.
      if (await this.deps.ingestor.isFirstPop3Session(this.account, present)) {
        const skip = this.deps.account.incoming.initialSync === 'new' ? present : [];
        await this.deps.ingestor.firstPop3SessionDone(this.account, skip);
        if (skip.length > 0) this.log.info({ skipped: skip.length }, 'first session with initialSync: new; the messages on the server now are left alone, only later ones are delivered');
      }
      this.#firstSessionSeen = true;
    }
    const known = await this.deps.ingestor.knownUidls(this.account, present);
    const fresh = listing.filter((l) => !known.has(l.uidl));
    await this.#fetch(client, fresh);
    // Messages just fetched may already be acknowledged when the webhook is fast.
    const late = await this.#deleteAcknowledged(client, listing, new Set(deleted));
    return [...deleted, ...late];
  }

  /**
   * RETR of the new messages, LIST first: one over maxMessageSize, or whose
   * download broke the session POP3_SKIP_AFTER_FAILURES times, is not
   * downloaded but reported from its headers (TOP n 0). What was retrieved
   * before a RETR fails is committed before the error goes on.
   */
  async #fetch(client: Pop3Client, fresh: { n: number; uidl: string }[]): Promise<void> {
    if (fresh.length === 0) return;
    const max = this.deps.account.incoming.maxMessageSizeBytes;
    const sizes = new Map((await client.list()).map((l) => [l.n, l.size]));
    const batch = new IngestBatch(this.deps.ingestor, INGEST_BATCH_MESSAGES).reportProgress(this.log, POP3_MAILBOX, fresh.length);
    const base = { account: this.account, internalDate: null };
    try {
      for (const { n, uidl } of fresh) {
        if (this.stopped) break;
        const size = sizes.get(n) ?? 0;
        const why = this.#notDownloadable(uidl, size, max);
        if (why !== null) {
          const headers = await this.#headers(client, n);
          await batch.add({ ...base, origin: { kind: 'pop3', uidl }, raw: headers, size, notDownloaded: why });
          this.log.warn({ uidl, size, maxMessageSize: max }, 'a message is not downloaded; reporting it as message.failed');
          continue;
        }
        let raw: Buffer;
        try {
          raw = await client.retr(n, { maxBytes: literalLimit(max), overallTimeoutMs: transferDeadlineMs(size) });
        } catch (err) {
          this.#downloadFailed(uidl, err);
          throw err;
        }
        this.#retrFailures.delete(uidl);
        await batch.add({ ...base, origin: { kind: 'pop3', uidl }, raw });
      }
    } finally {
      // Messages retrieved before a failure are stored, so a later RETR that breaks the session does not cost them.
      await batch.flush();
    }
  }

  /** Why a message must not be downloaded, or null. */
  #notDownloadable(uidl: string, size: number, max: number): string | null {
    if (size > max) return `the message is ${formatBytes(size)}, more than maxMessageSize (${formatBytes(max)}); it was not downloaded and stays on the server`;
    if (this.#tooLarge.has(uidl)) return `the server sent more than maxMessageSize (${formatBytes(max)}) for this message although LIST gave ${formatBytes(size)}; it was not downloaded and stays on the server`;
    const failed = this.#retrFailures.get(uidl);
    if (failed && failed.count >= POP3_SKIP_AFTER_FAILURES) {
      return `its download failed ${failed.count} times (last: ${failed.error}); it was not downloaded and stays on the server`;
    }
    return null;
  }

  /** The header block (TOP n 0, RFC 1939 §7) when the server has TOP; else nothing. */
  async #headers(client: Pop3Client, n: number): Promise<Buffer> {
    if (!client.capabilities.includes('TOP')) return Buffer.alloc(0);
    try {
      return await client.top(n, 0);
    } catch (err) {
      if (err instanceof Pop3Error && (err.kind === 'too_large' || err.kind === 'connection' || err.kind === 'timeout')) throw err;
      return Buffer.alloc(0); // -ERR to TOP: report it without headers
    }
  }

  /** Counts a failed RETR per message, so the backoff grows and the message is eventually skipped. */
  #downloadFailed(uidl: string, err: unknown): void {
    if (err instanceof Pop3Error && err.kind === 'too_large') this.#tooLarge.add(uidl);
    const prev = this.#retrFailures.get(uidl);
    this.#retrFailures.set(uidl, { count: (prev?.count ?? 0) + 1, error: describeError(err) });
    this.#lastFailedUidl = uidl;
  }

  /** DELE for acknowledged messages (afterDelivery: delete); acks for messages already gone are done. */
  async #deleteAcknowledged(client: Pop3Client, listing: { n: number; uidl: string }[], skip = new Set<string>()): Promise<string[]> {
    const byUidl = new Map(listing.map((l) => [l.uidl, l.n]));
    const deleted: string[] = [];
    for (;;) {
      // Nothing is deleted on the server while it could not be recorded.
      if (this.storagePaused) return deleted;
      const due = (await this.deps.acks.due(this.account, ACK_BATCH)).filter((d) => !skip.has(d.id));
      if (due.length === 0) return deleted;
      const gone: DueAck[] = [];
      for (const d of due) {
        skip.add(d.id);
        // An ack of a message fetched over IMAP (the account changed protocol) has nothing to delete here.
        const n = d.origin.kind === 'pop3' ? byUidl.get(d.origin.uidl) : undefined;
        if (n === undefined) {
          gone.push(d);
          continue;
        }
        await client.dele(n);
        deleted.push(d.id);
      }
      if (gone.length > 0) await this.deps.acks.markDone(gone.map((g) => g.id));
      if (due.length < ACK_BATCH) return deleted;
    }
  }
}
