import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MailgateError } from '../../../src/errors.js';
import { silentLogger } from '../../../src/log.js';
import { SecretCipher } from '../../../src/secrets/cipher.js';
import { openStore } from '../../../src/store/open.js';
import { PgDb } from '../../../src/store/postgres/db.js';
import { PG_MIGRATIONS } from '../../../src/store/postgres/migrations.js';
import { RAW_CHUNK_BYTES } from '../../../src/store/postgres/message-repo.js';
import { tooNewError } from '../../../src/store/schema-version.js';
import type { Store } from '../../../src/store/store.js';
import { startPostgres, type Postgres } from '../../harness/index.js';
import { until } from '../../harness/until.js';
import { ACCOUNT, imapMessage, settle } from '../../store/conformance/harness.js';
import { adminQuery, urlWithSchema } from './pg-under-test.js';

/** What only the PostgreSQL backend has to show, on a real server: schema refusal, the key check, the bytes on disk, big bodies, a server that goes away. */
let pg: Postgres;
let dbUrl: string;
const opened: Store[] = [];

beforeAll(async () => {
  pg = await startPostgres();
  dbUrl = await pg.createDatabase();
});

afterAll(async () => {
  for (const s of opened.splice(0)) await s.close().catch(() => undefined);
  await pg?.stop();
});

async function freshSchema(): Promise<string> {
  const schema = `s_${randomBytes(5).toString('hex')}`;
  await adminQuery(dbUrl, `CREATE SCHEMA ${schema}`);
  return urlWithSchema(dbUrl, schema);
}

async function open(url: string, key: Buffer, daemon = false): Promise<Store> {
  const s = await openStore({ dataDir: '/nonexistent', store: { kind: 'postgres', url, poolSize: 2 } }, { cipher: new SecretCipher(key), logger: silentLogger(), daemon });
  opened.push(s);
  return s;
}

function codeOf(r: { ok: boolean; error?: unknown }): string | undefined {
  return r.ok ? undefined : (r.error as MailgateError).code;
}

