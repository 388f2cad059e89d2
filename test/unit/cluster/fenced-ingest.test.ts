import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { Config } from '../../../src/config/types.js';
import { MailgateError } from '../../../src/errors.js';
import { IngestService } from '../../../src/incoming/ingest.js';
import type { FetchedMessage } from '../../../src/incoming/source.js';
import { createMetrics } from '../../../src/metrics.js';
import { inspectMessage } from '../../../src/parse/auto-submitted.js';
import { SecretCipher } from '../../../src/secrets/cipher.js';
import type { Fence, FenceSource } from '../../../src/store/cluster.js';
import { SqliteStore } from '../../../src/store/sqlite/sqlite-store.js';

const config = () => ({ accounts: [{ name: 'support', webhook: 'pipeline' }] }) as unknown as Config;

function message(uid: number): FetchedMessage {
  return {
    account: 'support',
    origin: { kind: 'imap', mailbox: 'INBOX', uid, uidValidity: 7 },
    raw: Buffer.from(`Message-ID: <m${uid}@example.com>\r\nSubject: m${uid}\r\n\r\nbody\r\n`),
    internalDate: null,
  };
}

/** A FenceSource as the coordinator keeps it: the fences held now, and what was reported lost. */
class Fences implements FenceSource {
  readonly held = new Map<string, Fence>();
  readonly lostReports: string[] = [];
  fence(account: string): Fence | null {
    return this.held.get(account) ?? null;
  }
  owned(): Fence[] {
    return [...this.held.values()];
  }
  lost(account: string): void {
    this.lostReports.push(account);
    this.held.delete(account);
  }
}

async function setup() {
  const store = SqliteStore.open(':memory:', new SecretCipher(randomBytes(32)));
  const fences = new Fences();
  const ingest = new IngestService({ store, config, metrics: createMetrics(), inspect: inspectMessage, onQueued: () => undefined, fences });
  const fence = await store.leases.acquire('support', 'node-a', Date.now(), 30_000);
  if (!fence) throw new Error('no lease');
  fences.held.set('support', fence);
  return { store, fences, ingest, fence };
}

const code = (e: unknown) => (e instanceof MailgateError ? e.code : String(e));

describe('IngestService with a FenceSource', () => {
  it('writes under the fence while the account is held', async () => {
    const { store, ingest } = await setup();
    await ingest.ingestMany([message(1), message(2)]);
    expect(await store.ingest.getCursor('support', 'INBOX')).toEqual({ uidValidity: 7, lastUid: 2 });
    expect(ingest.mayAct('support')).toBe(true);
    await store.close();
  });

  it('writes nothing, acts on nothing and reports nothing as due for an account it does not hold', async () => {
    const { store, fences, ingest } = await setup();
    const [r] = await ingest.ingestMany([message(1)]);
    const d = await store.deliveries.forMessage(r?.id ?? '');
    await store.deliveries.markDelivered(d?.id ?? '', { attempts: 1, status: 200, error: null, responseExcerpt: null, now: Date.now() }, 'due');
    expect((await ingest.due('support', 10)).map((a) => a.id)).toEqual([r?.id]);

    fences.held.delete('support');
    expect(ingest.mayAct('support')).toBe(false);
    expect(await ingest.due('support', 10)).toEqual([]);
    expect(code(await ingest.ingestMany([message(2)]).catch((e: unknown) => e))).toBe('LEASE_LOST');
    expect(code(await ingest.resetCursor('support', 'INBOX', 9).catch((e: unknown) => e))).toBe('LEASE_LOST');
    expect(code(await ingest.markDone('support', [r?.id ?? '']).catch((e: unknown) => e))).toBe('LEASE_LOST');
    expect(await store.ingest.getCursor('support', 'INBOX')).toEqual({ uidValidity: 7, lastUid: 1 });
    expect((await store.ingest.dueAcks('support', 10, Date.now())).map((a) => a.id)).toEqual([r?.id]);
    await store.close();
  });

  it('tells the fence source at once when the store refuses a stale fence', async () => {
    const { store, fences, ingest } = await setup();
    // Another node took the account over: the fence this node still has is stale.
    await store.leases.release(fences.held.get('support') as Fence, Date.now());
    await store.leases.acquire('support', 'node-b', Date.now(), 30_000);
    expect(code(await ingest.ingestMany([message(1)]).catch((e: unknown) => e))).toBe('LEASE_LOST');
    expect(fences.lostReports).toEqual(['support']);
    expect(await store.deliveries.countByStatus()).toEqual({ pending: 0, delivered: 0, failed: 0 });
    await store.close();
  });
});
