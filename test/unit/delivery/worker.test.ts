import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { AccountConfig, Config, WebhookConfig } from '../../../src/config/types.js';
import { RawHandoff } from '../../../src/delivery/handoff.js';
import { DeliveryWorker } from '../../../src/delivery/worker.js';
import { IngestService } from '../../../src/incoming/ingest.js';
import type { FetchedMessage } from '../../../src/incoming/source.js';
import { createLogger } from '../../../src/log.js';
import { createMetrics } from '../../../src/metrics.js';
import { inspectMessage } from '../../../src/parse/auto-submitted.js';
import { renderMessageReceived } from '../../../src/parse/parse-message.js';
import type { RenderFn } from '../../../src/parse/parse-pool.js';
import { MailgateError } from '../../../src/errors.js';
import { SecretCipher } from '../../../src/secrets/cipher.js';
import { SqliteStore } from '../../../src/store/sqlite/sqlite-store.js';
import { until } from '../../harness/until.js';

/*
 * The delivery worker on a real (in-memory) SQLite store, posting over HTTP
 * to a real local receiver: what the queue reads and what arrives.
 */
const metrics = createMetrics();
const logger = createLogger({ level: 'silent' });
let server: Server;
let url = '';
const received: { delivery: string; body: string }[] = [];
/** The receiver answers 503 to this many posts before acknowledging again. */
const refuse = { n: 0 };
/** The receiver waits this long before answering. */
const delay = { ms: 0 };

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      if (delay.ms > 0) await new Promise((r) => setTimeout(r, delay.ms));
      if (refuse.n > 0) {
        refuse.n--;
        res.writeHead(503).end();
        return;
      }
      received.push({ delivery: String(req.headers['x-mailgate-delivery']), body: Buffer.concat(chunks).toString() });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

let running: { worker: DeliveryWorker; store: SqliteStore } | null = null;
afterEach(async () => {
  await running?.worker.stop();
  await running?.store.close();
  running = null;
  received.length = 0;
  delay.ms = 0;
});

function setup(handoff?: RawHandoff, opts: { render?: RenderFn; backoffMs?: number } = {}) {
  const store = SqliteStore.open(':memory:', new SecretCipher(randomBytes(32)));
  const webhook: WebhookConfig = {
    name: 'pipeline',
    url,
    secret: 'whsec',
    secrets: ['whsec'],
    signature: 'mailgate',
    issueKeyPattern: null,
    maxAttempts: 3,
    backoff: { initialMs: opts.backoffMs ?? 1_000, maxMs: Math.max(opts.backoffMs ?? 5_000, 5_000) },
    timeoutMs: 5_000,
    maxInlineAttachmentBytes: 10 * 1024 * 1024,
    maxBodyBytes: 25 * 1024 * 1024,
    concurrency: 4,
  };
  const account = { name: 'support', webhook: 'pipeline', incoming: { protocol: 'imap', afterDelivery: 'none' } } as unknown as AccountConfig;
  const config = () => ({ webhooks: [webhook], accounts: [account] }) as unknown as Config;
  const claims = { n: 0 };
  const reads = { n: 0 };
  const claimDue = store.deliveries.claimDue.bind(store.deliveries);
  store.deliveries.claimDue = (...args) => {
    claims.n++;
    return claimDue(...args);
  };
  const getWithRaw = store.messages.getWithRaw.bind(store.messages);
  store.messages.getWithRaw = (id) => {
    reads.n++;
    return getWithRaw(id);
  };
  const worker = new DeliveryWorker({ store, config, logger, metrics, render: opts.render ?? ((raw, env, limits) => renderMessageReceived(raw, env, limits)), handoff, onAckDue: () => undefined });
  const ingest = new IngestService({ store, config, metrics, inspect: inspectMessage, onQueued: () => worker.wake(), handoff });
  running = { worker, store };
  return { store, worker, ingest, claims, reads };
}

const message = (uid: number): FetchedMessage => ({
  account: 'support',
  origin: { kind: 'imap', mailbox: 'INBOX', uid, uidValidity: 1 },
  internalDate: null,
  raw: Buffer.from(`From: c${uid}@example.com\r\nSubject: ticket ${uid}\r\nMessage-ID: <t${uid}@example.com>\r\n\r\nbody ${uid}\r\n`),
});

describe('delivery worker', () => {
  it('drains a backlog of 300 once each, claiming due deliveries in batches rather than one query per delivery', async () => {
    const { worker, ingest, claims } = setup();
    await ingest.ingestMany(Array.from({ length: 300 }, (_, i) => message(i + 1)));
    await worker.start();
    await until(() => received.length >= 300);
    await new Promise((r) => setTimeout(r, 200)); // nothing more may arrive
    expect(received).toHaveLength(300);
    expect(new Set(received.map((r) => r.delivery)).size).toBe(300);
    expect(claims.n).toBeLessThan(30); // one query per delivery would be 300+
    const counts = await running!.store.deliveries.countByStatus();
    expect(counts).toMatchObject({ pending: 0, delivered: 300, failed: 0 });
  }, 30_000); // 300 parses on the test's own thread, on a shared machine

  it('takes freshly stored messages from the handoff instead of reading them back, with the same bodies', async () => {
    const withHandoff = setup(new RawHandoff());
    await withHandoff.worker.start();
    await withHandoff.ingest.ingestMany(Array.from({ length: 20 }, (_, i) => message(i + 1)));
    await until(() => received.length >= 20);
    expect(withHandoff.reads.n).toBe(0);
    const viaHandoff = received.map((r) => JSON.parse(r.body) as { subject: string; id: string }).sort((a, b) => a.id.localeCompare(b.id));
    await running!.worker.stop();
    await running!.store.close();
    received.length = 0;

    const full = setup(new RawHandoff({ maxBytes: 0 })); // nothing fits: every raw is read from the store
    await full.worker.start();
    await full.ingest.ingestMany(Array.from({ length: 20 }, (_, i) => message(i + 1)));
    await until(() => received.length >= 20);
    expect(full.reads.n).toBe(20);
    const viaStore = received.map((r) => JSON.parse(r.body) as { subject: string; id: string }).sort((a, b) => a.id.localeCompare(b.id));
    expect(viaHandoff).toEqual(viaStore);
    expect(viaStore[0]?.subject).toMatch(/^ticket /);
  });
});