describe('PostgreSQL store (real server)', () => {
  it('migrates once when replicas open together, and refuses a schema newer than this mailgate with the words SQLite uses', async () => {
    const url = await freshSchema();
    const key = randomBytes(32);
    await Promise.all([open(url, key), open(url, key), open(url, key)]);
    const rows = await adminQuery<{ version: number }>(url, 'SELECT version FROM mailgate_schema ORDER BY version');
    expect(rows.map((r) => r.version)).toEqual(PG_MIGRATIONS.map((_, i) => i + 1));

    const newer = PG_MIGRATIONS.length + 1;
    await adminQuery(url, `INSERT INTO mailgate_schema (version, name, applied_at) VALUES ($1, 'from-the-future', 0)`, [newer]);
    const r = await settle(() => open(url, key));
    expect(codeOf(r)).toBe('DB_TOO_NEW');
    expect((r as { error: Error }).error.message).toBe(tooNewError(newer, PG_MIGRATIONS.length).message);
  });

  it('refuses to start with a key that does not open the database’s key check, naming the problem, and changes nothing', async () => {
    const url = await freshSchema();
    const store = await open(url, randomBytes(32));
    await store.credentials.upsert({ name: 'c', provider: 'google', clientId: 'id', clientSecret: 'kept', settings: {} }, 1);
    const r = await settle(() => open(url, randomBytes(32)));
    expect(codeOf(r)).toBe('SECRET_KEY_INVALID');
    expect((r as { error: Error }).error.message).toMatch(/secret key does not match this database/);
    expect((await store.credentials.get('c'))?.clientSecret).toBe('kept');
  });

  it('keeps no secret in clear in the server’s files (heap, TOAST, WAL), while the marker next to them is there', async () => {
    const url = await freshSchema();
    const store = await open(url, randomBytes(32));
    const marker = `marker-${randomBytes(8).toString('hex')}`;
    const secrets = [`cs-${randomBytes(12).toString('hex')}`, `rt-${randomBytes(12).toString('hex')}`, `at-${randomBytes(12).toString('hex')}`, `pk-${randomBytes(24).toString('hex')}`];
    const [clientSecret, refreshToken, accessToken, codeVerifier] = secrets as [string, string, string, string];
    await store.credentials.upsert({ name: marker, provider: 'google', clientId: 'id', clientSecret, settings: {} }, 1);
    await store.tokens.save(
      { account: ACCOUNT, credential: marker, refreshToken, accessToken, accessExpiresAt: 1, scope: null, state: 'ok', lastRefreshAt: 1, refreshTokenIssuedAt: 1, lastError: null },
      1,
    );
    await store.oauthStates.create({ state: `st-${marker}`, account: ACCOUNT, credential: marker, codeVerifier, redirectUri: 'http://x/cb', createdAt: 1, expiresAt: 2 });
    await adminQuery(dbUrl, 'CHECKPOINT'); // everything on disk, not only in the WAL
    const [{ oid } = { oid: 0 }] = await adminQuery<{ oid: number }>(dbUrl, 'SELECT oid FROM pg_database WHERE datname = current_database()');
    const bytes = Buffer.concat([...filesUnder(join(pg.dataDir, 'base', String(oid))), ...filesUnder(join(pg.dataDir, 'pg_wal'))]);
    expect(bytes.includes(Buffer.from(marker))).toBe(true);
    for (const s of secrets) {
      for (const spelling of [Buffer.from(s), Buffer.from(Buffer.from(s).toString('base64')), Buffer.from(Buffer.from(s).toString('hex'))]) {
        expect(bytes.includes(spelling), `a secret (${s.slice(0, 3)}…) is on disk in clear`).toBe(false);
      }
    }
  });

  it('stores raw bytes exactly and reads a body larger than a slice back whole', async () => {
    const store = await open(await freshSchema(), randomBytes(32));
    const big = Buffer.concat([imapMessage(1).raw, randomBytes(RAW_CHUNK_BYTES * 3 + 12_345)]);
    const small = Buffer.concat([imapMessage(2).raw, Buffer.from([0, 255, 0x5c, 0x78])]);
    const [a, b] = await store.ingest.insertMessages([imapMessage(1, { raw: big }), imapMessage(2, { raw: small })], 1_000);
    expect((await store.messages.getRaw(a?.id ?? ''))?.equals(big)).toBe(true);
    expect((await store.messages.getWithRaw(a?.id ?? ''))?.raw.equals(big)).toBe(true);
    expect((await store.messages.getWithRaw(b?.id ?? ''))?.raw.equals(small)).toBe(true);
    expect((await store.messages.get(a?.id ?? ''))?.size).toBe(big.length);
  });

  it('wakes a store on another connection (LISTEN/NOTIFY), scoped to its schema', async () => {
    const url = await freshSchema();
    const key = randomBytes(32);
    const a = await open(url, key);
    const b = await open(url, key);
    const elsewhere = await open(await freshSchema(), randomBytes(32));
    const seenElsewhere: string[] = [];
    elsewhere.bus.subscribe('ack_due', (p) => seenElsewhere.push(p));
    const got = new Promise<string>((resolve) => b.bus.subscribe('ack_due', resolve));
    await elsewhere.bus.publish('ack_due', 'warm-up'); // makes sure elsewhere listens before a publishes
    await until(async () => seenElsewhere.length === 1, 10_000, 'the other schema to hear itself');
    await b.bus.publish('delivery_due', ''); // b's own LISTEN is in place once its publish returns
    await a.bus.publish('ack_due', 'support');
    expect(await got).toBe('support');
    expect(seenElsewhere).toEqual(['warm-up']);
  });
});

