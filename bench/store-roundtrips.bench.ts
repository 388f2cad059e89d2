import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, it } from 'vitest';
import { silentLogger } from '../src/log.js';
import { SecretCipher } from '../src/secrets/cipher.js';
import type { NewMessage } from '../src/store/messages.js';
import { openStore } from '../src/store/open.js';
import type { PostgresStore } from '../src/store/postgres/postgres-store.js';
import type { Store } from '../src/store/store.js';
import { startPostgres, tmpDataDir, type Postgres } from '../test/harness/index.js';
import { report } from './report.js';

/**
 * The store's share of ingesting a message, SQLite against PostgreSQL in the
 * same run: every store call a message goes through from the server to its
 * acknowledgement (insert in the connector's batches, claim, read with raw,
 * markDelivered, dueAcks, markAcks), the PostgreSQL round trips it costs,
 * and the time. Store calls only (no Dovecot, no webhook); PostgreSQL on
 * loopback with fsync off (the harness), so its figures are the protocol's
 * cost, not a disk's.
 */
const N = Number(process.env.BENCH_MESSAGES ?? 2_000);
const BODY = 4 * 1024;
let pg: Postgres;

beforeAll(async () => {
  pg = await startPostgres();
});
afterAll(async () => {
  await pg?.stop();
});

function messages(batchTag: string): NewMessage[] {
  return Array.from({ length: N }, (_, i) => ({
    account: 'bench',
    origin: { kind: 'imap' as const, mailbox: 'INBOX', uid: i + 1, uidValidity: 1 },
    raw: Buffer.concat([Buffer.from(`Message-ID: <${batchTag}-${i}@bench>\r\nSubject: ${i}\r\n\r\n`), randomBytes(BODY)]),
    internalDate: 1_700_000_000_000 + i,
    messageId: `<${batchTag}-${i}@bench>`,
    autoSubmitted: false,
    webhook: 'pipeline',
  }));
}

interface Phase {
  ms: number;
  trips: number;
}

async function lifecycle(store: Store, batch: number, tag: string): Promise<Record<string, Phase>> {
  const trips = () => (store as unknown as Partial<PostgresStore>).db?.roundTrips ?? 0;
  const out: Record<string, Phase> = {};
  const phase = async (name: string, fn: () => Promise<void>) => {
    const t0 = performance.now();
    const r0 = trips();
    await fn();
    out[name] = { ms: performance.now() - t0, trips: trips() - r0 };
  };
  const msgs = messages(tag);
  await phase('insert', async () => {
    for (let i = 0; i < msgs.length; i += batch) await store.ingest.insertMessages(msgs.slice(i, i + batch), 1_000);
  });
  await phase('deliver', async () => {
    for (;;) {
      const due = await store.deliveries.claimDue('pipeline', 2_000, 8, new Set());
      if (due.length === 0) break;
      for (const d of due) {
        await store.messages.getWithRaw(d.messageRef ?? '');
        await store.deliveries.markDelivered(d.id, { attempts: 1, status: 200, error: null, responseExcerpt: 'ok', now: 2_000 }, 'due');
      }
    }
  });
  await phase('ack', async () => {
    for (;;) {
      const acks = await store.ingest.dueAcks('bench', 500, 3_000);
      if (acks.length === 0) break;
      await store.ingest.markAcks(
        acks.map((a) => a.id),
        'done',
        null,
        null,
      );
    }
  });
  return out;
}

it(`store calls of ${N} messages: SQLite vs PostgreSQL`, async () => {
  const key = new SecretCipher(randomBytes(32));
  const lines: string[] = [`${N} messages of ${BODY / 1024} KB; insert in batches of 200 (an initial sync) and of 1 (IDLE, one new message)`, ''];
  lines.push('| backend | batch | insert ms/msg | deliver ms/msg | ack ms/msg | PG round trips per message (insert + deliver + ack) |', '|---|---|---|---|---|---|');
  for (const batch of [200, 1]) {
    const sqlite = await openStore({ dataDir: tmpDataDir('mg-bench-rt-') }, { cipher: key, logger: silentLogger() });
    const postgres = await openStore(
      { dataDir: '/nonexistent', store: { kind: 'postgres', url: await pg.createDatabase(), poolSize: 5 } },
      { cipher: key, logger: silentLogger() },
    );
    for (const [name, store] of [['sqlite', sqlite], ['postgres', postgres]] as const) {
      const r = await lifecycle(store, batch, `${name}-${batch}`);
      const per = (p: Phase | undefined) => ((p?.ms ?? 0) / N).toFixed(3);
      const trips = (p: Phase | undefined) => ((p?.trips ?? 0) / N).toFixed(2);
      lines.push(
        `| ${name} | ${batch} | ${per(r.insert)} | ${per(r.deliver)} | ${per(r.ack)} | ${name === 'postgres' ? `${trips(r.insert)} + ${trips(r.deliver)} + ${trips(r.ack)}` : '(embedded)'} |`,
      );
      await store.close();
    }
  }
  report('store-roundtrips', lines);
});
