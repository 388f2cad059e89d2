import { afterEach, beforeEach } from 'vitest';
import type { AttemptOutcome, DeliveryRecord } from '../../../src/store/deliveries.js';
import type { NewMessage } from '../../../src/store/messages.js';
import type { ImapOrigin } from '../../../src/store/origin.js';
import type { NewOutboxItem } from '../../../src/store/outbox.js';
import type { Store } from '../../../src/store/store.js';

/**
 * One backend under test: a fresh, empty store on storage of its own.
 * The suite talks to it only through the `Store` interface; the factory is
 * the one place that knows the backend (files, pools, schemas).
 */
export interface StoreUnderTest {
  /** The store every test starts with (empty, migrated). */
  readonly store: Store;
  /**
   * Another `Store` on the same storage, as a restarted daemon, the CLI next
   * to it, or another replica would open it. The first store is left as it
   * is (open or closed), so opening a peer after abandoning the first one
   * is how the suite simulates a crash and a restart.
   */
  openPeer(): Promise<Store>;
  /**
   * Every byte the backend has persisted so far (database files with their
   * journals, or a dump of every table), searched for secrets in clear. A
   * backend that cannot show its bytes leaves this out and the secrets-at-rest
   * tests are skipped for it.
   */
  rawBytes?(): Promise<Buffer>;
  /**
   * Opens the same storage with a different secret key; must reject (the
   * key check every backend does at open). Optional.
   */
  openWithOtherKey?(): Promise<Store>;
  /** Closes every store this handle opened and removes its storage. */
  dispose(): Promise<void>;
}

export type StoreFactory = () => Promise<StoreUnderTest>;

export interface ConformanceContext {
  readonly store: Store;
  readonly sut: StoreUnderTest;
}

/** A fresh store per test, disposed after it. */
export function useStore(factory: StoreFactory): ConformanceContext {
  let sut: StoreUnderTest | undefined;
  beforeEach(async () => {
    sut = await factory();
  });
  afterEach(async () => {
    const s = sut;
    sut = undefined;
    await s?.dispose();
  });
  const current = (): StoreUnderTest => {
    if (!sut) throw new Error('no store: the conformance context is only usable inside a test');
    return sut;
  };
  return {
    get store() {
      return current().store;
    },
    get sut() {
      return current();
    },
  };
}

export const ACCOUNT = 'support';
export const WEBHOOK = 'pipeline';

/** Bytes that no text encoding round-trips: the store must keep them exactly. */
export const BINARY_TAIL = Buffer.from(Array.from({ length: 256 }, (_, i) => i));

export function rawMessage(tag: string, extra: Buffer = Buffer.alloc(0)): Buffer {
  return Buffer.concat([Buffer.from(`Message-ID: <${tag}@example.com>\r\nSubject: ${tag}\r\n\r\nbody of ${tag}\r\n`), extra]);
}

/** Overrides of a test message; an IMAP one also takes its origin's fields. */
export type MessageOver = Partial<Omit<NewMessage, 'origin'>>;
export type ImapOver = MessageOver & Partial<Omit<ImapOrigin, 'kind'>>;

export function imapMessage(uid: number, over: ImapOver = {}): NewMessage {
  const tag = `m${uid}`;
  const { mailbox = 'INBOX', uid: atUid = uid, uidValidity = 7, ...rest } = over;
  return {
    account: ACCOUNT,
    origin: { kind: 'imap', mailbox, uid: atUid, uidValidity },
    raw: rawMessage(tag),
    internalDate: 1_600_000_000_000 + uid,
    messageId: `<${tag}@example.com>`,
    autoSubmitted: false,
    webhook: WEBHOOK,
    ...rest,
  };
}

export function pop3Message(uidl: string, over: MessageOver = {}): NewMessage {
  return {
    account: ACCOUNT,
    origin: { kind: 'pop3', uidl },
    raw: rawMessage(`p-${uidl}`),
    internalDate: null,
    messageId: `<p-${uidl}@example.com>`,
    autoSubmitted: false,
    webhook: WEBHOOK,
    ...over,
  };
}

export function outcome(now: number, over: Partial<AttemptOutcome> = {}): AttemptOutcome {
  return { attempts: 1, status: 200, error: null, responseExcerpt: 'ok', now, ...over };
}

export function failure(now: number, over: Partial<AttemptOutcome> = {}): AttemptOutcome {
  return { attempts: 1, status: 500, error: 'HTTP 500', responseExcerpt: 'server error', now, ...over };
}

export function outboxItem(id: string, over: Partial<NewOutboxItem> = {}): NewOutboxItem {
  return {
    id,
    account: ACCOUNT,
    idempotencyKey: null,
    requestJson: JSON.stringify({ to: ['ann@example.com'], subject: id }),
    messageId: `<${id}@example.com>`,
    now: 1_000,
    ...over,
  };
}

/** The delivery of a stored message (there is exactly one). */
export async function deliveryOf(store: Store, messageRef: string): Promise<DeliveryRecord> {
  const found = await store.deliveries.forMessage(messageRef);
  if (!found) throw new Error(`expected one delivery of ${messageRef}, found none`);
  return found;
}

/** Ingests one message and returns its id and its delivery. */
export async function ingestOne(store: Store, msg: NewMessage, now: number): Promise<{ id: string; delivery: DeliveryRecord }> {
  const [r] = await store.ingest.insertMessages([msg], now);
  if (!r) throw new Error('insertMessages returned no result');
  return { id: r.id, delivery: await deliveryOf(store, r.id) };
}

/** Ingests, delivers with the given serverAck, and returns the message id. */
export async function ingestDelivered(store: Store, msg: NewMessage, now: number, serverAck: 'due' | 'none'): Promise<string> {
  const { id, delivery } = await ingestOne(store, msg, now);
  await store.deliveries.markDelivered(delivery.id, outcome(now + 1), serverAck);
  return id;
}

/** Settles a promise into a value or the error it rejected with (never throws synchronously out of the test). */
export async function settle<T>(p: () => Promise<T>): Promise<{ ok: true; value: T } | { ok: false; error: unknown }> {
  try {
    return { ok: true, value: await p() };
  } catch (error) {
    return { ok: false, error };
  }
}