describe('PostgreSQL going away (the server stopped and started again)', () => {
  it('a one-shot open fails at once, naming the server and never the password', async () => {
    const u = new URL(dbUrl);
    u.password = 'hunter2-secret';
    u.port = String(pg.port + 1 > 65535 ? 1 : pg.port + 1); // nothing listens there
    const r = await settle(() => open(u.toString(), randomBytes(32)));
    expect(codeOf(r)).toBe('CONNECTION_FAILED');
    const msg = (r as { error: Error }).error.message;
    expect(msg).toContain(`127.0.0.1:${u.port}`);
    expect(msg).not.toContain('hunter2');
  });

  it('a server that ends the connection between two statements of a transaction fails that transaction (transient), not the process', async () => {
    const db = new PgDb({ url: dbUrl, poolSize: 1 });
    const unheard: unknown[] = [];
    const onUncaught = (err: unknown): void => void unheard.push(err);
    process.on('uncaughtException', onUncaught);
    try {
      const r = await settle(() =>
        db.tx(async (c) => {
          await c.query('SELECT 1');
          // No statement is running while the server goes: the client hears it as an 'error' event.
          await pg.halt();
          await new Promise((res) => setTimeout(res, 200));
          return c.query('SELECT 2');
        }),
      );
      expect(codeOf(r)).toBe('CONNECTION_FAILED');
      expect(db.unavailable).toMatch(/cannot be reached/);
      expect(unheard).toEqual([]);
    } finally {
      process.off('uncaughtException', onUncaught);
      await pg.resume();
      await db.close();
    }
    // The pool dropped the broken connection: the next call gets a fresh one.
    const again = new PgDb({ url: dbUrl, poolSize: 1 });
    await until(async () => (await again.rows<{ n: number }>('SELECT 3 AS n').catch(() => []))[0]?.n === 3, 30_000, 'the server to answer again');
    await again.close();
  }, 60_000);

  it('a daemon store waits for a server that is down at start, then opens; loses it while running, says so, and resumes with nothing lost', async () => {
    const url = await freshSchema();
    const key = randomBytes(32);
    const first = await open(url, key);
    await first.ingest.insertMessages([imapMessage(1)], 1_000);
    await first.close();

    await pg.halt();
    const store = await open(url, key, true);
    expect(store.opened).toBeInstanceOf(Promise);
    const reasons: (string | null)[] = [];
    store.watch?.((r) => reasons.push(r));
    expect(reasons[0]).toMatch(/cannot be reached/);
    expect(await store.ping()).toBe(false);
    const early = await settle(() => store.meta.get('x'));
    expect(codeOf(early)).toBe('CONNECTION_FAILED');

    await pg.resume();
    await store.opened;
    expect(await store.ping()).toBe(true);
    expect(await store.ingest.getCursor(ACCOUNT, 'INBOX')).toEqual({ uidValidity: 7, lastUid: 1 });
    await until(async () => reasons.at(-1) === null, 10_000, 'the store to say the database answers');

    // Lost while running: calls fail with a transient error, the watcher hears why, then hears it is back.
    await pg.halt();
    const during = await settle(() => store.ingest.insertMessages([imapMessage(2)], 2_000));
    expect(codeOf(during)).toBe('CONNECTION_FAILED');
    await until(async () => typeof reasons.at(-1) === 'string', 10_000, 'the store to report the lost database');
    expect(await store.ping()).toBe(false);
    await pg.resume();
    await until(async () => reasons.at(-1) === null, 60_000, 'the store to find the database again');
    const [again] = await store.ingest.insertMessages([imapMessage(2)], 3_000);
    expect(again?.duplicate).toBe(false); // the failed write left nothing behind
    expect(await store.deliveries.countByStatus()).toEqual({ pending: 2, delivered: 0, failed: 0 });
  }, 120_000);
});

function filesUnder(dir: string): Buffer[] {
  const out: Buffer[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    const st = statSync(p);
    if (st.isDirectory()) out.push(...filesUnder(p));
    else if (st.isFile()) out.push(readFileSync(p));
  }
  return out;
}