describe('delivery worker while a post is in flight', () => {
  it('does not spin claim queries while the only due delivery is being posted (it waits for the completion)', async () => {
    const { worker, ingest, claims } = setup();
    delay.ms = 1_500;
    await ingest.ingestMany([message(1)]);
    await worker.start();
    await until(() => received.length >= 1, 10_000);
    // One claim to start, one after the completion, a few idle rechecks at most: not one per tick for 1.5 s.
    expect(claims.n).toBeLessThan(10);
  });
});

describe('delivery worker and bodies that cannot be built', () => {
  it('counts every failed build as an attempt with backoff, then reports message.failed once, never re-claiming at once', async () => {
    const renders = { n: 0 };
    const render: RenderFn = async (raw, env, limits) => {
      if (env.origin.kind === 'imap' && env.origin.uid === 1) {
        renders.n++;
        throw new MailgateError('RENDER_FAILED', 'the parse thread ran out of memory', { details: { reason: 'too_large' } });
      }
      return renderMessageReceived(raw, env, limits);
    };
    const { worker, ingest, store } = setup(undefined, { render, backoffMs: 50 });
    await ingest.ingestMany([message(1), message(2)]);
    await worker.start();
    await until(() => received.length >= 2, 10_000, 'both deliveries');
    await new Promise((r) => setTimeout(r, 300));
    expect(renders.n).toBe(3);
    const failed = received.find((r) => JSON.parse(r.body).event === 'message.failed');
    expect(JSON.parse(failed?.body ?? '{}')).toMatchObject({
      event: 'message.failed',
      uid: 1,
      reason: 'too_large',
      messageId: '<t1@example.com>',
      error: expect.stringContaining('gave up after 3 failed attempts'),
    });
    // The other message was not held up, and the failed one is delivered (as message.failed) exactly once.
    expect(received.filter((r) => JSON.parse(r.body).event === 'message.received')).toHaveLength(1);
    expect(received).toHaveLength(2);
    const d = (await store.deliveries.list({})).find((x) => x.event === 'message.failed');
    expect(d).toMatchObject({ status: 'delivered', attempts: 4, renderFailures: 3 });
  });

  it('reports an unparseable message as message.failed with reason malformed and does not parse it again on a retry', async () => {
    const renders = { n: 0 };
    const render: RenderFn = async () => {
      renders.n++;
      throw new MailgateError('PARSE_FAILED', 'the message does not start with a header field');
    };
    const { worker, ingest, store } = setup(undefined, { render, backoffMs: 50 });
    refuse.n = 2; // two webhook failures: the body is posted three times
    await ingest.ingestMany([message(7)]);
    await worker.start();
    await until(() => received.length >= 1);
    expect(JSON.parse(received[0]?.body ?? '{}')).toMatchObject({ event: 'message.failed', reason: 'malformed', uid: 7 });
    const [d] = await store.deliveries.list({});
    expect(d).toMatchObject({ status: 'delivered', attempts: 3, event: 'message.failed' });
    expect(renders.n).toBe(1);
  });
});

describe('RawHandoff', () => {
  const info = (id: string, size: number) => ({
    id,
    account: 'a',
    origin: { kind: 'imap', mailbox: 'INBOX', uid: 1, uidValidity: 1 } as const,
    messageId: null,
    size,
    receivedAt: 0,
    autoSubmitted: false,
    notDownloaded: null,
    conversationId: null,
  });

  it('keeps the oldest when full, and frees room as messages are taken', () => {
    const h = new RawHandoff({ maxBytes: 10 });
    expect(h.put(info('m1', 6), Buffer.alloc(6), 0)).toBe(true);
    expect(h.put(info('m2', 6), Buffer.alloc(6), 0)).toBe(false); // would exceed 10 bytes
    expect(h.take('m2')).toBeNull();
    expect(h.take('m1')?.raw.length).toBe(6);
    expect(h.take('m1')).toBeNull(); // taken once
    expect(h.put(info('m2', 6), Buffer.alloc(6), 0)).toBe(true);
    expect(h.bytes).toBe(6);
  });

  it('drops what nobody took within maxAgeMs', () => {
    const h = new RawHandoff({ maxBytes: 100, maxAgeMs: 1_000 });
    h.put(info('old', 10), Buffer.alloc(10), 0);
    h.put(info('new', 10), Buffer.alloc(10), 900);
    h.put(info('newer', 10), Buffer.alloc(10), 1_500); // 'old' is 1.5 s old now
    expect(h.take('old')).toBeNull();
    expect(h.take('new')).not.toBeNull();
    expect(h.size).toBe(1);
    expect(h.bytes).toBe(10);
  });
});
