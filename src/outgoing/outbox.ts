import { randomBytes, randomUUID } from 'node:crypto';
import type { SendMailOptions } from 'nodemailer';
import type { Component } from '../runtime/component.js';
import type { AccountConfig, Config } from '../config/types.js';
import { computeBackoff } from '../runtime/backoff.js';
import { describeError, MailgateError } from '../errors.js';
import { messageIdKey, msgIdsOf, resolveConversation } from '../parse/conversation.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { FenceSource } from '../store/cluster.js';
import type { TokenProvider } from '../oauth/token-provider.js';
import type { OutboxEnvelope, OutboxRecord } from '../store/outbox.js';
import type { Store } from '../store/store.js';
import { bareAddress, parseSendRequest, recipientAddresses, type SendRequest } from './send-request.js';
import { headerValue } from './raw-headers.js';
import { classifySmtpError, SmtpSender } from './smtp.js';
import { SerialPump } from '../runtime/serial-pump.js';
import type { ConnectionHistoryRecorder } from '../runtime/connection-history.js';
import { accountNamed } from '../config/lookup.js';

/** Transient failures are retried this many times (about 4 hours with the backoff below), then the message fails. */
export const SEND_MAX_ATTEMPTS = 20;
export const SEND_BACKOFF = { initialMs: 5_000, maxMs: 15 * 60_000 };
/** Messages in flight per account (the pool has 3 connections; a few more keep them busy). */
const PER_ACCOUNT_IN_FLIGHT = 6;
const TOTAL_IN_FLIGHT = 32;
/**
 * Bytes of relayed messages being sent at once (each is read whole from the
 * store for its SMTP transaction); one larger than this is sent alone. Keeps
 * the worker's memory near this, not 32 × relay.maxMessageSize.
 */
export const RAW_IN_FLIGHT_BYTES = 64 * 1024 * 1024;
const IDLE_RECHECK_MS = 5_000;
/**
 * stop() waits this long for messages already in an SMTP transaction; with
 * the delivery worker's 3 s it stays inside the 10 s shutdown budget. A send
 * still running after that is reported "uncertain" at the next start.
 */
const STOP_GRACE_MS = 5_000;
export const INTERRUPTED_REASON =
  'uncertain: mailgate stopped during the SMTP transaction, so the server may or may not have accepted this message; ' +
  'it was not sent again to avoid a duplicate. Check the recipient or the Sent folder, then POST /v1/outbox/{id}/retry to send it anyway';

export function outboxView(r: OutboxRecord) {
  return {
    id: r.id,
    account: r.account,
    status: r.status === 'sending' ? ('queued' as const) : r.status,
    attempts: r.attempts,
    lastError: r.lastError,
    messageId: r.messageId,
    createdAt: new Date(r.createdAt).toISOString(),
    sentAt: r.sentAt === null ? null : new Date(r.sentAt).toISOString(),
  };
}

function outgoingOf(config: Config, name: string): { account: AccountConfig; out: NonNullable<AccountConfig['outgoing']> } {
  const account = accountNamed(config, name);
  if (!account) throw new MailgateError('NOT_FOUND', `no account ${name}`);
  if (!account.outgoing) throw new MailgateError('CONFLICT', `account ${name} has no outgoing server configured`);
  return { account, out: account.outgoing };
}

/** How much of a relayed message's References header is read for its conversation. */
const RELAY_REFERENCES_CHARS = 64 * 1024;

/** A message given as bytes (the SMTP relay): sent as it is, with its envelope. */
export interface RawOutboxInput {
  /** The account whose outgoing server sends it. */
  account: string;
  /** The relay client that gave it, kept with the row (requestJson) for the admin. */
  client: string;
  envelope: OutboxEnvelope;
  raw: Buffer;
  now: number;
}

export interface OutboxServiceDeps {
  store: Store;
  config: () => Config;
  /** Something was queued: the worker looks now. */
  onQueued: () => void;
}

/** Accepts send requests: validation, loop guard, idempotency, durable queueing. */
export class OutboxService {
  readonly #deps: OutboxServiceDeps;

  constructor(deps: OutboxServiceDeps) {
    this.#deps = deps;
  }

