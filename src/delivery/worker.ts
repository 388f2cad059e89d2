import type { Component } from '../runtime/component.js';
import type { AccountConfig, Config, WebhookConfig } from '../config/types.js';
import { describeError, MailgateError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { RenderFn } from '../parse/parse-pool.js';
import { summarizeHeaders, type HeaderSummary, type MessageEnvelope } from '../parse/parse-message.js';
import type { DeliveryRecord, EventName } from '../store/deliveries.js';
import type { StoredMessageInfo } from '../store/messages.js';
import { originFields, unknownOrigin, type MessageOrigin } from '../store/origin.js';
import type { Store } from '../store/store.js';
import { computeBackoff } from '../runtime/backoff.js';
import type { RawHandoff } from './handoff.js';
import type { WebhookResult } from './webhook.js';
import { postWebhook } from './webhook.js';
import { createSigner, type Signer } from './signing.js';

/** One Signer per webhook config object (a reload makes new objects, and so new signers). */
const signers = new WeakMap<WebhookConfig, Signer>();
function signerOf(wh: WebhookConfig): Signer {
  let s = signers.get(wh);
  if (!s) {
    s = createSigner(wh.signature, wh.secrets.length > 0 ? wh.secrets : [wh.secret]);
    signers.set(wh, s);
  }
  return s;
}
import { SerialPump } from '../runtime/serial-pump.js';
import { accountNamed } from '../config/lookup.js';

export interface DeliveryWorkerDeps {
  store: Store;
  config: () => Config;
  logger: Logger;
  metrics: Metrics;
  /** Raw message → `message.received` body (parse threads, or inline). */
  render: RenderFn;
  /** What the header block of a message that was not downloaded says (default: read on this thread). */
  summarize?: (headers: Buffer) => Promise<HeaderSummary>;
  /** Messages just stored by the ingest step, to skip reading them back (optional). */
  handoff?: RawHandoff;
  /** A message's webhook acknowledged it and its afterDelivery is now due on the server. */
  onAckDue: (account: string) => void;
  /** False while the database is full: nothing is claimed (an outcome could not be recorded). */
  accepting?: () => boolean;
  post?: typeof postWebhook;
  random?: () => number;
  /**
   * Several replicas work one queue: deliveries are claimed in the store
   * for this node (DeliveryRepo.claimDue with a claim), so each is posted
   * by one node, and only as many as there are free slots (nothing claimed
   * waits in memory while another node could post it). Unset: one node.
   */
  claimOwner?: string;
}

/**
 * A claim lasts as long as one attempt can: building the body (the parse
 * deadline, 30 s by default) and the post (the webhook's timeout), plus
 * 10 s. A node that died mid-attempt holds its deliveries that long at most.
 */
export function claimDurationMs(webhookTimeoutMs: number, parseDeadlineMs = 30_000): number {
  return parseDeadlineMs + webhookTimeoutMs + 10_000;
}

/** While idle, look for due retries at least this often (timers may be coarse). */
const IDLE_RECHECK_MS = 5_000;
/** A delivery whose webhook vanished from the config waits this long before trying again. */
const MISSING_WEBHOOK_DELAY_MS = 60_000;
/** stop() waits this long for in-flight posts; anything unfinished stays pending and is redelivered. */
const STOP_GRACE_MS = 3_000;
const QUEUE_GAUGE_INTERVAL_MS = 5_000;
/**
 * A message whose body could not be built this many times (its parse thread
 * died, ran out of memory or overran the deadline) is reported as
 * message.failed instead of being parsed again.
 */
export const RENDER_FAILURE_LIMIT = 3;
/** A delivery whose attempt crashed before its outcome was stored is not claimed again for this long. */
const CRASH_COOLDOWN_MS = 30_000;
/**
 * Due deliveries read per query and kept ready per webhook. A backlog then
 * costs one query per this many deliveries instead of one per delivery (the
 * per-completion query was a tenth of the database time in the ingest profile).
 */
const CLAIM_BATCH = 64;

/** A delivery's body, and where its message came from (null for an account event). */
interface Built {
  event: EventName;
  body: string | Buffer;
  origin: MessageOrigin | null;
}

/**
 * Drains the deliveries table: builds each event's body (parsing the stored
 * raw message), signs and posts it, and records the outcome. Concurrency is
 * bounded per webhook, so a slow webhook only holds its own slots.
 */
export class DeliveryWorker implements Component {
  readonly name = 'delivery';
  readonly #deps: DeliveryWorkerDeps;
  readonly #inFlight = new Map<string, Set<string>>(); // webhook -> delivery ids
  readonly #allInFlight = new Set<string>();
  /** Claimed due deliveries, per webhook, in due order, waiting for a free slot. */
  readonly #ready = new Map<string, DeliveryRecord[]>();
  readonly #running = new Set<Promise<void>>();
  readonly #pump: SerialPump = new SerialPump({
    pass: () => this.#pass(),
    settle: () => this.#settle(),
    onError: (err) => this.#deps.logger.error({ err, component: 'delivery' }, 'delivery queue scan failed; retrying'),
    idleRecheckMs: IDLE_RECHECK_MS,
  });
  #gaugeTimer: NodeJS.Timeout | null = null;
  /** Whether a pass of the current run queried the store (settle then re-times the wake-up). */
  #queried = false;
  /** Whether a pass of the current run claimed deliveries that were not in flight yet. */
  #claimedNew = false;
  #lastOrphanScan = 0;
  /** Deliveries whose attempt crashed without a stored outcome, and when they may be claimed again. */
  readonly #cooldown = new Map<string, number>();

  constructor(deps: DeliveryWorkerDeps) {
    this.#deps = deps;
  }

  async start(): Promise<void> {
    this.#gaugeTimer = setInterval(() => void this.#updateGauges(), QUEUE_GAUGE_INTERVAL_MS);
    this.#gaugeTimer.unref();
    this.#pump.start();
  }

  async stop(): Promise<void> {
    this.#pump.stop();
    this.#ready.clear();
    if (this.#gaugeTimer) clearInterval(this.#gaugeTimer);
    this.#gaugeTimer = null;
    if (this.#running.size === 0) return;
    let grace: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.allSettled([...this.#running]),
      new Promise((r) => {
        grace = setTimeout(r, STOP_GRACE_MS);
      }),
    ]);
    clearTimeout(grace);
  }

  async reconfigure(): Promise<void> {
    this.#ready.clear(); // webhooks may be gone or renamed: claim afresh
    this.wake();
  }

  /** Something was queued or retried: look at the queue soon. */
  wake(): void {
    this.#pump.wake();
  }

  /** Number of deliveries being posted right now (for tests and status). */
  get inFlight(): number {
    return this.#allInFlight.size;
  }

  /** Launches due deliveries into free slots, per webhook. */
  async #pass(): Promise<void> {
    if (this.#deps.accepting && !this.#deps.accepting()) return;
    const now = Date.now();
    for (const wh of this.#deps.config().webhooks) {
      const slots = this.#slots(wh.name);
      const free = wh.concurrency - slots.size;
      if (free <= 0) continue;
      let ready = this.#ready.get(wh.name) ?? [];
      if (ready.length < free) {
        const exclude = new Set(this.#allInFlight);
        for (const d of ready) exclude.add(d.id);
        for (const [id, until] of this.#cooldown) {
          if (until > now) exclude.add(id);
          else this.#cooldown.delete(id);
        }
        const owner = this.#deps.claimOwner;
        const claimed = owner
          ? await this.#deps.store.deliveries.claimDue(wh.name, now, free - ready.length, exclude, { owner, until: now + claimDurationMs(wh.timeoutMs) })
          : await this.#deps.store.deliveries.claimDue(wh.name, now, Math.max(CLAIM_BATCH, free), exclude);
        if (claimed.length > 0) this.#claimedNew = true;
        ready = ready.concat(claimed);
        this.#queried = true;
      }
      for (const d of ready.splice(0, free)) this.#launch(wh, d, slots);
      this.#ready.set(wh.name, ready);
    }
  }

  async #settle(): Promise<void> {
    const now = Date.now();
    // Paused on a full disk: look again later (a resume wakes the pump at once).
    if (this.#deps.accepting && !this.#deps.accepting()) {
      this.#pump.armAt(now + IDLE_RECHECK_MS);
      return;
    }
    const queried = this.#queried;
    const claimedNew = this.#claimedNew;
    this.#queried = false;
    this.#claimedNew = false;
    if (now - this.#lastOrphanScan >= IDLE_RECHECK_MS) {
      this.#lastOrphanScan = now;
      await this.#orphans(now);
    }
    // Without a query there is nothing new to time: a completion wakes the pump again.
    if (!queried && this.#allInFlight.size > 0) return;
    const next = await this.#deps.store.deliveries.nextDueAt();
    // Due, but nothing new could be claimed: what is due is in flight (a slow post, a long
    // parse). Re-arming at once would spin claim queries until it finishes; its completion
    // wakes the pump instead.
    if (next !== null && next <= now && !claimedNew && this.#allInFlight.size > 0) this.#pump.armAt(null);
    else this.#pump.armAt(next);
  }

  /** Deliveries whose webhook is no longer configured wait, visibly, instead of spinning. */
  async #orphans(now: number): Promise<void> {
    const known = new Set(this.#deps.config().webhooks.map((w) => w.name));
    const pending = await this.#deps.store.deliveries.list({ status: 'pending', limit: 100 });
    for (const d of pending) {
      if (known.has(d.webhook) || d.nextAttemptAt > now) continue;
      await this.#deps.store.deliveries.markRetry(
        d.id,
        { attempts: d.attempts, status: null, error: `webhook ${d.webhook} is not configured`, responseExcerpt: null, now },
        now + MISSING_WEBHOOK_DELAY_MS,
      );
    }
  }

  #slots(webhook: string): Set<string> {
    let s = this.#inFlight.get(webhook);
    if (!s) {
      s = new Set();
      this.#inFlight.set(webhook, s);
    }
    return s;
  }

  #launch(wh: WebhookConfig, d: DeliveryRecord, slots: Set<string>): void {
    slots.add(d.id);
    this.#allInFlight.add(d.id);
    const p = this.#deliver(wh, d)
      .catch((err: unknown) => {
        // The outcome could not be stored (the database failed): never claim it again at once.
        this.#cooldown.set(d.id, Date.now() + CRASH_COOLDOWN_MS);
        this.#deps.logger.error({ err, delivery: d.id, component: 'delivery' }, 'delivery attempt crashed; trying it again later');
      })
      .finally(() => {
        slots.delete(d.id);
        this.#allInFlight.delete(d.id);
        this.#running.delete(p);
        this.wake();
      });
    this.#running.add(p);
  }

  async #deliver(wh: WebhookConfig, d: DeliveryRecord): Promise<void> {
    const { store, metrics, logger } = this.#deps;
    const log = logger.child({ component: 'delivery', account: d.account, delivery: d.id });
    const account = accountNamed(this.#deps.config(), d.account);
    let built: Built;
    try {
      built = await this.#buildBody(wh, d, log);
    } catch (err) {
      await this.#renderFailed(wh, d, err, log);
      return;
    }
    const post = this.#deps.post ?? postWebhook;
    const result: WebhookResult = await post({
      url: wh.url,
      signer: signerOf(wh),
      event: built.event,
      deliveryId: d.id,
      body: built.body,
      timeoutMs: wh.timeoutMs,
    });
    const now = Date.now();
    const attempts = d.attempts + 1;
    const outcome = {
      attempts,
      status: result.status,
      error: result.error,
      responseExcerpt: result.responseExcerpt || null,
      now,
    };
    if (result.ok) {
      // A message that was not downloaded stays on the server untouched (its server_ack is already 'none').
      const serverAck = built.origin !== null && needsServerAck(built.origin, account) ? 'due' : 'none';
      await store.deliveries.markDelivered(d.id, outcome, serverAck);
      metrics.deliveries.inc({ webhook: wh.name, event: built.event, outcome: 'delivered' });
      metrics.deliveryLatency.observe({ webhook: wh.name }, (now - d.createdAt) / 1000);
      log.debug({ attempts, status: result.status }, 'delivered');
      if (serverAck === 'due') this.#deps.onAckDue(d.account);
      return;
    }
    if (result.failure === 'permanent' || attempts >= wh.maxAttempts) {
      await store.deliveries.markFailed(d.id, outcome);
      metrics.deliveries.inc({ webhook: wh.name, event: built.event, outcome: 'failed' });
      log.warn(
        { attempts, status: result.status, error: result.error },
        result.failure === 'permanent' ? 'webhook refused the delivery; parked as failed' : 'delivery parked as failed after the last attempt',
      );
      return;
    }
    const backoff = computeBackoff(attempts, wh.backoff, this.#deps.random ?? Math.random);
    const hinted = result.retryAfterMs !== null ? Math.min(result.retryAfterMs, wh.backoff.maxMs) : 0;
    const delay = Math.max(backoff, hinted);
    await store.deliveries.markRetry(d.id, outcome, now + delay);
    metrics.deliveries.inc({ webhook: wh.name, event: built.event, outcome: 'retry' });
    log.info({ attempts, status: result.status, error: result.error, failure: result.failure, retryInMs: delay }, 'delivery failed; will retry');
  }

  async #buildBody(wh: WebhookConfig, d: DeliveryRecord, log: Logger): Promise<Built> {
    const { store } = this.#deps;
    if (d.messageRef === null) return { event: d.event, body: d.payloadJson ?? '{}', origin: null };
    // Reported as failed before (unparseable, or given up after failed builds): the stored body, no re-parse.
    if (d.event === 'message.failed' && d.payloadJson !== null) {
      return { event: 'message.failed', body: d.payloadJson, origin: (await store.messages.get(d.messageRef))?.origin ?? null };
    }
    const stored = this.#deps.handoff?.take(d.messageRef) ?? (await store.messages.getWithRaw(d.messageRef));
    if (!stored) throw new MailgateError('INTERNAL', `message ${d.messageRef} of delivery ${d.id} is missing`);
    const { info, raw } = stored;
    if (info.notDownloaded !== null) {
      // Over maxMessageSize (or its download kept failing): reported from its headers, once.
      const summary = await (this.#deps.summarize ?? summarizeHeaders)(raw);
      const body = JSON.stringify(failedPayload(info, 'too_large', info.notDownloaded, summary));
      await store.deliveries.setEvent(d.id, 'message.failed', body);
      return { event: 'message.failed', body, origin: info.origin };
    }
    try {
      // The raw bytes are not used after this: the thread may take them over.
      const account = accountNamed(this.#deps.config(), info.account);
      const options = {
        maxInlineAttachmentBytes: wh.maxInlineAttachmentBytes,
        maxBodyBytes: wh.maxBodyBytes,
        issueKeyPattern: wh.issueKeyPattern,
        ownAddresses: account ? [account.email] : [],
      };
      const body = await this.#deps.render(raw, envelopeOf(info), options, { transfer: true });
      return { event: 'message.received', body, origin: info.origin };
    } catch (err) {
      if (!(err instanceof MailgateError && err.code === 'PARSE_FAILED')) throw err;
      // A malformed message is reported as message.failed, never blocking the queue.
      const reason = err.details?.reason === 'too_large' ? 'too_large' : 'malformed';
      const body = JSON.stringify(failedPayload(info, reason, describeError(err)));
      await store.deliveries.setEvent(d.id, 'message.failed', body);
      log.warn({ error: describeError(err), reason }, 'message could not be parsed; sending message.failed');
      return { event: 'message.failed', body, origin: info.origin };
    }
  }

  /**
   * Building the body failed this time (thread died, out of memory, over the
   * deadline, or the message is gone): the attempt counts, with backoff;
   * after RENDER_FAILURE_LIMIT such failures the message is reported once
   * as message.failed and its raw bytes stay (GET /v1/messages/{id}/raw).
   */
  async #renderFailed(wh: WebhookConfig, d: DeliveryRecord, err: unknown, log: Logger): Promise<void> {
    const { store, metrics } = this.#deps;
    const now = Date.now();
    const failures = d.renderFailures + 1;
    const giveUp = failures >= RENDER_FAILURE_LIMIT;
    const error = `could not build the webhook body (${failures} of ${RENDER_FAILURE_LIMIT}): ${describeError(err)}`;
    const delay = giveUp ? 0 : computeBackoff(failures, wh.backoff, this.#deps.random ?? Math.random);
    await store.deliveries.markRenderFailed(d.id, { attempts: d.attempts + 1, status: null, error, responseExcerpt: null, now }, now + delay);
    metrics.deliveries.inc({ webhook: wh.name, event: d.event, outcome: 'render_failed' });
    if (!giveUp) {
      log.warn({ error: describeError(err), failures, retryInMs: delay }, 'could not build the webhook body; will try again');
      return;
    }
    const info = d.messageRef !== null ? await store.messages.get(d.messageRef) : null;
    if (!info) {
      log.error({ error: describeError(err) }, 'could not build the webhook body and the message is gone');
      return;
    }
    const reason = err instanceof MailgateError && err.details?.reason === 'too_large' ? 'too_large' : 'malformed';
    const body = failedPayload(info, reason, `gave up after ${failures} failed attempts to parse it: ${describeError(err)}`);
    await store.deliveries.setEvent(d.id, 'message.failed', JSON.stringify(body));
    log.warn({ error: describeError(err), failures, reason }, 'could not build the webhook body repeatedly; sending message.failed');
  }

  async #updateGauges(): Promise<void> {
    try {
      const counts = await this.#deps.store.deliveries.countByStatus();
      for (const [status, n] of Object.entries(counts)) this.#deps.metrics.queueDepth.set({ status }, n);
    } catch {
      // the store is closing; the next tick or nobody will care
    }
  }
}

/** The envelope of a stored message: what the payload says about where it came from. */
function envelopeOf(info: StoredMessageInfo): MessageEnvelope {
  return { id: info.id, account: info.account, origin: info.origin, conversationId: info.conversationId };
}

/** The `message.failed` body (contract: mailbox, uid/uidl, messageId when readable, size, error, reason). */
export function failedPayload(info: StoredMessageInfo, reason: 'malformed' | 'too_large', error: string, headers?: HeaderSummary): Record<string, unknown> {
  const read = headers ? { subject: headers.subject, from: headers.from } : {};
  const where = originFields(info.origin);
  // The conversation is known from the ingest step (contract v2: "where known, of message.failed").
  const thread = info.conversationId !== null ? { conversationId: info.conversationId } : {};
  return { event: 'message.failed', id: info.id, account: info.account, ...where, messageId: info.messageId ?? headers?.messageId ?? null, ...read, size: info.size, reason, error, ...thread };
}

/**
 * Whether a delivered message needs an action on its mail server, by where
 * it came from. POP3 has no flags: only `delete` acts there (`seen` and
 * `none` rely on the UIDL table). An account no longer configured: nothing.
 */
export function needsServerAck(origin: MessageOrigin, account: AccountConfig | undefined): boolean {
  if (!account) return false;
  const after = account.incoming.afterDelivery;
  if (after === 'none') return false;
  switch (origin.kind) {
    case 'imap':
      return true;
    case 'pop3':
      return after === 'delete';
    default:
      return unknownOrigin(origin);
  }
}