  /**
   * Queues a message. The row is committed before this resolves. With an
   * idempotency key seen before, returns the first row and queues nothing.
   */
  async enqueue(accountName: string, body: unknown, idempotencyKey: string | null): Promise<{ record: OutboxRecord; created: boolean }> {
    const { account, out } = outgoingOf(this.#deps.config(), accountName);
    if (idempotencyKey !== null && (idempotencyKey.length === 0 || idempotencyKey.length > 255)) {
      throw new MailgateError('BAD_REQUEST', 'Idempotency-Key must be 1 to 255 characters');
    }
    const req = parseSendRequest(body);
    await this.#loopGuard(account, out.from, req);
    const requestJson = JSON.stringify(req);
    const domain = bareAddress(req.from ?? out.from).split('@')[1] ?? 'mailgate.invalid';
    const id = `out_${randomBytes(12).toString('hex')}`;
    const messageId = `<${randomUUID()}@${domain}>`;
    // A reply sent through the API joins the conversation it answers; a reply to it (Outlook: In-Reply-To alone) finds it by its Message-ID.
    const { conversationId } = await resolveConversation(
      { messageId, inReplyTo: req.inReplyTo ?? null, references: req.references, id },
      (key) => this.#deps.store.messages.conversationOf(key),
    );
    const result = await this.#deps.store.outbox.enqueue({
      id,
      account: account.name,
      idempotencyKey,
      requestJson,
      messageId,
      messageIdKey: messageIdKey(messageId),
      conversationId,
      now: Date.now(),
    });
    if (!result.created && result.record.requestJson !== requestJson) {
      throw new MailgateError('CONFLICT', `Idempotency-Key "${idempotencyKey ?? ''}" was already used for a different message (${result.record.id})`);
    }
    if (result.created) this.#deps.onQueued();
    return result;
  }

  /**
   * Queues a message given as bytes (the SMTP relay's RelayOutbox). The row
   * and the bytes are committed before this resolves; the worker sends the
   * bytes unchanged with `envelope`. No loop guard: the bytes come from an
   * application on the admin's network, not from an answer to fetched mail.
   */
  async enqueueRaw(input: RawOutboxInput): Promise<{ id: string }> {
    outgoingOf(this.#deps.config(), input.account);
    const id = `out_${randomBytes(12).toString('hex')}`;
    const messageId = headerValue(input.raw, 'message-id') ?? '';
    const inReplyTo = headerValue(input.raw, 'in-reply-to');
    const references = headerValue(input.raw, 'references', RELAY_REFERENCES_CHARS);
    // Like an API reply: a relayed answer (a ticket system's) joins the conversation it answers.
    const { conversationId } = await resolveConversation(
      { messageId: messageId || null, inReplyTo: inReplyTo ? (msgIdsOf(inReplyTo)[0] ?? null) : null, references: references ? msgIdsOf(references) : [], id },
      (key) => this.#deps.store.messages.conversationOf(key),
    );
    const result = await this.#deps.store.outbox.enqueue({
      id,
      account: input.account,
      idempotencyKey: null,
      requestJson: JSON.stringify({ relay: { client: input.client } }),
      messageId,
      messageIdKey: messageIdKey(messageId),
      conversationId,
      now: input.now,
      raw: { envelope: { from: input.envelope.from, to: [...input.envelope.to] }, message: input.raw },
    });
    this.#deps.onQueued();
    return { id: result.record.id };
  }

  async #loopGuard(account: AccountConfig, from: string, req: SendRequest): Promise<void> {
    const own = new Set([account.email.toLowerCase(), bareAddress(from)]);
    const self = recipientAddresses(req).find((a) => own.has(a));
    if (self) throw new MailgateError('LOOP_GUARD', `refused: ${self} is this account's own address, so the reply would be fetched and sent again`);
    if (req.inReplyTo && !req.force) {
      const original = await this.#deps.store.messages.findByMessageId(account.name, req.inReplyTo);
      if (original?.autoSubmitted) {
        throw new MailgateError(
          'LOOP_GUARD',
          `refused: ${req.inReplyTo} is an automatic message (auto-reply, bounce or bulk), and answering it can start a mail loop; send with "force": true to reply anyway`,
        );
      }
    }
  }

  async get(id: string): Promise<OutboxRecord> {
    const r = await this.#deps.store.outbox.get(id);
    if (!r) throw new MailgateError('NOT_FOUND', `no outgoing message ${id}`);
    return r;
  }

  /** Sends a failed message again (admin decision, e.g. after an uncertain stop). */
  async retry(id: string): Promise<OutboxRecord> {
    const r = await this.get(id);
    if (r.status !== 'failed') throw new MailgateError('CONFLICT', `outgoing message ${id} is ${outboxView(r).status}, not failed`);
    await this.#deps.store.outbox.requeue(id, Date.now());
    this.#deps.onQueued();
    return this.get(id);
  }
}

export interface OutboxWorkerDeps {
  store: Store;
  config: () => Config;
  tokens: TokenProvider;
  logger: Logger;
  metrics: Metrics;
  random?: () => number;
  /**
   * The accounts this node holds (the cluster coordinator): only their
   * messages are claimed, under their fences, and rows left `sending` are
   * failed by the coordinator when it takes an account (not at start).
   */
  fences?: FenceSource;
  /** The connection history (the admin UI's account page): told whether each send worked. */
  history?: Pick<ConnectionHistoryRecorder, 'note'>;
}

/**
 * Drains the outbox: one SmtpSender (pooled connections) per account, a
 * bounded number of messages in flight per account and in all. The row is
 * `sending` before the SMTP transaction starts, so a crash leaves a visible
 * "uncertain" instead of a silent duplicate.
 */
export class OutboxWorker implements Component {
  readonly name = 'outbox';
  readonly #deps: OutboxWorkerDeps;
  readonly #senders = new Map<string, { out: string; sender: SmtpSender }>();
  readonly #inFlight = new Map<string, number>();
  #rawInFlight = 0;
  readonly #running = new Set<Promise<void>>();
  /** In-flight sends per account (drain() waits for them before the account is handed over). */
  readonly #runningFor = new Map<string, Set<Promise<void>>>();
  /** Whether the last pass claimed anything (settle then knows whether due rows wait for slots). */
  #claimedLast = false;
  readonly #pump: SerialPump = new SerialPump({
    pass: () => this.#pass(),
    settle: async () => {
      const next = await this.#deps.store.outbox.nextDueAt();
      // Due, but the last pass could claim nothing (every due account's send slots are
      // full): re-arming at once would spin until a send finishes, which wakes the pump.
      const busy = [...this.#inFlight.values()].some((n) => n > 0);
      if (next !== null && next <= Date.now() && !this.#claimedLast && busy) this.#pump.armAt(null);
      else this.#pump.armAt(next);
    },
    onError: (err) => this.#deps.logger.error({ err, component: 'outbox' }, 'outbox scan failed; retrying'),
    idleRecheckMs: IDLE_RECHECK_MS,
  });

  constructor(deps: OutboxWorkerDeps) {
    this.#deps = deps;
  }

  async start(): Promise<void> {
    if (!this.#deps.fences) {
      const ids = await this.#deps.store.outbox.failInterrupted(INTERRUPTED_REASON, Date.now());
      for (const id of ids) {
        this.#deps.logger.warn({ component: 'outbox', outbox: id }, 'a message was being sent when mailgate stopped; marked failed (uncertain), not resent');
      }
    }
    this.#pump.start();
  }

  /** Resolves once no send of the account is in flight (its lease is about to be given up). */
  async drain(account: string): Promise<void> {
    const running = this.#runningFor.get(account);
    if (running && running.size > 0) await Promise.allSettled([...running]);
  }

  async stop(): Promise<void> {
    this.#pump.stop();
    let grace: NodeJS.Timeout | undefined;
    await Promise.race([Promise.allSettled([...this.#running]), new Promise((r) => (grace = setTimeout(r, STOP_GRACE_MS)))]);
    clearTimeout(grace);
    for (const s of this.#senders.values()) s.sender.close();
    this.#senders.clear();
  }

  async reconfigure(): Promise<void> {
    // Changed or removed outgoing servers get a new pool on the next send.
    for (const [name, s] of this.#senders) {
      const acc = accountNamed(this.#deps.config(), name);
      if (!acc?.outgoing || JSON.stringify(acc.outgoing) !== s.out) {
        s.sender.close();
        this.#senders.delete(name);
      }
    }
    this.wake();
  }

  wake(): void {
    this.#pump.wake();
  }

  /** Claims due messages into free send slots; true when it claimed some (there may be more). */
  async #pass(): Promise<boolean> {
    this.#claimedLast = false;
    const total = [...this.#inFlight.values()].reduce((a, b) => a + b, 0);
    const free = TOTAL_IN_FLIGHT - total;
    if (free <= 0) return false;
    const room = {
      perAccount: PER_ACCOUNT_IN_FLIGHT,
      inFlight: this.#inFlight,
      rawBytes: { budget: RAW_IN_FLIGHT_BYTES, inFlight: this.#rawInFlight },
    };
    const fences = this.#deps.fences?.owned();
    const claimed = await this.#deps.store.outbox.claimDue(Date.now(), free, room, fences);
    for (const r of claimed) this.#launch(r);
    this.#claimedLast = claimed.length > 0;
    return claimed.length > 0;
  }

  #launch(r: OutboxRecord): void {
    this.#inFlight.set(r.account, (this.#inFlight.get(r.account) ?? 0) + 1);
    this.#rawInFlight += r.rawBytes ?? 0;
    const p = this.#send(r)
      .catch((err: unknown) => this.#deps.logger.error({ err, outbox: r.id, component: 'outbox' }, 'send attempt crashed'))
      .finally(() => {
        const n = (this.#inFlight.get(r.account) ?? 1) - 1;
        if (n > 0) this.#inFlight.set(r.account, n);
        else this.#inFlight.delete(r.account);
        this.#rawInFlight -= r.rawBytes ?? 0;
        this.#running.delete(p);
        this.#runningFor.get(r.account)?.delete(p);
        this.wake();
      });
    this.#running.add(p);
    let forAccount = this.#runningFor.get(r.account);
    if (!forAccount) {
      forAccount = new Set();
      this.#runningFor.set(r.account, forAccount);
    }
    forAccount.add(p);
  }

  #sender(account: AccountConfig, out: NonNullable<AccountConfig['outgoing']>): SmtpSender {
    const key = JSON.stringify(out);
    const cached = this.#senders.get(account.name);
    if (cached?.out === key) return cached.sender;
    cached?.sender.close();
    const sender = new SmtpSender(account.name, out, this.#deps.tokens);
    this.#senders.set(account.name, { out: key, sender });
    return sender;
  }

  async #send(r: OutboxRecord): Promise<void> {
    const { store, metrics } = this.#deps;
    const log = this.#deps.logger.child({ component: 'outbox', account: r.account, outbox: r.id });
    const now = () => Date.now();
    let target: ReturnType<typeof outgoingOf>;
    try {
      target = outgoingOf(this.#deps.config(), r.account);
    } catch (err) {
      await store.outbox.markFailed(r.id, describeError(err), now());
      metrics.outbox.inc({ account: r.account, outcome: 'failed' });
      return;
    }
    let mail: SendMailOptions;
    if (r.envelope) {
      const raw = await store.outbox.getRaw(r.id);
      if (!raw) {
        await store.outbox.markFailed(r.id, 'the stored message bytes are missing, so there is nothing to send', now());
        metrics.outbox.inc({ account: r.account, outcome: 'failed' });
        return;
      }
      // Sent as the application wrote it: nodemailer adds nothing to `raw`, and the envelope carries every recipient (Bcc too).
      mail = { envelope: { from: r.envelope.from, to: r.envelope.to }, raw };
    } else {
      mail = mailOptions(r, JSON.parse(r.requestJson) as SendRequest, target.out.from);
    }
    try {
      const reply = await this.#sender(target.account, target.out).send(mail);
      await store.outbox.markSent(r.id, now());
      metrics.outbox.inc({ account: r.account, outcome: 'sent' });
      await store.accountStatus.update(r.account, 'outgoing', { state: 'ok', lastSuccessAt: now(), lastError: null }, now());
      void this.#deps.history?.note(r.account, 'outgoing', 'ok', null);
      log.info({ messageId: r.messageId, attempts: r.attempts, reply }, 'message sent');
    } catch (err) {
      const failure = classifySmtpError(err);
      await store.accountStatus.update(r.account, 'outgoing', { state: 'error', lastError: failure.message }, now());
      void this.#deps.history?.note(r.account, 'outgoing', 'error', failure.message);
      if (failure.kind === 'permanent' || r.attempts >= SEND_MAX_ATTEMPTS) {
        await store.outbox.markFailed(r.id, failure.message, now());
        metrics.outbox.inc({ account: r.account, outcome: 'failed' });
        log.warn({ error: failure.message, attempts: r.attempts }, 'message failed; not retrying');
        return;
      }
      const delay = computeBackoff(r.attempts, SEND_BACKOFF, this.#deps.random);
      await store.outbox.markRetry(r.id, failure.message, now() + delay, now());
      metrics.outbox.inc({ account: r.account, outcome: 'retry' });
      log.info({ error: failure.message, attempts: r.attempts, retryInMs: delay }, 'send failed; retrying later');
    }
  }
}

/** The nodemailer message for a stored request; `Message-ID` is ours, so a retry carries the same one. */
export function mailOptions(r: OutboxRecord, req: SendRequest, defaultFrom: string): SendMailOptions {
  const opts: SendMailOptions = {
    from: req.from ?? defaultFrom,
    to: req.to,
    cc: req.cc,
    bcc: req.bcc,
    subject: req.subject,
    messageId: r.messageId,
    date: new Date(r.createdAt),
    headers: req.headers,
    attachments: req.attachments.map((a) => ({
      filename: a.filename,
      contentType: a.contentType,
      content: Buffer.from(a.content, 'base64'),
      ...(a.contentId ? { cid: a.contentId } : {}),
    })),
  };
  if (req.replyTo !== undefined) opts.replyTo = req.replyTo;
  if (req.text !== undefined) opts.text = req.text;
  if (req.html !== undefined) opts.html = req.html;
  if (req.inReplyTo !== undefined) opts.inReplyTo = req.inReplyTo;
  if (req.references.length > 0) opts.references = req.references;
  return opts;
}
